import type { OutlierDetection as OutlierDetectionConfig } from '@sluice/proto';

// Passive health checking with Envoy's outlier-detection semantics, from this agent's own
// traffic and acted on at once (no round trip to the controller). State is per endpoint id
// and outlives config versions: a weight change must not forgive a failing endpoint.
//
// - Counters of consecutive 5xx, consecutive gateway errors (502/503/504) and consecutive
//   connect failures. As in Envoy's default (non-split) mode, errors the proxy sees itself
//   count as responses: a connect failure as a 503, a reset or a try timeout as a 502/504,
//   so they feed the 5xx and gateway counters too.
// - Reaching a threshold ejects the endpoint for baseEjectionTime x (times ejected), capped at
//   maxEjectionTime; it returns by itself when that time is up (checked lazily, on use).
// - Each interval spent not ejected lowers the times-ejected multiplier by one.
// - maxEjectionPercent: an ejection happens only while ejected x 100 < percent x endpoints,
//   so at least one endpoint can always be ejected when the percent is above 0 (Envoy's
//   rule); 0 disables ejection.

export const DEFAULT_BASE_EJECTION_MS = 30_000;
export const DEFAULT_MAX_EJECTION_MS = 300_000;
export const DEFAULT_INTERVAL_MS = 10_000;

export interface OutlierSettings {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  readonly consecutiveConnectFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly intervalMs: number;
  readonly maxEjectionPercent: number;
}

export function outlierSettings(config: OutlierDetectionConfig | undefined): OutlierSettings | undefined {
  if (config === undefined) return undefined;
  const base = config.baseEjectionTimeMs || DEFAULT_BASE_EJECTION_MS;
  return {
    consecutive5xx: config.consecutive5xx,
    consecutiveGatewayErrors: config.consecutiveGatewayErrors,
    consecutiveConnectFailures: config.consecutiveConnectFailures,
    baseEjectionMs: base,
    // Envoy: never shorter than the base time.
    maxEjectionMs: Math.max(base, config.maxEjectionTimeMs || DEFAULT_MAX_EJECTION_MS),
    intervalMs: config.intervalMs || DEFAULT_INTERVAL_MS,
    maxEjectionPercent: config.maxEjectionPercent,
  };
}

/** Why an endpoint was ejected (Envoy's ejection types). */
export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-errors' | 'consecutive-connect-failures';

/** One endpoint's state, for /config_dump-style introspection. */
export interface EndpointOutlierState {
  readonly id: string;
  readonly ejected: boolean;
  /** Milliseconds until it returns (0 when not ejected). */
  readonly ejectedForMs: number;
  readonly reason: EjectionReason | undefined;
  /** The multiplier of the next ejection's base time, less one (decays while not ejected). */
  readonly timesEjected: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  readonly consecutiveConnectFailures: number;
}

class EndpointState {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveConnect = 0;
  timesEjected = 0;
  /** 0 = not ejected. */
  ejectedUntil = 0;
  reason: EjectionReason | undefined;
  /** Since when the multiplier decays (the last ejection's end, or its last decrement). */
  decayFrom = 0;
}

export type Clock = () => number;

/** The outlier detector of one cluster (one per cluster name, kept across config versions). */
export class OutlierDetector {
  private settings: OutlierSettings | undefined;
  private readonly states = new Map<string, EndpointState>();
  private endpointCount = 0;
  /** Endpoints ejected (some perhaps already due back: see sweep). */
  private readonly ejected = new Set<EndpointState>();
  /** Ejections made since creation, for metrics. */
  ejections = 0;
  #generation = 0;

  constructor(private readonly now: Clock = () => performance.now()) {}

  /** Applies a cluster version: its settings (undefined = off) and endpoint ids. */
  configure(settings: OutlierSettings | undefined, endpointIds: readonly string[]): void {
    this.settings = settings;
    const ids = new Set(endpointIds);
    this.endpointCount = ids.size;
    for (const [id, state] of this.states) {
      if (!ids.has(id) || settings === undefined) {
        this.states.delete(id);
        if (this.ejected.delete(state)) this.#generation++;
      }
    }
  }

  get enabled(): boolean {
    return this.settings !== undefined;
  }

  /** Whether any endpoint is ejected now (cheap enough for every request). */
  anyEjected(): boolean {
    if (this.ejected.size === 0) return false;
    this.sweep(this.now());
    return this.ejected.size > 0;
  }

  /**
   * Changes whenever an endpoint is ejected or returns (returns are noticed here, lazily): the
   * cluster balancer (its EndpointAvailability) rebuilds its eligible set when this moved.
   */
  get generation(): number {
    if (this.ejected.size > 0) this.sweep(this.now());
    return this.#generation;
  }

  /** EndpointAvailability: not ejected. */
  available(id: string): boolean {
    return !this.isEjected(id);
  }

  isEjected(id: string): boolean {
    if (this.ejected.size === 0) return false;
    const state = this.states.get(id);
    if (state === undefined || state.ejectedUntil === 0) return false;
    const now = this.now();
    if (now < state.ejectedUntil) return true;
    this.uneject(state);
    return false;
  }

