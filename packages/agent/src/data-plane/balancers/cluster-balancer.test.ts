import { ConsistentHash_Algorithm, type LoadBalancing } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { BalancerState, createBalancer, type EndpointAvailability } from './registry.js';
import { ctx, FakeEnv, fakes, lb, P, pickId, shares, type Fake } from './test-support.js';

const EVERY_POLICY: [string, LoadBalancing][] = [
  ['round robin', lb(P.LOAD_BALANCING_POLICY_ROUND_ROBIN)],
  ['weighted round robin', lb(P.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN)],
  ['random', lb(P.LOAD_BALANCING_POLICY_RANDOM)],
  ['ip hash', lb(P.LOAD_BALANCING_POLICY_IP_HASH)],
  ...[ConsistentHash_Algorithm.ALGORITHM_RING_HASH, ConsistentHash_Algorithm.ALGORITHM_MAGLEV].map((algorithm): [string, LoadBalancing] => [
    `consistent hash ${algorithm}`,
    lb(P.LOAD_BALANCING_POLICY_CONSISTENT_HASH, {
      consistentHash: { key: { key: { $case: 'sourceIp', value: true } }, algorithm, boundedLoadPercent: 150, tableSize: 0 },
    }),
  ]),
  ['least connections', lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS)],
  ['weighted least connections (P2C)', lb(P.LOAD_BALANCING_POLICY_WEIGHTED_LEAST_CONNECTIONS, { choiceCount: 2 })],
  ['least response time', lb(P.LOAD_BALANCING_POLICY_LEAST_RESPONSE_TIME)],
];

const address = (i: number) => `192.0.2.${i % 250}`;

describe.each(EVERY_POLICY)('%s', (_name, config) => {
  it('never picks a weight-0 endpoint, unhealthy or not', () => {
    const endpoints = fakes({ a: 1, off: 0, b: 3, c: 1 });
    const balancer = createBalancer(config, endpoints, { env: new FakeEnv(5) });
    for (let i = 0; i < 2_000; i++) {
      const r = balancer.pick(ctx({ clientAddress: address(i) }));
      expect(r.kind === 'endpoint' && r.endpoint.id).not.toBe('off');
      if (r.kind === 'endpoint') {
        balancer.onStart(r.endpoint);
        if (i % 3 === 0) balancer.onEnd(r.endpoint, { latencyMs: 2, ok: true });
      }
    }
  });

  it('leaves unhealthy endpoints out, and balances over all of them below the panic threshold', () => {
    const endpoints = fakes({ a: 1, b: 1, c: 1, d: 1 });
    const unhealthy = new Set(['a', 'b']);
    const picked = (panicThresholdPercent: number, down: Set<string>) => {
      const balancer = createBalancer({ ...config, panicThresholdPercent }, endpoints, { healthy: (e) => !down.has(e.id), env: new FakeEnv(3) });
      return { balancer, ids: new Set(Array.from({ length: 400 }, (_, i) => pickId(balancer, ctx({ clientAddress: address(i) })))) };
    };
    // 50 % healthy is not below 50: health counts.
    expect(picked(50, unhealthy).ids).toEqual(new Set(['c', 'd']));
    expect(picked(50, unhealthy).balancer.panicking).toBe(false);
    // 25 % healthy is: panic, every endpoint in rotation takes traffic.
    const panic = picked(50, new Set(['a', 'b', 'c']));
    expect(panic.balancer.panicking).toBe(true);
    expect(panic.ids).toEqual(new Set(['a', 'b', 'c', 'd']));
    // 0 disables panic: only the healthy one, and none when none is healthy.
    expect(picked(0, new Set(['a', 'b', 'c'])).ids).toEqual(new Set(['d']));
    const none = createBalancer({ ...config, panicThresholdPercent: 0 }, endpoints, { healthy: () => false });
    expect(none.pick(ctx()).kind).toBe('none');
  });
});

class Ejections implements EndpointAvailability {
  generation = 0;
  readonly ejected = new Set<string>();
  available(id: string): boolean {
    return !this.ejected.has(id);
  }
  eject(id: string): void {
    this.ejected.add(id);
    this.generation++;
  }
}

