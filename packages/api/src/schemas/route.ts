import { z } from 'zod';
import { conditionsSchema } from '../meta.js';
import { checkedString, cidr, count, duration, headerName, hostname, namespaceName, objectName, port, positiveCount, regexProblem, weight } from './common.js';
import { envelope, inputStatus, namespacedMetadata, statusSchema } from './resource.js';
import { parseDuration } from '../duration.js';

/** Set by the purge endpoint to a fresh token; a new token starts the route's caches empty. */
export const CACHE_PURGE_ANNOTATION = 'sluice.io/cache-purge';

// ---- references -------------------------------------------------------------------------

const parentRefSchema = z
  .strictObject({
    name: objectName().describe('Name of a Listener to attach to.'),
    namespace: namespaceName().optional().describe("Namespace of the Listener. Default: the route's namespace."),
  })
  .describe('A Listener this route attaches to.');

const backendRefSchema = z
  .strictObject({
    name: objectName().describe('Name of an Upstream that receives the traffic.'),
    namespace: namespaceName().optional().describe("Namespace of the Upstream. Default: the route's namespace."),
    weight: weight()
      .default(1)
      .describe(
        'Share of traffic relative to the other backendRefs of the rule (integer 0-1000000; 0 sends none). Example: 90 and 10 split 90%/10%. Default: 1.',
      ),
  })
  .describe('An Upstream that receives traffic, with a weight for splits and canaries.');

const parentRefs = () =>
  z.array(parentRefSchema).min(1).describe('Listeners this route attaches to (at least one). Only listeners of a matching protocol accept it.');

const backendRefs = (what: string) =>
  z.array(backendRefSchema).describe(`Upstreams that receive ${what}, split by weight.`);

// ---- matches ----------------------------------------------------------------------------

const PATH_MATCH_TYPES = ['Exact', 'PathPrefix', 'RegularExpression'] as const;
const VALUE_MATCH_TYPES = ['Exact', 'RegularExpression'] as const;
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

const pathMatchSchema = z
  .strictObject({
    type: z
      .enum(PATH_MATCH_TYPES)
      .default('PathPrefix')
      .describe('Exact, PathPrefix (whole path segments: /api matches /api and /api/x, not /apix) or RegularExpression (JavaScript syntax, matched against the whole path). Default: PathPrefix.'),
    value: z.string().default('/').describe('The path, or the regular expression. Must start with "/" unless type is RegularExpression. Default: "/".'),
  })
  .superRefine((m, ctx) => {
    if (m.type === 'RegularExpression') {
      const p = regexProblem(m.value);
      if (p) ctx.addIssue({ code: 'custom', path: ['value'], message: p });
    } else if (!m.value.startsWith('/')) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `must start with "/" for type ${m.type}` });
    }
  })
  .describe('Match on the request path.');

function valueMatchSchema(what: string, nameSchema: z.ZodType<string>) {
  return z
    .strictObject({
      name: nameSchema.describe(`${what} name${what === 'Header' ? ' (case-insensitive)' : ''}.`),
      value: z.string().describe('Value to compare with, or the regular expression.'),
      type: z
        .enum(VALUE_MATCH_TYPES)
        .default('Exact')
        .describe('Exact or RegularExpression (JavaScript syntax, matched against the whole value). Default: Exact.'),
    })
    .superRefine((m, ctx) => {
      if (m.type === 'RegularExpression') {
        const p = regexProblem(m.value);
        if (p) ctx.addIssue({ code: 'custom', path: ['value'], message: p });
      }
    })
    .describe(`Match on a request ${what.toLowerCase()}.`);
}

const matchSchema = z
  .strictObject({
    path: pathMatchSchema.optional(),
    method: z.enum(HTTP_METHODS).optional().describe(`HTTP method to match: ${HTTP_METHODS.join(', ')}. Unset: any method.`),
    headers: z.array(valueMatchSchema('Header', headerName())).optional().describe('Headers that must all match.'),
    queryParams: z
      .array(valueMatchSchema('Query parameter', z.string().min(1)))
      .optional()
      .describe('Query parameters that must all match.'),
  })
  .describe('Conditions a request must meet, all of them, for the rule to apply.');

