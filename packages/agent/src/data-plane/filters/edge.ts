import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { clientAddress, sendError } from '../http-proxy.js';
import { normalizeHost } from '../router.js';
import { CacheTap, notModified, notModifiedHeaders, Replay, servedHeaders, type CacheEntry, type CompiledCache } from './cache.js';
import { filterClientAddress } from './client-ip.js';
import type { BodyWriter, CompiledCompression, ResponseHeaders } from './compression.js';
import type { CompiledHeaderModifier } from './header-modifier.js';
import type { CompiledIpAccess } from './ip-access.js';
import { retryAfterSeconds, type RateLimiter } from './rate-limit.js';

// The edge filters on the request path, in order: IPAccess (403), RateLimit (429), Cache
// (answer from memory, or revalidate), then on the way back Cache (store) and Compression.
// http-proxy calls in at two points: onEdgeRequest() once the route is known, and
// EdgeExchange.onResponse() when the backend's headers arrive.

export interface EdgeFilters {
  readonly ipAccess: CompiledIpAccess | undefined;
  readonly rateLimit: RateLimiter | undefined;
  readonly cache: CompiledCache | undefined;
  readonly compression: CompiledCompression | undefined;
  readonly responseHeaders: CompiledHeaderModifier | undefined;
}

/** The request was answered here (403, 429, or from the cache). */
export const ANSWERED = Symbol('answered');

/**
 * Runs the request-side edge filters. Returns ANSWERED when they answered, an EdgeExchange
 * when the response needs the response-side filters, undefined when it does not. `path` is
 * the normalized path, `search` the query with its "?" ("" for none).
 */
export function onEdgeRequest(
  filters: EdgeFilters,
  req: IncomingMessage,
  res: ServerResponse,
  trusted: BlockList | undefined,
  host: string | undefined,
  path: string,
  search: string,
): EdgeExchange | undefined | typeof ANSWERED {
  if (filters.ipAccess !== undefined || filters.rateLimit !== undefined) {
    const client = filterClientAddress(req, clientAddress(req), trusted);
    if (filters.ipAccess !== undefined && !filters.ipAccess.allows(client)) {
      sendError(res, 403, 'forbidden', hasBody(req));
      return ANSWERED;
    }
    const limiter = filters.rateLimit;
    if (limiter !== undefined) {
      const waitMs = limiter.take(limiter.keyOf(req, client));
      if (waitMs > 0) {
        res.setHeader('retry-after', retryAfterSeconds(waitMs));
        sendError(res, 429, 'too many requests', hasBody(req));
        return ANSWERED;
      }
    }
  }
  const cache = filters.cache;
  if (cache === undefined) return filters.compression === undefined ? undefined : new EdgeExchange(filters, req, res, '', undefined, undefined);
  const key = `${normalizeHost(host ?? '')}${path}${search}`;
  const lookup = cache.lookup(req, key);
  switch (lookup.kind) {
    case 'hit':
      serveEntry(filters, req, res, lookup.entry);
      return ANSWERED;
    case 'miss':
      return new EdgeExchange(filters, req, res, key, lookup.stale, lookup.conditional);
    case 'bypass':
      return filters.compression === undefined ? undefined : new EdgeExchange(filters, req, res, key, undefined, undefined);
    case 'invalidate':
      return new EdgeExchange(filters, req, res, key, undefined, undefined, true);
  }
}

/** A refused request's unread body is not drained for keep-alive: the connection closes instead. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

function serveEntry(filters: EdgeFilters, req: IncomingMessage, res: ServerResponse, entry: CacheEntry): void {
  if (notModified(entry, req.headers)) {
    const headers = notModifiedHeaders(entry);
    filters.responseHeaders?.applyToObject(headers);
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const headers = servedHeaders(entry, 'HIT');
  const writer = filters.compression?.start(req.method ?? 'GET', req.headers, entry.status, headers, res) ?? res;
  filters.responseHeaders?.applyToObject(headers);
  res.writeHead(entry.status, headers);
  if (req.method !== 'HEAD' && entry.body.length > 0) writer.write(entry.body);
  writer.end();
}

/** One proxied request's response-side edge filters. */
export class EdgeExchange {
  /** Where the body goes once onResponse() ran: the client's response or a stream in front of it. */
  writer: BodyWriter;

  constructor(
    private readonly filters: EdgeFilters,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly key: string,
    /** A stale entry this request revalidates. */
    private readonly stale: CacheEntry | undefined,
    /** Conditional headers for the revalidation ([name, value, ...]); undefined: no cache. */
    private readonly conditional: readonly string[] | undefined,
    /** An unsafe request: a success drops the stored responses for its URL. */
    private readonly invalidates = false,
  ) {
    this.writer = res;
  }

  /** Adds the revalidation's conditional headers to the upstream request's header list. */
  addRequestHeaders(list: string[]): void {
    if (this.conditional !== undefined) for (const h of this.conditional) list.push(h);
  }

  /**
   * The backend's status and headers (hop-by-hop ones gone): stores, replays or compresses,
   * rewriting `headers` in place. Returns the status to send.
   */
  onResponse(status: number, headers: ResponseHeaders): number {
    const cache = this.filters.cache;
    if (this.invalidates && status < 400) cache?.store.delete(this.key);
    let tap: ((next: BodyWriter) => BodyWriter) | undefined;
    if (cache !== undefined && this.conditional !== undefined) {
      const stale = this.stale;
      if (stale !== undefined && status === 304 && cache.refresh(this.req, this.key, stale, headers)) {
        for (const name in headers) delete headers[name];
        Object.assign(headers, servedHeaders(stale, 'REVALIDATED'));
        status = stale.status;
        tap = (next) => new Replay(next, this.req.method === 'HEAD' ? Buffer.alloc(0) : stale.body);
      } else {
        if (stale !== undefined) cache.store.remove(this.key, stale);
        const pending = status === 304 ? undefined : cache.storable(this.req, this.key, status, headers);
        if (pending !== undefined) tap = (next) => new CacheTap(next, cache, this.key, pending);
        headers['x-cache'] = 'MISS';
      }
    }
    const compressed = this.filters.compression?.start(this.req.method ?? 'GET', this.req.headers, status, headers, this.res);
    const next = compressed ?? this.res;
    this.writer = tap === undefined ? next : tap(next);
    return status;
  }
}
