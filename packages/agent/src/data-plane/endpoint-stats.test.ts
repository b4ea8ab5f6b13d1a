import type { IncomingMessage, ServerResponse } from 'node:http';
import { LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKET_COUNT, type EndpointTraffic, type Resource } from '@sluice/proto';
import { startBackend, type Backend } from '@sluice/testing';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlane } from './data-plane.js';
import { addTraffic, bucketOf, ClusterTraffic, drainTraffic, TryOutcome } from './endpoint-stats.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';
const POOL = 'default/pool';

const cleanups: (() => PromiseLike<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backend(name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Backend> {
  const b = await startBackend(name, handler);
  cleanups.push(() => b[Symbol.asyncDispose]());
  return b;
}

function byId(traffic: EndpointTraffic[]): Map<string, EndpointTraffic> {
  return new Map(traffic.map((t) => [t.endpointId, t]));
}

describe('traffic stats on the request path', () => {
  it('counts requests and errors by class per endpoint, against real backends', async () => {
    const ok = await backend('ok');
    const failing = await backend('failing', (req, res) => {
      req.resume();
      res.writeHead(500).end('no\n');
    });
    const refused = await startBackend('refused');
    await refused[Symbol.asyncDispose]();
    const held: ServerResponse[] = [];
    const hanging = await backend('hanging', (req, res) => {
      req.resume();
      held.push(res);
    });
    const resetting = await backend('resetting', (req) => req.socket.destroy());
    const ports = [ok, failing, refused, hanging, resetting].map((b) => ({ port: b.port }));

    const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 500 });
    cleanups.push(() => dp.close());
    const resources: Resource[] = [
      clusterResource(POOL),
      endpointsResource(POOL, ports),
      routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', POOL, { requestTimeoutMs: 150 })])]),
      listenerResource(LISTENER),
    ];
    expect(await dp.apply({ resources, removed: [] })).toEqual([]);
    const url = `http://127.0.0.1:${dp.listeners().get(LISTENER)!.port}`;
    const agent = new Agent({ keepAliveTimeout: 1_000 });
    cleanups.push(() => agent.close());

    // Round robin: 10 requests, two per endpoint.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await request(url, { dispatcher: agent });
      await res.body.text();
      statuses.push(res.statusCode);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);

    const { traffic, omitted } = dp.drainTraffic(100);
    expect(omitted).toBe(0);
    const got = byId(traffic);
    const pick = (i: number) => {
      const t = got.get(`${POOL}#${i}`)!;
      return { requests: t.requests, errors5xx: t.errors5xx, connectFailures: t.connectFailures, timeouts: t.timeouts, resets: t.resets, inFlight: t.inFlight };
    };
    const zero = { errors5xx: 0, connectFailures: 0, timeouts: 0, resets: 0, inFlight: 0 };
    expect(pick(0)).toEqual({ ...zero, requests: 2 });
    expect(pick(1)).toEqual({ ...zero, requests: 2, errors5xx: 2 });
    expect(pick(2)).toEqual({ ...zero, requests: 2, connectFailures: 2 });
    expect(pick(3)).toEqual({ ...zero, requests: 2, timeouts: 2 });
    expect(pick(4)).toEqual({ ...zero, requests: 2, resets: 2 });
    for (const t of traffic) {
      expect(t.cluster).toBe(POOL);
      expect(t.latencyBuckets).toHaveLength(LATENCY_BUCKET_COUNT);
      expect(t.latencyBuckets.reduce((a, b) => a + b, 0)).toBe(2);
      expect(t.latencyEwmaMs).toBeGreaterThan(0);
    }
    // A delta: the next drain has nothing (no traffic, nothing in flight).
    expect(dp.drainTraffic(100)).toEqual({ traffic: [], omitted: 0 });
    for (const res of held) res.destroy();
  });
});

describe('endpoint counters', () => {
  it('puts a latency in the first bucket whose bound is >= it, else +Inf', () => {
    expect(bucketOf(0.2)).toBe(0);
    expect(bucketOf(1)).toBe(0);
    expect(bucketOf(1.5)).toBe(1);
    expect(bucketOf(5000)).toBe(LATENCY_BUCKET_BOUNDS_MS.length - 1);
    expect(bucketOf(60_000)).toBe(LATENCY_BUCKET_BOUNDS_MS.length);
  });

  it('reports in-flight tries as a gauge that a drain does not reset', () => {
    const cluster = new ClusterTraffic('ns/c');
    const c = cluster.counters('e1');
    c.start();
    c.start();
    c.end(3, TryOutcome.OK);
    const first = drainTraffic([cluster]).traffic;
    expect(first).toMatchObject([{ endpointId: 'e1', requests: 1, inFlight: 1, latencyEwmaMs: 3 }]);
    expect(drainTraffic([cluster]).traffic).toMatchObject([{ endpointId: 'e1', requests: 0, inFlight: 1, latencyBuckets: [] }]);
  });

  it('keeps a report bounded with many endpoints: the busiest go first, the others wait, none lost', () => {
    const cluster = new ClusterTraffic('ns/c');
    for (let i = 0; i < 10_000; i++) {
      const c = cluster.counters(`e${i}`);
      for (let n = 0; n <= i % 7; n++) {
        c.start();
        c.end(10, TryOutcome.OK);
      }
    }
    let total = 0;
    let reports = 0;
    for (;;) {
      const { traffic, omitted } = drainTraffic([cluster], 4096);
      if (traffic.length === 0) break;
      reports++;
      expect(traffic.length).toBeLessThanOrEqual(4096);
      if (reports === 1) {
        expect(omitted).toBe(10_000 - 4096);
        expect(traffic.every((t) => t.requests >= 4)).toBe(true);
      }
      total += traffic.reduce((a, t) => a + t.requests, 0);
    }
    expect(reports).toBe(3);
    let expected = 0;
    for (let i = 0; i < 10_000; i++) expected += (i % 7) + 1;
    expect(total).toBe(expected);
  });

  it('adds two deltas: counts and buckets summed, EWMA weighted by requests', () => {
    const a: EndpointTraffic = { cluster: 'c', endpointId: 'e', requests: 1, errors5xx: 1, connectFailures: 0, timeouts: 0, resets: 0, latencyEwmaMs: 10, latencyBuckets: [], inFlight: 1 };
    a.latencyBuckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
    a.latencyBuckets[3] = 1;
    const b = { ...a, requests: 3, errors5xx: 0, latencyEwmaMs: 30, latencyBuckets: a.latencyBuckets.map((n) => n * 3), inFlight: 2 };
    addTraffic(a, b);
    expect(a).toMatchObject({ requests: 4, errors5xx: 1, latencyEwmaMs: 25, inFlight: 3 });
    expect(a.latencyBuckets[3]).toBe(4);
  });
});
