/**
 * Jittered exponential backoff: `initialMs` doubling up to `maxMs`, each delay spread by
 * ±`jitter` (0.5 = ±50 %) so a fleet that lost its controller does not reconnect in step.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: { initialMs: number; maxMs: number; jitter: number },
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const base = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return jitter(base, this.options.jitter, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }
}

export function jitter(ms: number, spread: number, random: () => number = Math.random): number {
  return Math.round(ms * (1 + spread * (2 * random() - 1)));
}
