import { ResourceError, ResourceType, type Resource } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { AppliedSet, mergeErrors, rollbackFor } from './applied-set.js';
import { captureLogger } from './test-support/capture-logger.js';
import { MemoryDataPlane } from './test-support/memory-data-plane.js';
import { cluster, listener } from './test-support/resources.js';
import type { MetricsJSON } from '../metrics/registry.js';
import { isToWorker, updateOf, type FromWorker } from './worker-messages.js';
import { WorkerPool, type WorkerHandle } from './worker-pool.js';

/** A worker without a process: a MemoryDataPlane behind the IPC messages, JSON-encoded like the real channel. */
class FakeWorker implements WorkerHandle {
  static nextId = 1;
  readonly id = FakeWorker.nextId++;
  readonly pid = undefined;
  readonly dataPlane = new MemoryDataPlane();
  private messageListeners: ((message: unknown) => void)[] = [];
  private exitListeners: ((code: number | null, signal: string | null) => void)[] = [];
  alive = true;
  closed = false;

  constructor(readonly readyNow = true) {
    if (readyNow) setImmediate(() => this.emit({ type: 'ready' }));
  }
  send(raw: unknown): void {
    if (!this.alive) throw new Error('channel closed');
    const message = JSON.parse(JSON.stringify(raw)) as unknown;
    if (!isToWorker(message)) return;
    if (message.type === 'close') {
      this.closed = true;
      setImmediate(() => this.exit(0, null));
      return;
    }
    if (message.type === 'metrics') {
      const metrics = [[{ name: 'fake_requests_total', help: 'fake', type: 'counter', aggregator: 'sum', values: [{ labels: {}, value: 2 }] }]] as unknown as MetricsJSON[];
      setImmediate(() => this.emit({ type: 'metrics', id: message.id, metrics }));
      return;
    }
    void this.dataPlane.apply(updateOf(message)).then((errors) => this.emit({ type: 'applied', id: message.id, errors: errors.map((e) => ResourceError.toJSON(e)), listeners: [] }));
  }
  onMessage(listener: (message: unknown) => void): void {
    this.messageListeners.push(listener);
  }
  onExit(listener: (code: number | null, signal: string | null) => void): void {
    this.exitListeners.push(listener);
  }
  kill(): void {
    this.exit(null, 'SIGKILL');
  }
  exit(code: number | null, signal: string | null): void {
    if (!this.alive) return;
    this.alive = false;
    for (const listener of this.exitListeners) listener(code, signal);
  }
  emit(message: FromWorker): void {
    if (!this.alive) return;
    const copy = JSON.parse(JSON.stringify(message)) as unknown;
    for (const listener of this.messageListeners) listener(copy);
  }
}

