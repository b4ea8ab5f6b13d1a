import { createHash } from 'node:crypto';
import { Cluster, Endpoints, Listener, Resource, ResourceType, RouteTable, Secret, type Source } from '@sluice/proto';
import { Watchable } from '../watchable.js';
import type { SnapshotSource } from './snapshot-cache.js';
import { resourceKey } from '@sluice/translator';
import type { GroupSnapshot, Labels, ServedResource, TranslationOutput } from './translator-port.js';

// Hand-made data-plane resources and a fake snapshot source, for discovery tests that do not
// need the translator.

function body(type: ResourceType, source: Source | undefined, tag: string): Resource['body'] {
  const sources = source ? [source] : [];
  switch (type) {
    case ResourceType.RESOURCE_TYPE_SECRET:
      return { $case: 'secret', value: Secret.fromPartial({ sources, certificateChain: tag }) };
    case ResourceType.RESOURCE_TYPE_CLUSTER:
      return { $case: 'cluster', value: Cluster.fromPartial({ source, connectTimeoutMs: tag.length }) };
    case ResourceType.RESOURCE_TYPE_ENDPOINTS:
      return { $case: 'endpoints', value: Endpoints.fromPartial({ endpoints: [{ id: tag, address: '127.0.0.1', port: 1 }] }) };
    case ResourceType.RESOURCE_TYPE_ROUTE_TABLE:
      return { $case: 'routeTable', value: RouteTable.fromPartial({ virtualHosts: [{ name: tag }] }) };
    case ResourceType.RESOURCE_TYPE_LISTENER:
    case ResourceType.RESOURCE_TYPE_UNSPECIFIED:
    case ResourceType.UNRECOGNIZED:
      return { $case: 'listener', value: Listener.fromPartial({ sources, address: tag }) };
  }
}

/** A data-plane resource whose content (and so version) is determined by `tag`. */
export function served(type: ResourceType, name: string, tag = 'v1', source?: Source): ServedResource {
  const content = body(type, source, tag);
  const version = createHash('sha256').update(JSON.stringify([type, name, tag])).digest('hex').slice(0, 16);
  const resource: Resource = { name, version, body: content };
  return { type, name, version, encoded: Resource.encode(resource).finish(), sources: source ? [source] : [] };
}

export function group(revision: number, resources: readonly ServedResource[]): GroupSnapshot {
  const version = createHash('sha256')
    .update(resources.map((r) => `${r.type}/${r.name}@${r.version}`).join('\n'))
    .digest('hex')
    .slice(0, 16);
  return { revision, version, resources };
}

/** A snapshot source whose every label set gets the same group unless `byLabel` says otherwise. */
export class FakeSnapshotSource implements SnapshotSource {
  readonly translations = new Watchable<TranslationOutput>();
  private groups = new Map<string, GroupSnapshot>();
  private fallback: GroupSnapshot | undefined;

  /** Publishes a new "translation": `resources` for everyone, or per `pool` label. */
  set(revision: number, resources: readonly ServedResource[], byPool: Record<string, readonly ServedResource[]> = {}): void {
    this.fallback = group(revision, resources);
    this.groups = new Map(Object.entries(byPool).map(([pool, rs]) => [pool, group(revision, rs)]));
    const all = [...resources, ...Object.values(byPool).flat()];
    this.translations.publish({ revision, resources: new Map(all.map((r) => [resourceKey(r.type, r.name), r])), problems: [] });
  }

  snapshotFor(labels: Labels): GroupSnapshot | undefined {
    const pool = labels.pool;
    return (pool !== undefined ? this.groups.get(pool) : undefined) ?? this.fallback;
  }
}
