import { parseDuration } from '@sluice/api';
import { HealthStatus, ResourceType, type AgentReport, type Directive } from '@sluice/proto';
import { endpointId } from '@sluice/translator';
import type { SnapshotSource } from '../discovery/snapshot-cache.js';
import type { Labels } from '../discovery/translator-port.js';
import type { Logger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import { LoopRunner } from '../runner.js';
import type { Watchable } from '../watchable.js';
import { assignHealthChecks, DEFAULT_PROBERS_PER_ENDPOINT, targetKey, type Assignment } from './assignment.js';
import { maxResultAge, mergeHealth, type EndpointHealthState, type ProbeResult } from './merge.js';

export const DEFAULT_REPORT_INTERVAL_MS = 1000;

export interface HealthOptions {
  /** Agents probing each endpoint (K). Default 2. */
  probersPerEndpoint: number;
  /** Report interval the agents are told to use. Default 1000 ms. */
  reportIntervalMs: number;
}

/** Merged health of one endpoint of an Upstream with a health check. */
export interface MergedEndpoint {
  readonly cluster: string;
  readonly endpointId: string;
  readonly address: string;
  readonly port: number;
  readonly health: EndpointHealthState;
  /** Fresh results that voted. */
  readonly reporters: number;
}

/** Every health-checked endpoint's merged health, with the resource snapshot it was built for. */
export interface MergedHealth {
  readonly snapshot: ResourceSnapshot;
  /** By targetKey(cluster, endpoint id). */
  readonly endpoints: ReadonlyMap<string, MergedEndpoint>;
}

/** Where the coordinator sends an agent's directive (its report stream). */
export interface DirectiveSink {
  send(directive: Directive): void;
}

interface Reporter {
  readonly id: string;
  readonly labels: Labels;
  readonly sink: DirectiveSink;
  lastDirective: string | undefined;
  /** Latest result per assigned endpoint (targetKey). */
  readonly results: Map<string, ProbeResult>;
}

interface Target {
  readonly cluster: string;
  readonly endpointId: string;
  readonly address: string;
  readonly port: number;
  readonly intervalMs: number;
}

/**
 * Active health checking on the controller side (docs/health-checking.md): assigns every
 * endpoint of every Upstream with a healthCheck to K connected reporting agents (rendezvous
 * hashing over the agents whose snapshot holds the cluster), sends each agent its directive,
 * keeps each agent's latest results for the endpoints assigned to it, and merges them per
 * endpoint. Publishes the merged health twice: `health` (endpoint id -> status, the
 * translator's input, so only affected Endpoints resources change version) and `merged` (for
 * the Upstream status writer). An agent that leaves is forgotten with its results.
 */
export class HealthCoordinator extends LoopRunner {
  readonly name = 'health-coordinator';
  private readonly options: HealthOptions;
  private readonly reporters = new Map<string, Reporter>();
  private targets = new Map<string, Target>();
  private assignment: Assignment = { byAgent: new Map(), byEndpoint: new Map() };
  private assignmentInputs: string | undefined;
  private states = new Map<string, MergedEndpoint>();
  private snapshot: ResourceSnapshot | undefined;
  private publishScheduled = false;
  /**
   * When this replica started leading (or, without an election, started). Until a result can
   * have arrived, endpoints nobody reported on keep the verdict stored by the previous leader,
   * so a handover or restart does not turn Unhealthy endpoints back into Unknown (= routed).
   */
  private ledSince: number | undefined;

  constructor(
    private readonly deps: {
      resources: Watchable<ResourceSnapshot>;
      snapshots: SnapshotSource;
      /** The translator's health input. */
      health: Watchable<ReadonlyMap<string, HealthStatus>>;
      /** Merged health for the status writer. */
      merged: Watchable<MergedHealth>;
      logger: Logger;
      now?: () => number;
      /**
       * True while this replica leads (absent: always). Only the leader hears reports; a
       * follower's translation takes each endpoint's health from the Upstream status the
       * leader wrote in the store.
       */
      leadership?: Watchable<boolean>;
    },
    options: Partial<HealthOptions> = {},
  ) {
    super();
    this.options = { probersPerEndpoint: DEFAULT_PROBERS_PER_ENDPOINT, reportIntervalMs: DEFAULT_REPORT_INTERVAL_MS, ...options };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  protected async run(signal: AbortSignal): Promise<void> {
    // Results go stale without any event: re-merge every report interval.
    const ticker = setInterval(() => this.remerge(this.targets.keys()), this.options.reportIntervalMs);
    this.ledSince = this.now();
    try {
      await Promise.all([
        (async () => {
          for await (const snapshot of this.deps.resources.subscribe(signal)) this.setSnapshot(snapshot);
        })(),
        (async () => {
          // Agents' cluster sets follow the translation in force.
          for await (const _ of this.deps.snapshots.translations.subscribe(signal)) this.reassign();
        })(),
        (async () => {
          if (!this.deps.leadership) return;
          // Leading or not changes where health comes from: republish.
          for await (const leading of this.deps.leadership.subscribe(signal)) {
            this.ledSince = leading ? this.now() : undefined;
            this.remerge(this.targets.keys(), true);
          }
        })(),
      ]);
    } finally {
      clearInterval(ticker);
    }
  }

  /** A report stream opened (after its handshake); returns the function that ends it. */
  connect(id: string, labels: Labels, sink: DirectiveSink): { report(report: AgentReport): void; disconnect(): void } {
    const reporter: Reporter = { id, labels, sink, lastDirective: undefined, results: new Map() };
    this.reporters.set(id, reporter);
    this.reassign();
    return {
      report: (report) => {
        if (this.reporters.get(id) === reporter) this.ingest(reporter, report);
      },
      disconnect: () => {
        if (this.reporters.get(id) !== reporter) return; // replaced by a newer stream
        this.reporters.delete(id);
        this.reassign();
        this.remerge(this.targets.keys());
      },
    };
  }

  /** Number of agents with an open report stream. */
  get size(): number {
    return this.reporters.size;
  }

  /** The current assignment (for tests and the admin view). */
  get current(): Assignment {
    return this.assignment;
  }

  setSnapshot(snapshot: ResourceSnapshot): void {
    this.snapshot = snapshot;
    this.targets = healthCheckedEndpoints(snapshot);
    this.reassign();
    for (const key of this.states.keys()) if (!this.targets.has(key)) this.states.delete(key);
    this.remerge(this.targets.keys(), true);
  }

  private reassign(): void {
    const probers = [...this.reporters.values()].map((r) => ({ id: r.id, clusters: this.clustersOf(r.labels) }));
    // Most snapshots (Agent objects, status writes) change neither the endpoints nor the
    // agents' clusters: skip the hashing then.
    const inputs = JSON.stringify([[...this.targets.keys()], probers.map((p) => [p.id, [...p.clusters]])]);
    const changed = inputs !== this.assignmentInputs;
    if (changed) {
      this.assignmentInputs = inputs;
      this.assignment = assignHealthChecks([...this.targets.values()], probers, this.options.probersPerEndpoint);
    }
    for (const reporter of this.reporters.values()) {
      if (!changed && reporter.lastDirective !== undefined) continue; // a new stream still needs its first
      const mine = this.assignment.byAgent.get(reporter.id) ?? new Map<string, readonly string[]>();
      const directive: Directive = {
        reportIntervalMs: this.options.reportIntervalMs,
        reportTo: '',
        healthChecks: [...mine.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([cluster, ids]) => ({ cluster, endpointIds: [...ids] })),
      };
      // Forget results of endpoints no longer assigned to this agent.
      const assigned = new Set(directive.healthChecks.flatMap((h) => h.endpointIds.map((id) => targetKey(h.cluster, id))));
      for (const key of reporter.results.keys()) if (!assigned.has(key)) reporter.results.delete(key);
      const text = JSON.stringify(directive);
      if (text === reporter.lastDirective) continue;
      reporter.lastDirective = text;
      this.deps.logger.debug('health-check directive', { id: reporter.id, endpoints: assigned.size });
      reporter.sink.send(directive);
    }
  }

  private clustersOf(labels: Labels): Set<string> {
    const group = this.deps.snapshots.snapshotFor(labels);
    return new Set((group?.resources ?? []).filter((r) => r.type === ResourceType.RESOURCE_TYPE_CLUSTER).map((r) => r.name));
  }

  private ingest(reporter: Reporter, report: AgentReport): void {
    const receivedAt = this.now();
    const touched: string[] = [];
    for (const h of report.health) {
      const key = targetKey(h.cluster, h.endpointId);
      if (!this.assignment.byEndpoint.get(key)?.includes(reporter.id)) continue; // not (or no longer) its job
      // The result's age on the agent's clock, placed on ours: no clock comparison needed.
      const age = Math.max(0, report.sentAtUnixMs - h.observedAtUnixMs);
      reporter.results.set(key, { healthy: h.healthy, observedAt: receivedAt - age });
      touched.push(key);
    }
    this.remerge(touched);
  }

  /** Re-merges these endpoints; publishes when a verdict changed (or `force`). */
  private remerge(keys: Iterable<string>, force = false): void {
    const now = this.now();
    let changed = force;
    let stored: Map<string, HealthStatus> | undefined;
    for (const key of keys) {
      const target = this.targets.get(key);
      if (!target) continue;
      const results: ProbeResult[] = [];
      for (const agent of this.assignment.byEndpoint.get(key) ?? []) {
        const result = this.reporters.get(agent)?.results.get(key);
        if (result) results.push(result);
      }
      const maxAge = maxResultAge(target.intervalMs, this.options.reportIntervalMs);
      let merged = mergeHealth(results, now, maxAge);
      if (merged.reporters === 0 && this.ledSince !== undefined && now - this.ledSince < maxAge && this.snapshot) {
        stored ??= storedHealth(this.snapshot);
        const verdict = stored.get(target.endpointId);
        if (verdict !== undefined) merged = { health: verdict === HealthStatus.HEALTH_STATUS_UNHEALTHY ? 'Unhealthy' : 'Healthy', reporters: 0 };
      }
      const before = this.states.get(key);
      if (before && before.health === merged.health && before.reporters === merged.reporters) continue;
      if (before && before.health !== merged.health) {
        this.deps.logger.info('endpoint health changed', { cluster: target.cluster, address: `${target.address}:${target.port}`, from: before.health, to: merged.health, reporters: merged.reporters });
      }
      this.states.set(key, { cluster: target.cluster, endpointId: target.endpointId, address: target.address, port: target.port, ...merged });
      changed = true;
    }
    if (changed) this.schedulePublish();
  }

  /** Coalesces the verdict changes of one burst of reports into one publication. */
  private schedulePublish(): void {
    if (this.publishScheduled) return;
    this.publishScheduled = true;
    queueMicrotask(() => {
      this.publishScheduled = false;
      this.publish();
    });
  }

  private publish(): void {
    if (!this.snapshot) return;
    const leading = this.deps.leadership?.value ?? true;
    const health = leading ? new Map<string, HealthStatus>() : storedHealth(this.snapshot);
    if (leading) for (const state of [...this.states.values()].sort((a, b) => (a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0))) {
      if (state.health === 'Healthy') health.set(state.endpointId, HealthStatus.HEALTH_STATUS_HEALTHY);
      else if (state.health === 'Unhealthy') health.set(state.endpointId, HealthStatus.HEALTH_STATUS_UNHEALTHY);
    }
    if (!sameHealth(this.deps.health.value, health)) this.deps.health.publish(health);
    this.deps.merged.publish({ snapshot: this.snapshot, endpoints: new Map(this.states) });
  }
}

function sameHealth(a: ReadonlyMap<string, HealthStatus> | undefined, b: ReadonlyMap<string, HealthStatus>): boolean {
  if (!a || a.size !== b.size) return false;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}

/**
 * Endpoint id -> health, from `Upstream.status.endpoints[].health` as the leader wrote it, for
 * every Upstream with a healthCheck: what a follower translates (it hears no reports).
 */
export function storedHealth(snapshot: ResourceSnapshot): Map<string, HealthStatus> {
  const entries: [string, HealthStatus][] = [];
  for (const object of snapshot.objects.values()) {
    if (object.kind !== 'Upstream' || !object.spec.healthCheck) continue;
    const cluster = `${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;
    const status = (object as { status?: { endpoints?: { address?: unknown; port?: unknown; health?: unknown }[] } }).status;
    for (const e of Array.isArray(status?.endpoints) ? status.endpoints : []) {
      if (typeof e.address !== 'string' || typeof e.port !== 'number') continue;
      if (!object.spec.endpoints.some((s) => s.address === e.address && s.port === e.port)) continue;
      const id = endpointId(cluster, e.address, e.port);
      if (e.health === 'Healthy') entries.push([id, HealthStatus.HEALTH_STATUS_HEALTHY]);
      else if (e.health === 'Unhealthy') entries.push([id, HealthStatus.HEALTH_STATUS_UNHEALTHY]);
    }
  }
  return new Map(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Every endpoint of every Upstream with a healthCheck, by targetKey. */
export function healthCheckedEndpoints(snapshot: ResourceSnapshot): Map<string, Target> {
  const out = new Map<string, Target>();
  for (const object of snapshot.objects.values()) {
    if (object.kind !== 'Upstream') continue;
    const u = object;
    const hc = u.spec.healthCheck;
    if (!hc) continue;
    const cluster = `${u.metadata.namespace ?? 'default'}/${u.metadata.name}`;
    const intervalMs = parseDuration(hc.interval) ?? 5000;
    for (const e of u.spec.endpoints) {
      const id = endpointId(cluster, e.address, e.port);
      out.set(targetKey(cluster, id), { cluster, endpointId: id, address: e.address, port: e.port, intervalMs });
    }
  }
  return out;
}
