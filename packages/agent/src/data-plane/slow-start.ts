import type { SlowStart } from '@sluice/proto';

/** Slow start as configured: an endpoint's weight ramps from minWeight to full over the window. */
export interface SlowStartSettings {
  readonly windowMs: number;
  /** 1 = linear; higher ramps faster early (Envoy's `aggression`). */
  readonly aggression: number;
  /** The weight at the start of the window, as a fraction of the full weight (0-1). */
  readonly minWeight: number;
}

export const DEFAULT_MIN_WEIGHT_PERCENT = 10;

/** From the wire; undefined when slow start is off (no message or a zero window). */
export function slowStartSettings(s: SlowStart | undefined): SlowStartSettings | undefined {
  if (s === undefined || s.windowMs === 0) return undefined;
  return { windowMs: s.windowMs, aggression: s.aggression > 0 ? s.aggression : 1, minWeight: (s.minWeightPercent ?? DEFAULT_MIN_WEIGHT_PERCENT) / 100 };
}

/** Field-path error for a bad SlowStart, or undefined. */
export function validateSlowStart(s: SlowStart | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!Number.isFinite(s.aggression) || s.aggression < 0) return `slow_start.aggression: must be > 0 (0 = 1), got ${s.aggression}`;
  const min = s.minWeightPercent;
  if (min !== undefined && !(min >= 0 && min <= 100)) return `slow_start.min_weight_percent: must be 0-100, got ${min}`;
  return undefined;
}

/**
 * Envoy's ramp: factor = max(minWeight, (elapsed / window)^(1 / aggression)), 1 once the
 * window has passed.
 */
export function slowStartFactor(settings: SlowStartSettings, elapsedMs: number): number {
  if (elapsedMs >= settings.windowMs) return 1;
  const progress = Math.max(0, elapsedMs) / settings.windowMs;
  return Math.max(settings.minWeight, progress ** (1 / settings.aggression));
}

/**
 * When each endpoint (by id) last entered the eligible set: added to the cluster, or back
 * from unhealthy or ejected. Lives as long as the cluster, across its config versions.
 */
export class SlowStartClock {
  private readonly since = new Map<string, number>();
  private eligible: ReadonlySet<string> | undefined;

  /**
   * Records the new eligible set at `now`. The first set a cluster ever has does not ramp:
   * those endpoints were serving before this agent learned of them.
   */
  update(eligible: ReadonlySet<string>, now: number): void {
    if (this.eligible !== undefined) {
      for (const id of eligible) if (!this.eligible.has(id)) this.since.set(id, now);
    }
    for (const id of this.since.keys()) if (!eligible.has(id)) this.since.delete(id);
    this.eligible = eligible;
  }

  /** The weight factor of `id` at `now` (1 when it is not ramping). */
  factor(id: string, settings: SlowStartSettings | undefined, now: number): number {
    const since = this.since.get(id);
    if (since === undefined || settings === undefined) return 1;
    const f = slowStartFactor(settings, now - since);
    if (f === 1) this.since.delete(id);
    return f;
  }
}
