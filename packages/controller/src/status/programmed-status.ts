import { kindInfo, type Resource } from '@sluice/api';
import type { CacheOutput } from '../discovery/snapshot-cache.js';
import type { TranslationOutput } from '../discovery/translator-port.js';
import type { Logger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import type { ResourceService } from '../resources/resource-service.js';
import { LoopRunner } from '../runner.js';
import type { Watchable } from '../watchable.js';
import { objectIdentity, withConditions, type WantedCondition } from './conditions.js';

/** The condition type this runner owns; other runners own other types on the same objects. */
const OWNED = new Set(['Programmed']);

interface Rejection {
  agents: number;
  message: string;
}

/**
 * Reports on each user object that made it into the data plane whether the agents took it
 * (DESIGN §4): `Programmed=False` (`Rejected`, "Rejected by N/M agents: <first message>")
 * while connected agents NACK a resource made from it, `Programmed=True` ("Applied by M
 * agents") otherwise, where M is the number of connected agents. Reads the NACKs from the
 * Agent objects, so it sees the agents of every controller replica. Objects the translator
 * emitted nothing for (an unattached Route, an unused Secret) carry no Programmed condition.
 * Level-triggered over each resource snapshot and the translation in force for it.
 */
export class ProgrammedStatus extends LoopRunner {
  readonly name = 'programmed-status';

  constructor(
    private readonly outputs: Watchable<CacheOutput>,
    private readonly resources: ResourceService,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    super();
  }


  protected async run(signal: AbortSignal): Promise<void> {
    for await (const { snapshot, translation } of this.outputs.subscribe(signal)) {
      if (!translation) continue; // nothing is served yet: nothing to report
      try {
        await this.reconcile(snapshot, translation);
      } catch (error) {
        // The next snapshot retries: reconciling is idempotent.
        this.logger.warn('status update failed', { error: String(error) });
      }
    }
  }

  private async reconcile(snapshot: ResourceSnapshot, translation: TranslationOutput): Promise<void> {
    const wanted = desiredProgrammed(snapshot, translation);
    for (const object of snapshot.objects.values()) {
      const kind = kindInfo(object.kind);
      const { metadata } = object;
      if (!kind || !kind.userWritable || metadata.resourceVersion === undefined) continue;
      const condition = wanted.get(objectIdentity(object.kind, metadata.namespace, metadata.name));
      const status = withConditions(object, OWNED, condition ? [condition] : [], this.now());
      if (status === undefined) continue;
      const result = await this.resources.writeStatus(kind, metadata.namespace, metadata.name, metadata.resourceVersion, status);
      if (result === 'written') this.logger.debug('status updated', { kind: object.kind, namespace: metadata.namespace, name: metadata.name });
    }
  }
}

/** The Programmed condition of every object the translation made data-plane resources from. */
export function desiredProgrammed(snapshot: ResourceSnapshot, translation: TranslationOutput): Map<string, WantedCondition> {
  const agents = [...snapshot.objects.values()]
    .filter((o) => o.kind === 'Agent' && statusOf(o).connected === true)
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const rejections = new Map<string, Rejection>();
  for (const agent of agents) {
    const nacks = statusOf(agent).nacks;
    if (!Array.isArray(nacks)) continue;
    const counted = new Set<string>();
    for (const nack of nacks as { kind?: unknown; name?: unknown; message?: unknown }[]) {
      if (typeof nack.kind !== 'string' || typeof nack.name !== 'string') continue;
      const id = nackIdentity(nack.kind, nack.name);
      if (counted.has(id)) continue;
      counted.add(id);
      const seen = rejections.get(id);
      if (seen) seen.agents++;
      else rejections.set(id, { agents: 1, message: typeof nack.message === 'string' ? nack.message : '' });
    }
  }

  const total = agents.length;
  const out = new Map<string, WantedCondition>();
  for (const resource of translation.resources.values()) {
    for (const source of resource.sources) {
      const id = objectIdentity(source.kind, source.namespace || undefined, source.name);
      if (out.has(id)) continue;
      const rejected = rejections.get(id);
      out.set(
        id,
        rejected
          ? { type: 'Programmed', status: 'False', reason: 'Rejected', message: `Rejected by ${rejected.agents}/${total} agents: ${rejected.message}` }
          : total === 0
            ? // Nothing serves it yet: neither applied nor rejected.
              { type: 'Programmed', status: 'Unknown', reason: 'NoAgents', message: 'No connected agents' }
            : { type: 'Programmed', status: 'True', reason: 'Programmed', message: `Applied by ${total} agent${total === 1 ? '' : 's'}` },
      );
    }
  }
  return out;
}

/** Agent NACK names are `namespace/name` for namespaced kinds. */
function nackIdentity(kind: string, name: string): string {
  const slash = name.indexOf('/');
  if (kindInfo(kind)?.namespaced && slash > 0) return objectIdentity(kind, name.slice(0, slash), name.slice(slash + 1));
  return objectIdentity(kind, undefined, name);
}

function statusOf(object: Resource): Record<string, unknown> {
  const status = (object as { status?: unknown }).status;
  return typeof status === 'object' && status !== null ? (status as Record<string, unknown>) : {};
}