  /** A response with this status came from the endpoint. */
  onResponse(id: string, status: number): void {
    const s = this.settings;
    if (s === undefined) return;
    const state = this.state(id);
    state.consecutiveConnect = 0;
    if (status >= 500 && status <= 599) this.onError(state, status === 502 || status === 503 || status === 504);
    else {
      state.consecutive5xx = 0;
      state.consecutiveGateway = 0;
    }
  }

  /** A connection to the endpoint was established (ends a run of connect failures). */
  onConnected(id: string): void {
    if (this.settings === undefined) return;
    const state = this.states.get(id);
    if (state !== undefined) state.consecutiveConnect = 0;
  }

  /** Connecting failed or timed out: the request never reached the endpoint. */
  onConnectFailure(id: string): void {
    const s = this.settings;
    if (s === undefined) return;
    const state = this.state(id);
    state.consecutiveConnect++;
    if (s.consecutiveConnectFailures > 0 && state.consecutiveConnect >= s.consecutiveConnectFailures) {
      this.eject(state, 'consecutive-connect-failures');
      return;
    }
    this.onError(state, true);
  }

  /** The connection was reset, or a try timed out, before a response: a gateway error. */
  onGatewayFailure(id: string): void {
    if (this.settings === undefined) return;
    this.onError(this.state(id), true);
  }

  /** Every endpoint's state with a failure or ejection on record, sorted by id. */
  snapshot(): EndpointOutlierState[] {
    const now = this.now();
    this.sweep(now);
    return [...this.states]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, s]) => ({
        id,
        ejected: s.ejectedUntil !== 0,
        ejectedForMs: s.ejectedUntil === 0 ? 0 : Math.ceil(s.ejectedUntil - now),
        reason: s.reason,
        timesEjected: this.decayed(s, now),
        consecutive5xx: s.consecutive5xx,
        consecutiveGatewayErrors: s.consecutiveGateway,
        consecutiveConnectFailures: s.consecutiveConnect,
      }));
  }

  private onError(state: EndpointState, gateway: boolean): void {
    const s = this.settings as OutlierSettings;
    state.consecutive5xx++;
    if (gateway) state.consecutiveGateway++;
    else state.consecutiveGateway = 0;
    if (s.consecutive5xx > 0 && state.consecutive5xx >= s.consecutive5xx) this.eject(state, 'consecutive-5xx');
    else if (gateway && s.consecutiveGatewayErrors > 0 && state.consecutiveGateway >= s.consecutiveGatewayErrors) this.eject(state, 'consecutive-gateway-errors');
  }

  private state(id: string): EndpointState {
    let state = this.states.get(id);
    if (state === undefined) {
      state = new EndpointState();
      this.states.set(id, state);
    }
    return state;
  }

  private eject(state: EndpointState, reason: EjectionReason): void {
    const s = this.settings as OutlierSettings;
    const now = this.now();
    // The counters start over whether or not the ejection is allowed (Envoy resets them too).
    state.consecutive5xx = 0;
    state.consecutiveGateway = 0;
    state.consecutiveConnect = 0;
    if (state.ejectedUntil !== 0 && now < state.ejectedUntil) return;
    this.sweep(now);
    if (this.ejected.size * 100 >= s.maxEjectionPercent * this.endpointCount) return;
    state.timesEjected = this.decayed(state, now) + 1;
    state.ejectedUntil = now + Math.min(s.baseEjectionMs * state.timesEjected, s.maxEjectionMs);
    state.reason = reason;
    this.ejected.add(state);
    this.ejections++;
    this.#generation++;
  }

  /** The multiplier after the intervals spent not ejected since `decayFrom`. */
  private decayed(state: EndpointState, now: number): number {
    if (state.ejectedUntil !== 0 || state.timesEjected === 0) return state.timesEjected;
    const intervals = Math.floor((now - state.decayFrom) / (this.settings as OutlierSettings).intervalMs);
    if (intervals <= 0) return state.timesEjected;
    state.timesEjected = Math.max(0, state.timesEjected - intervals);
    state.decayFrom += intervals * (this.settings as OutlierSettings).intervalMs;
    return state.timesEjected;
  }

  private sweep(now: number): void {
    for (const state of this.ejected) if (now >= state.ejectedUntil) this.uneject(state);
  }

  private uneject(state: EndpointState): void {
    state.decayFrom = state.ejectedUntil;
    state.ejectedUntil = 0;
    state.reason = undefined;
    this.ejected.delete(state);
    this.#generation++;
  }
}

/** Agent-side check of the wire message (DESIGN §9); the message names the field. */
export function validateOutlierDetection(config: OutlierDetectionConfig | undefined): string | undefined {
  if (config === undefined) return undefined;
  if (config.maxEjectionPercent > 100) return `outlier_detection.max_ejection_percent: must be 0-100, got ${config.maxEjectionPercent}`;
  return undefined;
}
