import { describe, expect, it } from 'vitest';
import type { Balancer } from './balancer.js';
import { createBalancer } from './registry.js';
import { ctx, FakeEnv, fakes, lb, P, pickId, type Fake } from './test-support.js';

/**
 * Keeps `concurrency` requests in flight: each step ends the oldest one whose time has come
 * (a request to a `slow` endpoint lasts `slowFactor` steps longer) and starts a new one.
 * Returns each endpoint's share of the requests started.
 */
function steadyLoad(balancer: Balancer<Fake>, endpoints: Fake[], steps: number, concurrency: number, durationOf: (id: string) => number): Map<string, number> {
  const byId = new Map(endpoints.map((e) => [e.id, e]));
  const running: { id: string; endsAt: number }[] = [];
  const counts = new Map<string, number>();
  for (let t = 0; t < steps; t++) {
    for (let i = running.length - 1; i >= 0; i--) {
      const r = running[i]!;
      if (r.endsAt <= t) {
        balancer.onEnd(byId.get(r.id)!, { latencyMs: 1, ok: true });
        running.splice(i, 1);
      }
    }
    while (running.length < concurrency) {
      const id = pickId(balancer);
      balancer.onStart(byId.get(id)!);
      running.push({ id, endsAt: t + durationOf(id) });
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  const total = [...counts.values()].reduce((s, c) => s + c, 0);
  return new Map([...counts].map(([id, c]) => [id, c / total]));
}

describe('least connections', () => {
  it('avoids an endpoint holding long requests', () => {
    for (const choiceCount of [0, 2]) {
      const endpoints = fakes({ slow: 1, a: 1, b: 1, c: 1 });
      const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS, { choiceCount }), endpoints, { env: new FakeEnv(5) });
      const got = steadyLoad(balancer, endpoints, 5_000, 8, (id) => (id === 'slow' ? 50 : 1));
      // Round robin would give it 25 %; holding each request 50x longer it gets ~1 in 50 starts.
      expect(got.get('slow') ?? 0, `choiceCount ${choiceCount}`).toBeLessThan(0.05);
    }
  });

  it('spreads idle picks evenly (ties broken at random) and ignores weights', () => {
    const endpoints = fakes({ a: 1, b: 5, c: 1 });
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS), endpoints, { env: new FakeEnv(2) });
    const got = steadyLoad(balancer, endpoints, 30_000, 1, () => 1);
    for (const id of ['a', 'b', 'c']) expect(Math.abs((got.get(id) ?? 0) - 1 / 3), id).toBeLessThan(0.02);
  });

  it('does not pick an endpoint already tried while another is left', () => {
    const endpoints = fakes({ a: 1, b: 1 });
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS), endpoints, { env: new FakeEnv() });
    balancer.onStart(endpoints[1]!);
    balancer.onStart(endpoints[1]!);
    expect(pickId(balancer, ctx({ exclude: new Set([endpoints[0]!]) }))).toBe('b');
  });
});

describe('weighted least connections', () => {
  it.each([[{ a: 1, b: 2, c: 5 }], [{ a: 3, b: 1 }]])('keeps in-flight requests, hence shares, proportional to weight: %o', (weights) => {
    const endpoints = fakes(weights);
    const total = Object.values(weights).reduce((s, w) => s + w, 0);
    for (const concurrency of [1, 40]) {
      const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_WEIGHTED_LEAST_CONNECTIONS), endpoints, { env: new FakeEnv(9) });
      const got = steadyLoad(balancer, endpoints, 20_000, concurrency, () => 3);
      for (const [id, w] of Object.entries(weights)) expect(Math.abs((got.get(id) ?? 0) - w / total), `${id} at ${concurrency}`).toBeLessThan(0.03);
    }
  });

  it('with power-of-two choices still avoids an endpoint holding long requests', () => {
    const endpoints = fakes({ slow: 2, a: 1, b: 1, c: 1, d: 1 });
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_WEIGHTED_LEAST_CONNECTIONS, { choiceCount: 2 }), endpoints, { env: new FakeEnv(4) });
    const got = steadyLoad(balancer, endpoints, 5_000, 10, (id) => (id === 'slow' ? 50 : 1));
    expect(got.get('slow') ?? 0).toBeLessThan(0.1);
  });
});
