import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '@sluice/testing';
import { EmbeddedStore } from '../store/embedded-store.js';
import { expectStoreError, runStoreContract } from '../store/store-contract.js';
import { ControllerMetrics } from './controller-metrics.js';
import { instrumentStore, txnOperation } from './instrumented-store.js';

const dirs: TempDir[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => dir[Symbol.asyncDispose]()));
});

async function embedded(): Promise<EmbeddedStore> {
  const dir = await tempDir('sluice-metrics-store-');
  dirs.push(dir);
  return EmbeddedStore.open({ dataDir: dir.path });
}

async function value(metrics: ControllerMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

// The decorator must not change what the store does: the whole contract runs through it.
runStoreContract('instrumented embedded', async () => instrumentStore(await embedded(), new ControllerMetrics()));

describe('instrumentStore', () => {
  it('names a single put or delete by its op, anything else txn', () => {
    expect(txnOperation([], [{ type: 'put', key: 'a', value: '1' }])).toBe('put');
    expect(txnOperation([], [{ type: 'delete', key: 'a' }])).toBe('delete');
    expect(txnOperation([{ key: 'a', modRevision: 0 }], [{ type: 'put', key: 'a', value: '1' }])).toBe('txn');
    expect(txnOperation([], [{ type: 'put', key: 'a', value: '1' }, { type: 'delete', key: 'b' }])).toBe('txn');
  });

  it('times every call by operation and counts failures', async () => {
    const metrics = new ControllerMetrics();
    const store = instrumentStore(await embedded(), metrics);
    try {
      await store.txn([], [{ type: 'put', key: 'k', value: 'v' }]);
      await store.txn([], [{ type: 'put', key: 'k2', value: 'v' }]);
      await store.get('k');
      await store.list('');
      await expectStoreError(store.compact(1_000_000), 'invalid');
      expect(await value(metrics, 'sluice_controller_store_operation_duration_seconds', { operation: 'put', le: '+Inf' })).toBe(2);
      expect(await value(metrics, 'sluice_controller_store_operation_duration_seconds', { operation: 'get', le: '+Inf' })).toBe(1);
      expect(await value(metrics, 'sluice_controller_store_operation_duration_seconds', { operation: 'list', le: '+Inf' })).toBe(1);
      expect(await value(metrics, 'sluice_controller_store_errors_total', { operation: 'compact' })).toBe(1);
      expect(await value(metrics, 'sluice_controller_store_errors_total', { operation: 'put' })).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('counts a failed watch, but not an aborted one', async () => {
    const metrics = new ControllerMetrics();
    const store = instrumentStore(await embedded(), metrics);
    try {
      const abort = new AbortController();
      await expectStoreError(
        (async () => {
          for await (const _ of store.watch('', 0, abort.signal)) break;
        })(),
        'invalid',
      );
      expect(await value(metrics, 'sluice_controller_store_errors_total', { operation: 'watch' })).toBe(1);
      abort.abort();
      for await (const _ of store.watch('', 1, abort.signal)) break;
      expect(await value(metrics, 'sluice_controller_store_errors_total', { operation: 'watch' })).toBe(1);
    } finally {
      await store.close();
    }
  });
});
