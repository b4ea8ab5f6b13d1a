import type { FieldError, Resource } from '@sluice/api';
import { ControllerError } from '../errors.js';

// Secret values never leave the controller through the admin API: reads (get, list, watch,
// and the objects write responses echo) show every data key but the public ones as a
// marker. The marker is never stored: in a write it means "the value stored under this key"
// (so `get -o yaml | apply`, `edit` and a re-applied dump change nothing), and where there
// is no stored value to keep (a new Secret, a new key, stringData) the write is rejected,
// naming the field. Applying the user's own file stays idempotent: the store compares real
// values, and both sides of `sluicectl diff` (the live object and the dry-run result) come
// back redacted alike.

/** What a redacted data value reads as. */
export const REDACTED = '[redacted]';

/** Data keys that hold public material (certificates), shown as stored. */
const PUBLIC_KEYS: ReadonlySet<string> = new Set(['tls.crt', 'ca.crt']);

type SecretLike = { kind?: unknown; data?: unknown; stringData?: unknown; metadata?: { name?: unknown; namespace?: unknown } };

function isSecret(value: unknown): value is { kind: 'Secret'; data?: Record<string, unknown> } {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'Secret';
}

/** The object as the admin API shows it: a Secret's non-public data values as the marker. */
export function redact<T>(object: T): T {
  if (!isSecret(object) || object.data === undefined) return object;
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object.data)) data[key] = PUBLIC_KEYS.has(key) ? value : REDACTED;
  return { ...object, data };
}

/** Does this write body (an object, or a merge patch to a Secret) carry the marker anywhere? */
export function carriesMarker(body: unknown): boolean {
  const record = typeof body === 'object' && body !== null ? (body as SecretLike) : undefined;
  if (record === undefined || (record.kind !== undefined && record.kind !== 'Secret')) return false;
  return [record.data, record.stringData].some((values) => typeof values === 'object' && values !== null && Object.values(values).includes(REDACTED));
}

/** Where a Secret write body names its object (for reading the stored one). */
export function secretTarget(body: unknown): { namespace: string; name: string } | undefined {
  const meta = (body as SecretLike).metadata;
  if (typeof meta?.name !== 'string') return undefined;
  return { namespace: typeof meta.namespace === 'string' ? meta.namespace : 'default', name: meta.name };
}

/**
 * `body` with every marker replaced by the value `stored` has under that key. A merge patch
 * (`patch`) drops the key instead (the stored value stays). Markers with nothing to keep are
 * causes (`prefix` is e.g. "items[2].").
 */
export function restoreRedacted(body: unknown, stored: Resource | undefined, prefix = '', patch = false): { body: unknown; causes: FieldError[] } {
  if (!carriesMarker(body)) return { body, causes: [] };
  const record = body as SecretLike & Record<string, unknown>;
  const storedData = (stored as { data?: Record<string, string> } | undefined)?.data ?? {};
  const causes: FieldError[] = [];
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((record.data ?? {}) as Record<string, unknown>)) {
    if (value !== REDACTED) data[key] = value;
    else if (storedData[key] === undefined) {
      causes.push({ field: `${prefix}data.${key}`, message: `is the redaction marker "${REDACTED}" and there is no stored value to keep: give the real value` });
    } else if (!patch) data[key] = storedData[key];
  }
  for (const [key, value] of Object.entries((record.stringData ?? {}) as Record<string, unknown>)) {
    if (value === REDACTED) causes.push({ field: `${prefix}stringData.${key}`, message: `is the redaction marker "${REDACTED}", not a value: give the real one` });
  }
  return { body: record.data === undefined ? record : { ...record, data }, causes };
}

/** Throws an `invalid` error naming every field that carries the marker with nothing to keep. */
export function rejectRedacted(causes: FieldError[]): void {
  if (causes.length === 0) return;
  throw new ControllerError('invalid', `Secret data carries the redaction marker, nothing was written: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}`, { kind: 'Secret', causes });
}
