import { isDeepStrictEqual } from 'node:util';
import { kindInfo, type Upstream } from '@sluice/api';
import { endpointId } from '@sluice/translator';
import type { Logger } from '../logger.js';
import type { ResourceService } from '../resources/resource-service.js';
import { LoopRunner } from '../runner.js';
import type { Watchable } from '../watchable.js';
import { targetKey } from './assignment.js';
import type { MergedHealth } from './health-coordinator.js';

/** One entry of `Upstream.status.endpoints`. */
export interface EndpointStatus {
  address: string;
  port: number;
  health: 'Healthy' | 'Unhealthy' | 'Unknown';
  since: string;
}

/**
 * Writes `Upstream.status.endpoints[]` (address, port, merged health, since when) for every
 * Upstream with a healthCheck, and removes it from one that no longer has a check. `since`
 * moves only when the health changes. Level-triggered over each merged-health publication
 * (one per resource snapshot and per verdict change); writes nothing when nothing changed.
 * Every replica writes for now (the leader alone, once there is leader election).
 */
export class EndpointHealthStatus extends LoopRunner {
  readonly name = 'endpoint-health-status';

  constructor(
    private readonly merged: Watchable<MergedHealth>,
    private readonly resources: ResourceService,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {
    super();
  }

  protected async run(signal: AbortSignal): Promise<void> {
    for await (const merged of this.merged.subscribe(signal)) {
      try {
        await this.reconcile(merged);
      } catch (error) {
        this.logger.warn('endpoint status update failed', { error: String(error) });
      }
    }
  }

  private async reconcile(merged: MergedHealth): Promise<void> {
    const kind = kindInfo('Upstream')!;
    for (const object of merged.snapshot.objects.values()) {
      if (object.kind !== 'Upstream' || object.metadata.resourceVersion === undefined) continue;
      const status = desiredStatus(object, merged, this.now());
      if (status === undefined) continue;
      const { namespace, name, resourceVersion } = object.metadata;
      const result = await this.resources.writeStatus(kind, namespace, name, resourceVersion, status);
      if (result === 'written') this.logger.debug('endpoint status updated', { namespace, name });
    }
  }
}

/** The Upstream's status with `endpoints` brought up to date, or undefined when nothing changes. */
export function desiredStatus(u: Upstream, merged: MergedHealth, now: Date): Record<string, unknown> | undefined {
  const current = ((u as { status?: Record<string, unknown> }).status ?? {});
  const before = Array.isArray(current.endpoints) ? (current.endpoints as EndpointStatus[]) : undefined;
  const { endpoints: _old, ...rest } = current;
  if (!u.spec.healthCheck) return before === undefined ? undefined : rest;
  const cluster = `${u.metadata.namespace ?? 'default'}/${u.metadata.name}`;
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const endpoints: EndpointStatus[] = [...u.spec.endpoints]
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port))
    .map((e) => {
      const health = merged.endpoints.get(targetKey(cluster, endpointId(cluster, e.address, e.port)))?.health ?? 'Unknown';
      const previous = before?.find((p) => p.address === e.address && p.port === e.port);
      return { address: e.address, port: e.port, health, since: previous?.health === health ? previous.since : stamp };
    });
  if (before !== undefined && isDeepStrictEqual(before, endpoints)) return undefined;
  return { ...rest, endpoints };
}
