import { parseDuration, type Upstream } from '@sluice/api';
import {
  ConsistentHash_Algorithm,
  HealthStatus,
  LoadBalancingPolicy,
  ProxyProtocolVersion,
  ResourceType,
  SessionPersistence_Type,
  type Cluster,
  type Endpoint,
  type HashKey,
  type HealthCheck,
  type UpstreamTls,
} from '@sluice/proto';
import { ifSet, report, reportUnsupported, useSecret, type Context } from './context.js';
import { makeResource, type DataPlaneResource, type ResourceRef } from './data-plane-resource.js';
import { shortHash } from './hash.js';
import { nameOf, sourceOf } from './inputs.js';
import { compareStrings } from './resource-key.js';

type Spec = Upstream['spec'];

/** Milliseconds of a validated duration; 0 (unset on the wire) when absent. */
export function ms(duration: string | undefined): number {
  return duration === undefined ? 0 : Math.round(parseDuration(duration) ?? 0);
}

/** A copy with keys inserted in sorted order, so map fields encode the same bytes everywhere. */
export function sortedRecord(record: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(record ?? {}).sort(compareStrings)) out[k] = record?.[k] ?? '';
  return out;
}

/** Envoy's default: under 50 % healthy endpoints, balance over all of them. */
const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

const POLICY: Record<Spec['loadBalancing']['policy'], LoadBalancingPolicy> = {
  RoundRobin: LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN,
  WeightedRoundRobin: LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN,
  IPHash: LoadBalancingPolicy.LOAD_BALANCING_POLICY_IP_HASH,
  ConsistentHash: LoadBalancingPolicy.LOAD_BALANCING_POLICY_CONSISTENT_HASH,
  LeastConnections: LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS,
  WeightedLeastConnections: LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_LEAST_CONNECTIONS,
  LeastResponseTime: LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_RESPONSE_TIME,
  Random: LoadBalancingPolicy.LOAD_BALANCING_POLICY_RANDOM,
};

const SESSION_TYPE: Record<NonNullable<Spec['sessionPersistence']>['type'], SessionPersistence_Type> = {
  Cookie: SessionPersistence_Type.TYPE_COOKIE,
  Header: SessionPersistence_Type.TYPE_HEADER,
  SourceIP: SessionPersistence_Type.TYPE_SOURCE_IP,
};

function hashKey(k: NonNullable<Spec['loadBalancing']['consistentHash']>['key']): HashKey {
  if (k.header !== undefined) return { key: { $case: 'header', value: k.header.toLowerCase() } };
  if (k.cookie !== undefined) return { key: { $case: 'cookie', value: k.cookie.name } };
  if (k.queryParameter !== undefined) return { key: { $case: 'queryParameter', value: k.queryParameter } };
  return { key: { $case: 'sourceIp', value: true } };
}

function healthCheck(hc: NonNullable<Spec['healthCheck']>): HealthCheck {
  return {
    intervalMs: ms(hc.interval),
    timeoutMs: ms(hc.timeout),
    healthyThreshold: hc.healthyThreshold,
    unhealthyThreshold: hc.unhealthyThreshold,
    check:
      hc.http !== undefined
        ? {
            $case: 'http',
            value: { path: hc.http.path, expectedStatuses: [...(hc.http.expectedStatuses ?? [])], host: hc.http.host ?? '', method: hc.http.method ?? '' },
          }
        : { $case: 'tcp', value: true },
  };
}

function upstreamTls(ctx: Context, u: Upstream, tls: NonNullable<Spec['tls']>, refs: ResourceRef[]): UpstreamTls {
  const [ca, ...more] = tls.caCertificateRefs ?? [];
  if (more.length > 0) report(ctx, u, 'spec.tls.caCertificateRefs: the data plane takes one CA Secret; only the first is used');
  if (tls.clientCertificateRef !== undefined) {
    report(ctx, u, 'spec.tls.clientCertificateRef: client certificates are not supported by the data plane yet: connections are made without one');
  }
  // A CA that cannot be resolved leaves caSecret empty: the system trust store, which will not
  // trust a private CA, so the agent fails closed rather than skipping verification.
  const caSecret = ca === undefined ? '' : (useSecret(ctx, u, ca, 'spec.tls.caCertificateRefs[0]', 'ca', refs) ?? '');
  return { enabled: true, sni: tls.sni ?? '', insecureSkipVerify: tls.insecureSkipVerify ?? false, caSecret };
}

/** Opaque, stable endpoint id: safe to show clients (session cookies) without the address. */
export function endpointId(upstream: string, address: string, port: number): string {
  return shortHash(`${upstream}/${address}:${port}`);
}

