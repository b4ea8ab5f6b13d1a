import { LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKET_COUNT, type EndpointTraffic } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { Aggregator, endpointKey, quantile } from './aggregator.js';

const CLUSTER = 'default/pool';
const KEY = endpointKey(CLUSTER, 'e1');

/** A histogram of these latencies, as an agent counts them (first bound >= latency, else +Inf). */
function histogramOf(latencies: number[]): number[] {
  const h = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  for (const l of latencies) {
    const i = LATENCY_BUCKET_BOUNDS_MS.findIndex((b) => l <= b);
    h[i < 0 ? LATENCY_BUCKET_BOUNDS_MS.length : i]! += 1;
  }
  return h;
}

function traffic(over: Partial<EndpointTraffic> & { latencies?: number[] } = {}): EndpointTraffic {
  const { latencies = [], ...rest } = over;
  return {
    cluster: CLUSTER,
    endpointId: 'e1',
    requests: latencies.length,
    errors5xx: 0,
    connectFailures: 0,
    timeouts: 0,
    resets: 0,
    latencyEwmaMs: latencies.length > 0 ? latencies.reduce((a, b) => a + b, 0) / latencies.length : 0,
    latencyBuckets: latencies.length > 0 ? histogramOf(latencies) : [],
    inFlight: 0,
    ...rest,
  };
}

/** A seeded generator (mulberry32): the same latencies every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Aggregator', () => {
  it('merges two agents: counts added, EWMA weighted by requests, errors of every class, in-flight summed', () => {
    const agg = new Aggregator();
    agg.add('a1', { traffic: [traffic({ latencies: [10, 10, 10], errors5xx: 1, inFlight: 2 })] }, 1_000);
    agg.add('a2', { traffic: [traffic({ latencies: [50], connectFailures: 1, timeouts: 1, resets: 1, inFlight: 3 })] }, 1_500);
    const s = agg.snapshot(2_000).get(KEY)!;
    expect(s).toMatchObject({ cluster: CLUSTER, endpointId: 'e1', requests: 4, errors: 4, errorRate: 1, latencyMs: 20, inFlight: 5, agents: 2 });
  });

  it('merges histograms across two agents into the histogram of the union (same p50/p99)', () => {
    const random = seeded(42);
    const one = Array.from({ length: 500 }, () => random() * 80);
    const two = Array.from({ length: 300 }, () => 50 + random() * 3000);
    const agg = new Aggregator();
    agg.add('a1', { traffic: [traffic({ latencies: one })] }, 0);
    agg.add('a2', { traffic: [traffic({ latencies: two })] }, 0);
    const union = histogramOf([...one, ...two]);
    const s = agg.snapshot(0).get(KEY)!;
    expect(s.requests).toBe(800);
    expect(s.p50Ms).toBe(quantile(union, 0.5));
    expect(s.p99Ms).toBe(quantile(union, 0.99));
    // A single agent's report holding the union gives the same answer.
    const single = new Aggregator();
    single.add('a', { traffic: [traffic({ latencies: [...one, ...two] })] }, 0);
    expect(single.snapshot(0).get(KEY)).toMatchObject({ requests: 800, p50Ms: s.p50Ms, p99Ms: s.p99Ms });
  });

  it('computes quantiles from buckets, interpolated within the bucket', () => {
    expect(quantile(histogramOf([]), 0.5)).toBe(0);
    // 100 tries in (5, 10]: p50 halfway through that bucket.
    expect(quantile(histogramOf(new Array<number>(100).fill(7)), 0.5)).toBe(7.5);
    expect(quantile(histogramOf([60_000]), 0.99)).toBe(5000);
  });

  it('slides: buckets older than the window are forgotten (injected clock)', () => {
    const agg = new Aggregator({ windowMs: 3_000, bucketMs: 1_000 });
    agg.add('a1', { traffic: [traffic({ latencies: [100] })] }, 10_000);
    agg.add('a1', { traffic: [traffic({ latencies: [1, 1] })] }, 11_200);
    expect(agg.snapshot(12_999).get(KEY)).toMatchObject({ requests: 3, agents: 1 });
    // At 13 000 the bucket of 10 000 has left the window.
    expect(agg.snapshot(13_000).get(KEY)).toMatchObject({ requests: 2, latencyMs: 1 });
    expect(agg.snapshot(14_000).get(KEY)).toBeUndefined();
    expect(agg.agentCount).toBe(0);
  });

  it('forget(agent) drops its data, and only its data', () => {
    const agg = new Aggregator();
    agg.add('a1', { traffic: [traffic({ latencies: [10], inFlight: 1 })] }, 0);
    agg.add('a2', { traffic: [traffic({ latencies: [30, 30], inFlight: 4 })] }, 0);
    agg.forget('a1');
    expect(agg.snapshot(0).get(KEY)).toMatchObject({ requests: 2, latencyMs: 30, inFlight: 4, agents: 1 });
    agg.forget('a2');
    expect(agg.snapshot(0).size).toBe(0);
  });

  it('keeps endpoints apart by cluster and id; in-flight alone shows the endpoint with no requests', () => {
    const agg = new Aggregator();
    agg.add('a1', { traffic: [traffic({ latencies: [10] }), traffic({ cluster: 'other/pool', latencies: [20] }), traffic({ endpointId: 'e2', inFlight: 7 })] }, 0);
    const snap = agg.snapshot(0);
    expect(snap.size).toBe(3);
    expect(snap.get(endpointKey('other/pool', 'e1'))).toMatchObject({ requests: 1, latencyMs: 20 });
    expect(snap.get(endpointKey(CLUSTER, 'e2'))).toMatchObject({ requests: 0, errorRate: 0, latencyMs: 0, p50Ms: 0, inFlight: 7, agents: 0 });
  });

  it('takes the latest in-flight gauge of an agent, not a sum over its reports', () => {
    const agg = new Aggregator();
    agg.add('a1', { traffic: [traffic({ latencies: [10], inFlight: 9 })] }, 0);
    agg.add('a1', { traffic: [traffic({ latencies: [10], inFlight: 2 })] }, 1_000);
    expect(agg.snapshot(1_000).get(KEY)).toMatchObject({ requests: 2, inFlight: 2 });
  });

  it('refuses a window shorter than a bucket', () => {
    expect(() => new Aggregator({ windowMs: 500, bucketMs: 1_000 })).toThrow(/bucketMs/);
  });
});
