import type { Resource, ResourceError } from '@sluice/proto';
import type { DataPlaneUpdate } from './data-plane-port.js';
import { keyOf, keyString } from '../data-plane/resource-keys.js';

/**
 * The resources applied across several data planes, kept by the one that drives them: an
 * update's accepted resources replace their previous version, rejected ones keep it, and
 * removed keys go.
 */
export class AppliedSet {
  private readonly byKey = new Map<string, Resource>();

  resources(): Resource[] {
    return [...this.byKey.values()];
  }

  get(key: string): Resource | undefined {
    return this.byKey.get(key);
  }

  record(update: DataPlaneUpdate, errors: ResourceError[]): void {
    const rejected = new Set(errors.map((e) => keyString(e.key)));
    for (const resource of update.resources) {
      const key = keyString(keyOf(resource));
      if (!rejected.has(key)) this.byKey.set(key, resource);
    }
    for (const key of update.removed) this.byKey.delete(keyString(key));
  }
}

/**
 * One answer from several data planes fed the same update: a resource rejected by any of them
 * is rejected (first message wins), so the controller sees one agent.
 */
export function mergeErrors(answers: ResourceError[][]): ResourceError[] {
  const merged = new Map<string, ResourceError>();
  for (const errors of answers) {
    for (const error of errors) {
      const key = keyString(error.key);
      if (!merged.has(key)) merged.set(key, error);
    }
  }
  return [...merged.values()];
}

/**
 * When data planes disagree on an update, the ones that accepted a resource the others
 * rejected must go back to its previous version (or drop it, if there was none), so every
 * worker serves the same thing. Returns the update that does that, or undefined.
 */
export function rollbackFor(answers: ResourceError[][], merged: ResourceError[], before: AppliedSet): DataPlaneUpdate | undefined {
  const everywhere = answers.length === 0 ? new Set<string>() : answers.map((errors) => new Set(errors.map((e) => keyString(e.key)))).reduce((a, b) => new Set([...a].filter((k) => b.has(k))));
  const rollback: DataPlaneUpdate = { resources: [], removed: [] };
  for (const error of merged) {
    const key = keyString(error.key);
    if (everywhere.has(key) || error.key === undefined) continue;
    const previous = before.get(key);
    if (previous) rollback.resources.push(previous);
    else rollback.removed.push(error.key);
  }
  return rollback.resources.length + rollback.removed.length > 0 ? rollback : undefined;
}