async function startPool(count: number) {
  const workers: FakeWorker[] = [];
  const { logger, entries } = captureLogger();
  const pool = new WorkerPool({
    count,
    logger,
    fork: () => {
      const worker = new FakeWorker();
      workers.push(worker);
      return worker;
    },
  });
  await pool.start();
  return { pool, workers, entries };
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const names = (resources: Resource[]) => resources.map((r) => `${r.name}@${r.version}`).sort();

describe('WorkerPool', () => {
  it('feeds every update to every worker and tracks the applied set', async () => {
    const { pool, workers } = await startPool(3);
    expect(await pool.apply({ resources: [cluster('default/api'), listener('default/web')], removed: [] })).toEqual([]);
    expect(await pool.apply({ resources: [], removed: [{ type: ResourceType.RESOURCE_TYPE_CLUSTER, name: 'default/api' }] })).toEqual([]);
    for (const worker of workers) expect(names(worker.dataPlane.resources())).toEqual(['default/web@v1']);
    expect(names(pool.resources())).toEqual(['default/web@v1']);
    await pool.close();
    expect(workers.every((w) => w.closed)).toBe(true);
  });

  it('rejects a resource any worker rejects, and rolls back the workers that took it', async () => {
    const { pool, workers } = await startPool(2);
    await pool.apply({ resources: [listener('default/web', 'v1'), listener('default/new', 'v1')], removed: [] });
    workers[1]!.dataPlane.reject = (r) => (r.version === 'v2' ? 'worker 2 cannot' : undefined);
    const errors = await pool.apply({ resources: [listener('default/web', 'v2'), listener('default/other', 'v2')], removed: [] });
    expect(errors.map((e) => [e.key?.name, e.message])).toEqual([
      ['default/web', 'worker 2 cannot'],
      ['default/other', 'worker 2 cannot'],
    ]);
    // Everyone is back on the previous version; what had none is gone everywhere.
    for (const worker of workers) expect(names(worker.dataPlane.resources())).toEqual(['default/new@v1', 'default/web@v1']);
    expect(names(pool.resources())).toEqual(['default/new@v1', 'default/web@v1']);
    await pool.close();
  });

  it('restarts a worker that dies and feeds it the applied set', async () => {
    const { pool, workers, entries } = await startPool(2);
    await pool.apply({ resources: [cluster('default/api'), listener('default/web')], removed: [] });
    workers[0]!.exit(1, null);
    await until(() => workers.length === 3 && names(workers[2]!.dataPlane.resources()).length === 2);
    expect(names(workers[2]!.dataPlane.resources())).toEqual(['default/api@v1', 'default/web@v1']);
    expect(entries.find((e) => e.message === 'data-plane worker exited; restarting it')).toMatchObject({ worker: 0, code: 1 });
    // Updates reach the new worker too.
    await pool.apply({ resources: [listener('default/web', 'v2')], removed: [] });
    expect(names(workers[2]!.dataPlane.resources())).toEqual(['default/api@v1', 'default/web@v2']);
    await pool.close();
  });

  it('fails to start when a worker exits before it is ready', async () => {
    const pool = new WorkerPool({
      count: 1,
      logger: captureLogger().logger,
      fork: () => {
        const worker = new FakeWorker(false);
        setImmediate(() => worker.exit(1, null));
        return worker;
      },
    });
    await expect(pool.start()).rejects.toThrow(/exited before it was ready \(code 1/);
    await pool.close();
  });

  it('does not restart workers while closing', async () => {
    const { pool, workers } = await startPool(2);
    await pool.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(workers).toHaveLength(2);
  });
});

describe('worker traffic stats', () => {
  const entry = (requests: number, inFlight: number, ewma: number) => ({
    cluster: 'default/pool',
    endpointId: 'e1',
    requests,
    errors5xx: 1,
    connectFailures: 0,
    timeouts: 0,
    resets: 0,
    latencyEwmaMs: ewma,
    latencyBuckets: [requests, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    inFlight,
  });

  it("sums the workers' deltas into the primary's report; in-flight is each worker's latest gauge", async () => {
    const { pool, workers } = await startPool(2);
    workers[0]!.emit({ type: 'traffic', entries: [entry(2, 5, 10)] });
    workers[0]!.emit({ type: 'traffic', entries: [entry(1, 1, 10)] });
    workers[1]!.emit({ type: 'traffic', entries: [entry(1, 2, 40)] });
    const { traffic, omitted } = pool.drainTraffic(100);
    expect(omitted).toBe(0);
    expect(traffic).toEqual([{ ...entry(4, 3, 17.5), errors5xx: 3 }]);
    // Counts are deltas (drained); the in-flight gauges stay until the workers say otherwise.
    expect(pool.drainTraffic(100).traffic).toMatchObject([{ requests: 0, inFlight: 3, latencyBuckets: [] }]);
    workers[1]!.exit(1, null);
    expect(pool.drainTraffic(100).traffic).toMatchObject([{ requests: 0, inFlight: 1 }]);
    await pool.close();
  });

  it('keeps the primary report bounded: the busiest endpoints first, the rest on the next drain', async () => {
    const { pool, workers } = await startPool(2);
    const entries = Array.from({ length: 50 }, (_, i) => ({ ...entry(i + 1, 0, 1), endpointId: `e${i}` }));
    workers[0]!.emit({ type: 'traffic', entries });
    workers[1]!.emit({ type: 'traffic', entries });
    const first = pool.drainTraffic(20);
    expect(first.omitted).toBe(30);
    expect(first.traffic.map((t) => t.requests)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * (50 - i)));
    const rest = pool.drainTraffic(100);
    expect(rest.traffic).toHaveLength(30);
    expect(rest.traffic.reduce((a, t) => a + t.requests, 0)).toBe(2 * ((30 * 31) / 2));
    await pool.close();
  });
});

describe('worker metrics', () => {
  it("gathers every live worker's registries; a dead worker is left out", async () => {
    const { pool, workers } = await startPool(3);
    try {
      expect(await pool.collectMetrics()).toHaveLength(3);
      workers[1]!.kill();
      const parts = await pool.collectMetrics();
      expect(parts).toHaveLength(2);
      expect(parts[0]![0]).toMatchObject({ name: 'fake_requests_total', values: [{ value: 2 }] });
    } finally {
      await pool.close();
    }
  });
});

describe('mergeErrors and rollbackFor', () => {
  const key = (name: string) => ({ type: ResourceType.RESOURCE_TYPE_LISTENER, name });
  const error = (name: string, message: string) => ResourceError.fromPartial({ key: key(name), version: 'v2', message });

  it('keeps the first message per resource', () => {
    expect(mergeErrors([[error('a', 'one')], [error('a', 'two'), error('b', 'three')]]).map((e) => e.message)).toEqual(['one', 'three']);
  });

  it('rolls back only what some workers accepted', () => {
    const before = new AppliedSet();
    before.record({ resources: [listener('a', 'v1')], removed: [] }, []);
    const answers = [[error('a', 'x'), error('c', 'x')], [error('c', 'x')], [error('b', 'x'), error('c', 'x')]];
    expect(rollbackFor(answers, mergeErrors(answers), before)).toEqual({ resources: [listener('a', 'v1')], removed: [key('b')] });
    expect(rollbackFor([[error('c', 'x')], [error('c', 'x')]], [error('c', 'x')], before)).toBeUndefined();
  });
});