const DEFAULT_MATCHES = (): z.output<typeof matchSchema>[] => [{ path: { type: 'PathPrefix', value: '/' } }];

// ---- filters ----------------------------------------------------------------------------

const headerValueSchema = z
  .strictObject({ name: headerName().describe('Header name.'), value: z.string().describe('Header value.') })
  .describe('A header name and value.');

const headerModifierSchema = (which: string) =>
  z
    .strictObject({
      set: z.array(headerValueSchema).optional().describe(`${which} headers to set, replacing any existing value.`),
      add: z.array(headerValueSchema).optional().describe(`${which} headers to append, keeping existing values.`),
      remove: z.array(headerName()).optional().describe(`${which} header names to remove.`),
    })
    .describe(`Changes to ${which.toLowerCase()} headers.`);

const pathModifierSchema = z
  .strictObject({
    type: z.enum(['ReplaceFullPath', 'ReplacePrefixMatch']).describe('ReplaceFullPath or ReplacePrefixMatch (replaces the part matched by a PathPrefix match).'),
    replaceFullPath: z.string().optional().describe('New path, for type ReplaceFullPath.'),
    replacePrefixMatch: z.string().optional().describe('New prefix, for type ReplacePrefixMatch.'),
  })
  .superRefine((p, ctx) => {
    const needed = p.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    const other = p.type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
    const value = p[needed];
    if (value === undefined) ctx.addIssue({ code: 'custom', path: [needed], message: `Required value: type ${p.type} needs ${needed}` });
    else if (!value.startsWith('/')) ctx.addIssue({ code: 'custom', path: [needed], message: 'must start with "/"' });
    if (p[other] !== undefined) ctx.addIssue({ code: 'custom', path: [other], message: `must not be set when type is ${p.type}` });
  })
  .describe('How to change the path.');

const urlRewriteSchema = z
  .strictObject({
    hostname: hostname().optional().describe('New Host header sent to the backend.'),
    path: pathModifierSchema.optional(),
  })
  .describe('Rewrite the request URL before it is sent to the backend.');

const requestRedirectSchema = z
  .strictObject({
    scheme: z.enum(['http', 'https']).optional().describe('Scheme of the redirect: http or https. Unset: the request scheme.'),
    hostname: hostname().optional().describe('Host of the redirect. Unset: the request host.'),
    port: port().optional().describe('Port of the redirect. Unset: the default port of the scheme.'),
    path: pathModifierSchema.optional(),
    statusCode: z.literal([301, 302, 303, 307, 308]).default(302).describe('Redirect status: 301, 302, 303, 307 or 308. Default: 302.'),
  })
  .describe('Answer with a redirect instead of forwarding.');

const compressionSchema = z
  .strictObject({
    algorithms: z
      .array(z.enum(['br', 'gzip', 'deflate', 'zstd']))
      .min(1)
      .optional()
      .describe('Encodings offered, in preference order, matched against Accept-Encoding: br, gzip, deflate, zstd. Unset: [br, gzip].'),
    minBytes: count().optional().describe('Smallest response body, in bytes, worth compressing. Unset: 1024.'),
    contentTypes: z
      .array(z.string().min(1))
      .optional()
      .describe('Content types to compress; "text/*" matches a whole family. Unset: text/*, application/json, application/javascript, image/svg+xml.'),
  })
  .describe('Compress responses the client accepts compressed.');

const cacheSchema = z
  .strictObject({
    maxBytes: positiveCount().describe("Memory bound, in bytes, for this route's cache on each agent; least recently used entries are evicted."),
    maxEntryBytes: positiveCount().optional().describe('Largest single response body, in bytes, that is cached. Unset: maxBytes / 16.'),
    defaultTTL: duration()
      .optional()
      .describe('Freshness for cacheable responses without Cache-Control max-age or Expires (duration). Unset: such responses are not cached.'),
  })
  .describe('Cache GET and HEAD responses in agent memory, following Cache-Control.');

