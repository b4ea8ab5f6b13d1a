import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Resource type label: `RESOURCE_TYPE_ROUTE_TABLE` -> `route_table`. */
export function typeLabel(type: string): string {
  return type.startsWith('RESOURCE_TYPE_') ? type.slice('RESOURCE_TYPE_'.length).toLowerCase() : type.toLowerCase();
}

/** What the gauges read at scrape time (nothing is updated on their behalf meanwhile). */
export interface ControllerGaugeSources {
  connectedAgents(): number;
  isLeader(): boolean;
}

// Store calls are local (SQLite) or one network round trip (etcd): from 100 µs to seconds.
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
// Store write -> agent ACK spans translation, the stream and the agent's apply: ms to tens of s.
const CONVERGENCE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The controller's Prometheus metrics (docs/observability.md), one registry per controller so
 * in-process tests do not share counters. Runners get this object and update the metrics where
 * the events happen; the gauges are read from their sources at scrape time.
 */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly configPushes: Counter<'type'>;
  readonly configPushBytes: Counter<'type'>;
  readonly convergence: Histogram;
  readonly nacks: Counter<'type'>;
  readonly weightUpdates: Counter;
  readonly storeDuration: Histogram<'operation'>;
  readonly storeErrors: Counter<'operation'>;
  private sources: ControllerGaugeSources = { connectedAgents: () => 0, isLeader: () => false };

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const sources = () => this.sources;
    new Gauge({
      name: 'sluice_controller_connected_agents',
      help: 'Agents with an open discovery stream to this controller.',
      registers,
      collect() {
        this.set(sources().connectedAgents());
      },
    });
    new Gauge({
      name: 'sluice_controller_is_leader',
      help: '1 while this controller replica is the leader, else 0.',
      registers,
      collect() {
        this.set(sources().isLeader() ? 1 : 0);
      },
    });
    this.configPushes = new Counter({ name: 'sluice_controller_config_pushes_total', help: 'Resources sent to agents, by resource type.', labelNames: ['type'], registers });
    this.configPushBytes = new Counter({ name: 'sluice_controller_config_push_bytes_total', help: 'Encoded bytes of the resources sent to agents, by resource type.', labelNames: ['type'], registers });
    this.convergence = new Histogram({
      name: 'sluice_controller_config_convergence_seconds',
      help: 'From a new configuration (store revision, health or weights) seen by the controller to an agent ACK of it.',
      buckets: CONVERGENCE_BUCKETS,
      registers,
    });
    this.nacks = new Counter({ name: 'sluice_controller_nacks_total', help: 'Resources rejected (NACKed) by agents, by resource type.', labelNames: ['type'], registers });
    this.weightUpdates = new Counter({ name: 'sluice_controller_weight_updates_total', help: 'Upstreams whose dynamic weights the weight engine moved (leader only).', registers });
    this.storeDuration = new Histogram({
      name: 'sluice_controller_store_operation_duration_seconds',
      help: 'Store call latency by operation (get, list, put, delete, txn; revision, compact, health, lease).',
      labelNames: ['operation'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.storeErrors = new Counter({ name: 'sluice_controller_store_errors_total', help: 'Failed store calls by operation (watch included).', labelNames: ['operation'], registers });
    // Children that exist from the start, so dashboards see zeros rather than no series.
    for (const type of ['secret', 'cluster', 'endpoints', 'route_table', 'listener']) {
      this.configPushes.inc({ type }, 0);
      this.configPushBytes.inc({ type }, 0);
      this.nacks.inc({ type }, 0);
    }
    for (const operation of ['get', 'list', 'put', 'delete', 'txn', 'watch']) {
      this.storeErrors.inc({ operation }, 0);
      if (operation !== 'watch') this.storeDuration.zero({ operation });
    }
  }

  /** Where the gauges read from (set once the discovery server and elector exist). */
  setSources(sources: ControllerGaugeSources): void {
    this.sources = sources;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
