import type { HashKey } from '@sluice/proto';
import type { PickContext } from './balancer.js';

/** 32-bit FNV-1a over UTF-16 code units, finished with murmur3's fmix32 for avalanche. */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** murmur3 fmix32. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Reads the hashed value from a request; undefined when the request does not carry it. */
export type KeyReader = (ctx: PickContext<unknown>) => string | undefined;

export function keyReader(key: HashKey['key']): KeyReader | undefined {
  switch (key?.$case) {
    case 'sourceIp':
      return (ctx) => (ctx.clientAddress === '' ? undefined : ctx.clientAddress);
    case 'header': {
      const name = key.value.toLowerCase();
      return (ctx) => {
        const v = ctx.request?.headers[name];
        return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
      };
    }
    case 'cookie': {
      const name = key.value;
      return (ctx) => {
        const v = ctx.request?.headers.cookie;
        return v === undefined ? undefined : cookieValue(typeof v === 'string' ? v : v.join('; '), name);
      };
    }
    case 'queryParameter': {
      const name = key.value;
      return (ctx) => {
        const url = ctx.request?.url;
        return url === undefined ? undefined : queryValue(url, name);
      };
    }
    case undefined:
      return undefined;
  }
}

/** The value of cookie `name` in a Cookie header (the first one when repeated). */
export function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The decoded value of query parameter `name` in a request target (the first one). */
export function queryValue(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const end = url.indexOf('#', q);
  for (const pair of url.slice(q + 1, end < 0 ? undefined : end).split('&')) {
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    if (decode(k) !== name) continue;
    return eq < 0 ? '' : decode(pair.slice(eq + 1));
  }
  return undefined;
}

function decode(s: string): string {
  const plus = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
