import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdFixture } from '@sluice/testing';
import { EtcdStore } from './etcd-store.js';
import type { Store, WatchBatch } from './store.js';
import { expectStoreError, put } from './store-contract.js';

let etcd: EtcdFixture;
const stores: Store[] = [];
let n = 0;

async function connect(options: { prefix?: string; timeoutMs?: number; watchRetryTimeoutMs?: number } = {}): Promise<EtcdStore> {
  const store = await EtcdStore.connect({ endpoints: [etcd.endpoint], prefix: `/etcd-test-${++n}/`, ...options });
  stores.push(store);
  return store;
}

/** A background watch whose batches can be awaited one revision at a time. */
function watchInBackground(store: Store, prefix: string, from: number) {
  const abort = new AbortController();
  const batches: WatchBatch[] = [];
  let notify: (() => void) | undefined;
  const done = (async () => {
    try {
      for await (const batch of store.watch(prefix, from, abort.signal)) {
        batches.push(batch);
        notify?.();
      }
    } finally {
      notify?.();
    }
  })();
  return {
    batches,
    done,
    stop: () => abort.abort(),
    /** Resolves once a batch at `revision` or later has arrived (or the watch ended). */
    async reached(revision: number): Promise<void> {
      let ended = false;
      void done.finally(() => (ended = true)).catch(() => undefined);
      while (!ended && (batches.at(-1)?.revision ?? 0) < revision) {
        await new Promise<void>((resolve) => (notify = resolve));
      }
    },
  };
}

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await etcd?.[Symbol.asyncDispose]();
});

describe('EtcdStore', () => {
  it('describes itself by endpoint', async () => {
    const store = await connect();
    expect(store.kind).toBe('etcd');
    expect(store.description).toBe(`etcd at ${etcd.endpoint}`);
  });

  it('keeps stores with different prefixes apart: keys, lists and watches', async () => {
    const a = await connect({ prefix: '/tenant-a/' });
    const b = await connect({ prefix: '/tenant-b/' });
    const from = (await a.revision()) + 1;
    await put(a, 'k', 'from a');
    const rb = await put(b, 'k', 'from b');
    await put(a, 'k2', 'from a');
    expect((await a.get('k'))?.value).toBe('from a');
    expect((await b.get('k'))?.value).toBe('from b');
    expect((await a.list('')).items.map((kv) => kv.key)).toEqual(['k', 'k2']);
    expect((await b.list('')).items.map((kv) => [kv.key, kv.value])).toEqual([['k', 'from b']]);
    const watch = watchInBackground(b, '', from);
    const rb2 = await put(b, 'k', 'again');
    await watch.reached(rb2);
    watch.stop();
    await watch.done;
    expect(watch.batches.map((batch) => batch.revision)).toEqual([rb, rb2]);
    expect(watch.batches[0]!.events[0]!.kv.key).toBe('k');
  });

  it('lists more keys than one page at one revision', async () => {
    const store = await connect();
    const ops = Array.from({ length: 1234 }, (_, i) => ({ type: 'put' as const, key: `many/${String(i).padStart(5, '0')}`, value: `${i}` }));
    // etcd caps a txn at 128 ops by default.
    for (let i = 0; i < ops.length; i += 100) await store.txn([], ops.slice(i, i + 100));
    const { items, revision } = await store.list('many/');
    expect(items.map((kv) => kv.key)).toEqual(ops.map((op) => op.key));
    expect(revision).toBe(await store.revision());
  });

  it('survives an etcd restart: data and revision stay, a running watch continues without loss or repeat', async () => {
    const store = await connect();
    const from = (await store.revision()) + 1;
    const watch = watchInBackground(store, 'w/', from);
    const r1 = await put(store, 'w/a', '1');
    await watch.reached(r1);

    await etcd.stop();
    await etcd.start();
    // Written before the watch has necessarily reconnected: it must replay them, not skip them.
    const r2 = await put(store, 'w/a', '2');
    const r3 = await put(store, 'w/b', '3');
    expect(r2).toBe(r1 + 1);
    await watch.reached(r3);

    await etcd.kill();
    await etcd.start();
    const r4 = await put(store, 'w/a', '4');
    await watch.reached(r4);
    watch.stop();
    await watch.done;

    expect(watch.batches.map((b) => b.revision)).toEqual([r1, r2, r3, r4]);
    expect(watch.batches.map((b) => b.events[0]!.kv.value)).toEqual(['1', '2', '3', '4']);
    expect(watch.batches[1]!.events[0]!.prevKv?.value).toBe('1');
    expect((await store.get('w/b'))?.modRevision).toBe(r3);
    expect(await store.revision()).toBe(r4);
  });

  it('a dead etcd fails calls with unavailable naming the endpoint, and the store recovers after', async () => {
    const store = await connect({ timeoutMs: 2_000 });
    await put(store, 'k', 'before');
    await etcd.stop();
    try {
      for (const call of [store.get('k'), store.list(''), store.revision(), store.health(), store.txn([], [{ type: 'put', key: 'k', value: 'x' }])]) {
        const error = await expectStoreError(call, 'unavailable');
        expect(error.message).toContain(`etcd at ${etcd.endpoint} unavailable: `);
      }
      const connectError = await expectStoreError(EtcdStore.connect({ endpoints: [etcd.endpoint], timeoutMs: 2_000 }), 'unavailable');
      expect(connectError.message).toContain(etcd.endpoint);
    } finally {
      await etcd.start();
    }
    await expect(store.health()).resolves.toBeUndefined();
    expect((await store.get('k'))?.value).toBe('before');
  });

  it('a watch that cannot reconnect gives up with unavailable', async () => {
    const store = await connect({ watchRetryTimeoutMs: 300 });
    const from = await put(store, 'gone/k', '1');
    const watch = watchInBackground(store, 'gone/', from);
    await watch.reached(from);
    await etcd.stop();
    try {
      const error = await expectStoreError(watch.done, 'unavailable');
      expect(error.message).toContain(etcd.endpoint);
    } finally {
      await etcd.start();
    }
  });

  it('rejects bad options with invalid', async () => {
    await expectStoreError(EtcdStore.connect({ endpoints: [] }), 'invalid');
    await expectStoreError(EtcdStore.connect({ endpoints: ['127.0.0.1:2379'] }), 'invalid');
  });
});
