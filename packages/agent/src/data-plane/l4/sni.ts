import { AgentError } from '../../errors.js';
import type { PrefixResult } from './read-prefix.js';

// The server name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), read without
// decrypting anything: TLS passthrough routes on it and forwards the bytes untouched.

/**
 * The most ClientHello bytes read before giving up (records included). A ClientHello is one
 * handshake message of at most 2^14 bytes in practice (post-quantum key shares bring browsers
 * to ~2 KB); a client sending more is not one we can route.
 */
export const MAX_CLIENT_HELLO_BYTES = 16_384 + 5 * 4;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;

function bad(message: string): never {
  throw new AgentError('bad-request', `TLS ClientHello: ${message}`);
}

/**
 * The SNI host name of the ClientHello at the start of `buf` (lower case, no trailing dot;
 * '' when the client sent none), or 'incomplete'. Reassembles a ClientHello split over
 * several records. Throws AgentError('bad-request') when the bytes are not a ClientHello.
 * `consumed` is always 0: the caller forwards the hello as it came.
 */
export function parseClientHelloSni(buf: Buffer): PrefixResult<string> {
  // Gather the handshake bytes from consecutive handshake records.
  const fragments: Buffer[] = [];
  let have = 0;
  let need = -1; // the hello's total handshake length, once its header is in
  let at = 0;
  for (;;) {
    if (buf.length - at < 5) break;
    if (buf[at] !== RECORD_HANDSHAKE) bad(at === 0 ? 'not a TLS handshake record' : 'handshake interrupted by another record type');
    if (buf[at + 1] !== 3) bad('not a TLS record (bad version)');
    const length = buf.readUInt16BE(at + 3);
    if (length === 0) bad('empty handshake record');
    if (buf.length - at - 5 < length) {
      fragments.push(buf.subarray(at + 5));
      have += buf.length - at - 5;
      break;
    }
    fragments.push(buf.subarray(at + 5, at + 5 + length));
    have += length;
    at += 5 + length;
    if (need < 0 && have >= 4) need = 4 + handshakeLength(fragments);
    if (need >= 0 && have >= need) break;
  }
  if (need < 0 && have >= 4) need = 4 + handshakeLength(fragments);
  if (need < 0 || have < need) {
    if (buf.length >= MAX_CLIENT_HELLO_BYTES || need > MAX_CLIENT_HELLO_BYTES) bad(`longer than ${MAX_CLIENT_HELLO_BYTES} bytes`);
    return 'incomplete';
  }
  const hello = Buffer.concat(fragments).subarray(4, need);
  return { value: serverName(hello), consumed: 0 };
}

function handshakeLength(fragments: Buffer[]): number {
  const head = Buffer.concat(fragments).subarray(0, 4);
  if (head[0] !== HANDSHAKE_CLIENT_HELLO) bad('first handshake message is not a ClientHello');
  return head.readUIntBE(1, 3);
}

/** Walks a ClientHello body to its server_name extension. */
function serverName(hello: Buffer): string {
  let at = 2 + 32; // legacy_version, random
  const skip = (lengthBytes: 1 | 2, field: string): void => {
    if (at + lengthBytes > hello.length) bad(`truncated at ${field}`);
    const length = lengthBytes === 1 ? (hello[at] as number) : hello.readUInt16BE(at);
    at += lengthBytes + length;
    if (at > hello.length) bad(`truncated in ${field}`);
  };
  skip(1, 'session id');
  skip(2, 'cipher suites');
  skip(1, 'compression methods');
  if (at === hello.length) return ''; // no extensions at all
  if (at + 2 > hello.length) bad('truncated at extensions');
  const end = at + 2 + hello.readUInt16BE(at);
  if (end > hello.length) bad('truncated in extensions');
  at += 2;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    const body = at + 4;
    if (body + length > end) bad('truncated in an extension');
    if (type === EXTENSION_SERVER_NAME) return hostName(hello.subarray(body, body + length));
    at = body + length;
  }
  return '';
}

function hostName(ext: Buffer): string {
  if (ext.length < 2) bad('truncated server_name extension');
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let at = 2;
  while (at + 3 <= end) {
    const type = ext[at];
    const length = ext.readUInt16BE(at + 1);
    if (at + 3 + length > end) bad('truncated server name');
    if (type === NAME_TYPE_HOST) {
      const name = ext.toString('latin1', at + 3, at + 3 + length).toLowerCase();
      if (!/^[a-z0-9._-]+$/.test(name)) bad('server name is not a host name');
      return name.endsWith('.') ? name.slice(0, -1) : name;
    }
    at += 3 + length;
  }
  return '';
}

/**
 * Chooses among routes by host name: an exact name first, then the longest matching
 * "*.suffix" wildcard (one or more labels, as the HTTP router does), then a route with no
 * host names (a catch-all). Compiled once per config version.
 */
export class SniTable<R> {
  private readonly exact = new Map<string, R>();
  /** [".example.com", route], longest suffix first. */
  private readonly wildcards: [string, R][] = [];
  private readonly fallback: R | undefined;

  constructor(routes: readonly { hostnames: readonly string[]; route: R }[]) {
    let fallback: R | undefined;
    for (const { hostnames, route } of routes) {
      if (hostnames.length === 0) fallback ??= route;
      for (const raw of hostnames) {
        const name = raw.toLowerCase().replace(/\.$/, '');
        if (name.startsWith('*.')) {
          if (!this.wildcards.some(([s]) => s === name.slice(1))) this.wildcards.push([name.slice(1), route]);
        } else if (!this.exact.has(name)) this.exact.set(name, route);
      }
    }
    this.wildcards.sort(([a], [b]) => b.length - a.length);
    this.fallback = fallback;
  }

  /** The route for a server name ('' = the client sent none: only the catch-all takes it). */
  match(name: string): R | undefined {
    if (name !== '') {
      const exact = this.exact.get(name);
      if (exact !== undefined) return exact;
      for (const [suffix, route] of this.wildcards) if (name.length > suffix.length && name.endsWith(suffix)) return route;
    }
    return this.fallback;
  }
}
