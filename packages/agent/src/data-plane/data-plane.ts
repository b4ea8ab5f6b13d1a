import { BlockList } from 'node:net';
import { HealthStatus, Protocol, ResourceType, type Cluster, type Endpoints, type EndpointTraffic, type Listener, type Resource, type ResourceError, type ResourceKey, type RouteTable, type Source } from '@sluice/proto';
import type { Pool } from 'undici';
import type { BreakerStats } from './circuit-breaker.js';
import { drainTraffic } from './endpoint-stats.js';
import { DataPlaneMetrics, formatEndpoint } from '../metrics/data-plane-metrics.js';
import { dataPlaneRegistry, type EndpointMetricState, type MetricsJSON } from '../metrics/registry.js';
import { FilterState } from './filters/filter-state.js';
import type { ListenerView } from './http-proxy.js';
import { bindKey, ListenerManager, type ListenerSpec } from './listener-manager.js';
import { isL4Resource, l4ListenerSpec, L4ListenerManager, l4SocketKey, mayShareSocket, type L4ListenerSpec } from './l4/l4-listeners.js';
import { keyOf, keyString, typeOf } from './resource-keys.js';
import type { EndpointOutlierState } from './outlier-detection.js';
import { CompiledRouteTable } from './router.js';
import { CertificateStore, listenerTlsView, type Certificate, type ListenerTlsView } from './tls-contexts.js';
import { ClusterRuntime, clusterPoolSettings, compileCluster, upstreamTlsSettings, type SecretLookup, type UpstreamCluster } from './upstream-cluster.js';
import { UpstreamPools } from './upstream-pool.js';
import { clusterReferenceProblem, dedupeSources, listenerReferenceProblem, parseCidr, validateResource, type Rejection } from './validate.js';

export interface DataPlaneUpdate {
  resources: Resource[];
  removed: ResourceKey[];
}

/** A cluster's resilience state on this data plane (config_dump, metrics). */
export interface ClusterStats {
  readonly breaker: BreakerStats;
  /** Endpoints with failures or ejections on record. */
  readonly outliers: EndpointOutlierState[];
}

export interface DataPlaneOptions {
  /** Overrides every listener's bind address (several agents on one machine: 127.0.0.2 ...). */
  listenAddress?: string;
  logger: {
    info(msg: string, meta?: object): void;
    warn(msg: string, meta?: object): void;
    error(msg: string, meta?: object): void;
    debug(msg: string, meta?: object): void;
  };
  /** How long a removed listener drains in-flight requests before its sockets are destroyed. */
  drainTimeoutMs?: number;
  /** Test-only: accept listener port 0 (an ephemeral port; listeners() reports it). */
  allowEphemeralPorts?: boolean;
}

const DEFAULT_DRAIN_MS = 30_000;

/** Make-before-break order, also the order of resources(). */
const TYPE_ORDER: readonly ResourceType[] = [
  ResourceType.RESOURCE_TYPE_SECRET,
  ResourceType.RESOURCE_TYPE_CLUSTER,
  ResourceType.RESOURCE_TYPE_ENDPOINTS,
  ResourceType.RESOURCE_TYPE_ROUTE_TABLE,
  ResourceType.RESOURCE_TYPE_LISTENER,
];

/** Compiled artefacts kept across versions, keyed by the versions they were built from. */
interface CompiledClusterEntry {
  readonly clusterVersion: string;
  readonly endpointsVersion: string;
  /** The CA Secret's name and version (upstream TLS), "" = none. */
  readonly caId: string;
  readonly compiled: UpstreamCluster;
}

/**
 * The agent's data plane: validates resources, compiles them into immutable tables and swaps
 * them in atomically (DESIGN §5). Updates run one at a time, in call order.
 */
export class DataPlane {
  private applied = new Map<string, Resource>();
  private routeTables = new Map<string, { version: string; compiled: CompiledRouteTable }>();
  private clusters = new Map<string, CompiledClusterEntry>();
  /** Per cluster name, across versions: circuit-breaker counters and outlier-detection state. */
  private clusterRuntimes = new Map<string, ClusterRuntime>();
  private trusted = new Map<string, { version: string; list: BlockList | undefined }>();
  /** Cache stores and rate-limit buckets, kept across versions of the routes that use them. */
  private readonly filterState = new FilterState();
  private readonly listenerManager: ListenerManager;
  private readonly l4Listeners: L4ListenerManager;
  private readonly pools = new UpstreamPools();
  /** TLS termination: one SecureContext per certificate Secret version. */
  private readonly certificates = new CertificateStore();
  /** Request, upstream and L4 counts in plain numbers; exposed by collectMetrics(). */
  readonly metrics = new DataPlaneMetrics();
  private registry: ReturnType<typeof dataPlaneRegistry> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly drainTimeoutMs: number;

