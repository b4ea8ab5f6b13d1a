import { matchLabelSelector } from '@sluice/api';
import type { DataPlaneResource } from './data-plane-resource.js';
import { keyOf } from './data-plane-resource.js';
import { shortHash } from './hash.js';
import { compareResources, compareStrings, resourceKey, typeLabel } from './resource-key.js';
import type { Translation } from './translate.js';
import { ResourceType } from '@sluice/proto';

/** What one group of agents (same matched listeners) is sent. */
export interface Snapshot {
  revision: number;
  /** Hash over the sorted (key, version) pairs of `resources`. */
  version: string;
  /** Make-before-break order: SECRET, CLUSTER, ENDPOINTS, ROUTE_TABLE, LISTENER, each by name. */
  resources: readonly DataPlaneResource[];
}

/** Per translation: matched listener set -> its snapshot. Dropped with the translation. */
const memo = new WeakMap<Translation, Map<string, Snapshot>>();

function closure(translation: Translation, listenerNames: readonly string[]): DataPlaneResource[] {
  const found = new Map<string, DataPlaneResource>();
  const pending = listenerNames.map((name) => resourceKey(ResourceType.RESOURCE_TYPE_LISTENER, name));
  for (let key = pending.pop(); key !== undefined; key = pending.pop()) {
    if (found.has(key)) continue;
    const r = translation.resources.get(key);
    if (r === undefined) continue; // dangling: checkConsistency reports it
    found.set(key, r);
    for (const ref of r.references) pending.push(keyOf(ref));
  }
  return [...found.values()].sort(compareResources);
}

function snapshotVersion(resources: readonly DataPlaneResource[]): string {
  const pairs = resources.map((r) => `${keyOf(r)}\u0000${r.version}`).sort(compareStrings);
  return shortHash(pairs.join('\n'));
}

/**
 * The snapshot for an agent with these labels: the listeners whose agentSelector matches,
 * plus exactly what they reference, transitively. Agents that match the same listeners get
 * the same Snapshot object.
 */
export function snapshotFor(translation: Translation, labels: Readonly<Record<string, string>>): Snapshot {
  const matched = translation.listeners.filter((l) => matchLabelSelector(l.agentSelector, { ...labels })).map((l) => l.name);
  const memoKey = matched.join('\n');
  let byListeners = memo.get(translation);
  if (byListeners === undefined) {
    byListeners = new Map();
    memo.set(translation, byListeners);
  }
  const cached = byListeners.get(memoKey);
  if (cached !== undefined) return cached;
  const resources = Object.freeze(closure(translation, matched));
  const snapshot: Snapshot = Object.freeze({ revision: translation.revision, version: snapshotVersion(resources), resources });
  byListeners.set(memoKey, snapshot);
  return snapshot;
}

/**
 * Every reference of every resource names a resource in the set. Returns one message per
 * dangling reference; [] means consistent (STYLE §4: checked before a snapshot is set).
 */
export function checkConsistency(resources: Iterable<DataPlaneResource>): string[] {
  const list = [...resources];
  const keys = new Set(list.map(keyOf));
  const problems: string[] = [];
  for (const r of list) {
    for (const ref of r.references) {
      if (!keys.has(keyOf(ref))) problems.push(`${keyOf(r)} references ${typeLabel(ref.type)} ${ref.name}, which is missing`);
    }
  }
  return problems;
}