/** Upstream -> CLUSTER and ENDPOINTS, both named `<ns>/<name>`. */
export function translateUpstream(ctx: Context, u: Upstream): DataPlaneResource[] {
  const name = nameOf(u);
  const spec = u.spec;
  const source = sourceOf(u);
  const refs: ResourceRef[] = [{ type: ResourceType.RESOURCE_TYPE_ENDPOINTS, name }];
  const lb = spec.loadBalancing;
  const hc = spec.healthCheck;
  reportUnsupported(ctx, u, [
    ifSet(lb.consistentHash?.key.cookie?.ttl, 'spec.loadBalancing.consistentHash.key.cookie.ttl'),
    ifSet(lb.consistentHash?.key.cookie?.path, 'spec.loadBalancing.consistentHash.key.cookie.path'),
    ifSet(hc?.port, 'spec.healthCheck.port'),
    ifSet(hc?.tcp?.send, 'spec.healthCheck.tcp.send'),
    ifSet(hc?.tcp?.expect, 'spec.healthCheck.tcp.expect'),
    ifSet(spec.tls?.minVersion, 'spec.tls.minVersion'),
  ]);
  const session = spec.sessionPersistence;
  if (session !== undefined && session.type !== 'Cookie' && session.ttl !== undefined) {
    report(ctx, u, `spec.sessionPersistence.ttl: applies to type Cookie only; ${session.type} affinity lasts while the endpoint is eligible`);
  }
  const cluster: Cluster = {
    source,
    loadBalancing: {
      policy: POLICY[lb.policy],
      consistentHash:
        lb.consistentHash === undefined
          ? undefined
          : {
              key: hashKey(lb.consistentHash.key),
              algorithm: lb.consistentHash.algorithm === 'Maglev' ? ConsistentHash_Algorithm.ALGORITHM_MAGLEV : ConsistentHash_Algorithm.ALGORITHM_RING_HASH,
              boundedLoadPercent: lb.consistentHash.boundedLoadFactor === undefined ? 0 : Math.round(lb.consistentHash.boundedLoadFactor * 100),
              tableSize: lb.consistentHash.tableSize ?? 0,
            },
      panicThresholdPercent: lb.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT,
      choiceCount: lb.choiceCount ?? 0,
    },
    connectTimeoutMs: ms(spec.timeouts.connect),
    idleTimeoutMs: ms(spec.timeouts.idle),
    healthCheck: hc === undefined ? undefined : healthCheck(hc),
    outlierDetection:
      spec.outlierDetection === undefined
        ? undefined
        : {
            consecutive5xx: spec.outlierDetection.consecutive5xx ?? 0,
            consecutiveGatewayErrors: spec.outlierDetection.consecutiveGatewayErrors ?? 0,
            consecutiveConnectFailures: spec.outlierDetection.consecutiveConnectFailures ?? 0,
            baseEjectionTimeMs: ms(spec.outlierDetection.baseEjectionTime),
            // Unset is Envoy's 10 %; on the wire 0 means none may be ejected.
            maxEjectionPercent: spec.outlierDetection.maxEjectionPercent ?? 10,
            maxEjectionTimeMs: ms(spec.outlierDetection.maxEjectionTime),
            intervalMs: ms(spec.outlierDetection.interval),
          },
    slowStart:
      spec.slowStart === undefined
        ? undefined
        : { windowMs: ms(spec.slowStart.window), aggression: spec.slowStart.aggression ?? 1, minWeightPercent: spec.slowStart.minWeightPercent ?? 10 },
    circuitBreaker:
      spec.circuitBreaker === undefined
        ? undefined
        : {
            maxConnections: spec.circuitBreaker.maxConnections ?? 0,
            maxPendingRequests: spec.circuitBreaker.maxPendingRequests ?? 0,
            maxRequests: spec.circuitBreaker.maxRequests ?? 0,
            maxRetries: spec.circuitBreaker.maxRetries,
          },
    sessionPersistence:
      spec.sessionPersistence === undefined
        ? undefined
        : {
            type: SESSION_TYPE[spec.sessionPersistence.type],
            cookieName: spec.sessionPersistence.cookieName ?? '',
            headerName: spec.sessionPersistence.headerName?.toLowerCase() ?? '',
            ttlMs: ms(spec.sessionPersistence.ttl),
          },
    tls: spec.tls === undefined ? undefined : upstreamTls(ctx, u, spec.tls, refs),
    http2: spec.http2 ?? false,
    proxyProtocol:
      spec.proxyProtocol === undefined
        ? ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_UNSPECIFIED
        : spec.proxyProtocol.send === 'v1'
          ? ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1
          : ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V2,
  };

  // Sorted, so reordering endpoints in the spec changes no version and pushes nothing.
  const endpoints: Endpoint[] = [...spec.endpoints]
    .sort((a, b) => compareStrings(a.address, b.address) || a.port - b.port)
    .map((e) => {
      const id = endpointId(name, e.address, e.port);
      return {
        id,
        address: e.address,
        port: e.port,
        // The seam for dynamic weights: the weight engine's effective weight wins when present.
        weight: Math.max(0, Math.round(ctx.weights.get(id) ?? e.weight)),
        labels: sortedRecord(e.labels),
        // The seam for active health checks: the controller's merged verdict; absent = unknown.
        health: ctx.health.get(id) ?? HealthStatus.HEALTH_STATUS_UNSPECIFIED,
      };
    });

  return [
    makeResource(name, { $case: 'cluster', value: cluster }, [source], refs),
    makeResource(name, { $case: 'endpoints', value: { endpoints } }, [source], []),
  ];
}
