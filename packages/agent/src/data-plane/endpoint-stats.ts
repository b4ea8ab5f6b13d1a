import { LATENCY_BUCKET_BOUNDS_MS, LATENCY_BUCKET_COUNT, type EndpointTraffic } from '@sluice/proto';

// Per-endpoint traffic stats for the report stream (docs/discovery-protocol.md, "Traffic
// stats"). The request path touches one preallocated EndpointCounters per try: a few number
// increments and one bucket search over 12 bounds, no allocation, no logging. The report
// client drains deltas once per interval.

/** How a try ended, as outlier detection classifies it. */
export const TryOutcome = {
  OK: 0,
  /** A 5xx response. */
  SERVER_ERROR: 1,
  /** Refused, unreachable, connect timeout. */
  CONNECT_FAILURE: 2,
  /** A try or request timeout once connected. */
  TIMEOUT: 3,
  /** Connection reset or broken response. */
  RESET: 4,
} as const;
export type TryOutcome = (typeof TryOutcome)[keyof typeof TryOutcome];

/** Latency EWMA weight of each new try (the least-response-time balancer's order of magnitude). */
export const LATENCY_EWMA_ALPHA = 0.3;

const BOUNDS = LATENCY_BUCKET_BOUNDS_MS;

/** The bucket a latency falls in: the first bound >= latencyMs, or the last (+Inf) bucket. */
export function bucketOf(latencyMs: number): number {
  for (let i = 0; i < BOUNDS.length; i++) if (latencyMs <= (BOUNDS[i] as number)) return i;
  return BOUNDS.length;
}

/** One endpoint's counters since the last drain (plus the in-flight gauge and the EWMA). */
export class EndpointCounters {
  requests = 0;
  errors5xx = 0;
  connectFailures = 0;
  timeouts = 0;
  resets = 0;
  /** Gauge, never reset by a drain. */
  inFlight = 0;
  /** Kept across drains; NaN until the first try ends. */
  ewmaMs = Number.NaN;
  readonly buckets = new Float64Array(LATENCY_BUCKET_COUNT);

  constructor(readonly id: string) {}

  start(): void {
    this.inFlight++;
  }

  /** A try started with start() ended. */
  end(latencyMs: number, outcome: TryOutcome): void {
    if (this.inFlight > 0) this.inFlight--;
    this.requests++;
    switch (outcome) {
      case TryOutcome.OK:
        break;
      case TryOutcome.SERVER_ERROR:
        this.errors5xx++;
        break;
      case TryOutcome.CONNECT_FAILURE:
        this.connectFailures++;
        break;
      case TryOutcome.TIMEOUT:
        this.timeouts++;
        break;
      case TryOutcome.RESET:
        this.resets++;
        break;
    }
    const b = this.buckets;
    const i = bucketOf(latencyMs);
    b[i] = (b[i] as number) + 1;
    this.ewmaMs = Number.isNaN(this.ewmaMs) ? latencyMs : this.ewmaMs + LATENCY_EWMA_ALPHA * (latencyMs - this.ewmaMs);
  }

  /** Anything to report (traffic since the last drain, or tries in flight)? */
  get active(): boolean {
    return this.requests > 0 || this.inFlight > 0;
  }

  /** The delta since the last drain, and reset the counts (not the gauge, not the EWMA). */
  drain(cluster: string): EndpointTraffic {
    const out: EndpointTraffic = {
      cluster,
      endpointId: this.id,
      requests: this.requests,
      errors5xx: this.errors5xx,
      connectFailures: this.connectFailures,
      timeouts: this.timeouts,
      resets: this.resets,
      latencyEwmaMs: this.requests > 0 && !Number.isNaN(this.ewmaMs) ? this.ewmaMs : 0,
      latencyBuckets: this.requests > 0 ? Array.from(this.buckets) : [],
      inFlight: this.inFlight,
    };
    this.requests = this.errors5xx = this.connectFailures = this.timeouts = this.resets = 0;
    this.buckets.fill(0);
    return out;
  }
}

/** One cluster's endpoint counters; outlives the cluster's config versions (in ClusterRuntime). */
export class ClusterTraffic {
  private readonly endpoints = new Map<string, EndpointCounters>();

  constructor(readonly name: string) {}

  /** The counters of an endpoint (created on first use; one lookup per try). */
  counters(id: string): EndpointCounters {
    let c = this.endpoints.get(id);
    if (c === undefined) this.endpoints.set(id, (c = new EndpointCounters(id)));
    return c;
  }

  /** Forget endpoints that left the cluster (their counts die with them). */
  retain(ids: readonly string[]): void {
    const keep = new Set(ids);
    for (const id of this.endpoints.keys()) if (!keep.has(id)) this.endpoints.delete(id);
  }

  /** Endpoints with something to report. */
  *active(): Iterable<EndpointCounters> {
    for (const c of this.endpoints.values()) if (c.active) yield c;
  }

  /** Drop every count since the last drain (a report stream that comes back starts afresh). */
  reset(): void {
    for (const c of this.endpoints.values()) c.drain(this.name);
  }
}

