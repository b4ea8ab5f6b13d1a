import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import CachePolicy from 'http-cache-semantics';
import type { Cache } from '@sluice/proto';
import type { BodyWriter, ResponseHeaders } from './compression.js';

// The Cache filter: a shared (RFC 9111) cache of GET responses in agent memory, one store per
// route (see filter-state.ts), bounded in bytes with least-recently-used eviction. The RFC's
// decisions (storable? fresh? how to revalidate? does a 304 refresh the entry?) are
// http-cache-semantics'; this file stores, looks up and replays.

/** Cache-Control directives that make a response ours to cache only by the default TTL. */
const EXPLICIT_FRESHNESS = /(?:^|[\s,])(?:s-maxage|max-age)\s*=/i;
/** Bytes counted per entry beyond body and headers (maps, policy object). */
const ENTRY_OVERHEAD = 512;
/** Variants (Vary) kept per URL; more are a sign of a Vary on something like User-Agent. */
const MAX_VARIANTS = 8;

/** Stored response headers: strings only (joined), hop-by-hop and identity headers already dropped. */
export type StoredHeaders = Record<string, string>;

export interface CacheEntry {
  policy: CachePolicy;
  readonly status: number;
  readonly headers: StoredHeaders;
  readonly body: Buffer;
  /** The request's values of the response's Vary fields. */
  readonly vary: readonly (readonly [string, string | undefined])[];
  readonly size: number;
}

/** Entries by URL key, each URL a list of variants; least recently used first. */
export class CacheStore {
  private readonly entries = new Map<string, CacheEntry[]>();
  private bytesUsed = 0;

  constructor(private maxBytes: number) {}

  get bytes(): number {
    return this.bytesUsed;
  }

  get size(): number {
    return this.entries.size;
  }

  resize(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.evict();
  }

  /** The variants stored for `key`, marked as used. */
  get(key: string): CacheEntry[] | undefined {
    const variants = this.entries.get(key);
    if (variants !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, variants);
    }
    return variants;
  }

  /** Stores `entry`, replacing the variant with the same Vary values. */
  put(key: string, entry: CacheEntry): void {
    if (entry.size > this.maxBytes) return;
    const old = this.entries.get(key) ?? [];
    const variants: CacheEntry[] = [];
    for (const v of old) {
      if (sameVary(v.vary, entry.vary) || variants.length >= MAX_VARIANTS - 1) this.bytesUsed -= v.size;
      else variants.push(v);
    }
    variants.push(entry);
    this.bytesUsed += entry.size;
    this.entries.delete(key);
    this.entries.set(key, variants);
    this.evict();
  }

  /** Drops every variant stored for `key`. */
  delete(key: string): void {
    const variants = this.entries.get(key);
    if (variants === undefined) return;
    this.entries.delete(key);
    for (const v of variants) this.bytesUsed -= v.size;
  }

  /** Drops one variant (a response that says it must not be reused any more). */
  remove(key: string, entry: CacheEntry): void {
    const variants = this.entries.get(key);
    if (variants === undefined || !variants.includes(entry)) return;
    this.bytesUsed -= entry.size;
    const rest = variants.filter((v) => v !== entry);
    if (rest.length === 0) this.entries.delete(key);
    else this.entries.set(key, rest);
  }

  private evict(): void {
    for (const [key, variants] of this.entries) {
      if (this.bytesUsed <= this.maxBytes) return;
      this.entries.delete(key);
      for (const v of variants) this.bytesUsed -= v.size;
    }
  }
}

function sameVary(a: CacheEntry['vary'], b: CacheEntry['vary']): boolean {
  return a.length === b.length && a.every(([name, value], i) => b[i]?.[0] === name && b[i]?.[1] === value);
}

/** What a cached route does with one request. */
export type CacheLookup =
  /** Fresh: answer from the entry. */
  | { readonly kind: 'hit'; readonly entry: CacheEntry }
  /** Go to the backend; `stale`, with `conditional` headers, is revalidated (a 304 refreshes it). */
  | { readonly kind: 'miss'; readonly stale: CacheEntry | undefined; readonly conditional: readonly string[] }
  /** Not for the cache (method, Authorization, no-store): neither looked up nor stored. */
  | { readonly kind: 'bypass' }
  /** An unsafe method (POST, PUT, DELETE, ...): a success drops the stored responses for its URL (RFC 9111 §4.4). */
  | { readonly kind: 'invalidate' };

