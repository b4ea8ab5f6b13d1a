import type { Listener, TCPRoute, UDPRoute } from '@sluice/api';
import { Protocol, ResourceType, type L4Route, type ListenerLimits, type Listener as WireListener } from '@sluice/proto';
import { report, resolveBackend, useSecret, type Context } from './context.js';
import { makeResource, type DataPlaneResource, type ResourceRef } from './data-plane-resource.js';
import { ms } from './cluster.js';
import { nameOf, sourceOf } from './inputs.js';
import { compareStrings } from './resource-key.js';

/** The wire protocol of a listener. */
export function wireProtocol(l: Listener): Protocol {
  switch (l.spec.protocol) {
    case 'HTTP':
      return Protocol.PROTOCOL_HTTP;
    case 'HTTPS':
      return Protocol.PROTOCOL_HTTPS;
    case 'TCP':
      return Protocol.PROTOCOL_TCP;
    case 'UDP':
      return Protocol.PROTOCOL_UDP;
    case 'TLS':
      // Terminate is TCP with `tls` set on the wire: the agent decrypts, then proxies as TCP.
      return l.spec.tls?.mode === 'Passthrough' ? Protocol.PROTOCOL_TLS_PASSTHROUGH : Protocol.PROTOCOL_TCP;
  }
}

export function isHttp(p: Protocol): boolean {
  return p === Protocol.PROTOCOL_HTTP || p === Protocol.PROTOCOL_HTTPS;
}

/** TCP and UDP ports are separate spaces: a TCP and a UDP listener may share a number. */
export function transportOf(p: Protocol): 'tcp' | 'udp' {
  return p === Protocol.PROTOCOL_UDP ? 'udp' : 'tcp';
}

/** Which L4 route kind a listener of this protocol takes (undefined: HTTP routes). */
export function l4KindFor(p: Protocol): 'TCPRoute' | 'UDPRoute' | undefined {
  if (p === Protocol.PROTOCOL_UDP) return 'UDPRoute';
  if (p === Protocol.PROTOCOL_TCP || p === Protocol.PROTOCOL_TLS_PASSTHROUGH) return 'TCPRoute';
  return undefined;
}

/** Listener TLS certificate Secrets that resolve; problems for the others. */
export function certificateSecrets(ctx: Context, l: Listener, refs: ResourceRef[]): string[] {
  const out: string[] = [];
  for (const [i, ref] of (l.spec.tls?.certificateRefs ?? []).entries()) {
    const name = useSecret(ctx, l, ref, `spec.tls.certificateRefs[${i}]`, 'certificate', refs);
    if (name !== undefined) out.push(name);
  }
  return out;
}

function limits(l: NonNullable<Listener['spec']['limits']>): ListenerLimits {
  return {
    maxConnections: l.maxConnections ?? 0,
    maxConnectionsPerClient: l.maxConnectionsPerClient ?? 0,
    maxRequestHeaderBytes: l.maxRequestHeaderBytes ?? 0,
    maxRequestHeaders: l.maxRequestHeaders ?? 0,
    maxRequestBodyBytes: l.maxRequestBodyBytes ?? 0,
    requestHeadersTimeoutMs: ms(l.requestHeadersTimeout),
    requestBodyTimeoutMs: ms(l.requestBodyTimeout),
    idleTimeoutMs: ms(l.idleTimeout),
  };
}

function l4Route(ctx: Context, r: TCPRoute | UDPRoute, refs: ResourceRef[], l: Listener, protocol: Protocol): L4Route {
  const names = r.kind === 'TCPRoute' ? (r.spec.hostnames ?? []) : [];
  const passthrough = protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH;
  if (names.length > 0 && !passthrough) report(ctx, r, `spec.hostnames: only TLS passthrough listeners route by server name: ignored on Listener ${nameOf(l)}`);
  return {
    sources: [sourceOf(r)],
    backends: r.spec.backendRefs.map((b, i) => resolveBackend(ctx, r, b, `spec.backendRefs[${i}]`, refs)),
    idleTimeoutMs: ms(r.spec.idleTimeout),
    hostnames: passthrough ? [...new Set(names.map((n) => n.toLowerCase()))].sort(compareStrings) : [],
  };
}

export interface AcceptedListener {
  listener: Listener;
  protocol: Protocol;
  /** Certificate Secret names (HTTPS, TLS Terminate), already checked. */
  certificates: string[];
  /** References found while accepting it (its Secrets). */
  refs: ResourceRef[];
}

/** Listener -> LISTENER `<ns>/<name>`, with the L4 route attached to it, if any. */
export function translateListener(ctx: Context, a: AcceptedListener, l4: TCPRoute | UDPRoute | undefined): DataPlaneResource {
  const { listener: l, protocol } = a;
  const name = nameOf(l);
  const refs: ResourceRef[] = [...a.refs];
  if (isHttp(protocol)) refs.push({ type: ResourceType.RESOURCE_TYPE_ROUTE_TABLE, name });
  const tls = l.spec.tls;
  const body: WireListener = {
    sources: [sourceOf(l)],
    // Agents may override the bind address (e.g. --bind 127.0.0.1); the port is the contract.
    address: '0.0.0.0',
    port: l.spec.port,
    protocol,
    routeTable: isHttp(protocol) ? name : '',
    tls:
      tls === undefined || protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH
        ? undefined
        : { certificateSecrets: a.certificates, minVersion: tls.minVersion ?? '', maxVersion: tls.maxVersion ?? '', alpnProtocols: [...(tls.alpnProtocols ?? [])] },
    limits: l.spec.limits === undefined ? undefined : limits(l.spec.limits),
    trustedProxies: [...(l.spec.trustedProxies ?? [])].sort(compareStrings),
    acceptProxyProtocol: l.spec.proxyProtocol?.accept ?? false,
    l4Route: l4 === undefined ? undefined : l4Route(ctx, l4, refs, l, protocol),
    h2c: l.spec.h2c ?? false,
    accessLog: l.spec.accessLog?.enabled ?? false,
  };
  const sources = l4 === undefined ? [sourceOf(l)] : [sourceOf(l), sourceOf(l4)];
  return makeResource(name, { $case: 'listener', value: body }, sources, refs);
}
