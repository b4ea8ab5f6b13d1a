import { LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKET_COUNT, type AgentReport, type EndpointTraffic } from '@sluice/proto';

// The fleet's view of each endpoint (docs/discovery-protocol.md, "Traffic stats"): every
// agent's traffic deltas (AgentReport.traffic) merged over a sliding window. Pure: the clock
// is an argument, nothing runs on its own.
//
// How the weight engine reads it: startController (controller.ts) builds ONE Aggregator, feeds
// it from the ReportServer (every report of every agent, forget() when an agent's report
// stream ends) and exposes it as `RunningController.aggregator` (and as the local `aggregator`
// inside startController for runners wired there). A runner calls `aggregator.snapshot(now)`
// once per interval; the snapshot is a fresh Map it may keep.

/** Per endpoint, merged over every agent's reports in the window. */
export interface EndpointStats {
  cluster: string;
  endpointId: string;
  /** Tries that ended in the window, all agents. */
  requests: number;
  /** Of those, failures of any class (5xx, connect failure, timeout, reset). */
  errors: number;
  /** errors / requests; 0 without requests. */
  errorRate: number;
  /** The agents' latency EWMAs, as a mean weighted by each report's requests (ms); 0 without requests. */
  latencyMs: number;
  /** From the merged histogram, interpolated within the bucket (ms); 0 without requests. */
  p50Ms: number;
  p99Ms: number;
  /** Sum over the agents of the in-flight count of their latest report in the window. */
  inFlight: number;
  /** Agents that reported requests for it in the window. */
  agents: number;
}

/** What add() takes: a decoded AgentReport (only its traffic is read). */
export type TrafficReport = Pick<AgentReport, 'traffic'>;

export interface AggregatorOptions {
  /** Length of the sliding window (ms). Default 10 000. */
  windowMs?: number;
  /** Width of one bucket of the window (ms); the window moves by whole buckets. Default 1 000. */
  bucketMs?: number;
}

/** `${cluster}\u0000${endpointId}`: the key of an endpoint in a snapshot. */
export function endpointKey(cluster: string, endpointId: string): string {
  return `${cluster}\u0000${endpointId}`;
}

/** One agent's counts for one endpoint in one bucket of time. */
interface Slot {
  requests: number;
  errors: number;
  /** Sum of latencyEwmaMs x requests (the weighted mean's numerator). */
  latencyWeighted: number;
  readonly histogram: number[];
}

/** One agent's view of one endpoint: slots by bucket index, and its in-flight gauge. */
interface AgentEndpoint {
  readonly cluster: string;
  readonly endpointId: string;
  readonly slots: Map<number, Slot>;
  inFlight: number;
  /** Bucket index of the report that set inFlight. */
  inFlightAt: number;
}

/**
 * Merges agents' traffic reports per endpoint over a sliding window of `windowMs`, in buckets
 * of `bucketMs` (the bucket of `now` and the ones before it, windowMs / bucketMs in all).
 * Memory: per agent, per endpoint it reported in the window, at most windowMs / bucketMs + 1
 * slots of 17 numbers.
 */
export class Aggregator {
  readonly windowMs: number;
  readonly bucketMs: number;
  private readonly buckets: number;
  private readonly agents = new Map<string, Map<string, AgentEndpoint>>();

  constructor(options: AggregatorOptions = {}) {
    this.bucketMs = options.bucketMs ?? 1_000;
    this.windowMs = options.windowMs ?? 10_000;
    if (!(this.bucketMs > 0) || !(this.windowMs >= this.bucketMs)) throw new Error(`Aggregator: need 0 < bucketMs <= windowMs (got ${this.bucketMs}, ${this.windowMs})`);
    this.buckets = Math.ceil(this.windowMs / this.bucketMs);
  }

  /** Adds one report of `agentId` received at `now` (ms). Entries with no requests only update in-flight. */
  add(agentId: string, report: TrafficReport, now: number): void {
    if (report.traffic.length === 0) return;
    const bucket = this.bucketOf(now);
    let endpoints = this.agents.get(agentId);
    if (endpoints === undefined) this.agents.set(agentId, (endpoints = new Map<string, AgentEndpoint>()));
    for (const t of report.traffic) this.addOne(endpoints, t, bucket);
    this.prune(endpoints, bucket);
  }

  /** Drops everything `agentId` reported (its report stream ended). */
  forget(agentId: string): void {
    this.agents.delete(agentId);
  }

  /** Number of agents with data held (tests, metrics). */
  get agentCount(): number {
    return this.agents.size;
  }

