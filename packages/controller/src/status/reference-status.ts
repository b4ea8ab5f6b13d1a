import { kindInfo, resourceReferences, type Resource } from '@sluice/api';
import type { Logger } from '../logger.js';
import type { ResourceCache, ResourceSnapshot } from '../resources/resource-cache.js';
import type { ResourceService } from '../resources/resource-service.js';
import { LoopRunner } from '../runner.js';
import { objectIdentity, withConditions, type WantedCondition } from './conditions.js';

/** Kinds that refer to other objects and so carry a ResolvedRefs condition. */
const REFERRING_KINDS = new Set(['Listener', 'Route', 'TCPRoute', 'UDPRoute']);

/** The condition types this runner owns; other runners own other types on the same objects. */
const OWNED = new Set(['Accepted', 'ResolvedRefs']);

/**
 * Reports cross-object references in `status.conditions`, as Gateway API does: a Route that
 * names an Upstream that does not exist yet is accepted and marked `ResolvedRefs=False` with
 * the missing names, and flips to True once they exist. Level-triggered: each snapshot is
 * reconciled whole, and only conditions that changed are written.
 */
export class ReferenceStatus extends LoopRunner {
  readonly name = 'reference-status';

  constructor(
    private readonly cache: ResourceCache,
    private readonly resources: ResourceService,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    super();
  }


  protected async run(signal: AbortSignal): Promise<void> {
    for await (const snapshot of this.cache.snapshots.subscribe(signal)) {
      try {
        await this.reconcile(snapshot);
      } catch (error) {
        // The next snapshot (or the store coming back) retries: reconciling is idempotent.
        this.logger.warn('status update failed', { error: String(error) });
      }
    }
  }

  private async reconcile(snapshot: ResourceSnapshot): Promise<void> {
    const existing = new Set<string>();
    for (const object of snapshot.objects.values()) existing.add(objectIdentity(object.kind, object.metadata.namespace, object.metadata.name));

    for (const object of snapshot.objects.values()) {
      if (!REFERRING_KINDS.has(object.kind)) continue;
      const kind = kindInfo(object.kind);
      const { metadata } = object;
      if (!kind || metadata.resourceVersion === undefined) continue;
      const status = desiredStatus(object, existing, this.now());
      if (status === undefined) continue;
      const result = await this.resources.writeStatus(kind, metadata.namespace, metadata.name, metadata.resourceVersion, status);
      if (result === 'written') this.logger.debug('status updated', { kind: object.kind, namespace: metadata.namespace, name: metadata.name });
    }
  }
}

/** The object's status with this runner's conditions brought up to date, or undefined if nothing changes. */
export function desiredStatus(object: Resource, existing: ReadonlySet<string>, now: Date): Record<string, unknown> | undefined {
  const missing = resourceReferences(object).filter((ref) => !existing.has(objectIdentity(ref.kind, ref.namespace, ref.name)));
  const wanted: WantedCondition[] = [
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Valid and stored' },
    missing.length === 0
      ? { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'All references resolved' }
      : {
          type: 'ResolvedRefs',
          status: 'False',
          reason: 'RefNotFound',
          message: missing.map((ref) => `${ref.kind} ${ref.namespace}/${ref.name} not found (${ref.field})`).join('; '),
        },
  ];
  return withConditions(object, OWNED, wanted, now);
}
