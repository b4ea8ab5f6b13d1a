import { createHash } from 'node:crypto';

/** First 16 hex digits of sha256: resource versions, snapshot versions and endpoint ids. */
export function shortHash(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}
