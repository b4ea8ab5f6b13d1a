import { isDeepStrictEqual } from 'node:util';
import { kindInfo, parseDuration, type Upstream } from '@sluice/api';
import { computeWeights, dataPlaneWeight, DEFAULT_WEIGHT_ENGINE_OPTIONS, effectiveWeight, endpointId, type WeightEngineOptions } from '@sluice/translator';
import { targetKey } from '../health/assignment.js';
import type { MergedHealth } from '../health/health-coordinator.js';
import type { Logger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import type { ResourceService } from '../resources/resource-service.js';
import { LoopRunner } from '../runner.js';
import type { Watchable } from '../watchable.js';
import { endpointKey, type EndpointStats } from './aggregator.js';


/** What the runner needs of the Aggregator: its snapshot, keyed `${cluster}\u0000${endpointId}`. */
export interface StatsSource {
  snapshot(now: number): ReadonlyMap<string, EndpointStats>;
}


/** One entry of `Upstream.status.endpoints`. */
export interface EndpointStatus {
  address: string;
  port: number;
  health: 'Healthy' | 'Unhealthy' | 'Unknown';
  since: string;
  weight?: number;
  effectiveWeight?: number;
  latency?: { ewmaMs: number; p50Ms: number; p99Ms: number };
  errorRate?: number;
  requests?: number;
  agents?: number;
}

/** Stats-only changes are written at most every this many intervals (weights/health at once). */
export const STATS_REFRESH_INTERVALS = 6;
const DEFAULT_INTERVAL_MS = 5000;

const roundMs = (x: number) => (x >= 100 ? Math.round(x) : Math.round(x * 10) / 10);

/** What describes an endpoint beyond its health: factors (dynamic weights) and stats. */
export interface StatusExtras {
  /** Factor by endpoint id; present only for an Upstream with dynamic weights enabled. */
  factors?: ReadonlyMap<string, number> | undefined;
  /** Aggregated stats by endpointKey(cluster, endpoint id). */
  stats?: ReadonlyMap<string, EndpointStats> | undefined;
}

export function clusterOf(u: Upstream): string {
  return `${u.metadata.namespace ?? 'default'}/${u.metadata.name}`;
}

function dynamicOn(u: Upstream): boolean {
  return u.spec.dynamicWeights?.enabled === true;
}

/** The status writer's concern: upstreams with a health check or dynamic weights. */
function covered(u: Upstream): boolean {
  return u.spec.healthCheck !== undefined || dynamicOn(u);
}

/**
 * The Upstream's status with `endpoints` brought up to date, or undefined when nothing changes.
 * Health and `since` as merged from the health checks; with dynamic weights, the configured and
 * effective weight; with stats, the merged latency, error rate, requests and agents (rounded).
 */
export function desiredStatus(u: Upstream, merged: MergedHealth, now: Date, extras: StatusExtras = {}): Record<string, unknown> | undefined {
  const current = (u as { status?: Record<string, unknown> }).status ?? {};
  const before = Array.isArray(current.endpoints) ? (current.endpoints as EndpointStatus[]) : undefined;
  const { endpoints: _old, ...rest } = current;
  if (!covered(u)) return before === undefined ? undefined : rest;
  const cluster = clusterOf(u);
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const endpoints: EndpointStatus[] = [...u.spec.endpoints]
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port))
    .map((e) => {
      const id = endpointId(cluster, e.address, e.port);
      const health = merged.endpoints.get(targetKey(cluster, id))?.health ?? 'Unknown';
      const previous = before?.find((p) => p.address === e.address && p.port === e.port);
      const out: EndpointStatus = { address: e.address, port: e.port, health, since: previous?.health === health ? previous.since : stamp };
      const factor = extras.factors?.get(id);
      if (factor !== undefined) {
        out.weight = e.weight;
        out.effectiveWeight = effectiveWeight(e.weight, factor);
      }
      const s = extras.stats?.get(endpointKey(cluster, id));
      if (s && s.requests > 0) {
        out.latency = { ewmaMs: roundMs(s.latencyMs), p50Ms: roundMs(s.p50Ms), p99Ms: roundMs(s.p99Ms) };
        out.errorRate = Math.round(s.errorRate * 1000) / 1000;
        out.requests = Math.round(s.requests);
        out.agents = s.agents;
      }
      return out;
    });
  if (before !== undefined && isDeepStrictEqual(before, endpoints)) return undefined;
  return { ...rest, endpoints };
}

/** Health, since and weights: what must be written at once when it changes (stats may wait). */
function significant(endpoints: readonly EndpointStatus[] | undefined): unknown {
  return endpoints?.map((e) => [e.address, e.port, e.health, e.since, e.weight, e.effectiveWeight]);
}

/** Factors in force according to the store: effectiveWeight / weight, by endpoint id. */
export function storedFactors(u: Upstream): Map<string, number> {
  const cluster = clusterOf(u);
  const out = new Map<string, number>();
  const status = (u as { status?: { endpoints?: EndpointStatus[] } }).status;
  for (const e of status?.endpoints ?? []) {
    if (e.effectiveWeight === undefined || e.weight === undefined) continue;
    if (!u.spec.endpoints.some((s) => s.address === e.address && s.port === e.port)) continue;
    out.set(endpointId(cluster, e.address, e.port), e.weight > 0 ? Math.round((e.effectiveWeight / e.weight) * 1000) / 1000 : 1);
  }
  return out;
}

