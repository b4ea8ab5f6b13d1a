import { ResourceError, type Resource } from '@sluice/proto';
import type { DataPlaneUpdate, ListeningDataPlane } from '../data-plane-port.js';
import { keyOf, keyString } from '../../data-plane/resource-keys.js';

/**
 * A data plane without sockets for tests of the agent's control side: keeps what it is given,
 * rejects the resources `reject` names (keeping their previous version), records every update.
 */
export class MemoryDataPlane implements ListeningDataPlane {
  readonly updates: DataPlaneUpdate[] = [];
  closed = false;
  private readonly applied = new Map<string, Resource>();

  constructor(public reject: (resource: Resource) => string | undefined = () => undefined) {}

  apply(update: DataPlaneUpdate): Promise<ResourceError[]> {
    this.updates.push(update);
    const errors: ResourceError[] = [];
    for (const resource of update.resources) {
      const message = this.reject(resource);
      if (message === undefined) this.applied.set(keyString(keyOf(resource)), resource);
      else errors.push(ResourceError.fromPartial({ key: keyOf(resource), version: resource.version, message }));
    }
    for (const key of update.removed) this.applied.delete(keyString(key));
    return Promise.resolve(errors);
  }

  resources(): Resource[] {
    return [...this.applied.values()];
  }

  listeners(): Map<string, { address: string; port: number }> {
    return new Map();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
