import { randomBytes } from 'node:crypto';

/** Longest client request id kept; a longer one is replaced. */
export const MAX_REQUEST_ID_LENGTH = 128;

/**
 * A client's x-request-id is kept when it is 1..128 characters of letters, digits and
 * `-_.:+/=@` (UUIDs, ULIDs, base64, Envoy's and AWS's forms); anything else could smuggle
 * text into logs and is replaced.
 */
export function isValidRequestId(value: string | string[] | undefined): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_REQUEST_ID_LENGTH) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const ok =
      (c >= 48 && c <= 57) || // 0-9
      (c >= 65 && c <= 90) || // A-Z
      (c >= 97 && c <= 122) || // a-z
      c === 45 || c === 95 || c === 46 || c === 58 || c === 43 || c === 47 || c === 61 || c === 64; // - _ . : + / = @
    if (!ok) return false;
  }
  return true;
}

/**
 * Request ids unique across processes and restarts without a random call per request: a
 * random 48-bit prefix per process (workers included) and a counter.
 */
export function requestIdSource(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let n = 0;
  return () => `${prefix}-${(++n).toString(36)}`;
}