/**
 * Data-plane weights (endpoint id -> weight) for every Upstream with dynamic weights, from the
 * effective weights in the store. What followers serve, and what a new leader starts from.
 */
export function storedWeights(snapshot: ResourceSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const object of snapshot.objects.values()) {
    if (object.kind !== 'Upstream' || !dynamicOn(object)) continue;
    const factors = storedFactors(object);
    addWeights(out, object, factors);
  }
  return out;
}

function addWeights(out: Map<string, number>, u: Upstream, factors: ReadonlyMap<string, number>): void {
  const cluster = clusterOf(u);
  for (const e of u.spec.endpoints) {
    const id = endpointId(cluster, e.address, e.port);
    // An Unhealthy endpoint (factor 0) keeps weight 1 on the wire: health already takes it
    // out of rotation, and in panic mode (too few healthy) it must still get a share.
    out.set(id, Math.max(dataPlaneWeight(effectiveWeight(e.weight, factors.get(id) ?? 1)), e.weight > 0 ? 1 : 0));
  }
}

export function engineOptions(u: Upstream): WeightEngineOptions {
  const d = u.spec.dynamicWeights;
  return {
    ...DEFAULT_WEIGHT_ENGINE_OPTIONS,
    ...(d ? { minFactor: d.minFactor, maxFactor: d.maxFactor } : {}),
    ...(d?.dampening !== undefined ? { dampening: d.dampening } : {}),
    ...(d?.threshold !== undefined ? { threshold: d.threshold } : {}),
    ...(d?.minRequests !== undefined ? { minRequests: d.minRequests } : {}),
  };
}

export function intervalOf(u: Upstream): number {
  return (u.spec.dynamicWeights?.interval !== undefined ? parseDuration(u.spec.dynamicWeights.interval) : undefined) ?? DEFAULT_INTERVAL_MS;
}

interface UpstreamState {
  /** Factor by endpoint id: the engine's state between intervals. */
  factors: Map<string, number>;
  nextRun: number;
}

export interface WeightRunnerDeps {
  /** Fleet-wide traffic stats (the Aggregator). Absent: no stats, no penalties. */
  stats?: StatsSource | undefined;
  /** The translator's weights input (endpoint id -> data-plane weight). */
  weights?: Watchable<ReadonlyMap<string, number>> | undefined;
  /** Only the leader runs the engine and writes; followers serve the weights in the store. */
  isLeader?: () => boolean;
  now?: () => number;
  /** How often due upstreams are looked for. Default 250 ms. */
  tickMs?: number;
  /** Counts upstreams whose weights the engine moved (sluice_controller_weight_updates_total). */
  weightUpdates?: { inc(): void };
}

/**
 * The one writer of `Upstream.status.endpoints[]` (STYLE §5) and the dynamic weight runner
 * (docs/dynamic-weights.md). On every merged-health publication it writes health changes.
 * Every `dynamicWeights.interval` per Upstream with dynamic weights enabled (leader only) it
 * runs the weight engine from the factors in force (the store's, for a new leader), publishes
 * the data-plane weights (only that upstream's Endpoints resource changes version) and writes
 * the status: at once when a weight or health moved, stats alone at most every
 * STATS_REFRESH_INTERVALS intervals, nothing when nothing moved.
 */
