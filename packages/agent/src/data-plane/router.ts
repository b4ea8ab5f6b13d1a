import type { IncomingHttpHeaders } from 'node:http';
import { MatchType, type HeaderMatch, type HttpRoute, type QueryParamMatch, type RouteTable, type Source, type VirtualHost } from '@sluice/proto';
import { EPHEMERAL_SCOPE, type FilterScope } from './filters/filter-state.js';
import { compileRouteFilters, type RouteFilters } from './filters/route-filters.js';
import { SmoothWeighted } from './balancers/weighted-round-robin.js';
import { compileRetryPolicy, type RetryPolicy } from './retry-policy.js';

// A RouteTable compiled once per version into lookup structures: hosts in a map and a
// suffix list, routes as pre-built matchers. Matching a request allocates nothing unless a
// route matches on query parameters (parsed once, lazily).

const enum PathKind {
  Any,
  Exact,
  Prefix,
  Regex,
}

interface ValueMatcher {
  readonly name: string;
  readonly exact: string | undefined;
  readonly regex: RegExp | undefined;
}

export interface WeightedBackend {
  /** Cluster name; "" when the Upstream does not exist (the request gets a 503). */
  readonly cluster: string;
  readonly weight: number;
}

export class CompiledRoute {
  readonly name: string;
  readonly source: Source | undefined;
  readonly filters: RouteFilters;
  /** The route's backends in rotation (weight > 0), split by smooth weighted round robin. */
  readonly backends: SmoothWeighted<WeightedBackend>;
  readonly requestTimeoutMs: number;
  readonly perTryTimeoutMs: number;
  readonly retry: RetryPolicy;
  /** PathPrefix only: the prefix without a trailing slash ("" for "/"), for ReplacePrefixMatch. */
  readonly prefix: string;
  private readonly pathKind: PathKind;
  private readonly pathValue: string;
  private readonly pathRegex: RegExp | undefined;
  private readonly method: string;
  private readonly headers: readonly ValueMatcher[];
  readonly query: readonly ValueMatcher[];

  constructor(route: HttpRoute, scope: FilterScope = EPHEMERAL_SCOPE) {
    this.name = route.name;
    this.source = route.source;
    const path = route.match?.path;
    this.pathKind = PathKind.Any;
    this.pathValue = '';
    this.prefix = '';
    switch (path?.type) {
      case MatchType.MATCH_TYPE_EXACT:
        this.pathKind = PathKind.Exact;
        this.pathValue = path.value;
        break;
      case MatchType.MATCH_TYPE_PATH_PREFIX:
        this.prefix = path.value.endsWith('/') ? path.value.slice(0, -1) : path.value;
        // "/" (prefix "") matches everything.
        if (this.prefix !== '') this.pathKind = PathKind.Prefix;
        this.pathValue = `${this.prefix}/`;
        break;
      case MatchType.MATCH_TYPE_REGULAR_EXPRESSION:
        this.pathKind = PathKind.Regex;
        this.pathRegex = fullMatch(path.value);
        break;
      case MatchType.MATCH_TYPE_UNSPECIFIED:
      case MatchType.UNRECOGNIZED:
      case undefined:
        break;
    }
    this.method = route.match?.method ?? '';
    this.headers = (route.match?.headers ?? []).map(valueMatcher);
    this.query = (route.match?.queryParams ?? []).map(valueMatcher);
    this.filters = compileRouteFilters(route.filters, route.name, scope);
    this.backends = new SmoothWeighted(route.backends.filter((b) => b.weight > 0).map((b) => ({ cluster: b.cluster, weight: b.weight })));
    this.retry = compileRetryPolicy(route.retry);
    this.requestTimeoutMs = route.requestTimeoutMs;
    this.perTryTimeoutMs = route.retry?.perTryTimeoutMs || route.backendRequestTimeoutMs;
  }