  constructor(private readonly options: DataPlaneOptions) {
    this.drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_MS;
    this.listenerManager = new ListenerManager(this.drainTimeoutMs);
    this.l4Listeners = new L4ListenerManager(this.drainTimeoutMs);
  }

  /**
   * Validates every resource; applies the accepted ones as ONE atomic swap of immutable
   * tables; returns one ResourceError per rejected resource (which keeps its previous
   * version, or stays absent). Listener bind failures (EADDRINUSE, EACCES) are rejections too.
   */
  apply(update: DataPlaneUpdate): Promise<ResourceError[]> {
    const run = this.queue.then(() => this.applyNow(update));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The applied resources (for /config_dump and the cache dir), sorted by type then name. */
  resources(): Resource[] {
    return [...this.applied.values()].sort((a, b) => {
      const byType = TYPE_ORDER.indexOf(typeOf(a)) - TYPE_ORDER.indexOf(typeOf(b));
      return byType !== 0 ? byType : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
  }

  /** Per cluster: circuit-breaker counters and outlier ejections (for /config_dump and metrics). */
  clusterStats(): Map<string, ClusterStats> {
    const out = new Map<string, ClusterStats>();
    for (const [name, runtime] of [...this.clusterRuntimes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      out.set(name, { breaker: runtime.breaker.stats(), outliers: runtime.outliers.snapshot() });
    }
    return out;
  }

  /**
   * Per-endpoint traffic since the last call (a delta; the counts drained are reset), at most
   * `max` endpoints, the busiest first; the others keep their counts for the next call.
   */
  drainTraffic(max?: number): { traffic: EndpointTraffic[]; omitted: number } {
    return drainTraffic([...this.clusterRuntimes.values()].map((r) => r.traffic), max);
  }

  /** Every endpoint of every applied cluster: may it take traffic, and its weight (metrics). */
  endpointStates(): EndpointMetricState[] {
    const out: EndpointMetricState[] = [];
    for (const resource of this.applied.values()) {
      if (resource.body?.$case !== 'endpoints') continue;
      const outliers = this.clusterRuntimes.get(resource.name)?.outliers;
      for (const e of resource.body.value.endpoints) {
        const healthy = e.health !== HealthStatus.HEALTH_STATUS_UNHEALTHY && outliers?.isEjected(e.id) !== true;
        out.push({ upstream: resource.name, endpoint: formatEndpoint(e), healthy, weight: e.weight });
      }
    }
    return out;
  }

  /** Open downstream connections by listener name. */
  activeConnections(): Map<string, number> {
    return new Map([...this.listenerManager.connections(), ...this.l4Listeners.connections()]);
  }

  /** This data plane's metrics (registry.ts); with --workers each worker sends them up. */
  async collectMetrics(): Promise<MetricsJSON[]> {
    this.registry ??= dataPlaneRegistry(this);
    return [await this.registry.getMetricsAsJSON()];
  }

  /** Bound listeners: name -> { address, port } */
  listeners(): Map<string, { address: string; port: number }> {
    const all = new Map([...this.listenerManager.listeners(), ...this.l4Listeners.listeners()]);
    return new Map([...all].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Stops listening, drains in-flight requests up to drainTimeoutMs, closes upstream pools. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await Promise.all([this.listenerManager.close(), this.l4Listeners.close()]);
    await this.pools.close(this.drainTimeoutMs);
  }

  private async applyNow(update: DataPlaneUpdate): Promise<ResourceError[]> {
    const errors: ResourceError[] = [];
    const rejectResource = (resource: Resource, rejection: Rejection) => {
      errors.push({ key: keyOf(resource), version: resource.version, message: rejection.message, sources: rejection.sources });
    };
    if (this.closed) {
      for (const r of update.resources) rejectResource(r, { message: 'the data plane is closed', sources: [] });
      return errors;
    }

    // 1. The candidate set: what is applied, minus removals, plus every valid resource.
    const candidate = new Map(this.applied);
    for (const key of update.removed) candidate.delete(keyString(key));
    const incomingClusters = new Map(update.resources.flatMap((r) => (r.body?.$case === 'cluster' ? [[r.name, r.body.value] as const] : [])));
    const clusterSource = (name: string): Source | undefined => {
      const body = candidate.get(keyString({ type: ResourceType.RESOURCE_TYPE_CLUSTER, name }))?.body;
      return incomingClusters.get(name)?.source ?? (body?.$case === 'cluster' ? body.value.source : undefined);
    };
    const validateOptions = { allowEphemeralPorts: this.options.allowEphemeralPorts, clusterSource };
    for (const resource of update.resources) {
      const rejection = validateResource(resource, validateOptions);
      if (rejection !== undefined) rejectResource(resource, rejection);
      else candidate.set(keyString(keyOf(resource)), resource);
    }
    // A cluster's CA Secret comes in the same update or was applied before.
    const hasSecret = (name: string) => candidate.has(keyString({ type: ResourceType.RESOURCE_TYPE_SECRET, name }));
    for (const resource of update.resources) {
      if (resource.body?.$case !== 'cluster' || candidate.get(keyString(keyOf(resource))) !== resource) continue;
      const rejection = clusterReferenceProblem(resource.body.value, hasSecret);
      if (rejection !== undefined) {
        rejectResource(resource, rejection);
        this.revert(candidate, resource);
      }
    }
    // An HTTPS listener's certificate Secrets, likewise.
    for (const resource of update.resources) {
      if (resource.body?.$case !== 'listener' || candidate.get(keyString(keyOf(resource))) !== resource) continue;
      const rejection = listenerReferenceProblem(resource.body.value, hasSecret) ?? this.tlsProblem(resource.body.value, candidate);
      if (rejection !== undefined) {
        rejectResource(resource, rejection);
        this.revert(candidate, resource);
      }
    }

    // 2. Two listeners on one address and port: the one that had it keeps it.
    const listenerResources = [...candidate.values()].filter((r) => r.body?.$case === 'listener');
    listenerResources.sort((a, b) => Number(this.applied.get(keyString(keyOf(b))) === b) - Number(this.applied.get(keyString(keyOf(a))) === a));
    const owners = new Map<string, { name: string; listener: Listener }>();
    for (const resource of listenerResources) {
      const listener = (resource.body as { value: Listener }).value;
      const key = l4SocketKey(listener.protocol, resource.name, this.bindAddress(listener), listener.port);
      const owner = owners.get(key);
      // TLS passthrough listeners share a port: SNI tells them apart.
      if (owner !== undefined && !mayShareSocket(owner.listener, listener)) {
        rejectResource(resource, { message: `port ${listener.port} is already used by listener ${owner.name}`, sources: dedupeSources(listener.sources) });
        this.revert(candidate, resource);
      } else if (owner === undefined) owners.set(key, { name: resource.name, listener });
    }

    // 3. Compile route tables and clusters (reusing what did not change), prepare pools.
    const routeTables = new Map<string, { version: string; compiled: CompiledRouteTable }>();
    const clusterResources: [Resource, Cluster][] = [];
    const endpointsOf = new Map<string, Resource>();
    for (const resource of candidate.values()) {
      const body = resource.body;
      if (body?.$case === 'routeTable') routeTables.set(resource.name, this.compileRouteTable(resource, body.value));
      else if (body?.$case === 'cluster') clusterResources.push([resource, body.value]);
      else if (body?.$case === 'endpoints') endpointsOf.set(resource.name, resource);
    }
    const endpointsBody = (name: string): Endpoints | undefined => {
      const body = endpointsOf.get(name)?.body;
      return body?.$case === 'endpoints' ? body.value : undefined;
    };
    const secrets: SecretLookup = (name) => {
      const secret = candidate.get(keyString({ type: ResourceType.RESOURCE_TYPE_SECRET, name }));
      return secret?.body?.$case === 'secret' ? { pem: secret.body.value.certificateChain, version: secret.version } : undefined;
    };
    const nextPools = this.pools.prepare(clusterResources.flatMap(([r, c]) => clusterPoolSettings(c, endpointsBody(r.name), secrets)));
    const clusters = new Map<string, CompiledClusterEntry>();
    for (const [resource, cluster] of clusterResources) {
      clusters.set(resource.name, this.compileCluster(resource, cluster, endpointsOf.get(resource.name), nextPools, secrets));
    }
    const clusterMap: ReadonlyMap<string, UpstreamCluster> = new Map([...clusters].map(([name, e]) => [name, e.compiled]));

    // 4. Bind the sockets this version adds; a failed bind rejects that listener only.
    const trusted = new Map<string, { version: string; list: BlockList | undefined }>();
    const specOf = (resource: Resource): ListenerSpec => {
      const listener = (resource.body as { value: Listener }).value;
      let entry = this.trusted.get(resource.name);
      if (entry?.version !== resource.version) entry = { version: resource.version, list: trustedProxies(listener.trustedProxies) };
      trusted.set(resource.name, entry);
      const stats = this.metrics.listener(resource.name);
      stats.accessLog = listener.accessLog ? this.metrics.accessLog() : undefined;
      const view: ListenerView = { table: routeTables.get(listener.routeTable)?.compiled, clusters: clusterMap, trustedProxies: entry.list, stats };
      return { name: resource.name, address: this.bindAddress(listener), port: listener.port, limits: listener.limits, view, tls: this.tlsView(listener, candidate), h2c: listener.h2c, acceptProxyProtocol: listener.acceptProxyProtocol };
    };
    const specs: ListenerSpec[] = [];
    await Promise.all(
      [...candidate.values()]
        .filter((r) => r.body?.$case === 'listener' && !isL4Resource(r))
        .map(async (resource) => {
          const spec = specOf(resource);
          try {
            await this.listenerManager.bind(spec);
            specs.push(spec);
          } catch (err) {
            const listener = (resource.body as { value: Listener }).value;
            const code = (err as { code?: unknown }).code;
            const message = `cannot listen on ${spec.address || '*'}:${spec.port}: ${typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)}`;
            rejectResource(resource, { message, sources: dedupeSources(listener.sources) });
            const previous = this.revert(candidate, resource);
            if (previous !== undefined) {
              const old = specOf(previous);
              if (this.listenerManager.has(bindKey(old))) specs.push(old);
              else candidate.delete(keyString(keyOf(resource)));
            }
          }
        }),
    );

    // 4b. L4 listeners (TCP, UDP, TLS passthrough): the same make-before-break, their own sockets.
    const l4Spec = (resource: Resource): L4ListenerSpec => {
      const listener = (resource.body as { value: Listener }).value;
      const spec = l4ListenerSpec(resource.name, this.bindAddress(listener), listener, clusterMap, this.tlsView(listener, candidate));
      const stats = this.metrics.l4Listener(resource.name);
      stats.accessLog = listener.accessLog ? this.metrics.accessLog() : undefined;
      stats.protocol = listener.protocol === Protocol.PROTOCOL_UDP ? 'UDP' : listener.protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH || listener.tls !== undefined ? 'TLS' : 'TCP';
      spec.route.stats = stats;
      return spec;
    };
    const l4Specs: L4ListenerSpec[] = [];
    await Promise.all(
      [...candidate.values()].filter(isL4Resource).map(async (resource) => {
        const spec = l4Spec(resource);
        try {
          await this.l4Listeners.bind(spec);
          l4Specs.push(spec);
        } catch (err) {
          const listener = (resource.body as { value: Listener }).value;
          const code = (err as { code?: unknown }).code;
          const message = `cannot listen on ${spec.address || '*'}:${spec.port}: ${typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)}`;
          rejectResource(resource, { message, sources: dedupeSources(listener.sources) });
          const previous = this.revert(candidate, resource);
          if (previous !== undefined) {
            const old = l4Spec(previous);
            if (this.l4Listeners.has(old.key)) l4Specs.push(old);
            else candidate.delete(keyString(keyOf(resource)));
          }
        }
      }),
    );

    // 5. The swap: one synchronous pass, so no request sees half of it.
    this.listenerManager.commit(specs);
    this.l4Listeners.commit(l4Specs);
    this.pools.commit(nextPools);
    this.applied = candidate;
    this.routeTables = routeTables;
    this.filterState.retain(routeTables);
    this.clusters = clusters;
    for (const name of this.clusterRuntimes.keys()) if (!clusters.has(name)) this.clusterRuntimes.delete(name);
    this.trusted = trusted;
    this.certificates.retain(new Set([...specs, ...l4Specs].flatMap((s) => s.tls?.sni.certificates.map((c) => c.secret) ?? [])));
    if (errors.length > 0) this.options.logger.warn('rejected resources', { errors: errors.map((e) => ({ type: e.key?.type, name: e.key?.name, message: e.message })) });
    this.options.logger.debug('applied data-plane update', { resources: update.resources.length, removed: update.removed.length, rejected: errors.length });
    return errors;
  }

  /**
   * An HTTPS listener's certificates (in its order) and settings. A Secret gone from the set
   * since (validation makes sure a new listener version has them all) serves on with its
   * last good certificate, so a listener never loses TLS to a removal ordering.
   */
  private tlsView(listener: Listener, candidate: ReadonlyMap<string, Resource>, strict = false): ListenerTlsView | undefined {
    // TCP with tls: TLS terminated in front of an L4 route, with the same certificates and SNI.
    if ((listener.protocol !== Protocol.PROTOCOL_HTTPS && listener.protocol !== Protocol.PROTOCOL_TCP) || listener.tls === undefined) return undefined;
    const certificates: Certificate[] = [];
    for (const name of listener.tls.certificateSecrets) {
      const resource = candidate.get(keyString({ type: ResourceType.RESOURCE_TYPE_SECRET, name }));
      let certificate: Certificate | undefined;
      try {
        certificate = resource?.body?.$case === 'secret' ? this.certificates.certificate(name, resource.version, resource.body.value) : this.certificates.last(name);
      } catch (err) {
        if (strict) throw new Error(`tls.certificate_secrets: Secret "${name}" cannot be loaded: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        certificate = this.certificates.last(name);
      }
      if (certificate !== undefined) certificates.push(certificate);
    }
    if (certificates.length === 0) throw new Error('tls.certificate_secrets: none of the certificate Secrets is available');
    return listenerTlsView(certificates, listener.tls);
  }

  /** Can an HTTPS listener's certificates be loaded (a new listener version, before it is accepted)? */
  private tlsProblem(listener: Listener, candidate: ReadonlyMap<string, Resource>): Rejection | undefined {
    try {
      this.tlsView(listener, candidate, true);
      return undefined;
    } catch (err) {
      return { message: err instanceof Error ? err.message : String(err), sources: dedupeSources(listener.sources) };
    }
  }

  private bindAddress(listener: Listener): string {
    return this.options.listenAddress ?? listener.address;
  }

  /** Puts back the applied version of a rejected resource (or drops it); returns it. */
  private revert(candidate: Map<string, Resource>, resource: Resource): Resource | undefined {
    const key = keyString(keyOf(resource));
    const previous = this.applied.get(key);
    if (previous === undefined) candidate.delete(key);
    else candidate.set(key, previous);
    return previous;
  }

  private compileRouteTable(resource: Resource, table: RouteTable): { version: string; compiled: CompiledRouteTable } {
    const cached = this.routeTables.get(resource.name);
    if (cached !== undefined && cached.version === resource.version) return cached;
    return { version: resource.version, compiled: new CompiledRouteTable(table, this.filterState.scope(resource.name, resource.version)) };
  }

  private compileCluster(resource: Resource, cluster: Cluster, endpoints: Resource | undefined, pools: ReadonlyMap<string, Pool>, secrets: SecretLookup): CompiledClusterEntry {
    const endpointsVersion = endpoints?.version ?? '';
    // A new CA version means new pools, so a cluster that did not change is recompiled onto them.
    const caId = upstreamTlsSettings(cluster.tls, secrets)?.caId ?? '';
    const cached = this.clusters.get(resource.name);
    if (cached !== undefined && cached.clusterVersion === resource.version && cached.endpointsVersion === endpointsVersion && cached.caId === caId) return cached;
    const body = endpoints?.body?.$case === 'endpoints' ? endpoints.body.value : undefined;
    let runtime = this.clusterRuntimes.get(resource.name);
    if (runtime === undefined) this.clusterRuntimes.set(resource.name, (runtime = new ClusterRuntime(resource.name)));
    // Load, latency and slow start carry over from the previous version (dynamic weights push often).
    const compiled = compileCluster(resource.name, cluster, body, pools, cached?.compiled.balancerState, runtime, secrets);
    return { clusterVersion: resource.version, endpointsVersion, caId, compiled };
  }
}

function trustedProxies(cidrs: readonly string[]): BlockList | undefined {
  if (cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed !== undefined) list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return list;
}