const rateLimitKeySchema = z
  .strictObject({
    sourceIP: z.boolean().optional().describe('true: one bucket per client IP address.'),
    header: headerName().optional().describe('One bucket per value of this request header (e.g. x-api-key); requests without it share one bucket.'),
  })
  .superRefine((k, ctx) => {
    const set = (k.sourceIP === true ? 1 : 0) + (k.header !== undefined ? 1 : 0);
    if (set !== 1) ctx.addIssue({ code: 'custom', message: 'must set exactly one of sourceIP: true or header' });
  })
  .describe('What requests are counted together. Exactly one of sourceIP or header.');

const rateLimitSchema = z
  .strictObject({
    requestsPerSecond: z.number().gt(0).describe('Sustained rate allowed per key, in requests per second (may be fractional, e.g. 0.5).'),
    burst: positiveCount().optional().describe('Requests allowed at once above the sustained rate (token bucket size). Unset: equal to requestsPerSecond, rounded up.'),
    key: rateLimitKeySchema.default(() => ({ sourceIP: true })).describe('What requests are counted together. Default: {sourceIP: true}.'),
  })
  .describe('Token-bucket rate limit per agent; requests over the limit get 429.');

const ipAccessSchema = z
  .strictObject({
    allow: z.array(cidr()).optional().describe('If set, only clients in these CIDRs (or IPs) are allowed.'),
    deny: z.array(cidr()).optional().describe('Clients in these CIDRs (or IPs) are refused with 403; deny wins over allow.'),
  })
  .superRefine((a, ctx) => {
    if (a.allow === undefined && a.deny === undefined) ctx.addIssue({ code: 'custom', message: 'must set allow, deny or both' });
  })
  .describe('Allow or deny clients by address. The client address honours the listener trustedProxies.');

const requestMirrorSchema = z
  .strictObject({
    backendRef: z
      .strictObject({
        name: objectName().describe('Name of the Upstream that receives the copies.'),
        namespace: namespaceName().optional().describe("Namespace of the Upstream. Default: the route's namespace."),
      })
      .describe('Upstream that receives a copy of each request; its responses are discarded.'),
    percent: z.number().min(0).max(100).optional().describe('Share of requests mirrored, 0-100. Unset: 100.'),
  })
  .describe('Send a copy of requests to another Upstream, fire and forget.');

export const FILTER_TYPES = [
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'URLRewrite',
  'RequestRedirect',
  'Compression',
  'Cache',
  'RateLimit',
  'IPAccess',
  'RequestMirror',
] as const;
export type FilterType = (typeof FILTER_TYPES)[number];

/** The config field each filter type carries, Gateway API style (`type: URLRewrite` + `urlRewrite: {...}`). */
export const FILTER_FIELDS = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  URLRewrite: 'urlRewrite',
  RequestRedirect: 'requestRedirect',
  Compression: 'compression',
  Cache: 'cache',
  RateLimit: 'rateLimit',
  IPAccess: 'ipAccess',
  RequestMirror: 'requestMirror',
} as const satisfies Record<FilterType, string>;

const filterSchema = z
  .strictObject({
    type: z.enum(FILTER_TYPES).describe(`Which filter this is: ${FILTER_TYPES.join(', ')}. The matching config field must be set, and no other.`),
    requestHeaderModifier: headerModifierSchema('Request').optional(),
    responseHeaderModifier: headerModifierSchema('Response').optional(),
    urlRewrite: urlRewriteSchema.optional(),
    requestRedirect: requestRedirectSchema.optional(),
    compression: compressionSchema.optional(),
    cache: cacheSchema.optional(),
    rateLimit: rateLimitSchema.optional(),
    ipAccess: ipAccessSchema.optional(),
    requestMirror: requestMirrorSchema.optional(),
  })
  .superRefine((f, ctx) => {
    const wanted = FILTER_FIELDS[f.type];
    if (f[wanted] === undefined) ctx.addIssue({ code: 'custom', path: [wanted], message: `Required value: type ${f.type} needs ${wanted}` });
    for (const field of Object.values(FILTER_FIELDS)) {
      if (field !== wanted && f[field] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: `must not be set when type is ${f.type}` });
      }
    }
  })
  .describe('A processing step applied to matching requests: a type and its config field.');

