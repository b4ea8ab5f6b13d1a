// Builders for data-plane resources in tests: the smallest valid resource, overridable.
import {
  LoadBalancingPolicy,
  MatchType,
  Protocol,
  ProxyProtocolVersion,
  HealthStatus,
  type Cluster,
  type Endpoint,
  type HttpFilter,
  type HttpRoute,
  type Listener,
  type Resource,
  type RouteMatch,
  type VirtualHost,
} from '@sluice/proto';

let counter = 0;
const version = () => `v${++counter}`;

export const routeSource = (name: string) => ({ kind: 'Route', namespace: 'default', name });

export function listenerResource(name: string, over: Partial<Listener> = {}): Resource {
  const listener: Listener = {
    sources: [{ kind: 'Listener', namespace: 'default', name: name.split('/').pop() ?? name }],
    address: '127.0.0.1',
    port: 0,
    protocol: Protocol.PROTOCOL_HTTP,
    routeTable: name,
    trustedProxies: [],
    acceptProxyProtocol: false,
    h2c: false,
    accessLog: false,
    ...over,
  };
  return { name, version: version(), body: { $case: 'listener', value: listener } };
}

export function route(name: string, backends: [string, number][] | string, over: Partial<HttpRoute> = {}, match: Partial<RouteMatch> = {}): HttpRoute {
  const list = typeof backends === 'string' ? [[backends, 1] as [string, number]] : backends;
  return {
    source: routeSource(name.split('/')[1] ?? name),
    name,
    match: { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/' }, method: '', headers: [], queryParams: [], ...match },
    filters: [],
    backends: list.map(([cluster, weight]) => ({ cluster, weight })),
    requestTimeoutMs: 0,
    backendRequestTimeoutMs: 0,
    ...over,
  };
}

export function vhost(domains: string[], routes: HttpRoute[], name = domains.join(',')): VirtualHost {
  return { name, domains, routes };
}

export function routeTableResource(name: string, virtualHosts: VirtualHost[]): Resource {
  return { name, version: version(), body: { $case: 'routeTable', value: { virtualHosts } } };
}

export function clusterResource(name: string, policy = LoadBalancingPolicy.LOAD_BALANCING_POLICY_ROUND_ROBIN, over: Partial<Cluster> = {}): Resource {
  const cluster: Cluster = {
    source: { kind: 'Upstream', namespace: 'default', name: name.split('/').pop() ?? name },
    loadBalancing: { policy, panicThresholdPercent: 0, choiceCount: 0 },
    connectTimeoutMs: 0,
    idleTimeoutMs: 0,
    proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_UNSPECIFIED,
    http2: false,
    ...over,
  };
  return { name, version: version(), body: { $case: 'cluster', value: cluster } };
}

export function endpointsResource(name: string, endpoints: { port: number; weight?: number; address?: string }[]): Resource {
  const list: Endpoint[] = endpoints.map((e, i) => ({
    id: `${name}#${i}`,
    address: e.address ?? '127.0.0.1',
    port: e.port,
    weight: e.weight ?? 1,
    labels: {},
    health: HealthStatus.HEALTH_STATUS_UNSPECIFIED,
  }));
  return { name, version: version(), body: { $case: 'endpoints', value: { endpoints: list } } };
}

export const filter = {
  requestHeaders: (set: [string, string][], add: [string, string][] = [], remove: string[] = []): HttpFilter => ({
    filter: { $case: 'requestHeaderModifier', value: { set: set.map(([name, value]) => ({ name, value })), add: add.map(([name, value]) => ({ name, value })), remove } },
  }),
  responseHeaders: (set: [string, string][], add: [string, string][] = [], remove: string[] = []): HttpFilter => ({
    filter: { $case: 'responseHeaderModifier', value: { set: set.map(([name, value]) => ({ name, value })), add: add.map(([name, value]) => ({ name, value })), remove } },
  }),
};
