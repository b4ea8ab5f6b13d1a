import { isIPv4, isIPv6, type Socket } from 'node:net';
import { AgentError } from '../../errors.js';
import { readPrefix } from './read-prefix.js';

/**
 * PROXY protocol v1 (text) and v2 (binary), as HAProxy specifies them
 * (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
 */

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export interface ProxyInfo {
  readonly version: 1 | 2;
  /**
   * v2 LOCAL (the proxy's own connection, e.g. a health check): the socket's own addresses
   * are the real ones.
   */
  readonly local: boolean;
  /** 'tcp' or 'udp'; null with no addresses. */
  readonly transport: 'tcp' | 'udp' | null;
  /**
   * The original client and destination; null when the header carries none (v1 UNKNOWN, v2
   * LOCAL, v2 AF_UNSPEC or AF_UNIX): then the socket's own addresses stand.
   */
  readonly source: ProxyAddress | null;
  readonly destination: ProxyAddress | null;
}

/** The longest v1 header, CRLF included (spec §2.1). */
export const V1_MAX_BYTES = 107;
/** The v2 signature, then ver/cmd, fam/proto and a 16-bit length: 16 bytes (spec §2.2). */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export type ParseResult = { readonly info: ProxyInfo; readonly length: number } | 'incomplete';

function bad(message: string): never {
  throw new AgentError('bad-request', `PROXY protocol: ${message}`);
}

/**
 * Parses a header at the start of `buf`: the header and its length in bytes, or 'incomplete'
 * when `buf` is a valid prefix of a header. Throws AgentError('bad-request') otherwise, as soon
 * as the bytes seen cannot start one, so a non-PROXY client fails on its first packet.
 */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return 'incomplete';
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  return bad('no header (expected "PROXY " or the v2 signature)');
}

function parseV1(buf: Buffer): ParseResult {
  const prefixBytes = Math.min(buf.length, V1_PREFIX.length);
  if (buf.compare(V1_PREFIX, 0, prefixBytes, 0, prefixBytes) !== 0) bad('no header (expected "PROXY " or the v2 signature)');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0 || end + 2 > V1_MAX_BYTES) {
    if (buf.length >= V1_MAX_BYTES) bad(`v1 header longer than ${V1_MAX_BYTES} bytes`);
    // A lone LF inside the window can never become a valid header.
    if (buf.indexOf(0x0a) >= 0) bad('v1 header not terminated by CRLF');
    return 'incomplete';
  }
  const line = buf.toString('latin1', V1_PREFIX.length, end);
  const parts = line.split(' ');
  const family = parts[0];
  if (family === 'UNKNOWN') {
    // Whatever follows UNKNOWN is ignored (spec §2.1).
    return { info: { version: 1, local: false, transport: null, source: null, destination: null }, length: end + 2 };
  }
  if (family !== 'TCP4' && family !== 'TCP6') bad(`v1 protocol must be TCP4, TCP6 or UNKNOWN, not "${family ?? ''}"`);
  if (parts.length !== 5) bad('v1 header must be "PROXY <TCP4|TCP6> <src> <dst> <sport> <dport>"');
  const [, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const isFamily = family === 'TCP4' ? isIPv4 : isIPv6;
  if (!isFamily(src)) bad(`v1 source address "${src}" is not ${family === 'TCP4' ? 'IPv4' : 'IPv6'}`);
  if (!isFamily(dst)) bad(`v1 destination address "${dst}" is not ${family === 'TCP4' ? 'IPv4' : 'IPv6'}`);
  return {
    info: { version: 1, local: false, transport: 'tcp', source: { address: src, port: v1Port(sport, 'source') }, destination: { address: dst, port: v1Port(dport, 'destination') } },
    length: end + 2,
  };
}

