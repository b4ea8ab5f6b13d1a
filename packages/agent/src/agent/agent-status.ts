import { Node, Resource, ResourceError } from '@sluice/proto';
import type { Logger } from '../logger.js';
import type { ClusterStats, DataPlaneUpdate } from './data-plane-port.js';
import type { ControllerConnection } from './discovery-client.js';
import { keyOf, keyString } from '../data-plane/resource-keys.js';

export type ConfigSource = 'controller' | 'cache';

/**
 * What the admin server reports: the node, the controller connection, the last applied
 * revision and the resources currently rejected. Ready once a first configuration is applied
 * (from a controller or from the cache dir); not ready again while draining.
 */
export class AgentStatus {
  private connection: ControllerConnection = { connected: false, address: undefined, lastError: undefined };
  private lastAppliedRevision: number | undefined;
  /** Sizes of the last update, so an operator (and the e2e test) can see a resume sent nothing. */
  private lastUpdate: { resources: number; removed: number; rejected: number } | undefined;
  private source: ConfigSource | undefined;
  private readonly nacks = new Map<string, ResourceError>();
  private draining = false;

  constructor(
    readonly node: Node,
    private readonly logger: Logger,
  ) {}

  setConnection(connection: ControllerConnection): void {
    this.connection = connection;
  }

  /** Records an apply; the first one makes the agent ready. */
  applied(source: ConfigSource, revision: number, update: DataPlaneUpdate, errors: ResourceError[]): void {
    for (const resource of update.resources) this.nacks.delete(keyString(keyOf(resource)));
    for (const key of update.removed) this.nacks.delete(keyString(key));
    for (const error of errors) this.nacks.set(keyString(error.key), error);
    this.lastAppliedRevision = revision;
    this.lastUpdate = { resources: update.resources.length, removed: update.removed.length, rejected: errors.length };
    const first = this.source === undefined;
    this.source = source;
    if (first) this.logger.info('agent ready', { source, revision });
  }

  /** Store revision of the applied configuration (metrics); undefined before the first. */
  revision(): number | undefined {
    return this.lastAppliedRevision;
  }

  /** Resources currently rejected, by type label (`route_table`, ...), for metrics. */
  rejectedByType(): Map<string, number> {
    const out = new Map<string, number>();
    for (const error of this.nacks.values()) {
      const type = String(error.key?.type ?? '').replace(/^RESOURCE_TYPE_/, '').toLowerCase();
      out.set(type, (out.get(type) ?? 0) + 1);
    }
    return out;
  }

  startDraining(): void {
    this.draining = true;
  }

  readiness(): { ready: boolean; reason: string } {
    if (this.draining) return { ready: false, reason: 'shutting down: draining listeners' };
    if (this.source !== undefined) return { ready: true, reason: `configuration applied from the ${this.source}` };
    const why = this.connection.lastError ? ` (last error: ${this.connection.lastError})` : this.connection.address ? ` (trying ${this.connection.address})` : '';
    return { ready: false, reason: `no configuration applied yet: waiting for a controller${why}` };
  }

  /** The `/config_dump` body. */
  dump(resources: Resource[], listeners: Map<string, { address: string; port: number }>, clusters?: Map<string, ClusterStats>): unknown {
    return {
      node: Node.toJSON(this.node),
      controller: { connected: this.connection.connected, address: this.connection.address ?? null, lastError: this.connection.lastError ?? null },
      lastAppliedRevision: this.lastAppliedRevision ?? null,
      lastUpdate: this.lastUpdate ?? null,
      configSource: this.source ?? null,
      listeners: Object.fromEntries(listeners),
      // Circuit-breaker counters and outlier ejections; null when workers serve (each has its own).
      clusters: clusters === undefined ? null : Object.fromEntries(clusters),
      resources: resources.map(redactedJson),
      nacks: [...this.nacks.values()].map((e) => ResourceError.toJSON(e)),
    };
  }
}

/** Shown instead of a Secret's private key: /config_dump is for operators, keys stay in memory. */
export const REDACTED = '[redacted]';

/** A resource as JSON, a Secret's private key replaced by the marker (the certificate chain is public). */
function redactedJson(resource: Resource): unknown {
  const body = resource.body;
  if (body?.$case !== 'secret' || body.value.privateKey === '') return Resource.toJSON(resource);
  return Resource.toJSON({ ...resource, body: { $case: 'secret', value: { ...body.value, privateKey: REDACTED } } });
}
