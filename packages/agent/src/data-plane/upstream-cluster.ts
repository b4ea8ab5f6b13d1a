import { HealthStatus, type Cluster, type Endpoints, type ProxyProtocolVersion, type UpstreamTls } from '@sluice/proto';
import type { Pool } from 'undici';
import type { Balancer } from './balancers/balancer.js';
import { BalancerState, createBalancer } from './balancers/registry.js';
import { breakerLimits, CircuitBreaker } from './circuit-breaker.js';
import { ClusterTraffic } from './endpoint-stats.js';
import { OutlierDetector, outlierSettings } from './outlier-detection.js';
import { compileSessionAffinity, type SessionAffinity } from './session-persistence.js';
import { slowStartSettings } from './slow-start.js';
import { poolKey, type PoolSettings, type UpstreamTlsSettings } from './upstream-pool.js';

/** One endpoint as the request path sees it: where to send, and through which pool. */
export interface UpstreamEndpoint {
  readonly id: string;
  readonly weight: number;
  readonly pool: Pool;
  /** Where L4 listeners connect (HTTP goes through `pool`). */
  readonly address: string;
  readonly port: number;
}

/** A cluster compiled for one version of its Cluster and Endpoints resources. */
export interface UpstreamCluster {
  readonly name: string;
  readonly balancer: Balancer<UpstreamEndpoint>;
  /** The policy that runs, as in logs: "least-response-time". */
  readonly policy: string;
  /** Load, latency and slow-start state; hand it to the cluster's next version. */
  readonly balancerState: BalancerState;
  readonly breaker: CircuitBreaker;
  readonly outliers: OutlierDetector;
  /** Per-endpoint traffic counters for the report stream (endpoint-stats.ts). */
  readonly traffic: ClusterTraffic;
  /** undefined: no session persistence. */
  readonly affinity: SessionAffinity<UpstreamEndpoint> | undefined;
  /** May `endpoint` take traffic now (healthy per the config, not ejected)? */
  readonly eligible: (endpoint: UpstreamEndpoint) => boolean;
  /** What L4 listeners need beyond the balancer (HTTP has them in its pools). */
  readonly l4: UpstreamL4Settings;
}

export interface UpstreamL4Settings {
  /** 0 = the L4 default. */
  readonly connectTimeoutMs: number;
  /** Circuit breaker max_connections; 0 = no limit. */
  readonly maxConnections: number;
  readonly proxyProtocol: ProxyProtocolVersion;
  /** Cluster.tls with its CA resolved; undefined = plain TCP. */
  readonly tls: UpstreamTlsSettings | undefined;
}

/** A cluster's state that outlives its config versions: breaker counters, outlier history, traffic stats. */
export class ClusterRuntime {
  readonly breaker = new CircuitBreaker();
  readonly outliers = new OutlierDetector();
  readonly traffic: ClusterTraffic;

  constructor(name = '') {
    this.traffic = new ClusterTraffic(name);
  }
}

/** A Secret's certificate chain (PEM) and resource version, by Secret name. */
export type SecretLookup = (name: string) => { readonly pem: string; readonly version: string } | undefined;

const NO_SECRETS: SecretLookup = () => undefined;

/** The pool settings of every endpoint of a cluster (what UpstreamPools must hold). */
export function clusterPoolSettings(cluster: Cluster, endpoints: Endpoints | undefined, secrets: SecretLookup = NO_SECRETS): PoolSettings[] {
  const tls = upstreamTlsSettings(cluster.tls, secrets);
  return (endpoints?.endpoints ?? []).map((e) => ({
    address: e.address,
    port: e.port,
    connectTimeoutMs: cluster.connectTimeoutMs,
    idleTimeoutMs: cluster.idleTimeoutMs,
    maxConnections: cluster.circuitBreaker?.maxConnections ?? 0,
    tls,
    http2: cluster.http2,
  }));
}

/**
 * Cluster.tls with its CA resolved. A CA Secret that is missing (validation rejects a cluster
 * that names one it does not have; this is a Secret removed later) leaves Node's default
 * trust store, which will not trust a private CA: verification fails closed.
 */
export function upstreamTlsSettings(tls: UpstreamTls | undefined, secrets: SecretLookup): UpstreamTlsSettings | undefined {
  if (tls?.enabled !== true) return undefined;
  const ca = tls.caSecret === '' ? undefined : secrets(tls.caSecret);
  return {
    servername: tls.sni,
    verify: !tls.insecureSkipVerify,
    ca: ca?.pem,
    caId: tls.caSecret === '' ? '' : `${tls.caSecret}@${ca?.version ?? 'missing'}`,
  };
}

/**
 * Builds the runtime cluster. The balancer takes every endpoint with the health the config
 * gives it; it leaves out unhealthy ones (and those `balancerState.availability` says are
 * not available) unless fewer than `panic_threshold_percent` of them are healthy (then
 * health is ignored, as in Envoy). The cluster must have passed validation.
 */
export function compileCluster(
  name: string,
  cluster: Cluster,
  endpoints: Endpoints | undefined,
  pools: ReadonlyMap<string, Pool>,
  balancerState: BalancerState = new BalancerState(),
  runtime: ClusterRuntime = new ClusterRuntime(name),
  secrets: SecretLookup = NO_SECRETS,
): UpstreamCluster {
  const settings = clusterPoolSettings(cluster, endpoints, secrets);
  const all = (endpoints?.endpoints ?? []).map((e, i) => ({
    id: e.id,
    weight: e.weight,
    pool: pools.get(poolKey(settings[i] as PoolSettings)) as Pool,
    address: e.address,
    port: e.port,
    healthy: e.health !== HealthStatus.HEALTH_STATUS_UNHEALTHY,
  }));
  const members: UpstreamEndpoint[] = all.map(({ id, weight, pool, address, port }) => ({ id, weight, pool, address, port }));
  const health = new Map(members.map((e, i) => [e, (all[i] as (typeof all)[number]).healthy]));
  const { breaker, outliers, traffic } = runtime;
  traffic.retain(all.map((e) => e.id));
  breaker.limits = breakerLimits(cluster.circuitBreaker);
  outliers.configure(outlierSettings(cluster.outlierDetection), all.map((e) => e.id));
  // Ejected endpoints leave the balancer's eligible set (it watches the detector's generation).
  balancerState.availability = outliers.enabled ? outliers : undefined;
  const balancer = createBalancer(cluster.loadBalancing, members, {
    healthy: (e) => health.get(e) === true,
    slowStart: slowStartSettings(cluster.slowStart),
    state: balancerState,
  });
  // Session affinity honours an endpoint the config calls healthy that is not ejected.
  const eligible = (e: UpstreamEndpoint): boolean => health.get(e) === true && !outliers.isEjected(e.id);
  return {
    name,
    balancer,
    policy: balancer.policy,
    balancerState,
    breaker,
    outliers,
    traffic,
    affinity: compileSessionAffinity(cluster.sessionPersistence, members.filter((e) => e.weight > 0)),
    eligible,
    l4: {
      connectTimeoutMs: cluster.connectTimeoutMs,
      maxConnections: cluster.circuitBreaker?.maxConnections ?? 0,
      proxyProtocol: cluster.proxyProtocol,
      tls: upstreamTlsSettings(cluster.tls, secrets),
    },
  };
}
