import type { Logger } from '../logger.js';
import { LoopRunner, type Runner } from '../runner.js';
import type { Watchable } from '../watchable.js';

/**
 * Runs a fresh runner from `create` while `leadership` is true and closes it when leadership
 * is lost, so only the leader writes derived status. A new instance per term: nothing from
 * an earlier term (caches of what was written) survives into the next one, which starts
 * from what is in the store.
 */
export class LeaderOnly extends LoopRunner {
  constructor(
    readonly name: string,
    private readonly leadership: Watchable<boolean>,
    private readonly create: () => Runner,
    private readonly logger: Logger,
  ) {
    super();
  }

  protected async run(signal: AbortSignal): Promise<void> {
    let term: { runner: Runner; abort: AbortController } | undefined;
    const stop = async () => {
      if (!term) return;
      const { runner, abort } = term;
      term = undefined;
      abort.abort();
      try {
        await runner.close();
      } catch (error) {
        this.logger.error('runner failed to stop', { runner: runner.name, error: error instanceof Error ? error.message : String(error) });
      }
    };
    for await (const leading of this.leadership.subscribe(signal)) {
      if (leading && !term) {
        const runner = this.create();
        const abort = new AbortController();
        term = { runner, abort };
        try {
          await runner.start(AbortSignal.any([signal, abort.signal]));
        } catch (error) {
          this.logger.error('runner failed to start', { runner: runner.name, error: error instanceof Error ? error.message : String(error) });
        }
      } else if (!leading) {
        await stop();
      }
    }
    await stop();
  }
}
