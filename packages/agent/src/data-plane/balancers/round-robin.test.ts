import { describe, expect, it } from 'vitest';
import { createBalancer } from './registry.js';
import { ctx, FakeEnv, fakes, lb, P, pickId } from './test-support.js';

describe('round robin', () => {
  it('cycles through the endpoints in rotation, ignoring weights but skipping weight 0', () => {
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_ROUND_ROBIN), fakes({ e0: 5, e1: 0, e2: 1, e3: 1 }), { env: new FakeEnv() });
    const seq = Array.from({ length: 9 }, () => pickId(balancer));
    expect(new Set(seq)).toEqual(new Set(['e0', 'e2', 'e3']));
    for (let i = 3; i < seq.length; i++) expect(seq[i]).toBe(seq[i - 3]);
  });

  it('skips excluded endpoints (retries) while another is left', () => {
    const endpoints = fakes({ e0: 1, e1: 1, e2: 1 });
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_ROUND_ROBIN), endpoints);
    const exclude = new Set([endpoints[1]!]);
    expect(new Set(Array.from({ length: 6 }, () => pickId(balancer, ctx({ exclude }))))).toEqual(new Set(['e0', 'e2']));
  });

  it('answers none without endpoints in rotation', () => {
    expect(createBalancer(lb(P.LOAD_BALANCING_POLICY_ROUND_ROBIN), fakes({ a: 0, b: 0 })).pick(ctx())).toEqual({ kind: 'none', reason: 'no endpoint available' });
  });

  it('is the policy when the config has no load_balancing message', () => {
    expect(createBalancer(undefined, fakes({ a: 1 })).policy).toBe('round-robin');
  });
});
