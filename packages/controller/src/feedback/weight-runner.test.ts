import { describe, expect, it } from 'vitest';
import type { Upstream } from '@sluice/api';
import { endpointId } from '@sluice/translator';
import { targetKey } from '../health/assignment.js';
import type { MergedHealth } from '../health/health-coordinator.js';
import { silentLogger } from '../logger.js';
import type { ResourceService } from '../resources/resource-service.js';
import { Watchable } from '../watchable.js';
import { endpointKey, type EndpointStats } from './aggregator.js';
import { EndpointStatusWriter, storedFactors, storedWeights, type EndpointStatus } from './weight-runner.js';

const CLUSTER = 'default/shop';
const ADDRS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];

function upstream(status?: { endpoints: EndpointStatus[] }, rv = '1'): Upstream {
  return {
    apiVersion: 'sluice/v1',
    kind: 'Upstream',
    metadata: { name: 'shop', namespace: 'default', resourceVersion: rv },
    spec: {
      endpoints: ADDRS.map((address) => ({ address, port: 80, weight: 1 })),
      loadBalancing: { policy: 'RoundRobin' },
      timeouts: { connect: '5s' },
      dynamicWeights: { enabled: true, interval: '5s', minFactor: 0.1, maxFactor: 2 },
    },
    ...(status ? { status } : {}),
  } as unknown as Upstream;
}

function mergedOf(u: Upstream): MergedHealth {
  return { snapshot: { revision: 1, objects: new Map([['u', u]]) }, endpoints: new Map() };
}

function stats(latency: Record<string, number>, requests = 500): Map<string, EndpointStats> {
  return new Map(
    ADDRS.map((a) => {
      const id = endpointId(CLUSTER, a, 80);
      const l = latency[a] ?? 5;
      return [endpointKey(CLUSTER, id), { cluster: CLUSTER, endpointId: id, requests, errors: 0, errorRate: 0, latencyMs: l, p50Ms: l, p99Ms: l * 2, inFlight: 0, agents: 2 }];
    }),
  );
}

function fakeResources() {
  const writes: { name: string; status: Record<string, unknown> }[] = [];
  const service = {
    writeStatus(_kind: unknown, _ns: unknown, name: string, _rv: string, status: Record<string, unknown>) {
      writes.push({ name, status });
      return Promise.resolve('written' as const);
    },
  } as unknown as ResourceService;
  return { service, writes };
}

function setup(options: { leader?: boolean } = {}) {
  let now = 1_000_000;
  let current = new Map<string, EndpointStats>();
  const weights = new Watchable<ReadonlyMap<string, number>>();
  const { service, writes } = fakeResources();
  const runner = new EndpointStatusWriter(new Watchable<MergedHealth>(), service, silentLogger(), {
    stats: { snapshot: () => current },
    weights,
    isLeader: () => options.leader ?? true,
    now: () => now,
  });
  return {
    runner,
    weights,
    writes,
    setStats: (s: Map<string, EndpointStats>) => (current = s),
    advance: (ms: number) => (now += ms),
  };
}

const lastEndpoints = (writes: { status: Record<string, unknown> }[]) => writes.at(-1)!.status.endpoints as EndpointStatus[];

