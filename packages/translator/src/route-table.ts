import { CACHE_PURGE_ANNOTATION, type Listener, type Route } from '@sluice/api';
import {
  MatchType,
  ResourceType,
  type HeaderModifier,
  type HttpFilter,
  type HttpRoute,
  type RouteTable,
  type VirtualHost,
} from '@sluice/proto';
import { report, resolveBackend, type Context } from './context.js';
import { ms } from './cluster.js';
import { makeResource, type DataPlaneResource, type ResourceRef } from './data-plane-resource.js';
import { compareAge, nameOf, refName, sourceOf } from './inputs.js';
import { compareStrings } from './resource-key.js';

type Rule = Route['spec']['rules'][number];
type Filter = NonNullable<Rule['filters']>[number];
type Match = Rule['matches'][number];
type PathType = NonNullable<Match['path']>['type'];

const MATCH_TYPE: Record<PathType, MatchType> = {
  Exact: MatchType.MATCH_TYPE_EXACT,
  PathPrefix: MatchType.MATCH_TYPE_PATH_PREFIX,
  RegularExpression: MatchType.MATCH_TYPE_REGULAR_EXPRESSION,
};

/** Gateway API precedence of path match types: Exact, then PathPrefix, then RegularExpression. */
const PATH_RANK: Record<PathType, number> = { Exact: 0, PathPrefix: 1, RegularExpression: 2 };

/** One rule x one match of a Route: one HttpRoute, with what its precedence is computed from. */
interface CompiledMatch {
  route: Route;
  rule: number;
  match: number;
  pathType: PathType;
  pathValue: string;
  hasMethod: boolean;
  headers: number;
  queryParams: number;
  http: HttpRoute;
}

/** A Route translated once, whatever number of listeners it attaches to. */
export interface CompiledRoute {
  route: Route;
  /** Lower-cased; `*` when the Route names none. */
  hostnames: string[];
  matches: CompiledMatch[];
  refs: ResourceRef[];
}

function headerModifier(m: { set?: { name: string; value: string }[]; add?: { name: string; value: string }[]; remove?: string[] }): HeaderModifier {
  return {
    set: (m.set ?? []).map((h) => ({ name: h.name, value: h.value })),
    add: (m.add ?? []).map((h) => ({ name: h.name, value: h.value })),
    remove: [...(m.remove ?? [])],
  };
}

function pathModifier(p: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string | undefined; replacePrefixMatch?: string | undefined } | undefined) {
  if (p === undefined) return undefined;
  return p.type === 'ReplaceFullPath'
    ? { $case: 'replaceFullPath' as const, value: p.replaceFullPath ?? '/' }
    : { $case: 'replacePrefixMatch' as const, value: p.replacePrefixMatch ?? '/' };
}

/** One API filter -> one wire filter (undefined: dropped, with a problem already reported). */
function translateFilter(ctx: Context, route: Route, f: Filter, field: string, refs: ResourceRef[]): HttpFilter | undefined {
  switch (f.type) {
    case 'RequestHeaderModifier':
      return f.requestHeaderModifier && { filter: { $case: 'requestHeaderModifier', value: headerModifier(f.requestHeaderModifier) } };
    case 'ResponseHeaderModifier':
      return f.responseHeaderModifier && { filter: { $case: 'responseHeaderModifier', value: headerModifier(f.responseHeaderModifier) } };
    case 'URLRewrite':
      return (
        f.urlRewrite && {
          filter: { $case: 'urlRewrite', value: { hostname: f.urlRewrite.hostname ?? '', path: pathModifier(f.urlRewrite.path) } },
        }
      );
    case 'RequestRedirect': {
      const r = f.requestRedirect;
      return (
        r && {
          filter: {
            $case: 'requestRedirect',
            value: { scheme: r.scheme ?? '', hostname: r.hostname ?? '', port: r.port ?? 0, statusCode: r.statusCode, path: pathModifier(r.path) },
          },
        }
      );
    }
    case 'Compression': {
      const c = f.compression;
      return (
        c && {
          filter: { $case: 'compression', value: { algorithms: [...(c.algorithms ?? [])], minBytes: c.minBytes ?? 0, contentTypes: [...(c.contentTypes ?? [])] } },
        }
      );
    }
    case 'Cache': {
      const c = f.cache;
      if (c === undefined) return undefined;
      const purgeToken = route.metadata.annotations?.[CACHE_PURGE_ANNOTATION] ?? '';
      return { filter: { $case: 'cache', value: { maxBytes: c.maxBytes, defaultTtlMs: ms(c.defaultTTL), purgeToken, maxEntryBytes: c.maxEntryBytes ?? 0 } } };
    }
    case 'RateLimit': {
      const r = f.rateLimit;
      if (r === undefined) return undefined;
      const rps = Math.ceil(r.requestsPerSecond);
      if (rps !== r.requestsPerSecond) {
        report(ctx, route, `${field}.rateLimit.requestsPerSecond: fractional rates are not supported by the data plane yet: ${r.requestsPerSecond} is rounded up to ${rps}`);
      }
      return {
        filter: {
          $case: 'rateLimit',
          value: {
            requestsPerSecond: rps,
            burst: r.burst ?? rps,
            key: r.key.header !== undefined ? { key: { $case: 'header', value: r.key.header.toLowerCase() } } : { key: { $case: 'sourceIp', value: true } },
          },
        },
      };
    }
    case 'IPAccess':
      return f.ipAccess && { filter: { $case: 'ipAccess', value: { allow: [...(f.ipAccess.allow ?? [])], deny: [...(f.ipAccess.deny ?? [])] } } };
    case 'RequestMirror': {
      const m = f.requestMirror;
      if (m === undefined) return undefined;
      const name = refName(m.backendRef, route.metadata.namespace ?? 'default');
      if (!ctx.inputs.upstreams.has(name)) {
        report(ctx, route, `${field}.requestMirror.backendRef: Upstream ${name} not found: requests are not mirrored`);
        return undefined;
      }
      refs.push({ type: ResourceType.RESOURCE_TYPE_CLUSTER, name });
      return { filter: { $case: 'requestMirror', value: { cluster: name, percent: Math.round(m.percent ?? 100) } } };
    }
  }
}

