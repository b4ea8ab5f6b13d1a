import type { L4Route } from '@sluice/proto';
import type { L4Stats } from '../../metrics/data-plane-metrics.js';
import { SmoothWeighted } from '../balancers/weighted-round-robin.js';
import type { WeightedBackend } from '../router.js';
import type { UpstreamCluster } from '../upstream-cluster.js';

/** An L4Route compiled once per config version: its clusters split by weight, its idle timeout. */
export class CompiledL4Route {
  /** Backends in rotation (weight > 0), split by smooth weighted round robin as HTTP routes are. */
  readonly backends: SmoothWeighted<WeightedBackend>;
  readonly idleTimeoutMs: number;
  readonly hostnames: readonly string[];
  /** The listener's L4 counters (metrics/data-plane-metrics.ts), set by the data plane. */
  stats: L4Stats | undefined;

  constructor(
    route: L4Route | undefined,
    readonly clusters: ReadonlyMap<string, UpstreamCluster>,
    /** Used when the route sets none (listener limits, then the protocol's default). */
    defaultIdleTimeoutMs: number,
  ) {
    this.backends = new SmoothWeighted((route?.backends ?? []).filter((b) => b.weight > 0).map((b) => ({ cluster: b.cluster, weight: b.weight })));
    this.idleTimeoutMs = route?.idleTimeoutMs || defaultIdleTimeoutMs;
    this.hostnames = route?.hostnames ?? [];
  }

  /** The cluster the next connection or session goes to; undefined when none exists. */
  nextCluster(): UpstreamCluster | undefined {
    const backend = this.backends.next();
    return backend === undefined || backend.cluster === '' ? undefined : this.clusters.get(backend.cluster);
  }
}

/** L4 connections each cluster holds on this agent (circuit breaker max_connections), across versions. */
const openConnections = new WeakMap<UpstreamCluster['breaker'], { open: number }>();

/** Takes one of the cluster's connection slots, or says no (max_connections reached). */
export function tryOpenConnection(cluster: UpstreamCluster): boolean {
  let count = openConnections.get(cluster.breaker);
  if (count === undefined) openConnections.set(cluster.breaker, (count = { open: 0 }));
  const max = cluster.l4.maxConnections;
  if (max > 0 && count.open >= max) return false;
  count.open++;
  return true;
}

export function closeConnection(cluster: UpstreamCluster): void {
  const count = openConnections.get(cluster.breaker);
  if (count !== undefined && count.open > 0) count.open--;
}

/** "::ffff:10.0.0.1" as "10.0.0.1", as the HTTP path reports client addresses. */
export function plainAddress(address: string | undefined): string {
  const a = address ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
