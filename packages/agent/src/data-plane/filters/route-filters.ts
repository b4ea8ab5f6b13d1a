import type { HttpFilter } from '@sluice/proto';
import { CompiledCache } from './cache.js';
import { CompiledCompression } from './compression.js';
import type { EdgeFilters } from './edge.js';
import { EPHEMERAL_SCOPE, type FilterScope } from './filter-state.js';
import { CompiledHeaderModifier } from './header-modifier.js';
import { CompiledIpAccess } from './ip-access.js';
import type { RateLimiter } from './rate-limit.js';
import { CompiledRequestRedirect } from './request-redirect.js';
import { CompiledUrlRewrite } from './url-rewrite.js';

/** A route's filters, compiled once per version. Unsupported ones are rejected by validate. */
export interface RouteFilters {
  readonly requestHeaders: CompiledHeaderModifier | undefined;
  readonly responseHeaders: CompiledHeaderModifier | undefined;
  readonly rewrite: CompiledUrlRewrite | undefined;
  readonly redirect: CompiledRequestRedirect | undefined;
  /** IPAccess, RateLimit, Cache, Compression (see edge.ts); undefined when the route has none. */
  readonly edge: EdgeFilters | undefined;
}

/** Filter names as users write them (Gateway API `type`), for messages. */
export const FILTER_NAMES = {
  requestHeaderModifier: 'RequestHeaderModifier',
  responseHeaderModifier: 'ResponseHeaderModifier',
  urlRewrite: 'URLRewrite',
  requestRedirect: 'RequestRedirect',
  compression: 'Compression',
  cache: 'Cache',
  rateLimit: 'RateLimit',
  ipAccess: 'IpAccess',
  requestMirror: 'RequestMirror',
} as const satisfies Record<NonNullable<HttpFilter['filter']>['$case'], string>;

export type FilterCase = keyof typeof FILTER_NAMES;

/** Implemented by this agent version; validate rejects the rest by name. */
export const SUPPORTED_FILTERS: ReadonlySet<FilterCase> = new Set([
  'requestHeaderModifier',
  'responseHeaderModifier',
  'urlRewrite',
  'requestRedirect',
  'compression',
  'cache',
  'rateLimit',
  'ipAccess',
]);

/** `scope` holds the state that outlives a version (cache stores, rate-limit buckets), per route name. */
export function compileRouteFilters(filters: readonly HttpFilter[], routeName = '', scope: FilterScope = EPHEMERAL_SCOPE): RouteFilters {
  let ipAccess: CompiledIpAccess | undefined;
  let rateLimit: RateLimiter | undefined;
  let cache: CompiledCache | undefined;
  let compression: CompiledCompression | undefined;
  let requestHeaders: CompiledHeaderModifier | undefined;
  let responseHeaders: CompiledHeaderModifier | undefined;
  let rewrite: CompiledUrlRewrite | undefined;
  let redirect: CompiledRequestRedirect | undefined;
  for (const { filter } of filters) {
    switch (filter?.$case) {
      case 'requestHeaderModifier':
        requestHeaders = new CompiledHeaderModifier(filter.value);
        break;
      case 'responseHeaderModifier':
        responseHeaders = new CompiledHeaderModifier(filter.value);
        break;
      case 'urlRewrite':
        rewrite = new CompiledUrlRewrite(filter.value);
        break;
      case 'requestRedirect':
        redirect = new CompiledRequestRedirect(filter.value);
        break;
      case 'compression':
        compression = new CompiledCompression(filter.value);
        break;
      case 'cache':
        cache = new CompiledCache(filter.value, scope.cacheStore(routeName, filter.value));
        break;
      case 'rateLimit':
        rateLimit = scope.rateLimiter(routeName, filter.value);
        break;
      case 'ipAccess':
        ipAccess = new CompiledIpAccess(filter.value);
        break;
      case 'requestMirror':
      case undefined:
        break;
    }
  }
  const edge = ipAccess !== undefined || rateLimit !== undefined || cache !== undefined || compression !== undefined ? { ipAccess, rateLimit, cache, compression, responseHeaders } : undefined;
  return { requestHeaders, responseHeaders, rewrite, redirect, edge };
}
