import { HealthStatus, type Cluster, type Endpoints } from '@sluice/proto';
import type { Pool } from 'undici';
import type { Balancer } from './balancers/balancer.js';
import { createBalancer } from './balancers/registry.js';
import { poolKey, type PoolSettings } from './upstream-pool.js';

/** One endpoint as the request path sees it: where to send, and through which pool. */
export interface UpstreamEndpoint {
  readonly id: string;
  readonly weight: number;
  readonly pool: Pool;
}

/** A cluster compiled for one version of its Cluster and Endpoints resources. */
export interface UpstreamCluster {
  readonly name: string;
  readonly balancer: Balancer<UpstreamEndpoint>;
  /** The policy that runs ("round-robin" when the configured one fell back to it). */
  readonly policy: string;
}

/** The pool settings of every endpoint of a cluster (what UpstreamPools must hold). */
export function clusterPoolSettings(cluster: Cluster, endpoints: Endpoints | undefined): PoolSettings[] {
  return (endpoints?.endpoints ?? []).map((e) => ({
    address: e.address,
    port: e.port,
    connectTimeoutMs: cluster.connectTimeoutMs,
    idleTimeoutMs: cluster.idleTimeoutMs,
  }));
}

/**
 * Builds the runtime cluster. Endpoints marked unhealthy leave the rotation unless fewer
 * than `panic_threshold_percent` of them are healthy (then health is ignored, as in Envoy).
 * `onFallback` is told when the policy is not implemented yet (once per cluster version).
 */
export function compileCluster(
  name: string,
  cluster: Cluster,
  endpoints: Endpoints | undefined,
  pools: ReadonlyMap<string, Pool>,
  onFallback: (policy: string) => void,
): UpstreamCluster {
  const settings = clusterPoolSettings(cluster, endpoints);
  const all = (endpoints?.endpoints ?? []).map((e, i) => ({
    id: e.id,
    weight: e.weight,
    pool: pools.get(poolKey(settings[i] as PoolSettings)) as Pool,
    healthy: e.health !== HealthStatus.HEALTH_STATUS_UNHEALTHY,
  }));
  const inRotation = all.filter((e) => e.weight > 0);
  const healthy = inRotation.filter((e) => e.healthy);
  const panic = cluster.loadBalancing?.panicThresholdPercent ?? 0;
  const usable = inRotation.length > 0 && panic > 0 && (healthy.length * 100) / inRotation.length < panic ? inRotation : healthy;
  const created = createBalancer(cluster.loadBalancing?.policy, usable.map(({ id, weight, pool }) => ({ id, weight, pool })));
  if (created.fallbackFrom !== undefined) onFallback(created.fallbackFrom);
  return { name, balancer: created.balancer, policy: created.policy.name };
}
