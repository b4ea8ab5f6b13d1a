import type { HttpFilter } from '@sluice/proto';
import { CompiledHeaderModifier } from './header-modifier.js';
import { CompiledRequestRedirect } from './request-redirect.js';
import { CompiledUrlRewrite } from './url-rewrite.js';

/** A route's filters, compiled once per version. Unsupported ones are rejected by validate. */
export interface RouteFilters {
  readonly requestHeaders: CompiledHeaderModifier | undefined;
  readonly responseHeaders: CompiledHeaderModifier | undefined;
  readonly rewrite: CompiledUrlRewrite | undefined;
  readonly redirect: CompiledRequestRedirect | undefined;
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
export const SUPPORTED_FILTERS: ReadonlySet<FilterCase> = new Set(['requestHeaderModifier', 'responseHeaderModifier', 'urlRewrite', 'requestRedirect']);

export function compileRouteFilters(filters: readonly HttpFilter[]): RouteFilters {
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
      case 'cache':
      case 'rateLimit':
      case 'ipAccess':
      case 'requestMirror':
      case undefined:
        break;
    }
  }
  return { requestHeaders, responseHeaders, rewrite, redirect };
}
