import { LoadBalancingPolicy, type LoadBalancing } from '@sluice/proto';
import type { SlowStartSettings } from '../slow-start.js';
import { systemEnv, type BalancerEnv, type BalancerPolicy, type WeightedEndpoint } from './balancer.js';
import { BalancerState, ClusterBalancer } from './cluster-balancer.js';
import { consistentHash, ipHash } from './consistent-hash.js';
import { leastConnections, weightedLeastConnections } from './least-connections.js';
import { leastResponseTime } from './least-response-time.js';
import { random } from './random.js';
import { roundRobin } from './round-robin.js';
import { weightedRoundRobin } from './weighted-round-robin.js';

/** Every policy of the wire enum, by value. */
const policies: ReadonlyMap<LoadBalancingPolicy, BalancerPolicy<unknown>> = new Map<LoadBalancingPolicy, BalancerPolicy<unknown>>([
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN, roundRobin],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN, weightedRoundRobin],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_RANDOM, random],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_IP_HASH, ipHash],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_CONSISTENT_HASH, consistentHash],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS, leastConnections],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_LEAST_CONNECTIONS, weightedLeastConnections],
  [LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_RESPONSE_TIME, leastResponseTime],
]);

export type ParsedLoadBalancing = { ok: true; policy: BalancerPolicy<unknown>; options: unknown } | { ok: false; error: string };

/** The policy and its options, or a field-path error (validation NACKs with it). No message = round robin. */
export function parseLoadBalancing(lb: LoadBalancing | undefined): ParsedLoadBalancing {
  const policy: BalancerPolicy<unknown> | undefined = lb === undefined ? roundRobin : policies.get(lb.policy);
  if (policy === undefined) return { ok: false, error: `load_balancing.policy: must be set to a known policy, got ${lb?.policy}` };
  if (lb !== undefined && lb.panicThresholdPercent > 100) return { ok: false, error: `load_balancing.panic_threshold_percent: must be 0-100, got ${lb.panicThresholdPercent}` };
  if (lb !== undefined && lb.consistentHash !== undefined && policy.name !== consistentHash.name && policy.name !== ipHash.name) {
    return { ok: false, error: `load_balancing.consistent_hash: must not be set for policy ${policy.name}` };
  }
  const parsed = policy.parse(lb);
  return parsed.ok ? { ok: true, policy, options: parsed.options } : parsed;
}

export interface CreateBalancerOptions<E> {
  /** Health from the config (the controller's merged active health); default: all healthy. */
  readonly healthy?: (endpoint: E) => boolean;
  readonly slowStart?: SlowStartSettings | undefined;
  /** The previous version's state, so load, latency and slow start carry over. */
  readonly state?: BalancerState | undefined;
  readonly env?: BalancerEnv;
}

/**
 * The balancer of one cluster version over `endpoints` (weight 0 = out of rotation). `lb` must
 * have passed validation (`parseLoadBalancing`); an invalid one throws.
 */
export function createBalancer<E extends WeightedEndpoint>(
  lb: LoadBalancing | undefined,
  endpoints: readonly E[],
  options: CreateBalancerOptions<E> = {},
): ClusterBalancer<E> {
  const parsed = parseLoadBalancing(lb);
  if (!parsed.ok) throw new Error(parsed.error);
  return new ClusterBalancer(
    endpoints,
    options.healthy ?? (() => true),
    { policy: parsed.policy, options: parsed.options, panicThresholdPercent: lb?.panicThresholdPercent ?? 0, slowStart: options.slowStart },
    options.state ?? new BalancerState(),
    options.env ?? systemEnv,
  );
}

export { BalancerState, ClusterBalancer, type EndpointAvailability } from './cluster-balancer.js';
