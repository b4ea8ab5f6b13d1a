/**
 * A value that changes over time, the bus between runners (STYLE §1). A subscriber first
 * receives the current value, then later ones; a slow subscriber sees only the latest
 * (bursts coalesce), never a backlog.
 */
export class Watchable<T> {
  private current: T | undefined;
  private version = 0;
  private waiters: (() => void)[] = [];

  constructor(initial?: T) {
    if (initial !== undefined) this.publish(initial);
  }

  get value(): T | undefined {
    return this.current;
  }

  publish(value: T): void {
    this.current = value;
    this.version++;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Iterates the current value (once there is one) and every later one, until `signal` aborts. */
  async *subscribe(signal: AbortSignal): AsyncGenerator<T> {
    let seen = 0;
    while (!signal.aborted) {
      if (this.version !== seen && this.current !== undefined) {
        seen = this.version;
        yield this.current;
        continue;
      }
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }
}