/**
 * The cap on EndpointTraffic entries per report (as MAX_TRAFFIC_PER_REPORT in the report
 * client): an entry is at most ~230 bytes plus its two names, so 4096 keep a report's traffic
 * under ~1.5 MiB (names up to 64 bytes) whatever the traffic.
 */
export const MAX_TRAFFIC_PER_REPORT = 4096;

/**
 * Drains the endpoints of `clusters` with something to report, at most `max` of them: the ones
 * with the most requests first; the others keep their counts for the next drain. `omitted`:
 * how many were held back.
 */
export function drainTraffic(clusters: Iterable<ClusterTraffic>, max = MAX_TRAFFIC_PER_REPORT): { traffic: EndpointTraffic[]; omitted: number } {
  const active: [ClusterTraffic, EndpointCounters][] = [];
  for (const cluster of clusters) for (const c of cluster.active()) active.push([cluster, c]);
  if (active.length > max) active.sort((a, b) => b[1].requests - a[1].requests);
  const taken = active.length > max ? active.slice(0, max) : active;
  return { traffic: taken.map(([cluster, c]) => c.drain(cluster.name)), omitted: active.length - taken.length };
}

/** `${cluster}\u0000${endpointId}`: the key of an endpoint across clusters. */
export function trafficKey(t: Pick<EndpointTraffic, 'cluster' | 'endpointId'>): string {
  return `${t.cluster}\u0000${t.endpointId}`;
}

/**
 * Adds `add` into `into` (same endpoint): counts and buckets summed, EWMA weighted by requests,
 * in-flight summed (both are the sum of several processes' gauges, or `add` is the later one:
 * the caller decides, see `inFlight`).
 */
export function addTraffic(into: EndpointTraffic, add: EndpointTraffic, inFlight: 'sum' | 'latest' = 'sum'): void {
  const total = into.requests + add.requests;
  into.latencyEwmaMs = total > 0 ? (into.latencyEwmaMs * into.requests + add.latencyEwmaMs * add.requests) / total : 0;
  into.requests = total;
  into.errors5xx += add.errors5xx;
  into.connectFailures += add.connectFailures;
  into.timeouts += add.timeouts;
  into.resets += add.resets;
  if (add.latencyBuckets.length > 0) {
    if (into.latencyBuckets.length === 0) into.latencyBuckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
    for (let i = 0; i < LATENCY_BUCKET_COUNT; i++) into.latencyBuckets[i] = (into.latencyBuckets[i] ?? 0) + (add.latencyBuckets[i] ?? 0);
  }
  into.inFlight = inFlight === 'sum' ? into.inFlight + add.inFlight : add.inFlight;
}

/**
 * With --workers: the primary's sum of its workers' traffic. Each worker sends its drained
 * deltas every WORKER_TRAFFIC_INTERVAL_MS; counts add up here until the report client drains
 * them; in-flight is each worker's latest gauge, summed.
 */
export class TrafficSum {
  private readonly counts = new Map<string, EndpointTraffic>();
  private readonly inFlight = new Map<number, Map<string, EndpointTraffic>>();

  /** One worker's drained deltas; they also replace that worker's in-flight gauges. */
  add(source: number, entries: readonly EndpointTraffic[]): void {
    const gauges = new Map<string, EndpointTraffic>();
    for (const t of entries) {
      const key = trafficKey(t);
      if (t.inFlight > 0) gauges.set(key, t);
      if (t.requests <= 0) continue;
      const into = this.counts.get(key);
      if (into === undefined) this.counts.set(key, { ...t, latencyBuckets: [...t.latencyBuckets], inFlight: 0 });
      else addTraffic(into, { ...t, inFlight: 0 });
    }
    this.inFlight.set(source, gauges);
  }

  /** A worker exited: its requests in flight are gone. */
  dropSource(source: number): void {
    this.inFlight.delete(source);
  }

  /** Like drainTraffic(): at most `max` endpoints, the busiest first; the others wait. */
  drain(max = MAX_TRAFFIC_PER_REPORT): { traffic: EndpointTraffic[]; omitted: number } {
    const all = new Map<string, EndpointTraffic>();
    for (const [key, t] of this.counts) all.set(key, { ...t, inFlight: 0 });
    for (const gauges of this.inFlight.values()) {
      for (const [key, t] of gauges) {
        const entry = all.get(key);
        if (entry !== undefined) entry.inFlight += t.inFlight;
        else all.set(key, { ...t, requests: 0, errors5xx: 0, connectFailures: 0, timeouts: 0, resets: 0, latencyEwmaMs: 0, latencyBuckets: [] });
      }
    }
    let entries = [...all];
    const omitted = Math.max(0, entries.length - max);
    if (omitted > 0) entries = entries.sort((a, b) => b[1].requests - a[1].requests).slice(0, max);
    for (const [key] of entries) this.counts.delete(key);
    return { traffic: entries.map(([, t]) => t), omitted };
  }
}

/** How often a worker sends its traffic deltas to the primary. */
export const WORKER_TRAFFIC_INTERVAL_MS = 250;
