import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import {
  HealthStatus,
  MatchType,
  Protocol,
  ProxyProtocolVersion,
  type Cluster,
  type Endpoints,
  type HeaderModifier,
  type HttpFilter,
  type HttpRoute,
  type Listener,
  type Resource,
  type RouteTable,
  type Secret,
  type Source,
} from '@sluice/proto';
import { parseLoadBalancing } from './balancers/registry.js';
import { KNOWN_ALGORITHMS } from './filters/compression.js';
import { FILTER_NAMES, SUPPORTED_FILTERS } from './filters/route-filters.js';
import { validateOutlierDetection } from './outlier-detection.js';
import { RETRY_CONDITIONS } from './retry-policy.js';
import { validateSessionPersistence } from './session-persistence.js';
import { validateSlowStart } from './slow-start.js';
import { fullMatch } from './router.js';
import { tlsSettingsProblem } from './tls-contexts.js';
import { validateL4Listener } from './l4/validate-l4.js';

// Per-resource checks at the agent (DESIGN §9: "validated at the API, checked again at the
// agent"). A rejected resource is NACKed with a message and the user objects it came from;
// the agent keeps its previous version. Messages name the field, as the API does.

export interface Rejection {
  message: string;
  sources: Source[];
}

export interface ValidateOptions {
  /** Test-only: accept listener port 0 (an ephemeral port, reported by listeners()). */
  allowEphemeralPorts?: boolean;
  /** The source of a cluster, for Endpoints (which carry none: they are named like it). */
  clusterSource?: (name: string) => Source | undefined;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[^\r\n\0]*$/;
const HOSTNAME = /^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$/i;
const REDIRECT_STATUSES = new Set([0, 301, 302, 303, 307, 308]);
const RETRY_ON: ReadonlySet<string> = new Set(RETRY_CONDITIONS);

export function validateResource(resource: Resource, options: ValidateOptions = {}): Rejection | undefined {
  const body = resource.body;
  if (resource.name === '') return { message: 'resource has no name', sources: [] };
  switch (body?.$case) {
    case 'secret':
      return reject(validateSecret(body.value), body.value.sources);
    case 'cluster':
      return reject(validateCluster(body.value), body.value.source ? [body.value.source] : []);
    case 'endpoints': {
      const source = options.clusterSource?.(resource.name);
      return reject(validateEndpoints(body.value), source ? [source] : []);
    }
    case 'routeTable':
      return validateRouteTable(body.value);
    case 'listener':
      return reject(validateListener(body.value, options), [...body.value.sources, ...(body.value.l4Route?.sources ?? [])]);
    case undefined:
      return { message: 'resource has no body', sources: [] };
  }
}

function reject(message: string | undefined, sources: Source[]): Rejection | undefined {
  return message === undefined ? undefined : { message, sources: dedupeSources(sources) };
}

export function dedupeSources(sources: readonly Source[]): Source[] {
  const seen = new Set<string>();
  const out: Source[] = [];
  for (const s of sources) {
    const key = `${s.kind}/${s.namespace}/${s.name}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(s);
    }
  }
  return out;
}

function validateSecret(secret: Secret): string | undefined {
  try {
    new X509Certificate(secret.certificateChain);
  } catch (err) {
    return `certificate_chain: not a PEM certificate (${errorText(err)})`;
  }
  // No key: a CA bundle (an Upstream's caCertificateRefs), usable only as a trust anchor.
  if (secret.privateKey === '') return undefined;
  let key;
  try {
    key = createPrivateKey(secret.privateKey);
  } catch (err) {
    return `private_key: not a PEM private key (${errorText(err)})`;
  }
  // A listener could not serve a pair that does not match (createSecureContext would throw).
  if (!new X509Certificate(secret.certificateChain).checkPrivateKey(key)) return 'private_key: does not match the certificate in certificate_chain';
  return undefined;
}

function validateCluster(cluster: Cluster): string | undefined {
  // Each policy parses its own options; an unknown policy is rejected, never replaced.
  const lb = parseLoadBalancing(cluster.loadBalancing);
  if (!lb.ok) return lb.error;
  const slowStart = validateSlowStart(cluster.slowStart);
  if (slowStart !== undefined) return slowStart;
  const resilience = validateOutlierDetection(cluster.outlierDetection) ?? validateSessionPersistence(cluster.sessionPersistence);
  if (resilience !== undefined) return resilience;
  const tls = cluster.tls;
  if (tls?.enabled === true && tls.sni !== '' && isIP(tls.sni) === 0 && (!HOSTNAME.test(tls.sni) || tls.sni.startsWith('*.'))) {
    return `tls.sni: "${tls.sni}" is not a hostname or an IP address`;
  }
  // Sent by TCP, TLS passthrough and UDP listeners; an HTTP route to such a cluster answers 502 (docs/l4.md).
  if (cluster.proxyProtocol === ProxyProtocolVersion.UNRECOGNIZED) return 'proxy_protocol: unknown value';
  return undefined;
}

/**
 * A cluster's references to other resources of the same update or applied before: the CA
 * Secret of its TLS settings. `hasSecret` says whether a Secret of that name is there.
 */
export function clusterReferenceProblem(cluster: Cluster, hasSecret: (name: string) => boolean): Rejection | undefined {
  const ca = cluster.tls?.enabled === true ? cluster.tls.caSecret : '';
  if (ca === '' || hasSecret(ca)) return undefined;
  return reject(`tls.ca_secret: Secret "${ca}" is not among this agent's resources`, cluster.source ? [cluster.source] : []);
}

function validateEndpoints(endpoints: Endpoints): string | undefined {
  for (const [i, e] of endpoints.endpoints.entries()) {
    if (e.address === '' || /\s/.test(e.address)) return `endpoints[${i}].address: must be an IP address or a hostname`;
    if (isIP(e.address) === 0 && !HOSTNAME.test(e.address)) return `endpoints[${i}].address: "${e.address}" is not an IP address or a hostname`;
    if (!isPort(e.port)) return `endpoints[${i}].port: must be 1-65535, got ${e.port}`;
    if (!Number.isInteger(e.weight) || e.weight < 0) return `endpoints[${i}].weight: must be >= 0`;
    if (e.health === HealthStatus.UNRECOGNIZED) return `endpoints[${i}].health: unknown value`;
  }
  return undefined;
}

function validateListener(listener: Listener, options: ValidateOptions): string | undefined {
  switch (listener.protocol) {
    case Protocol.PROTOCOL_HTTP:
      break;
    case Protocol.PROTOCOL_HTTPS: {
      if (listener.tls === undefined) return 'tls: an HTTPS listener needs TLS settings (certificate_secrets)';
      const problem = tlsSettingsProblem(listener.tls);
      if (problem !== undefined) return problem;
      if (listener.h2c) return 'h2c: only for HTTP listeners (HTTPS negotiates HTTP/2 by ALPN)';
      break;
    }
    case Protocol.PROTOCOL_TCP:
    case Protocol.PROTOCOL_UDP:
    case Protocol.PROTOCOL_TLS_PASSTHROUGH:
      return validateL4Listener(listener, options.allowEphemeralPorts === true);
    case Protocol.PROTOCOL_UNSPECIFIED:
    case Protocol.UNRECOGNIZED:
      return `protocol: must be set to a known protocol, got ${listener.protocol}`;
  }
  if (!isPort(listener.port) && !(options.allowEphemeralPorts && listener.port === 0)) return `port: must be 1-65535, got ${listener.port}`;
  if (listener.address !== '' && isIP(listener.address) === 0) return `address: "${listener.address}" is not an IP address`;
  if (listener.routeTable === '') return 'route_table: an HTTP listener needs a route table';
  for (const [i, cidr] of listener.trustedProxies.entries()) {
    if (parseCidr(cidr) === undefined) return `trusted_proxies[${i}]: "${cidr}" is not an IP address or CIDR`;
  }
  return undefined;
}

/**
 * An HTTPS listener's references: each certificate Secret must come in the same update or
 * have been applied before (`hasSecret`).
 */
export function listenerReferenceProblem(listener: Listener, hasSecret: (name: string) => boolean): Rejection | undefined {
  if (listener.protocol !== Protocol.PROTOCOL_HTTPS && listener.protocol !== Protocol.PROTOCOL_TCP) return undefined;
  for (const [i, name] of (listener.tls?.certificateSecrets ?? []).entries()) {
    if (!hasSecret(name)) return reject(`tls.certificate_secrets[${i}]: Secret "${name}" is not among this agent's resources`, listener.sources);
  }
  return undefined;
}

/** "10.0.0.0/8", "::1", "2001:db8::/32" -> address, prefix length and family. */
export function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : cidr.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

function validateRouteTable(table: RouteTable): Rejection | undefined {
  const all: Source[] = table.virtualHosts.flatMap((vh) => vh.routes.flatMap((r) => (r.source ? [r.source] : [])));
  for (const [v, vh] of table.virtualHosts.entries()) {
    const at = `virtual_hosts[${v}]`;
    if (vh.domains.length === 0) return { message: `${at}.domains: must not be empty`, sources: dedupeSources(all) };
    for (const [d, domain] of vh.domains.entries()) {
      if (domain !== '*' && !HOSTNAME.test(domain)) return { message: `${at}.domains[${d}]: "${domain}" is not a hostname`, sources: dedupeSources(all) };
    }
    for (const [r, route] of vh.routes.entries()) {
      const problem = validateRoute(route);
      if (problem !== undefined) {
        const name = route.name === '' ? '' : ` (${route.name})`;
        return { message: `${at}.routes[${r}]${name}.${problem}`, sources: route.source ? [route.source] : dedupeSources(all) };
      }
    }
  }
  return undefined;
}

function validateRoute(route: HttpRoute): string | undefined {
  const match = route.match;
  const path = match?.path;
  if (path !== undefined) {
    switch (path.type) {
      case MatchType.MATCH_TYPE_EXACT:
      case MatchType.MATCH_TYPE_PATH_PREFIX:
        if (!path.value.startsWith('/')) return `match.path.value: must start with "/", got "${path.value}"`;
        break;
      case MatchType.MATCH_TYPE_REGULAR_EXPRESSION: {
        const problem = regexProblem(path.value);
        if (problem !== undefined) return `match.path.value: invalid regular expression "${path.value}": ${problem}`;
        break;
      }
      case MatchType.MATCH_TYPE_UNSPECIFIED:
      case MatchType.UNRECOGNIZED:
        return `match.path.type: must be Exact, PathPrefix or RegularExpression, got ${path.type}`;
    }
  }
  if (match && match.method !== '' && !TOKEN.test(match.method)) return `match.method: "${match.method}" is not an HTTP method`;
  for (const [kind, list] of [['headers', match?.headers ?? []], ['query_params', match?.queryParams ?? []]] as const) {
    for (const [i, m] of list.entries()) {
      const at = `match.${kind}[${i}]`;
      if (m.name === '' || (kind === 'headers' && !TOKEN.test(m.name))) return `${at}.name: "${m.name}" is not a valid name`;
      if (m.type === MatchType.MATCH_TYPE_REGULAR_EXPRESSION) {
        const problem = regexProblem(m.value);
        if (problem !== undefined) return `${at}.value: invalid regular expression "${m.value}": ${problem}`;
      } else if (m.type !== MatchType.MATCH_TYPE_EXACT) {
        return `${at}.type: must be Exact or RegularExpression, got ${m.type}`;
      }
    }
  }
  for (const [i, { filter }] of route.filters.entries()) {
    const at = `filters[${i}]`;
    if (filter === undefined) return `${at}: empty filter`;
    if (!SUPPORTED_FILTERS.has(filter.$case)) return `${at}: filter ${FILTER_NAMES[filter.$case]} is not supported by this agent version`;
    switch (filter.$case) {
      case 'requestHeaderModifier':
      case 'responseHeaderModifier': {
        const problem = headerModifierProblem(filter.value);
        if (problem !== undefined) return `${at}.${problem}`;
        break;
      }
      case 'urlRewrite':
        if (filter.value.hostname !== '' && !HOSTNAME.test(filter.value.hostname)) return `${at}.hostname: "${filter.value.hostname}" is not a hostname`;
        if (filter.value.path?.$case === 'replacePrefixMatch' && path?.type !== MatchType.MATCH_TYPE_PATH_PREFIX) {
          return `${at}.path: replace_prefix_match needs a PathPrefix match`;
        }
        break;
      case 'requestRedirect': {
        const r = filter.value;
        if (r.scheme !== '' && r.scheme !== 'http' && r.scheme !== 'https') return `${at}.scheme: must be http or https, got "${r.scheme}"`;
        if (r.hostname !== '' && !HOSTNAME.test(r.hostname)) return `${at}.hostname: "${r.hostname}" is not a hostname`;
        if (r.port !== 0 && !isPort(r.port)) return `${at}.port: must be 1-65535, got ${r.port}`;
        if (!REDIRECT_STATUSES.has(r.statusCode)) return `${at}.status_code: must be 301, 302, 303, 307 or 308, got ${r.statusCode}`;
        if (r.path?.$case === 'replacePrefixMatch' && path?.type !== MatchType.MATCH_TYPE_PATH_PREFIX) {
          return `${at}.path: replace_prefix_match needs a PathPrefix match`;
        }
        break;
      }
      case 'compression':
      case 'cache':
      case 'rateLimit':
      case 'ipAccess': {
        const problem = edgeFilterProblem(filter);
        if (problem !== undefined) return `${at}.${problem}`;
        break;
      }
      case 'requestMirror':
        break;
    }
  }
  const redirects = route.filters.some((f) => f.filter?.$case === 'requestRedirect');
  if (!redirects && route.backends.length === 0) return 'backends: a route without a redirect needs at least one backend';
  for (const [i, b] of route.backends.entries()) {
    if (!Number.isInteger(b.weight) || b.weight < 0) return `backends[${i}].weight: must be >= 0`;
  }
  for (const [i, on] of (route.retry?.on ?? []).entries()) {
    if (!RETRY_ON.has(on)) return `retry.on[${i}]: unknown condition "${on}" (${RETRY_CONDITIONS.join(', ')})`;
  }
  return undefined;
}

const MEDIA_RANGE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/(?:\*|[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/;

/** Compression, Cache, RateLimit, IpAccess: the fields the agent relies on. */
function edgeFilterProblem(filter: NonNullable<HttpFilter['filter']>): string | undefined {
  switch (filter.$case) {
    case 'compression': {
      // zstd is accepted everywhere and used only where Node has it (22.15+): one config for a mixed fleet.
      for (const [i, a] of filter.value.algorithms.entries()) {
        if (!KNOWN_ALGORITHMS.has(a.toLowerCase())) return `algorithms[${i}]: unknown algorithm "${a}" (br, gzip, deflate, zstd)`;
      }
      for (const [i, t] of filter.value.contentTypes.entries()) {
        if (!MEDIA_RANGE.test(t.trim())) return `content_types[${i}]: "${t}" is not a content type like text/html or text/*`;
      }
      return undefined;
    }
    case 'cache':
      if (!Number.isSafeInteger(filter.value.maxBytes) || filter.value.maxBytes <= 0) return 'max_bytes: must be > 0';
      if (filter.value.maxEntryBytes > filter.value.maxBytes) return 'max_entry_bytes: must not exceed max_bytes';
      return undefined;
    case 'rateLimit': {
      const r = filter.value;
      if (r.requestsPerSecond <= 0) return 'requests_per_second: must be > 0';
      const key = r.key?.key;
      switch (key?.$case) {
        case undefined:
        case 'sourceIp':
          return undefined;
        case 'header':
          return TOKEN.test(key.value) ? undefined : `key.header: "${key.value}" is not a header name`;
        case 'cookie':
        case 'queryParameter':
          return `key: rate limiting by ${key.$case === 'cookie' ? 'cookie' : 'query parameter'} is not supported by this agent version`;
      }
      return undefined;
    }
    case 'ipAccess': {
      if (filter.value.allow.length === 0 && filter.value.deny.length === 0) return 'allow: set allow, deny or both';
      for (const kind of ['allow', 'deny'] as const) {
        for (const [i, cidr] of filter.value[kind].entries()) {
          if (parseCidr(cidr) === undefined) return `${kind}[${i}]: "${cidr}" is not an IP address or CIDR`;
        }
      }
      return undefined;
    }
    case 'requestHeaderModifier':
    case 'responseHeaderModifier':
    case 'urlRewrite':
    case 'requestRedirect':
    case 'requestMirror':
      return undefined;
  }
}

function headerModifierProblem(m: HeaderModifier): string | undefined {
  for (const [kind, list] of [['set', m.set], ['add', m.add]] as const) {
    for (const [i, h] of list.entries()) {
      if (!TOKEN.test(h.name)) return `${kind}[${i}].name: "${h.name}" is not a header name`;
      if (!HEADER_VALUE.test(h.value)) return `${kind}[${i}].value: must not contain CR, LF or NUL`;
    }
  }
  for (const [i, name] of m.remove.entries()) {
    if (!TOKEN.test(name)) return `remove[${i}]: "${name}" is not a header name`;
  }
  return undefined;
}

function regexProblem(source: string): string | undefined {
  try {
    fullMatch(source);
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