const BYPASS: CacheLookup = { kind: 'bypass' };
const INVALIDATE: CacheLookup = { kind: 'invalidate' };
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const NO_HEADERS: readonly string[] = [];

export class CompiledCache {
  /** Largest body stored (0 in the config: maxBytes / 16). */
  readonly maxEntryBytes: number;
  private readonly defaultTtlSeconds: number;

  constructor(
    config: Cache,
    readonly store: CacheStore,
  ) {
    this.maxEntryBytes = config.maxEntryBytes || Math.max(1, Math.floor(config.maxBytes / 16));
    this.defaultTtlSeconds = Math.ceil(config.defaultTtlMs / 1000);
  }

  lookup(req: IncomingMessage, key: string): CacheLookup {
    const method = req.method;
    if (method === undefined || !SAFE_METHODS.has(method)) return INVALIDATE;
    if ((method !== 'GET' && method !== 'HEAD') || req.headers.authorization !== undefined) return BYPASS;
    const cc = req.headers['cache-control'];
    if (cc !== undefined && /(?:^|[\s,])no-store(?:$|[\s,])/i.test(cc)) return BYPASS;
    const variants = this.store.get(key);
    const entry = variants?.find((v) => varyMatches(v, req.headers));
    if (entry === undefined) return { kind: 'miss', stale: undefined, conditional: NO_HEADERS };
    const result = entry.policy.evaluateRequest(policyRequest(req, key));
    if (result.response !== undefined && result.revalidation === undefined) return { kind: 'hit', entry };
    // A client with validators of its own gets the backend's answer to them, untouched.
    if (hasConditional(req.headers) || (entry.headers.etag === undefined && entry.headers['last-modified'] === undefined)) {
      return { kind: 'miss', stale: undefined, conditional: NO_HEADERS };
    }
    const revalidation = entry.policy.revalidationHeaders(policyRequest(req, key));
    const conditional: string[] = [];
    for (const name of ['if-none-match', 'if-modified-since'] as const) {
      const value = revalidation[name];
      if (typeof value === 'string') conditional.push(name, value);
    }
    return { kind: 'miss', stale: conditional.length > 0 ? entry : undefined, conditional };
  }

  /**
   * A backend response to a GET that missed: the entry to store once its body is complete,
   * or undefined when it must not (or need not) be stored.
   */
  storable(req: IncomingMessage, key: string, status: number, headers: ResponseHeaders): Omit<CacheEntry, 'body' | 'size'> | undefined {
    if (req.method !== 'GET' || headers['set-cookie'] !== undefined) return undefined;
    const length = headers['content-length'];
    if (length !== undefined && Number(length) > this.maxEntryBytes) return undefined;
    const stored = storedHeaders(headers);
    const policy = this.policy(req, key, status, stored);
    if (!policy.storable() || policy.timeToLive() <= 0) return undefined;
    const varyHeader = stored.vary;
    const names = varyHeader === undefined ? [] : varyHeader.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (names.includes('*')) return undefined;
    const vary = names.map((name) => [name, joined(req.headers[name])] as const);
    return { policy, status, headers: stored, vary };
  }

  /** A 304 to our revalidation of `entry`: refreshes it in place; false when the 304 does not match it. */
  refresh(req: IncomingMessage, key: string, entry: CacheEntry, headers: ResponseHeaders): boolean {
    const { policy, modified } = entry.policy.revalidatedPolicy(policyRequest(req, key), { status: 304, headers: storedHeaders(headers) });
    if (modified) return false;
    entry.policy = policy;
    for (const name of ['cache-control', 'date', 'expires', 'etag', 'last-modified'] as const) {
      const value = joined(headers[name]);
      if (value !== undefined) entry.headers[name] = value;
    }
    return true;
  }

  private policy(req: IncomingMessage, key: string, status: number, headers: StoredHeaders): CachePolicy {
    let forPolicy = headers;
    if (this.defaultTtlSeconds > 0 && headers.expires === undefined && !EXPLICIT_FRESHNESS.test(headers['cache-control'] ?? '')) {
      // The default TTL stands in for the freshness the backend did not give (the client never sees it).
      const cc = headers['cache-control'];
      forPolicy = { ...headers, 'cache-control': cc === undefined ? `s-maxage=${this.defaultTtlSeconds}` : `${cc}, s-maxage=${this.defaultTtlSeconds}` };
    }
    // No heuristic freshness: without max-age, Expires or a default TTL, nothing is reused.
    return new CachePolicy(policyRequest(req, key), { status, headers: forPolicy }, { shared: true, cacheHeuristic: 0, immutableMinTimeToLive: 0 });
  }
}