describe('cluster balancer', () => {
  it('follows the availability hook (outlier ejection) without a new config version', () => {
    const state = new BalancerState();
    const ejections = new Ejections();
    state.availability = ejections;
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_ROUND_ROBIN, { panicThresholdPercent: 50 }), fakes({ a: 1, b: 1, c: 1, d: 1 }), { state });
    ejections.eject('a');
    expect(new Set(Array.from({ length: 12 }, () => pickId(balancer)))).toEqual(new Set(['b', 'c', 'd']));
    ejections.eject('b');
    ejections.eject('c');
    // 25 % available: panic.
    expect(new Set(Array.from({ length: 12 }, () => pickId(balancer)))).toEqual(new Set(['a', 'b', 'c', 'd']));
  });

  it('carries in-flight counts across versions through the state', () => {
    const state = new BalancerState();
    const v1Endpoints = fakes({ a: 1, b: 1 });
    const v1 = createBalancer(lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS), v1Endpoints, { state });
    for (let i = 0; i < 5; i++) v1.onStart(v1Endpoints[0]!);
    // A new endpoints version (a weight changed): a still holds 5 requests started on v1.
    const v2 = createBalancer(lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS), fakes({ a: 2, b: 1 }), { state });
    expect(new Set(Array.from({ length: 5 }, () => pickId(v2)))).toEqual(new Set(['b']));
    // They end on the version they started on, and the count follows.
    for (let i = 0; i < 5; i++) v1.onEnd(v1Endpoints[0]!, { latencyMs: 1, ok: true });
    expect(new Set(Array.from({ length: 40 }, () => pickId(v2)))).toEqual(new Set(['a', 'b']));
  });

  it('ramps a new endpoint up over the slow-start window (weighted policies)', () => {
    const env = new FakeEnv(12);
    const state = new BalancerState();
    const slowStart = { windowMs: 60_000, aggression: 1, minWeight: 0.1 };
    const config = lb(P.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN);
    createBalancer(config, fakes({ a: 1, b: 1 }), { env, state, slowStart });
    env.time = 1_000;
    const balancer = createBalancer<Fake>(config, fakes({ a: 1, b: 1, fresh: 1 }), { env, state, slowStart });
    const shareOfFresh = () => shares(balancer, 2_000).get('fresh') ?? 0;
    const at = (t: number) => {
      env.time = 1_000 + t;
      return shareOfFresh();
    };
    // factor 0.1 -> 0.1 / 2.1; halfway 0.5 -> 0.5 / 2.5; after the window a full third.
    expect(Math.abs(at(0) - 0.1 / 2.1)).toBeLessThan(0.01);
    expect(Math.abs(at(30_000) - 0.5 / 2.5)).toBeLessThan(0.02);
    expect(Math.abs(at(60_000) - 1 / 3)).toBeLessThan(0.01);
    expect(Math.abs(at(120_000) - 1 / 3)).toBeLessThan(0.01);
  });

  it('ramps an endpoint back from unhealthy, not the endpoints the cluster started with', () => {
    const env = new FakeEnv(13);
    const state = new BalancerState();
    const slowStart = { windowMs: 10_000, aggression: 2, minWeight: 0 };
    const ejections = new Ejections();
    state.availability = ejections;
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_RANDOM), fakes({ a: 1, b: 1 }), { env, state, slowStart });
    expect(Math.abs((shares(balancer, 4_000).get('a') ?? 0) - 0.5)).toBeLessThan(0.03);
    ejections.eject('a');
    expect(shares(balancer, 100).get('a')).toBeUndefined();
    ejections.ejected.delete('a');
    ejections.generation++;
    env.time = 2_500; // rebuilt at 0 with a back; a quarter of the window later: sqrt(0.25) = 0.5
    expect(shares(balancer, 100).get('a') ?? 0).toBeLessThan(0.05);
    env.time = 5_000;
    const quarter = shares(balancer, 6_000).get('a') ?? 0;
    expect(Math.abs(quarter - 0.5 / 1.5)).toBeLessThan(0.03);
  });
});
