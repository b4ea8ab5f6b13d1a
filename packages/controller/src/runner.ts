/**
 * A controller stage (STYLE §1): started once with the process's abort signal, closed on
 * shutdown. `main` only wires runners together; runners talk through Watchables.
 */
export interface Runner {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A runner whose work is one long-lived loop: `start` launches it, `close` waits for it to end. */
export abstract class LoopRunner implements Runner {
  abstract readonly name: string;
  private loop: Promise<void> | undefined;

  start(signal: AbortSignal): Promise<void> {
    this.loop = this.run(signal);
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.loop;
  }

  /** Runs until `signal` aborts; must not reject (log and carry on, level-triggered). */
  protected abstract run(signal: AbortSignal): Promise<void>;
}