  /** `query` is the raw query string (without "?"); `params` parses it on first use. */
  matches(method: string, path: string, headers: IncomingHttpHeaders, query: LazyQuery): boolean {
    switch (this.pathKind) {
      case PathKind.Any:
        break;
      case PathKind.Exact:
        if (path !== this.pathValue) return false;
        break;
      case PathKind.Prefix:
        // Segment-aware: "/api" takes "/api" and "/api/x", not "/apix".
        if (path !== this.prefix && !path.startsWith(this.pathValue)) return false;
        break;
      case PathKind.Regex:
        if (!(this.pathRegex as RegExp).test(path)) return false;
        break;
    }
    if (this.method !== '' && method !== this.method) return false;
    for (const m of this.headers) {
      const raw = headers[m.name];
      if (raw === undefined) return false;
      const value = typeof raw === 'string' ? raw : raw.join(', ');
      if (!matchValue(m, value)) return false;
    }
    if (this.query.length > 0) {
      const params = query.params();
      for (const m of this.query) {
        const value = params.get(m.name);
        if (value === null || !matchValue(m, value)) return false;
      }
    }
    return true;
  }
}

function matchValue(m: ValueMatcher, value: string): boolean {
  return m.regex !== undefined ? m.regex.test(value) : value === m.exact;
}

function valueMatcher(m: HeaderMatch | QueryParamMatch): ValueMatcher {
  const regex = m.type === MatchType.MATCH_TYPE_REGULAR_EXPRESSION;
  return { name: m.name.toLowerCase(), exact: regex ? undefined : m.value, regex: regex ? fullMatch(m.value) : undefined };
}

/** Regular-expression matches are full matches, as in Envoy and Gateway API. */
export function fullMatch(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

/** Query parameters of one request, parsed at most once and only when a route needs them. */
export class LazyQuery {
  private parsed: URLSearchParams | undefined;
  constructor(private readonly raw: string) {}
  params(): URLSearchParams {
    return (this.parsed ??= new URLSearchParams(this.raw));
  }
}

export class CompiledVirtualHost {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  constructor(vhost: VirtualHost, scope: FilterScope = EPHEMERAL_SCOPE) {
    this.name = vhost.name;
    this.routes = vhost.routes.map((r) => new CompiledRoute(r, scope));
  }

  match(method: string, path: string, headers: IncomingHttpHeaders, query: LazyQuery): CompiledRoute | undefined {
    for (const route of this.routes) {
      if (route.matches(method, path, headers, query)) return route;
    }
    return undefined;
  }
}

export class CompiledRouteTable {
  private readonly exact = new Map<string, CompiledVirtualHost>();
  /** ".example.com" suffixes, longest first. */
  private readonly wildcards: { suffix: string; vhost: CompiledVirtualHost }[] = [];
  private readonly any: CompiledVirtualHost | undefined;

  /** `scope`: where route filters keep state across versions (the data plane's FilterState). */
  constructor(table: RouteTable, scope: FilterScope = EPHEMERAL_SCOPE) {
    let any: CompiledVirtualHost | undefined;
    for (const vh of table.virtualHosts) {
      const compiled = new CompiledVirtualHost(vh, scope);
      for (const raw of vh.domains) {
        const domain = raw.toLowerCase();
        // The first virtual host to claim a domain keeps it (the translator sorts them).
        if (domain === '*') any ??= compiled;
        else if (domain.startsWith('*.')) {
          if (!this.wildcards.some((w) => w.suffix === domain.slice(1))) this.wildcards.push({ suffix: domain.slice(1), vhost: compiled });
        } else if (!this.exact.has(domain)) this.exact.set(domain, compiled);
      }
    }
    this.any = any;
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  /** Exact host, then the longest wildcard suffix, then "*". `host` is the Host header. */
  findVirtualHost(host: string | undefined): CompiledVirtualHost | undefined {
    const name = host === undefined ? '' : normalizeHost(host);
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    for (const w of this.wildcards) {
      // "*.example.com" takes "a.example.com" and "a.b.example.com", not "example.com".
      if (name.length > w.suffix.length && name.endsWith(w.suffix)) return w.vhost;
    }
    return this.any;
  }
}

/** "Shop.Example.com:8080" -> "shop.example.com"; "[::1]:80" -> "[::1]"; a trailing dot goes. */
export function normalizeHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    end = close < 0 ? end : close + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  const name = end === host.length ? host : host.slice(0, end);
  return name.toLowerCase();
}
