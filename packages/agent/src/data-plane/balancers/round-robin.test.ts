import { LoadBalancingPolicy } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { createBalancer } from './registry.js';

const fakes = (...weights: number[]) => weights.map((weight, i) => ({ name: `e${i}`, weight }));

function names(policy: LoadBalancingPolicy | undefined, endpoints: ReturnType<typeof fakes>, n: number, exclude?: Set<(typeof endpoints)[number]>) {
  const { balancer } = createBalancer(policy, endpoints);
  return Array.from({ length: n }, () => {
    const r = balancer.pick({ clientAddress: '', exclude });
    return r.kind === 'endpoint' ? r.endpoint.name : r.reason;
  });
}

describe('round robin', () => {
  it('cycles through the endpoints in rotation, ignoring weights but skipping weight 0', () => {
    const seq = names(LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN, fakes(5, 0, 1, 1), 9);
    expect(new Set(seq)).toEqual(new Set(['e0', 'e2', 'e3']));
    for (let i = 3; i < seq.length; i++) expect(seq[i]).toBe(seq[i - 3]);
  });

  it('skips excluded endpoints (retries) while another is left', () => {
    const endpoints = fakes(1, 1, 1);
    expect(new Set(names(LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN, endpoints, 6, new Set([endpoints[1]!])))).toEqual(new Set(['e0', 'e2']));
  });

  it('answers none without endpoints in rotation', () => {
    expect(names(LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN, fakes(0, 0), 1)).toEqual(['no endpoint available']);
  });

  it('stands in for policies this agent does not implement yet, and says so', () => {
    const created = createBalancer(LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS, fakes(1, 1));
    expect(created.policy.name).toBe('round-robin');
    expect(created.fallbackFrom).toBe(LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS);
    expect(createBalancer(LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN, fakes(1)).fallbackFrom).toBeUndefined();
    expect(createBalancer(undefined, fakes(1)).policy.name).toBe('round-robin');
  });
});