/** The request as the policy sees it: HEAD looks up GET entries. */
function policyRequest(req: IncomingMessage, key: string): CachePolicy.Request {
  return { url: key, method: 'GET', headers: req.headers };
}

function varyMatches(entry: CacheEntry, headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of entry.vary) if (joined(headers[name]) !== value) return false;
  return true;
}

function hasConditional(headers: IncomingHttpHeaders): boolean {
  return headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined || headers['if-match'] !== undefined || headers['if-unmodified-since'] !== undefined || headers['if-range'] !== undefined;
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function storedHeaders(headers: ResponseHeaders): StoredHeaders {
  const out: StoredHeaders = {};
  for (const name in headers) {
    const value = joined(headers[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The headers a stored entry is served with: a copy, with Age and X-Cache. */
export function servedHeaders(entry: CacheEntry, xCache: string): ResponseHeaders {
  const out: ResponseHeaders = { ...entry.headers };
  // A backend that streamed (chunked) is answered from memory with the length known.
  out['content-length'] = String(entry.body.length);
  out.age = String(Math.floor(entry.policy.age()));
  out['x-cache'] = xCache;
  return out;
}

/**
 * Does the client's own validator match the entry (If-None-Match, else If-Modified-Since)?
 * Then a 304 answers it (RFC 9110 §13.2.2), from the cache.
 */
export function notModified(entry: CacheEntry, headers: IncomingHttpHeaders): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) {
    const etag = entry.headers.etag;
    if (etag === undefined) return false;
    const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
    return inm.trim() === '*' || inm.split(',').some((t) => opaque(t) === opaque(etag));
  }
  const ims = headers['if-modified-since'];
  const lastModified = entry.headers['last-modified'];
  if (ims === undefined || lastModified === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lastModified);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

/** Headers a 304 from the cache carries (RFC 9110 §15.4.5). */
export function notModifiedHeaders(entry: CacheEntry): ResponseHeaders {
  const served = servedHeaders(entry, 'HIT');
  const out: ResponseHeaders = {};
  for (const name of ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'age', 'x-cache']) {
    if (served[name] !== undefined) out[name] = served[name];
  }
  return out;
}

/**
 * Passes a backend body through to `next` and keeps a copy; at the end, stores it if it is
 * complete and within the per-entry cap. An aborted response never reaches end(): nothing
 * half-received is stored.
 */
export class CacheTap implements BodyWriter {
  private chunks: Buffer[] | undefined = [];
  private bytes = 0;

  constructor(
    private readonly next: BodyWriter,
    private readonly cache: CompiledCache,
    private readonly key: string,
    private readonly pending: Omit<CacheEntry, 'body' | 'size'>,
  ) {}

  write(chunk: Buffer): boolean {
    if (this.chunks !== undefined) {
      this.bytes += chunk.length;
      if (this.bytes > this.cache.maxEntryBytes) this.chunks = undefined;
      else this.chunks.push(chunk);
    }
    return this.next.write(chunk);
  }

  end(): void {
    const chunks = this.chunks;
    const length = this.pending.headers['content-length'];
    if (chunks !== undefined && (length === undefined || Number(length) === this.bytes)) {
      const body = Buffer.concat(chunks, this.bytes);
      let headerBytes = 0;
      for (const name in this.pending.headers) headerBytes += name.length + (this.pending.headers[name]?.length ?? 0);
      this.cache.store.put(this.key, { ...this.pending, body, size: body.length + headerBytes + ENTRY_OVERHEAD });
    }
    this.chunks = undefined;
    this.next.end();
  }

  once(event: 'drain', listener: () => void): unknown {
    return this.next.once(event, listener);
  }
}

/** After a 304 refreshed a stale entry: the backend's (empty) body is ignored, the stored one goes out. */
export class Replay implements BodyWriter {
  constructor(
    private readonly next: BodyWriter,
    private readonly body: Buffer,
  ) {}

  write(): boolean {
    return true;
  }

  end(): void {
    if (this.body.length > 0) this.next.write(this.body);
    this.next.end();
  }

  once(event: 'drain', listener: () => void): unknown {
    return this.next.once(event, listener);
  }
}
