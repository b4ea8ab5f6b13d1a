import { isDeepStrictEqual } from 'node:util';
import type { Condition, Resource } from '@sluice/api';

/** A condition as a runner wants it; the transition time is worked out here. */
export type WantedCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/**
 * The object's status with the condition types a runner owns brought up to date, or undefined
 * when nothing changes. Conditions of other types (other runners') are kept as they are;
 * an owned type not in `wanted` is removed. `lastTransitionTime` moves only when a
 * condition's status flips, as in Kubernetes. Conditions are sorted by type.
 */
export function withConditions(
  object: Resource,
  owned: ReadonlySet<string>,
  wanted: readonly WantedCondition[],
  now: Date,
): Record<string, unknown> | undefined {
  const generation = object.metadata.generation;
  const current = (object as { status?: Record<string, unknown> }).status ?? {};
  const before = Array.isArray(current.conditions) ? (current.conditions as Condition[]) : [];
  const conditions: Condition[] = before.filter((c) => !owned.has(c.type));
  for (const want of wanted) {
    const previous = before.find((c) => c.type === want.type);
    const lastTransitionTime =
      previous && previous.status === want.status ? previous.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    conditions.push({ ...want, ...(generation !== undefined ? { observedGeneration: generation } : {}), lastTransitionTime });
  }
  conditions.sort((a, b) => a.type.localeCompare(b.type));
  if (isDeepStrictEqual(before, conditions)) return undefined;
  const { conditions: _old, ...rest } = current;
  return conditions.length > 0 ? { ...rest, conditions } : rest;
}

/** `Kind/namespace/name`: one user object, whatever refers to it. */
export function objectIdentity(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}
