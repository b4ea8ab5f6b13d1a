import { LoadBalancingPolicy } from '@sluice/proto';
import type { Balancer, BalancerPolicy, WeightedEndpoint } from './balancer.js';
import { roundRobin } from './round-robin.js';
import { weightedRoundRobin } from './weighted-round-robin.js';

/** The policies this agent implements; the others fall back to round robin (with a warning). */
const policies: ReadonlyMap<LoadBalancingPolicy, BalancerPolicy> = new Map([
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN, roundRobin],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN, weightedRoundRobin],
]);

export interface CreatedBalancer<E extends WeightedEndpoint> {
  balancer: Balancer<E>;
  policy: BalancerPolicy;
  /** Set when the requested policy is not implemented and round robin stands in for it. */
  fallbackFrom: LoadBalancingPolicy | undefined;
}

/**
 * A balancer over the endpoints in rotation (weight > 0). Called once per cluster version,
 * so a caller that logs `fallbackFrom` warns once per version, not per request.
 */
export function createBalancer<E extends WeightedEndpoint>(
  policy: LoadBalancingPolicy | undefined,
  endpoints: readonly E[],
): CreatedBalancer<E> {
  const inRotation = endpoints.filter((e) => e.weight > 0);
  const wanted = policy ?? LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN;
  const found = policies.get(wanted);
  const chosen = found ?? roundRobin;
  return { balancer: chosen.create(inRotation), policy: chosen, fallbackFrom: found ? undefined : wanted };
}

/** For validation: a policy value the agent can run (natively or by falling back). */
export function isKnownPolicy(policy: LoadBalancingPolicy): boolean {
  return policy !== LoadBalancingPolicy.LOAD_BALANCING_POLICY_UNSPECIFIED && policy !== LoadBalancingPolicy.UNRECOGNIZED;
}
