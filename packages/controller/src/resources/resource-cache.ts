import type { Resource } from '@sluice/api';
import type { Logger } from '../logger.js';
import { LoopRunner } from '../runner.js';
import { StoreError, type Store } from '../store/index.js';
import { Watchable } from '../watchable.js';
import { decode } from './resource-service.js';

/** Every resource at one store revision, keyed by store key. Immutable once published. */
export interface ResourceSnapshot {
  revision: number;
  objects: ReadonlyMap<string, Resource>;
}

/**
 * Mirrors every resource of the store in memory: list, then watch from the next revision,
 * publishing a new snapshot per store revision. If the watch falls behind compaction or
 * breaks, it lists again (level-triggered: consumers see the current state, never deltas).
 */
export class ResourceCache extends LoopRunner {
  readonly name = 'resource-cache';
  readonly snapshots = new Watchable<ResourceSnapshot>();

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {
    super();
  }


  protected async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const { items, revision } = await this.store.list(this.prefix);
        const objects = new Map(items.map((kv) => [kv.key, decode(kv)]));
        this.snapshots.publish({ revision, objects: new Map(objects) });
        for await (const batch of this.store.watch(this.prefix, revision + 1, signal)) {
          for (const event of batch.events) {
            if (event.type === 'delete') objects.delete(event.kv.key);
            else objects.set(event.kv.key, decode(event.kv));
          }
          this.snapshots.publish({ revision: batch.revision, objects: new Map(objects) });
        }
      } catch (error) {
        if (signal.aborted) return;
        const code = error instanceof StoreError ? error.code : 'error';
        this.logger.warn('resource watch interrupted; listing again', { code, error: String(error) });
        await delay(this.retryMs, signal);
      }
    }
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
