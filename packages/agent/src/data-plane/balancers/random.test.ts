import { describe, expect, it } from 'vitest';
import { createBalancer } from './registry.js';
import { ctx, FakeEnv, fakes, lb, P, pickId, shares } from './test-support.js';

const RANDOM = lb(P.LOAD_BALANCING_POLICY_RANDOM);

describe('random', () => {
  it.each([[{ a: 1, b: 1, c: 1 }], [{ a: 5, b: 1, c: 0, d: 2 }], [{ a: 100, b: 1 }]])('gives each endpoint its weighted share: %o', (weights) => {
    const total = Object.values(weights).reduce((s, w) => s + w, 0);
    const got = shares(createBalancer(RANDOM, fakes(weights), { env: new FakeEnv(7) }), 40_000);
    for (const [id, w] of Object.entries(weights)) expect(Math.abs((got.get(id) ?? 0) - w / total), id).toBeLessThan(0.015);
  });

  it('draws a retry among the endpoints not tried yet, and any when all were', () => {
    const endpoints = fakes({ a: 1, b: 1, c: 1 });
    const balancer = createBalancer(RANDOM, endpoints, { env: new FakeEnv(3) });
    const exclude = new Set([endpoints[0]!, endpoints[2]!]);
    for (let i = 0; i < 50; i++) expect(pickId(balancer, ctx({ exclude }))).toBe('b');
    expect(balancer.pick(ctx({ exclude: new Set(endpoints) })).kind).toBe('endpoint');
  });
});
