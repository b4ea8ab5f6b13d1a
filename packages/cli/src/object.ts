// Safe readers for objects that came from the server or a file. Both are untrusted JSON,
// so every accessor narrows `unknown` instead of casting.
import { kindInfo, type KindInfo } from '@sluice/api';

export type ApiObject = Record<string, unknown>;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asRecord(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Reads a nested value by keys; undefined as soon as a step is missing. */
export function dig(obj: unknown, ...keys: (string | number)[]): unknown {
  let cur: unknown = obj;
  for (const key of keys) {
    if (typeof key === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[key];
    } else {
      if (!isRecord(cur)) return undefined;
      cur = cur[key];
    }
  }
  return cur;
}

export function metadata(obj: unknown): Record<string, unknown> {
  return asRecord(dig(obj, 'metadata'));
}

export function nameOf(obj: unknown): string {
  return asString(metadata(obj)['name']) ?? '';
}

export function namespaceOf(obj: unknown): string | undefined {
  return asString(metadata(obj)['namespace']);
}

export function kindOf(obj: unknown): string {
  return asString(dig(obj, 'kind')) ?? '';
}

export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(asRecord(v))) out[k] = typeof val === 'string' ? val : JSON.stringify(val);
  return out;
}

/** `upstream/shop-v1`: what `-o name` prints and what messages call an object. */
export function objectRef(obj: unknown, info?: KindInfo): string {
  const kind = kindOf(obj);
  const singular = info?.singular ?? kindInfo(kind)?.singular ?? kind.toLowerCase();
  return `${singular}/${nameOf(obj)}`;
}

/** Metadata the server owns; stripped where only the user's intent matters (diff). */
export const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp'];

/** A copy without status and server-owned metadata: the part of an object a user writes. */
export function userOwnedPart(obj: ApiObject): ApiObject {
  const { status: _status, ...rest } = obj;
  const meta = { ...metadata(obj) };
  for (const key of SERVER_METADATA) delete meta[key];
  return isRecord(obj['metadata']) ? { ...rest, metadata: meta } : rest;
}
