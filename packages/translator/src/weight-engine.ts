// The dynamic weight engine (DESIGN §6, docs/dynamic-weights.md). Pure: previous factors,
// fleet-wide stats, configured weights, health and options in; new factors out. No clock is
// read (`now` is an input, kept for callers that log or stamp), no randomness, no I/O.

/** Fleet-wide traffic figures of one endpoint, as the controller's aggregator merges them. */
export interface WeightEngineStats {
  /** Requests in the aggregation window. */
  readonly requests: number;
  /** Errors / requests in the window, 0..1. */
  readonly errorRate: number;
  /** Request-weighted latency EWMA, in milliseconds. */
  readonly latencyMs: number;
}

export interface WeightEngineEndpoint {
  readonly id: string;
  /** Weight from the Upstream spec. */
  readonly weight: number;
  readonly health: 'Healthy' | 'Unhealthy' | 'Unknown';
  /** Absent: no data for this endpoint. */
  readonly stats?: WeightEngineStats | undefined;
}

export interface WeightEngineOptions {
  readonly minFactor: number;
  readonly maxFactor: number;
  /** Fraction of the gap to the target covered per interval (0 < d <= 1). */
  readonly dampening: number;
  /** Relative dead band: a factor within this fraction of its target does not move. */
  readonly threshold: number;
  /** Fewer requests than this in the window count as no data (no penalty). */
  readonly minRequests: number;
  /** Target multiplier lost per unit of error rate: 5 means 10 % errors halve the target. */
  readonly errorSensitivity: number;
  /** Added to every latency before comparing, so sub-millisecond jitter is not a signal. */
  readonly latencyFloorMs: number;
}

export const DEFAULT_WEIGHT_ENGINE_OPTIONS: WeightEngineOptions = {
  minFactor: 0.1,
  maxFactor: 2,
  dampening: 0.5,
  threshold: 0.1,
  minRequests: 20,
  errorSensitivity: 5,
  latencyFloorMs: 1,
};

export interface WeightEngineInput {
  /** Factors in force, by endpoint id (from the store's status, or the last run). Empty: first run. */
  readonly previous: ReadonlyMap<string, number>;
  readonly endpoints: readonly WeightEngineEndpoint[];
  readonly options: WeightEngineOptions;
  readonly now: number;
}

export interface WeightEngineResult {
  /** New factor of every endpoint of the input, by id (rounded to 3 decimals). */
  readonly factors: Map<string, number>;
  /** Endpoints whose factor moved (or is new): publish when non-empty. */
  readonly changed: Set<string>;
  /** The target each factor moves towards (for logs and tests). */
  readonly targets: Map<string, number>;
  /** The reference latency (ms) the targets were computed against; undefined without data. */
  readonly referenceMs: number | undefined;
}

/** Has enough traffic to be judged. */
function judged(e: WeightEngineEndpoint, o: WeightEngineOptions): e is WeightEngineEndpoint & { stats: WeightEngineStats } {
  return e.health !== 'Unhealthy' && e.stats !== undefined && e.stats.requests >= o.minRequests && Number.isFinite(e.stats.latencyMs);
}

/**
 * The request-weighted median latency of the judged endpoints: what a typical request of
 * this upstream sees. Robust to one slow endpoint (a mean would be dragged towards it and
 * penalise nobody), and unlike the best endpoint's latency it does not push every other
 * endpoint down whenever one is lucky.
 */
export function referenceLatency(endpoints: readonly WeightEngineEndpoint[], options: WeightEngineOptions): number | undefined {
  const samples = endpoints
    .filter((e) => judged(e, options))
    .map((e) => ({ latency: e.stats.latencyMs, requests: e.stats.requests }))
    .sort((a, b) => a.latency - b.latency);
  const total = samples.reduce((s, x) => s + x.requests, 0);
  if (total === 0) return undefined;
  let seen = 0;
  for (const s of samples) {
    seen += s.requests;
    if (seen * 2 >= total) return s.latency;
  }
  return samples[samples.length - 1]!.latency;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** The factor an endpoint should converge to. */
export function targetFactor(e: WeightEngineEndpoint, referenceMs: number | undefined, o: WeightEngineOptions): number {
  if (e.health === 'Unhealthy') return 0;
  if (!judged(e, o) || referenceMs === undefined) return clamp(1, o.minFactor, o.maxFactor);
  const latency = (referenceMs + o.latencyFloorMs) / (Math.max(0, e.stats.latencyMs) + o.latencyFloorMs);
  const errors = Math.max(0, 1 - o.errorSensitivity * clamp(e.stats.errorRate, 0, 1));
  return clamp(latency * errors, o.minFactor, o.maxFactor);
}

/**
 * One interval of the engine for one upstream. Per endpoint: target = clamp((ref + floor) /
 * (latency + floor) x max(0, 1 - errorSensitivity x errorRate), minFactor, maxFactor); no
 * data = target 1; Unhealthy = 0 at once. The factor moves `dampening` of the way to the
 * target, and not at all while within `threshold` of it (hysteresis); once a step lands
 * within the threshold it snaps to the target. New endpoints (and ones back from Unhealthy)
 * start at minFactor and ramp up through the same damping; on the first run of an upstream
 * (no previous factors at all) everything starts at 1.
 */
export function computeWeights(input: WeightEngineInput): WeightEngineResult {
  const o = input.options;
  const referenceMs = referenceLatency(input.endpoints, o);
  const factors = new Map<string, number>();
  const changed = new Set<string>();
  const targets = new Map<string, number>();
  const firstRun = input.previous.size === 0;
  for (const e of [...input.endpoints].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const target = targetFactor(e, referenceMs, o);
    targets.set(e.id, target);
    const known = input.previous.get(e.id);
    let next: number;
    if (target === 0) {
      next = 0;
    } else {
      // Ramp up from minFactor: a new endpoint, or one back from Unhealthy (factor 0).
      const start = known === undefined ? (firstRun ? clamp(1, o.minFactor, o.maxFactor) : o.minFactor) : known === 0 ? o.minFactor : known;
      if (Math.abs(target - start) <= o.threshold * Math.max(start, target)) {
        next = start;
      } else {
        next = start + o.dampening * (target - start);
        if (Math.abs(target - next) <= o.threshold * target) next = target;
      }
    }
    next = round3(next);
    factors.set(e.id, next);
    if (known === undefined || known !== next) changed.add(e.id);
  }
  return { factors, changed, targets, referenceMs };
}

/**
 * The effective weight shown to users: configured weight x factor, to 2 decimals; at least
 * 0.01 unless the factor or the configured weight is 0.
 */
export function effectiveWeight(configured: number, factor: number): number {
  if (configured <= 0 || factor <= 0) return 0;
  return Math.max(0.01, Math.round(configured * factor * 100) / 100);
}

/**
 * The data-plane weight for an effective weight: scaled by 100 and rounded, so that factors
 * still mean something for the default weight of 1 (weights are relative within an upstream,
 * and with dynamic weights on every endpoint of the upstream is scaled alike). At least 1
 * unless the effective weight is 0.
 */
export const DATA_PLANE_WEIGHT_SCALE = 100;
export function dataPlaneWeight(effective: number): number {
  if (effective <= 0) return 0;
  return Math.max(1, Math.round(effective * DATA_PLANE_WEIGHT_SCALE));
}
