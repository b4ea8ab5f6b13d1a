import { AggregatorRegistry, collectDefaultMetrics, Registry, type Aggregator, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { CODE_CLASSES, type DataPlaneMetrics } from './data-plane-metrics.js';
import type { BucketHistogram } from './histogram.js';

/** A registry's samples as getMetricsAsJSON() gives them (what workers send the primary). */
export type MetricsJSON = MetricObjectWithValues<MetricValue<string>>[];

type Labels = Record<string, string | number>;
type Sample = { value: number; labels: Labels; metricName?: string };

/** Endpoint state at scrape time (data-plane.ts). */
export interface EndpointMetricState {
  readonly upstream: string;
  /** `address:port` */
  readonly endpoint: string;
  readonly healthy: boolean;
  readonly weight: number;
}

/** What the data-plane metrics read at scrape time. */
export interface DataPlaneMetricsSource {
  readonly metrics: DataPlaneMetrics;
  endpointStates(): EndpointMetricState[];
  /** Open downstream connections by listener. */
  activeConnections(): Map<string, number>;
}

/** What the agent-level metrics read at scrape time (agent-status.ts). */
export interface AgentMetricsSource {
  /** Store revision of the applied snapshot; undefined before the first. */
  revision(): number | undefined;
  /** Currently rejected resources by type label (listener, cluster, ...). */
  rejectedByType(): Map<string, number>;
}

/**
 * A metric whose samples are computed at scrape time from plain numbers. prom-client's own
 * classes would need a labelled child lookup per update; these cost nothing between scrapes.
 * `aggregator` says how `--workers` processes combine (AggregatorRegistry.aggregate).
 */
function snapshot(registry: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', aggregator: Aggregator, samples: () => Sample[]): void {
  const metric = {
    name,
    help,
    type,
    aggregator,
    get: () => Promise.resolve({ name, help, type, aggregator, values: samples() }),
  };
  // The registry takes any object with name and get() (as AggregatorRegistry.aggregate does).
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

function histogramSamples(name: string, labels: Labels, h: BucketHistogram, out: Sample[]): void {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i] as number;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: h.bounds[i] as number }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
}

/** The data plane's metrics (one DataPlane: the agent process, or one worker). */
export function dataPlaneRegistry(source: DataPlaneMetricsSource): Registry {
  const registry = new Registry();
  const m = source.metrics;
  snapshot(registry, 'sluice_agent_requests_total', 'HTTP requests by listener, route, upstream and status class (route and upstream empty when none matched).', 'counter', 'sum', () => {
    const out: Sample[] = [];
    for (const listener of m.listeners.values()) {
      for (const route of listener.routes.values()) {
        for (const [upstream, counts] of route.byUpstream) {
          for (let i = 0; i < CODE_CLASSES.length; i++) {
            const value = counts[i] as number;
            if (value > 0) out.push({ labels: { listener: listener.name, route: route.route, upstream, code_class: CODE_CLASSES[i] as string }, value });
          }
        }
      }
    }
    return out;
  });
  snapshot(registry, 'sluice_agent_request_duration_seconds', 'Client request duration, from the request to the end of the response, by listener.', 'histogram', 'sum', () => {
    const out: Sample[] = [];
    for (const listener of m.listeners.values()) histogramSamples('sluice_agent_request_duration_seconds', { listener: listener.name }, listener.duration, out);
    return out;
  });
  snapshot(registry, 'sluice_agent_upstream_request_duration_seconds', 'Time of one try to an upstream endpoint until its response headers, by upstream.', 'histogram', 'sum', () => {
    const out: Sample[] = [];
    for (const [upstream, h] of m.upstreams) histogramSamples('sluice_agent_upstream_request_duration_seconds', { upstream }, h, out);
    return out;
  });
  // Health and weight are the same in every worker, except local outlier ejections: an
  // endpoint counts as healthy only if every worker may use it.
  snapshot(registry, 'sluice_agent_endpoint_healthy', '1 if the endpoint may take traffic (healthy per the controller and not ejected), else 0.', 'gauge', 'min', () =>
    source.endpointStates().map((e) => ({ labels: { upstream: e.upstream, endpoint: e.endpoint }, value: e.healthy ? 1 : 0 })),
  );
  snapshot(registry, 'sluice_agent_endpoint_weight', 'Effective endpoint weight as pushed by the controller (configured weight x dynamic factor).', 'gauge', 'average', () =>
    source.endpointStates().map((e) => ({ labels: { upstream: e.upstream, endpoint: e.endpoint }, value: e.weight })),
  );
  snapshot(registry, 'sluice_agent_active_connections', 'Open downstream connections by listener.', 'gauge', 'sum', () =>
    [...source.activeConnections()].map(([listener, value]) => ({ labels: { listener }, value })),
  );
  snapshot(registry, 'sluice_agent_access_log_dropped_total', 'Access-log lines dropped because standard output was backed up.', 'counter', 'sum', () => [
    { labels: {}, value: m.accessLogDropped },
  ]);
  snapshot(registry, 'sluice_agent_l4_connections_total', 'L4 connections (UDP: sessions) accepted, by listener and upstream.', 'counter', 'sum', () => {
    const out: Sample[] = [];
    for (const l4 of m.l4.values()) for (const [upstream, value] of l4.connections) out.push({ labels: { listener: l4.name, upstream }, value });
    return out;
  });
  snapshot(registry, 'sluice_agent_l4_bytes_total', 'L4 bytes by listener and direction (in = from clients, out = to clients).', 'counter', 'sum', () => {
    const out: Sample[] = [];
    for (const l4 of m.l4.values()) {
      out.push({ labels: { listener: l4.name, direction: 'in' }, value: l4.bytesIn });
      out.push({ labels: { listener: l4.name, direction: 'out' }, value: l4.bytesOut });
    }
    return out;
  });
  return registry;
}

/** The agent's own metrics (the primary process): applied revision and rejected resources. */
export function registerAgentMetrics(registry: Registry, source: AgentMetricsSource): void {
  snapshot(registry, 'sluice_agent_config_revision', 'Store revision of the configuration snapshot this agent applied (0 before the first).', 'gauge', 'max', () => [
    { labels: {}, value: source.revision() ?? 0 },
  ]);
  snapshot(registry, 'sluice_agent_rejected_resources', 'Resources this agent currently rejects (NACKed), by type.', 'gauge', 'max', () => {
    const byType = source.rejectedByType();
    return ['secret', 'cluster', 'endpoints', 'route_table', 'listener'].map((type) => ({ labels: { type }, value: byType.get(type) ?? 0 }));
  });
}

/** A registry with prom-client's process and Node.js metrics (each process has its own). */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The exposition of several processes' registries as one: counters and histograms summed,
 * gauges per their aggregator (prom-client's AggregatorRegistry, as node:cluster apps use it).
 */
export async function exposition(parts: MetricsJSON[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts).metrics();
}

export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * The agent's `/metrics`: this process's metrics and the agent's own, aggregated with the data
 * plane's (in process, or every worker's with their process metrics).
 */
export function agentMetrics(source: AgentMetricsSource, dataPlane: { collectMetrics?(): Promise<MetricsJSON[]> }): { readonly contentType: string; metrics(): Promise<string> } {
  const registry = processRegistry();
  registerAgentMetrics(registry, source);
  return {
    contentType: CONTENT_TYPE,
    metrics: async () => exposition([await registry.getMetricsAsJSON(), ...((await dataPlane.collectMetrics?.()) ?? [])]),
  };
}
