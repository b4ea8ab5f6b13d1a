import type { FieldError } from '@sluice/api';
import { ControllerError } from '../errors.js';

// Secret values never leave the controller through the admin API: reads (get, list, watch,
// and the objects write responses echo) show every data key but the public ones as a
// marker. A write that carries the marker back (an edited `get -o yaml`) is rejected: the
// marker is not a value, and storing it would destroy the key. Applying the user's own
// file stays idempotent: the store compares real values, and both sides of `sluicectl diff`
// (the live object and the dry-run result) come back redacted alike.

/** What a redacted data value reads as. */
export const REDACTED = '[redacted]';

/** Data keys that hold public material (certificates), shown as stored. */
const PUBLIC_KEYS: ReadonlySet<string> = new Set(['tls.crt', 'ca.crt']);

function isSecret(value: unknown): value is { kind: 'Secret'; data?: Record<string, unknown>; stringData?: Record<string, unknown> } {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'Secret';
}

/** The object as the admin API shows it: a Secret's non-public data values as the marker. */
export function redact<T>(object: T): T {
  if (!isSecret(object) || object.data === undefined) return object;
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object.data)) data[key] = PUBLIC_KEYS.has(key) ? value : REDACTED;
  return { ...object, data };
}

/** The marker where a value must be: one cause per field (`prefix` is e.g. "items[2]."). */
export function redactedFields(body: unknown, prefix = ''): FieldError[] {
  // A merge patch to a Secret path may carry data without a kind.
  const record = typeof body === 'object' && body !== null ? (body as { kind?: unknown; data?: unknown; stringData?: unknown }) : undefined;
  if (record === undefined || (record.kind !== undefined && record.kind !== 'Secret')) return [];
  const causes: FieldError[] = [];
  for (const field of ['data', 'stringData'] as const) {
    const values = record[field];
    if (typeof values !== 'object' || values === null) continue;
    for (const [key, value] of Object.entries(values)) {
      if (value === REDACTED) {
        causes.push({ field: `${prefix}${field}.${key}`, message: `is the redaction marker "${REDACTED}", not a value: the API never returns secret values, give the real one (or leave the key out of a patch)` });
      }
    }
  }
  return causes;
}

/** Throws an `invalid` error naming every field that carries the marker back. */
export function rejectRedacted(causes: FieldError[]): void {
  if (causes.length === 0) return;
  throw new ControllerError('invalid', `Secret data carries the redaction marker, nothing was written: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}`, { kind: 'Secret', causes });
}
