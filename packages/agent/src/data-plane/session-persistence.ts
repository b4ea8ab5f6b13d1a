import type { IncomingHttpHeaders } from 'node:http';
import { SessionPersistence_Type, type SessionPersistence as SessionPersistenceConfig } from '@sluice/proto';
import { cookieValue, hash32, mix32 } from './balancers/hash.js';

// Session persistence (sticky sessions), before and independent of the balancing policy:
// - Cookie: the agent names the endpoint that served a client in a cookie whose value is the
//   endpoint's opaque wire id (a hash of upstream, address and port: never the address), and
//   sends the client back there while it is eligible. Otherwise the policy picks, and the
//   cookie is issued again for the new endpoint.
// - Header / SourceIP: the header value or the client address is hashed to an eligible
//   endpoint by weighted rendezvous hashing: the same key keeps its endpoint while that one is
//   eligible, and only the keys of an endpoint that leaves move.
// Eligible: in rotation (weight > 0, healthy or the cluster in panic) and not ejected.

export interface AffinityEndpoint {
  readonly id: string;
  readonly weight: number;
}

/** What the request asks for: an endpoint to pin to, and (Cookie) the id its cookie named. */
export interface Affinity<E> {
  /** The eligible endpoint the request is pinned to, or undefined: let the policy pick. */
  readonly endpoint: E | undefined;
  /** Cookie: the id the request's cookie named ('' = none); a response from another endpoint re-issues the cookie. */
  readonly cookieId: string;
}

export interface SessionAffinity<E extends AffinityEndpoint> {
  readonly type: 'cookie' | 'header' | 'source-ip';
  /** `eligible` tells whether an endpoint of the set may take traffic now (not ejected). */
  find(headers: IncomingHttpHeaders, clientAddress: string, eligible: (e: E) => boolean): Affinity<E>;
  /** Cookie: the Set-Cookie value for a response from `endpoint` to a request that named `cookieId`. */
  setCookie(endpoint: E, cookieId: string): string | undefined;
}

const NONE: Affinity<never> = { endpoint: undefined, cookieId: '' };

/** undefined when the cluster has no session persistence. `endpoints`: those in rotation. */
export function compileSessionAffinity<E extends AffinityEndpoint>(
  config: SessionPersistenceConfig | undefined,
  endpoints: readonly E[],
): SessionAffinity<E> | undefined {
  switch (config?.type) {
    case undefined:
    case SessionPersistence_Type.TYPE_UNSPECIFIED:
    case SessionPersistence_Type.UNRECOGNIZED:
      return undefined;
    case SessionPersistence_Type.TYPE_COOKIE:
      return new CookieAffinity(config.cookieName, config.ttlMs, endpoints);
    case SessionPersistence_Type.TYPE_HEADER: {
      const name = config.headerName.toLowerCase();
      return new HashAffinity('header', endpoints, (headers) => {
        const value = headers[name];
        return typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined;
      });
    }
    case SessionPersistence_Type.TYPE_SOURCE_IP:
      return new HashAffinity('source-ip', endpoints, (_headers, clientAddress) => (clientAddress === '' ? undefined : clientAddress));
  }
}

class CookieAffinity<E extends AffinityEndpoint> implements SessionAffinity<E> {
  readonly type = 'cookie';
  private readonly byId = new Map<string, E>();
  private readonly attributes: string;

  constructor(
    private readonly name: string,
    ttlMs: number,
    endpoints: readonly E[],
  ) {
    for (const e of endpoints) this.byId.set(e.id, e);
    // No Max-Age without a ttl: a session cookie, gone when the browser closes.
    this.attributes = `; Path=/; HttpOnly${ttlMs > 0 ? `; Max-Age=${Math.max(1, Math.round(ttlMs / 1000))}` : ''}`;
  }

  find(headers: IncomingHttpHeaders, _clientAddress: string, eligible: (e: E) => boolean): Affinity<E> {
    const cookieId = headers.cookie === undefined ? undefined : cookieValue(headers.cookie, this.name);
    if (cookieId === undefined) return NONE;
    const endpoint = this.byId.get(cookieId);
    return { endpoint: endpoint !== undefined && eligible(endpoint) ? endpoint : undefined, cookieId };
  }

  setCookie(endpoint: E, cookieId: string): string | undefined {
    return endpoint.id === cookieId ? undefined : `${this.name}=${endpoint.id}${this.attributes}`;
  }
}

class HashAffinity<E extends AffinityEndpoint> implements SessionAffinity<E> {
  private readonly seeds: Uint32Array;

  constructor(
    readonly type: 'header' | 'source-ip',
    private readonly endpoints: readonly E[],
    private readonly key: (headers: IncomingHttpHeaders, clientAddress: string) => string | undefined,
  ) {
    this.seeds = Uint32Array.from(endpoints, (e) => hash32(e.id));
  }

  find(headers: IncomingHttpHeaders, clientAddress: string, eligible: (e: E) => boolean): Affinity<E> {
    const key = this.key(headers, clientAddress);
    if (key === undefined) return NONE;
    const endpoint = rendezvous(hash32(key), this.endpoints, this.seeds, eligible);
    return endpoint === undefined ? NONE : { endpoint, cookieId: '' };
  }

  setCookie(): undefined {
    return undefined;
  }
}

/**
 * Weighted rendezvous (highest random weight) hashing: each endpoint scores
 * weight / -ln(u), u uniform in (0, 1) from hash(key, endpoint); the highest eligible wins.
 * Shares follow the weights, and an endpoint leaving moves only its own keys.
 */
export function rendezvous<E extends AffinityEndpoint>(keyHash: number, endpoints: readonly E[], seeds: Uint32Array, eligible: (e: E) => boolean): E | undefined {
  let best: E | undefined;
  let bestScore = -1;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i] as E;
    if (e.weight <= 0 || !eligible(e)) continue;
    const u = (mix32(keyHash ^ (seeds[i] as number)) + 0.5) / 4294967296;
    const score = e.weight / -Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = e;
    }
  }
  return best;
}

/** RFC 6265 cookie-name (an RFC 9110 token) and field-name: the same character set. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Agent-side check of the wire message (DESIGN §9); the message names the field. */
export function validateSessionPersistence(config: SessionPersistenceConfig | undefined): string | undefined {
  switch (config?.type) {
    case undefined:
    case SessionPersistence_Type.TYPE_UNSPECIFIED:
    case SessionPersistence_Type.TYPE_SOURCE_IP:
      return undefined;
    case SessionPersistence_Type.UNRECOGNIZED:
      return 'session_persistence.type: unknown value';
    case SessionPersistence_Type.TYPE_COOKIE:
      return TOKEN.test(config.cookieName) ? undefined : `session_persistence.cookie_name: must be a cookie name (token), got "${config.cookieName}"`;
    case SessionPersistence_Type.TYPE_HEADER:
      return TOKEN.test(config.headerName) ? undefined : `session_persistence.header_name: must be a header name, got "${config.headerName}"`;
  }
}