function byNameTypeValue(a: { name: string; type: string; value: string }, b: { name: string; type: string; value: string }): number {
  return compareStrings(a.name, b.name) || compareStrings(a.type, b.type) || compareStrings(a.value, b.value);
}

/** Route -> one HttpRoute per rule x match, named `<ns>/<route>/rule/<i>/match/<j>`. */
export function compileRoute(ctx: Context, route: Route): CompiledRoute {
  const refs: ResourceRef[] = [];
  const source = sourceOf(route);
  const matches: CompiledMatch[] = [];
  route.spec.rules.forEach((rule, i) => {
    const field = `spec.rules[${i}]`;
    // Backends and filters are shared by the rule's matches: translated (and reported) once.
    const backends = (rule.backendRefs ?? []).map((b, j) => resolveBackend(ctx, route, b, `${field}.backendRefs[${j}]`, refs));
    const filters = (rule.filters ?? []).flatMap((f, k) => translateFilter(ctx, route, f, `${field}.filters[${k}]`, refs) ?? []);
    rule.matches.forEach((m, j) => {
      const path = m.path ?? { type: 'PathPrefix' as const, value: '/' };
      const headers = (m.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), type: MATCH_TYPE[h.type], value: h.value })).sort(byNameTypeValue);
      const queryParams = (m.queryParams ?? []).map((q) => ({ name: q.name, type: MATCH_TYPE[q.type], value: q.value })).sort(byNameTypeValue);
      const http: HttpRoute = {
        source,
        name: `${nameOf(route)}/rule/${i}/match/${j}`,
        match: { path: { type: MATCH_TYPE[path.type], value: path.value }, method: m.method ?? '', headers, queryParams },
        filters,
        backends,
        requestTimeoutMs: ms(rule.timeouts?.request),
        backendRequestTimeoutMs: ms(rule.timeouts?.backendRequest),
        // The API's documented default is spelled out so the agent need not know it.
        retry:
          rule.retry === undefined
            ? undefined
            : { attempts: rule.retry.attempts, on: [...(rule.retry.on ?? ['connect-failure'])], perTryTimeoutMs: ms(rule.retry.perTryTimeout) },
      };
      matches.push({
        route,
        rule: i,
        match: j,
        pathType: path.type,
        pathValue: path.value,
        hasMethod: m.method !== undefined,
        headers: headers.length,
        queryParams: queryParams.length,
        http,
      });
    });
  });
  const hostnames = route.spec.hostnames === undefined || route.spec.hostnames.length === 0 ? ['*'] : route.spec.hostnames.map((h) => h.toLowerCase());
  return { route, hostnames: [...new Set(hostnames)].sort(compareStrings), matches, refs };
}

/**
 * Gateway API precedence: Exact before PathPrefix before RegularExpression; the longer
 * path first; a method match first; more header matches, then more query matches first;
 * then the older Route, then namespace/name; then rule and match order within the Route.
 */
export function compareMatches(a: CompiledMatch, b: CompiledMatch): number {
  return (
    PATH_RANK[a.pathType] - PATH_RANK[b.pathType] ||
    (a.pathType === 'RegularExpression' ? 0 : b.pathValue.length - a.pathValue.length) ||
    Number(b.hasMethod) - Number(a.hasMethod) ||
    b.headers - a.headers ||
    b.queryParams - a.queryParams ||
    compareAge(a.route, b.route) ||
    a.rule - b.rule ||
    a.match - b.match
  );
}

/**
 * The ROUTE_TABLE of an HTTP/HTTPS listener (named like it) from the Routes attached to it;
 * empty when none is (the agent answers 404). Each hostname gets the matches of every Route
 * naming it, in precedence order; hostnames with the same list share one virtual host.
 */
export function buildRouteTable(listener: Listener, routes: readonly CompiledRoute[]): DataPlaneResource {
  const name = nameOf(listener);
  const byHost = new Map<string, CompiledMatch[]>();
  for (const r of routes) {
    for (const h of r.hostnames) {
      const list = byHost.get(h) ?? [];
      list.push(...r.matches);
      byHost.set(h, list);
    }
  }
  const groups = new Map<string, { domains: string[]; matches: CompiledMatch[] }>();
  for (const [host, matches] of byHost) {
    matches.sort(compareMatches);
    const signature = matches.map((m) => m.http.name).join('\n');
    const group = groups.get(signature) ?? { domains: [], matches };
    group.domains.push(host);
    groups.set(signature, group);
  }
  const virtualHosts: VirtualHost[] = [...groups.values()]
    .map((g) => {
      const domains = g.domains.sort(compareStrings);
      return { name: domains.join(','), domains, routes: g.matches.map((m) => m.http) };
    })
    .sort((a, b) => compareStrings(a.name, b.name));
  const table: RouteTable = { virtualHosts };
  return makeResource(
    name,
    { $case: 'routeTable', value: table },
    [sourceOf(listener), ...routes.map((r) => sourceOf(r.route))],
    routes.flatMap((r) => r.refs),
  );
}