describe('EndpointStatusWriter (dynamic weights)', () => {
  it('runs the engine per interval, publishes weights and writes weights and stats', async () => {
    const t = setup();
    t.setStats(stats({ '10.0.0.4': 55 }));
    let u = upstream();
    await t.runner.reconcileNow(mergedOf(u));
    // First run: everyone at 1, then one interval later the slow endpoint drops.
    expect(t.writes).toHaveLength(1);
    u = upstream({ endpoints: lastEndpoints(t.writes) }, '2');
    t.advance(5000);
    await t.runner.reconcileNow(mergedOf(u));
    expect(t.writes).toHaveLength(2);
    const eps = lastEndpoints(t.writes);
    expect(eps[3]).toMatchObject({ address: '10.0.0.4', weight: 1, health: 'Unknown', latency: { ewmaMs: 55, p50Ms: 55, p99Ms: 110 }, errorRate: 0, requests: 500, agents: 2 });
    expect(eps[3]!.effectiveWeight).toBeLessThan(0.6);
    expect(eps[0]!.effectiveWeight).toBe(1);
    const w = t.weights.value!;
    expect(w.get(endpointId(CLUSTER, '10.0.0.4', 80))).toBeLessThan(60);
    expect(w.get(endpointId(CLUSTER, '10.0.0.1', 80))).toBe(100);
  });

  it('writes at most once per interval and not at all when only stats drift a little', async () => {
    const t = setup();
    t.setStats(stats({}));
    await t.runner.reconcileNow(mergedOf(upstream()));
    let u = upstream({ endpoints: lastEndpoints(t.writes) }, '2');
    const count = t.writes.length;
    for (let i = 0; i < 5; i++) {
      t.advance(1000);
      t.setStats(stats({ '10.0.0.1': 5 + i * 0.05 }));
      await t.runner.reconcileNow(mergedOf(u));
    }
    expect(t.writes.length).toBe(count);
    // After STATS_REFRESH_INTERVALS intervals the stats are refreshed once.
    t.advance(30_000);
    await t.runner.reconcileNow(mergedOf(u));
    expect(t.writes.length).toBe(count + 1);
    u = upstream({ endpoints: lastEndpoints(t.writes) }, '3');
    await t.runner.reconcileNow(mergedOf(u));
    expect(t.writes.length).toBe(count + 1);
  });

  it('a new leader continues from the factors in the store instead of resetting', async () => {
    const t = setup();
    t.setStats(stats({ '10.0.0.4': 55 }));
    const inStore = ADDRS.map((address) => ({ address, port: 80, health: 'Unknown' as const, since: '2026-01-01T00:00:00Z', weight: 1, effectiveWeight: address === '10.0.0.4' ? 0.1 : 1 }));
    const u = upstream({ endpoints: inStore });
    expect(storedFactors(u).get(endpointId(CLUSTER, '10.0.0.4', 80))).toBe(0.1);
    await t.runner.reconcileNow(mergedOf(u));
    // Already where the engine wants it: nothing to write, weights as stored.
    expect(t.writes.filter((w) => (w.status.endpoints as EndpointStatus[]).some((e) => e.effectiveWeight !== (e.address === '10.0.0.4' ? 0.1 : 1)))).toHaveLength(0);
    expect(t.weights.value!.get(endpointId(CLUSTER, '10.0.0.4', 80))).toBe(10);
  });

  it('a follower writes nothing and serves the weights in the store', async () => {
    const t = setup({ leader: false });
    t.setStats(stats({ '10.0.0.4': 55 }));
    const inStore = ADDRS.map((address) => ({ address, port: 80, health: 'Unknown' as const, since: '2026-01-01T00:00:00Z', weight: 1, effectiveWeight: address === '10.0.0.2' ? 0.5 : 1 }));
    const u = upstream({ endpoints: inStore });
    await t.runner.reconcileNow(mergedOf(u));
    expect(t.writes).toHaveLength(0);
    expect(t.weights.value).toEqual(storedWeights(mergedOf(u).snapshot));
    expect(t.weights.value!.get(endpointId(CLUSTER, '10.0.0.2', 80))).toBe(50);
  });

  it('Unhealthy: effective weight 0 in the status at once, weight 1 on the wire (panic mode still has it)', async () => {
    const t = setup();
    t.setStats(stats({}));
    await t.runner.reconcileNow(mergedOf(upstream()));
    const u = upstream({ endpoints: lastEndpoints(t.writes) }, '2');
    const id = endpointId(CLUSTER, '10.0.0.2', 80);
    const merged: MergedHealth = {
      ...mergedOf(u),
      endpoints: new Map([[targetKey(CLUSTER, id), { cluster: CLUSTER, endpointId: id, address: '10.0.0.2', port: 80, health: 'Unhealthy', reporters: 2 }]]),
    };
    t.advance(5000);
    await t.runner.reconcileNow(merged);
    expect(lastEndpoints(t.writes)[1]).toMatchObject({ address: '10.0.0.2', health: 'Unhealthy', effectiveWeight: 0 });
    expect(t.weights.value!.get(id)).toBe(1);
  });

  it('an upstream with a health check but no dynamic weights gets health and stats, no weights', async () => {
    const t = setup();
    t.setStats(stats({ '10.0.0.3': 20 }));
    const u = upstream();
    const spec = u.spec as unknown as Record<string, unknown>;
    delete spec.dynamicWeights;
    spec.healthCheck = { interval: '1s', timeout: '1s', healthyThreshold: 1, unhealthyThreshold: 1, tcp: {} };
    await t.runner.reconcileNow(mergedOf(u));
    const eps = lastEndpoints(t.writes);
    expect(eps[2]).toEqual({ address: '10.0.0.3', port: 80, health: 'Unknown', since: expect.any(String) as string, latency: { ewmaMs: 20, p50Ms: 20, p99Ms: 40 }, errorRate: 0, requests: 500, agents: 2 });
    expect(t.weights.value!.size).toBe(0);
  });
});
