import { isIP } from 'node:net';

const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOST_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i;
const HTTP_TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** DNS-1123 label: 1-63 lowercase alphanumerics or '-', starting and ending alphanumeric. Used for namespaces. */
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS_LABEL_RE.test(s);
}

/** DNS-1123 subdomain: up to 253 characters of dot-separated DNS-1123 labels. Used for object names. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every((l) => DNS_LABEL_RE.test(l) && l.length <= 63);
}

/** RFC 1123 hostname (case-insensitive); with `wildcard`, a single leading `*.` is allowed. IP addresses are not hostnames. */
export function isHostname(s: string, opts: { wildcard?: boolean } = {}): boolean {
  const name = opts.wildcard && s.startsWith('*.') ? s.slice(2) : s;
  if (name.length === 0 || name.length > 253 || isIP(name) !== 0) return false;
  return name.split('.').every((l) => l.length <= 63 && HOST_LABEL_RE.test(l));
}

export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

export interface Cidr {
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

/** Parses `10.0.0.0/8`, `fd00::/8`, or a plain IP (meaning /32 or /128). Undefined when invalid. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, prefixLength: max, family };
  const prefix = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix)) return undefined;
  const prefixLength = Number(prefix);
  if (prefixLength > max) return undefined;
  return { address, prefixLength, family };
}

/** HTTP header field name: one or more RFC 9110 token characters. */
export function isHeaderName(s: string): boolean {
  return HTTP_TOKEN_RE.test(s);
}

export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}