export class EndpointStatusWriter extends LoopRunner {
  readonly name = 'endpoint-status';
  private readonly states = new Map<string, UpstreamState>();
  /** Last status write per upstream (the stats-only throttle), dynamic weights or not. */
  private readonly statsWrites = new Map<string, number>();
  private latest: MergedHealth | undefined;
  private wasLeader = false;
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly merged: Watchable<MergedHealth>,
    private readonly resources: ResourceService,
    private readonly logger: Logger,
    private readonly deps: WeightRunnerDeps = {},
  ) {
    super();
  }

  private nowMs(): number {
    return (this.deps.now ?? Date.now)();
  }

  private leader(): boolean {
    return this.deps.isLeader?.() ?? true;
  }

  protected async run(signal: AbortSignal): Promise<void> {
    const ticker = setInterval(() => {
      if (this.latest) void this.enqueue(this.latest, true);
    }, this.deps.tickMs ?? 250);
    try {
      for await (const merged of this.merged.subscribe(signal)) {
        this.latest = merged;
        await this.enqueue(merged, false);
      }
    } finally {
      clearInterval(ticker);
      await this.busy;
    }
  }

  /** Serialises reconciles (the ticker and the subscription share the state). */
  private enqueue(merged: MergedHealth, tick: boolean): Promise<void> {
    this.busy = this.busy.then(() =>
      this.reconcile(merged, tick).catch((error: unknown) => {
        this.logger.warn('endpoint status update failed', { error: String(error) });
      }),
    );
    return this.busy;
  }

  /** One pass over every Upstream (exported behaviour for tests through `reconcileNow`). */
  async reconcileNow(merged: MergedHealth, tick = true): Promise<void> {
    this.latest = merged;
    await this.enqueue(merged, tick);
  }

  private async reconcile(merged: MergedHealth, tick: boolean): Promise<void> {
    const leader = this.leader();
    // A new term starts from the factors in the store, not from what this replica last knew.
    if (leader !== this.wasLeader) this.states.clear();
    this.wasLeader = leader;
    const now = this.nowMs();
    const weights = new Map<string, number>();
    const seen = new Set<string>();
    let stats: ReadonlyMap<string, EndpointStats> | undefined;
    for (const object of merged.snapshot.objects.values()) {
      if (object.kind !== 'Upstream' || object.metadata.resourceVersion === undefined) continue;
      const key = clusterOf(object);
      seen.add(key);
      if (!leader) {
        if (dynamicOn(object)) addWeights(weights, object, storedFactors(object));
        continue;
      }
      let state = this.states.get(key);
      if (!dynamicOn(object)) this.states.delete(key);
      else if (!state) {
        state = { factors: storedFactors(object), nextRun: now };
        this.states.set(key, state);
      }
      const due = tick && state !== undefined && now >= state.nextRun;
      const interval = intervalOf(object);
      let statsNow: ReadonlyMap<string, EndpointStats> | undefined;
      // Stats are read when the engine runs, or when an upstream's stats refresh is due.
      const refresh = tick && covered(object) && now - (this.statsWrites.get(key) ?? Number.NEGATIVE_INFINITY) >= STATS_REFRESH_INTERVALS * interval;
      if (due || refresh) statsNow = stats ??= this.deps.stats?.snapshot(now);
      if (state && due) {
        state.nextRun = now + interval;
        const cluster = key;
        const result = computeWeights({
          previous: state.factors,
          endpoints: object.spec.endpoints.map((e) => {
            const id = endpointId(cluster, e.address, e.port);
            const s = statsNow?.get(endpointKey(cluster, id));
            const health = merged.endpoints.get(targetKey(cluster, id))?.health ?? 'Unknown';
            return { id, weight: e.weight, health, stats: s ? { requests: s.requests, errorRate: s.errorRate, latencyMs: s.latencyMs } : undefined };
          }),
          options: engineOptions(object),
          now,
        });
        if (result.changed.size > 0) this.deps.weightUpdates?.inc();
        if (result.changed.size > 0) this.logger.debug('dynamic weights moved', { upstream: key, reference: result.referenceMs, factors: Object.fromEntries(result.factors) });
        state.factors = result.factors;
      }
      if (state) addWeights(weights, object, state.factors);
      await this.write(object, merged, state, statsNow, tick, now, interval);
    }
    for (const key of this.states.keys()) if (!seen.has(key)) this.states.delete(key);
    for (const key of this.statsWrites.keys()) if (!seen.has(key)) this.statsWrites.delete(key);
    // Publish before the status write lands: agents get the weights on the fast path.
    const out = this.deps.weights;
    if (out && !isDeepStrictEqual(out.value, weights)) out.publish(weights);
  }

  private async write(
    u: Upstream,
    merged: MergedHealth,
    state: UpstreamState | undefined,
    stats: ReadonlyMap<string, EndpointStats> | undefined,
    tick: boolean,
    now: number,
    interval: number,
  ): Promise<void> {
    // Stats are only looked at on ticks; a health-triggered pass keeps the ones in the store.
    const before = (u as { status?: { endpoints?: EndpointStatus[] } }).status?.endpoints;
    const keptStats = new Map<string, EndpointStats>();
    if (!stats && before) {
      const cluster = clusterOf(u);
      for (const e of before) {
        if (e.requests === undefined) continue;
        const id = endpointId(cluster, e.address, e.port);
        keptStats.set(endpointKey(cluster, id), {
          cluster, endpointId: id, requests: e.requests, errors: 0, errorRate: e.errorRate ?? 0,
          latencyMs: e.latency?.ewmaMs ?? 0, p50Ms: e.latency?.p50Ms ?? 0, p99Ms: e.latency?.p99Ms ?? 0, inFlight: 0, agents: e.agents ?? 0,
        });
      }
    }
    const status = desiredStatus(u, merged, new Date(now), { factors: state?.factors, stats: stats ?? keptStats });
    if (status === undefined) return;
    const endpoints = status.endpoints as EndpointStatus[] | undefined;
    const statsOnly = isDeepStrictEqual(significant(before), significant(endpoints));
    if (statsOnly && endpoints !== undefined) {
      // Statistics drift a little every interval: refresh them only every N intervals.
      const last = this.statsWrites.get(clusterOf(u)) ?? Number.NEGATIVE_INFINITY;
      if (!tick || now - last < STATS_REFRESH_INTERVALS * interval) return;
    }
    const { namespace, name, resourceVersion } = u.metadata;
    const result = await this.resources.writeStatus(kindInfo('Upstream')!, namespace, name, resourceVersion!, status);
    if (result === 'written') {
      this.statsWrites.set(clusterOf(u), now);
      this.logger.debug('endpoint status updated', { namespace, name });
    }
  }

}
