/**
 * Live load of one endpoint: requests in flight and a peak-EWMA of its response time
 * (Finagle's PeakEwma, Linkerd's default): a slower response than the average replaces it at
 * once (peak), faster ones pull it down with a weight that grows with the time since the last
 * observation, and the value decays towards 0 while nothing is observed, so an endpoint that
 * stopped getting traffic because it was slow gets tried again. Time constant 10 s.
 */
export const LATENCY_DECAY_MS = 10_000;

export class EndpointLoad {
  inFlight = 0;
  private ewma = 0;
  private stamp = 0;
  private measured = false;

  observe(latencyMs: number, now: number): void {
    const rtt = Math.max(0, latencyMs);
    if (!this.measured) {
      this.ewma = rtt;
      this.measured = true;
    } else {
      const w = Math.exp(-Math.max(0, now - this.stamp) / LATENCY_DECAY_MS);
      this.ewma = rtt > this.ewma ? rtt : this.ewma * w + rtt * (1 - w);
    }
    this.stamp = now;
  }

  /** The decayed latency estimate in ms; undefined until a response was measured. */
  latency(now: number): number | undefined {
    if (!this.measured) return undefined;
    return this.ewma * Math.exp(-Math.max(0, now - this.stamp) / LATENCY_DECAY_MS);
  }
}