// ---- rules ------------------------------------------------------------------------------

export const RETRY_ON = ['connect-failure', 'gateway-error', '5xx', 'reset', 'retriable-4xx'] as const;

const retrySchema = z
  .strictObject({
    attempts: z.number().int().min(0).max(10).describe('Retries after the first try (0-10).'),
    on: z
      .array(z.enum(RETRY_ON))
      .optional()
      .describe(
        'Conditions that trigger a retry: connect-failure, gateway-error (502/503/504), 5xx, reset (connection reset before a response), retriable-4xx (409). Unset: [connect-failure].',
      ),
    perTryTimeout: duration().optional().describe('Timeout of each try (duration). Unset: only the rule request timeout applies.'),
  })
  .describe('Retry policy for the rule. Requests with a body are retried only while the body is still buffered.');

const ruleTimeoutsSchema = z
  .strictObject({
    request: duration().optional().describe('Total time for the request, from first byte received to response complete, including retries (duration). Unset: no limit.'),
    backendRequest: duration().optional().describe('Time for one try to the backend until the response headers arrive (duration). Unset: no limit.'),
  })
  .superRefine((t, ctx) => {
    const request = t.request === undefined ? undefined : parseDuration(t.request);
    const backend = t.backendRequest === undefined ? undefined : parseDuration(t.backendRequest);
    if (request !== undefined && backend !== undefined && backend > request) {
      ctx.addIssue({ code: 'custom', path: ['backendRequest'], message: `must not be longer than request (${t.request})` });
    }
  })
  .describe('Timeouts for requests matched by the rule.');

/** Filters that make no sense twice in one rule (Gateway API rule). */
const SINGLETON_FILTERS: readonly FilterType[] = FILTER_TYPES.filter((t) => t !== 'RequestMirror');

const ruleSchema = z
  .strictObject({
    name: checkedString((v) => (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) && v.length <= 63 ? undefined : `invalid rule name "${v}": must be a DNS-1123 label`))
      .optional()
      .describe('Optional rule name (DNS-1123 label), shown in logs and metrics.'),
    matches: z
      .array(matchSchema)
      .default(DEFAULT_MATCHES)
      .describe('The rule applies when any one of these matches. Default: [{path: {type: PathPrefix, value: /}}] (every request).'),
    filters: z.array(filterSchema).optional().describe('Filters applied in order to matching requests.'),
    backendRefs: backendRefs('matching requests')
      .optional()
      .describe('Upstreams that receive matching requests, split by weight. Unset or empty: the agent answers 500, unless a RequestRedirect filter answers.'),
    timeouts: ruleTimeoutsSchema.optional(),
    retry: retrySchema.optional(),
  })
  .superRefine(
    (rule, ctx) => {
      // Runs even when some filters are malformed: only each filter's `type` is read.
      const seen = new Map<FilterType, number>();
      for (const [i, f] of (rule.filters ?? []).entries()) {
        const type = (f as { type?: unknown }).type as FilterType;
        if (!FILTER_TYPES.includes(type)) continue;
        const first = seen.get(type);
        if (first !== undefined && SINGLETON_FILTERS.includes(type)) {
          ctx.addIssue({ code: 'custom', path: ['filters', i, 'type'], message: `${type} may appear only once per rule (also at filters[${first}])` });
        }
        if (first === undefined) seen.set(type, i);
      }
      const redirect = seen.get('RequestRedirect');
      const rewrite = seen.get('URLRewrite');
      if (redirect !== undefined && rewrite !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['filters', rewrite, 'type'], message: 'URLRewrite cannot be combined with RequestRedirect in one rule' });
      }
    },
    { when: (p) => { const filters = (p.value as { filters?: unknown } | null)?.filters; return filters === undefined || Array.isArray(filters); } },
  )
  .describe('A routing rule: matches, filters, backends, timeouts and retries. The most specific match across rules wins (Gateway API precedence).');