function v1Port(text: string, which: string): number {
  // Decimal, no leading zero (spec §2.1).
  if (!/^(?:0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) bad(`v1 ${which} port "${text}" is not 0..65535`);
  return Number(text);
}

function parseV2(buf: Buffer): ParseResult {
  const sigBytes = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.compare(V2_SIGNATURE, 0, sigBytes, 0, sigBytes) !== 0) bad('bad v2 signature');
  if (buf.length < V2_FIXED_BYTES) return 'incomplete';
  const verCmd = buf[12] ?? 0;
  const famProto = buf[13] ?? 0;
  const length = buf.readUInt16BE(14);
  if (verCmd >> 4 !== 2) bad(`v2 version must be 2, not ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) bad(`v2 command must be LOCAL (0) or PROXY (1), not ${command}`);
  const family = famProto >> 4;
  const proto = famProto & 0x0f;
  if (family > 3) bad(`v2 address family ${family} is unknown`);
  if (proto > 2) bad(`v2 transport protocol ${proto} is unknown`);
  const addressBytes = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (length < addressBytes) bad(`v2 length ${length} is shorter than its addresses (${addressBytes} bytes)`);
  const total = V2_FIXED_BYTES + length;
  if (buf.length < total) return 'incomplete';
  // LOCAL: the receiver must ignore the addresses; TLVs are skipped in every case.
  if (command === 0) return { info: { version: 2, local: true, transport: null, source: null, destination: null }, length: total };
  if ((family !== 1 && family !== 2) || proto === 0) {
    return { info: { version: 2, local: false, transport: null, source: null, destination: null }, length: total };
  }
  const at = V2_FIXED_BYTES;
  const size = family === 1 ? 4 : 16;
  const format = family === 1 ? formatIPv4 : formatIPv6;
  const source = { address: format(buf.subarray(at, at + size)), port: buf.readUInt16BE(at + 2 * size) };
  const destination = { address: format(buf.subarray(at + size, at + 2 * size)), port: buf.readUInt16BE(at + 2 * size + 2) };
  return { info: { version: 2, local: false, transport: proto === 1 ? 'tcp' : 'udp', source, destination }, length: total };
}

function formatIPv4(bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as "::". */
function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/**
 * Reads one PROXY header (v1 or v2) from a fresh socket and consumes exactly it: bytes read
 * past it are unshifted, so the stream reads on as if the header had never been there (pipe
 * it, or hand it to an http.Server with emit('connection')). Reads at most the header's own
 * bound (107 bytes for v1, 16 + length for v2) before deciding.
 *
 * On a bad header, the peer closing first, or no complete header within `timeoutMs`, the
 * socket is destroyed and the promise rejects with AgentError('bad-request').
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyInfo> {
  return readPrefix(
    socket,
    (buf) => {
      const result = parseProxyHeader(buf);
      return result === 'incomplete' ? result : { value: result.info, consumed: result.length };
    },
    timeoutMs,
    'PROXY protocol header',
  );
}

/** "::ffff:1.2.3.4" (a dual-stack socket's IPv4 peer) -> "1.2.3.4"; zone ids dropped. */
function normalize(address: string): string {
  const plain = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain);
  return mapped?.[1] ?? plain;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes its two hex groups first.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = parse(rest ?? '');
  const groups = rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/**
 * A header announcing `source` -> `destination`. Mixed families are sent as IPv6 (IPv4 as
 * ::ffff:a.b.c.d), as both versions need one family. An address that is not an IP (a socket
 * already closed) gives v1 UNKNOWN / v2 PROXY with AF_UNSPEC, which receivers accept and
 * read as "use the connection's own addresses".
 */
export function encodeProxyHeader(version: 1 | 2, source: ProxyAddress, destination: ProxyAddress, transport: 'tcp' | 'udp' = 'tcp'): Buffer {
  let src = normalize(source.address);
  let dst = normalize(destination.address);
  const known = (isIPv4(src) || isIPv6(src)) && (isIPv4(dst) || isIPv6(dst));
  const v4 = known && isIPv4(src) && isIPv4(dst);
  if (known && !v4) {
    if (isIPv4(src)) src = `::ffff:${src}`;
    if (isIPv4(dst)) dst = `::ffff:${dst}`;
  }
  if (version === 1) {
    // v1 has no UDP (spec §2.1); a UDP caller wants v2.
    if (!known || transport === 'udp') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${src} ${dst} ${source.port} ${destination.port}\r\n`, 'latin1');
  }
  if (!known) {
    const out = Buffer.alloc(V2_FIXED_BYTES);
    V2_SIGNATURE.copy(out);
    out[12] = 0x21;
    out[13] = 0x00;
    return out;
  }
  const size = v4 ? 4 : 16;
  const out = Buffer.alloc(V2_FIXED_BYTES + 2 * size + 4);
  V2_SIGNATURE.copy(out);
  out[12] = 0x21; // version 2, PROXY
  out[13] = ((v4 ? 1 : 2) << 4) | (transport === 'tcp' ? 1 : 2);
  out.writeUInt16BE(2 * size + 4, 14);
  const toBytes = v4 ? ipv4Bytes : ipv6Bytes;
  toBytes(src).copy(out, V2_FIXED_BYTES);
  toBytes(dst).copy(out, V2_FIXED_BYTES + size);
  out.writeUInt16BE(source.port, V2_FIXED_BYTES + 2 * size);
  out.writeUInt16BE(destination.port, V2_FIXED_BYTES + 2 * size + 2);
  return out;
}
