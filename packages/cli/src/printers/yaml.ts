import { API_VERSION, toYaml } from '@sluice/api';

/** One object as-is; several as a `kind: List` (kubectl's `-o yaml` of a list). */
export function asListIfMany(objects: readonly Record<string, unknown>[], single: boolean): unknown {
  if (single && objects.length === 1) return objects[0];
  return { apiVersion: API_VERSION, kind: 'List', items: objects, metadata: { resourceVersion: '' } };
}

export function formatYaml(value: unknown): string {
  return toYaml(value);
}

export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