  /** The merged stats at `now` of every endpoint with requests or requests in flight in the window. */
  snapshot(now: number): Map<string, EndpointStats> {
    const bucket = this.bucketOf(now);
    const oldest = bucket - this.buckets + 1;
    const merged = new Map<string, { stats: EndpointStats; latencyWeighted: number; histogram: number[] }>();
    for (const [agentId, endpoints] of this.agents) {
      this.prune(endpoints, bucket);
      if (endpoints.size === 0) {
        this.agents.delete(agentId);
        continue;
      }
      for (const [key, e] of endpoints) {
        let requests = 0;
        let errors = 0;
        let latencyWeighted = 0;
        let histogram: number[] | undefined;
        for (const [index, slot] of e.slots) {
          if (index < oldest || index > bucket) continue;
          requests += slot.requests;
          errors += slot.errors;
          latencyWeighted += slot.latencyWeighted;
          histogram = addInto(histogram, slot.histogram);
        }
        const inFlight = e.inFlightAt >= oldest && e.inFlightAt <= bucket ? e.inFlight : 0;
        if (requests === 0 && inFlight === 0) continue;
        let m = merged.get(key);
        if (m === undefined) {
          m = {
            stats: { cluster: e.cluster, endpointId: e.endpointId, requests: 0, errors: 0, errorRate: 0, latencyMs: 0, p50Ms: 0, p99Ms: 0, inFlight: 0, agents: 0 },
            latencyWeighted: 0,
            histogram: new Array<number>(LATENCY_BUCKET_COUNT).fill(0),
          };
          merged.set(key, m);
        }
        m.stats.requests += requests;
        m.stats.errors += errors;
        m.stats.inFlight += inFlight;
        if (requests > 0) m.stats.agents++;
        m.latencyWeighted += latencyWeighted;
        if (histogram !== undefined) addInto(m.histogram, histogram);
      }
    }
    const out = new Map<string, EndpointStats>();
    for (const [key, { stats, latencyWeighted, histogram }] of merged) {
      if (stats.requests > 0) {
        stats.errorRate = stats.errors / stats.requests;
        stats.latencyMs = latencyWeighted / stats.requests;
        stats.p50Ms = quantile(histogram, 0.5);
        stats.p99Ms = quantile(histogram, 0.99);
      }
      out.set(key, stats);
    }
    return out;
  }

  private bucketOf(now: number): number {
    return Math.floor(now / this.bucketMs);
  }

  private addOne(endpoints: Map<string, AgentEndpoint>, t: EndpointTraffic, bucket: number): void {
    const key = endpointKey(t.cluster, t.endpointId);
    let e = endpoints.get(key);
    if (e === undefined) endpoints.set(key, (e = { cluster: t.cluster, endpointId: t.endpointId, slots: new Map(), inFlight: 0, inFlightAt: bucket }));
    e.inFlight = t.inFlight;
    e.inFlightAt = bucket;
    if (t.requests <= 0) return;
    let slot = e.slots.get(bucket);
    if (slot === undefined) e.slots.set(bucket, (slot = { requests: 0, errors: 0, latencyWeighted: 0, histogram: new Array<number>(LATENCY_BUCKET_COUNT).fill(0) }));
    slot.requests += t.requests;
    slot.errors += t.errors5xx + t.connectFailures + t.timeouts + t.resets;
    slot.latencyWeighted += t.latencyEwmaMs * t.requests;
    // A histogram of another length (another bucket layout) is ignored rather than misread.
    if (t.latencyBuckets.length === LATENCY_BUCKET_COUNT) addInto(slot.histogram, t.latencyBuckets);
  }

  /** Drops slots that left the window, and endpoints with nothing left. */
  private prune(endpoints: Map<string, AgentEndpoint>, bucket: number): void {
    const oldest = bucket - this.buckets + 1;
    for (const [key, e] of endpoints) {
      for (const index of e.slots.keys()) if (index < oldest) e.slots.delete(index);
      if (e.slots.size === 0 && (e.inFlightAt < oldest || e.inFlight === 0)) endpoints.delete(key);
    }
  }
}

function addInto(into: number[] | undefined, add: readonly number[]): number[] {
  const out = into ?? new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
  for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) out[i] = (out[i] as number) + (add[i] ?? 0);
  return out;
}

/**
 * The q-quantile (0..1) of a histogram with the LATENCY_BUCKET_BOUNDS_MS layout, interpolated
 * linearly within its bucket (as Prometheus' histogram_quantile); in the +Inf bucket, the
 * last finite bound. 0 for an empty histogram.
 */
export function quantile(histogram: readonly number[], q: number): number {
  let total = 0;
  for (const n of histogram) total += n;
  if (total <= 0) return 0;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    const n = histogram[i] as number;
    if (n > 0 && seen + n >= rank) {
      if (i >= LATENCY_BUCKET_BOUNDS_MS.length) return LATENCY_BUCKET_BOUNDS_MS[LATENCY_BUCKET_BOUNDS_MS.length - 1] as number;
      const lower = i === 0 ? 0 : (LATENCY_BUCKET_BOUNDS_MS[i - 1] as number);
      const upper = LATENCY_BUCKET_BOUNDS_MS[i] as number;
      return lower + (upper - lower) * ((rank - seen) / n);
    }
    seen += n;
  }
  return LATENCY_BUCKET_BOUNDS_MS[LATENCY_BUCKET_BOUNDS_MS.length - 1] as number;
}
