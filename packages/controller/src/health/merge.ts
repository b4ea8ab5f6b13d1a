/**
 * The merge rule (docs/health-checking.md): an endpoint's health from the latest results of
 * the agents assigned to probe it. Pure.
 *
 * - A result counts only while fresh: observed within `maxAgeMs` (3 x the longer of the check
 *   interval and the report interval) of `now`.
 * - No fresh result: Unknown. Unknown routes traffic normally (Endpoint.health unset).
 * - Unhealthy when a strict majority of the fresh results say unhealthy; otherwise Healthy. A
 *   tie (one of two probers fails) keeps the endpoint in: one agent that cannot reach it must
 *   not take it out for the whole fleet (its own outlier detection protects its own traffic).
 */
export type EndpointHealthState = 'Healthy' | 'Unhealthy' | 'Unknown';

export interface ProbeResult {
  readonly healthy: boolean;
  /** When the probe finished, on the controller's clock (ms). */
  readonly observedAt: number;
}

export function mergeHealth(results: Iterable<ProbeResult>, now: number, maxAgeMs: number): { health: EndpointHealthState; reporters: number } {
  let fresh = 0;
  let unhealthy = 0;
  for (const r of results) {
    if (now - r.observedAt > maxAgeMs) continue;
    fresh++;
    if (!r.healthy) unhealthy++;
  }
  if (fresh === 0) return { health: 'Unknown', reporters: 0 };
  return { health: unhealthy * 2 > fresh ? 'Unhealthy' : 'Healthy', reporters: fresh };
}

/** How long a result stays fresh: 3 x the longer of the check and the report interval. */
export function maxResultAge(checkIntervalMs: number, reportIntervalMs: number): number {
  return 3 * Math.max(checkIntervalMs, reportIntervalMs);
}