export const routeSpecSchema = z
  .strictObject({
    parentRefs: parentRefs(),
    hostnames: z
      .array(hostname({ wildcard: true }))
      .optional()
      .describe('Host header values this route serves; "*.example.com" matches one or more leading labels. Unset: every host.'),
    rules: z.array(ruleSchema).min(1).describe('Routing rules (at least one).'),
  })
  .describe('Desired state of an HTTP Route.');

const routeParentStatusSchema = z
  .strictObject({
    parentRef: parentRefSchema,
    conditions: conditionsSchema,
  })
  .describe('Status of the route on one parent Listener.');

const routeStatus = (what: string) =>
  statusSchema(`Observed state of the ${what}.`, {
    parents: z.array(routeParentStatusSchema).optional().describe('Per parent Listener: whether the route is accepted and its references resolved.'),
  });

export const RouteSchema = z
  .strictObject({ ...envelope('Route'), ...namespacedMetadata(), spec: routeSpecSchema, status: routeStatus('Route') })
  .describe(
    'A Route sends HTTP requests arriving on Listeners to Upstreams: by host, path, method, headers and query, with filters, weighted backends, timeouts and retries. Shaped after Gateway API HTTPRoute.',
  );
export const RouteInputSchema = z.strictObject({ ...envelope('Route'), ...namespacedMetadata(), spec: routeSpecSchema, status: inputStatus() });

// ---- L4 routes --------------------------------------------------------------------------

export const tcpRouteSpecSchema = z
  .strictObject({
    parentRefs: parentRefs(),
    backendRefs: backendRefs('the connections').min(1),
    idleTimeout: duration().optional().describe("Close a connection idle in both directions this long (duration). Unset: the listener's limits.idleTimeout."),
    hostnames: z
      .array(hostname({ wildcard: true }))
      .optional()
      .describe(
        'TLS passthrough listeners only: the SNI server names this route takes; "*.example.com" matches one or more leading labels. TLS Listeners on one port share it, and each connection goes to the route naming its server name (exact, then longest wildcard, then a route without hostnames). Unset: every name.',
      ),
  })
  .describe('Desired state of a TCPRoute.');

export const TCPRouteSchema = z
  .strictObject({ ...envelope('TCPRoute'), ...namespacedMetadata(), spec: tcpRouteSpecSchema, status: routeStatus('TCPRoute') })
  .describe('A TCPRoute forwards TCP connections (or TLS by SNI) arriving on TCP/TLS Listeners to Upstreams, split by weight.');
export const TCPRouteInputSchema = z.strictObject({ ...envelope('TCPRoute'), ...namespacedMetadata(), spec: tcpRouteSpecSchema, status: inputStatus() });

export const udpRouteSpecSchema = z
  .strictObject({
    parentRefs: parentRefs(),
    backendRefs: backendRefs('the datagrams').min(1),
    idleTimeout: duration()
      .optional()
      .describe("Forget a client session (and its upstream socket) after no datagrams for this long (duration). Unset: the listener's limits.idleTimeout."),
  })
  .describe('Desired state of a UDPRoute.');

export const UDPRouteSchema = z
  .strictObject({ ...envelope('UDPRoute'), ...namespacedMetadata(), spec: udpRouteSpecSchema, status: routeStatus('UDPRoute') })
  .describe('A UDPRoute forwards UDP datagrams arriving on UDP Listeners to Upstreams; each client address is a session pinned to one endpoint.');
export const UDPRouteInputSchema = z.strictObject({ ...envelope('UDPRoute'), ...namespacedMetadata(), spec: udpRouteSpecSchema, status: inputStatus() });

export type Route = z.output<typeof RouteSchema>;
export type TCPRoute = z.output<typeof TCPRouteSchema>;
export type UDPRoute = z.output<typeof UDPRouteSchema>;
