import type { Resource as ApiResource, Listener, Route, TCPRoute, UDPRoute } from '@sluice/api';
import { Protocol, ResourceType, type HealthStatus, type Secret } from '@sluice/proto';
import { report, secretMaterial, type Context, type Problem } from './context.js';
import { compareSources, keyOf, makeResource, type DataPlaneResource } from './data-plane-resource.js';
import { sortedRecord, translateUpstream } from './cluster.js';
import { indexInputs, nameOf, refName, sourceOf } from './inputs.js';
import { certificateSecrets, isHttp, l4KindFor, transportOf, translateListener, wireProtocol, type AcceptedListener } from './listener.js';
import { compareResources, compareStrings } from './resource-key.js';
import { buildRouteTable, compileRoute, type CompiledRoute } from './route-table.js';
import { selectorsOverlap, type AgentSelector } from './selector.js';

export type { Problem } from './context.js';

export interface TranslateOptions {
  /** Store revision the input was read at; carried into the translation and its snapshots. */
  revision: number;
  /**
   * Dynamic weights from the weight engine: effective weight by endpoint id. An endpoint
   * without an entry gets its configured weight. Default: none.
   */
  weights?: ReadonlyMap<string, number>;
  /**
   * Merged active health-check verdicts from the controller: status by endpoint id, carried
   * into Endpoint.health. An endpoint without an entry is unknown. Default: none.
   */
  health?: ReadonlyMap<string, HealthStatus>;
}

export interface ListenerSelection {
  /** Data-plane listener name, `<ns>/<name>`. */
  name: string;
  agentSelector?: AgentSelector;
}

export interface Translation {
  revision: number;
  /** Keyed by resourceKey(type, name). Iterates in make-before-break order, then by name. */
  resources: ReadonlyMap<string, DataPlaneResource>;
  /** Every emitted listener and the agents that serve it, sorted by name. */
  listeners: readonly ListenerSelection[];
  /** What could not be translated as written, sorted by source then message. */
  problems: readonly Problem[];
}

const ROUTE_PROTOCOLS: Record<'Route' | 'TCPRoute' | 'UDPRoute', string> = {
  Route: 'HTTP or HTTPS',
  TCPRoute: 'TCP or TLS',
  UDPRoute: 'UDP',
};

/**
 * Which listeners the data plane can serve: usable certificates where they terminate TLS, and a
 * port no older listener already holds on overlapping agents (the older one keeps it).
 */
function acceptListeners(ctx: Context, listeners: readonly Listener[]): Map<string, AcceptedListener> {
  const accepted = new Map<string, AcceptedListener>();
  for (const l of listeners) {
    const protocol = wireProtocol(l);
    const refs: AcceptedListener['refs'] = [];
    const certificates = certificateSecrets(ctx, l, refs);
    const terminates = protocol === Protocol.PROTOCOL_HTTPS || (l.spec.protocol === 'TLS' && protocol === Protocol.PROTOCOL_TCP);
    if (terminates && certificates.length === 0) {
      report(ctx, l, 'spec.tls.certificateRefs: no usable certificate: the listener is not served');
      continue;
    }
    const holder = [...accepted.values()].find(
      (a) =>
        a.listener.spec.port === l.spec.port &&
        transportOf(a.protocol) === transportOf(protocol) &&
        selectorsOverlap(a.listener.spec.agentSelector, l.spec.agentSelector) &&
        !sharePassthroughPort(a, l, protocol),
    );
    if (holder !== undefined) {
      report(
        ctx,
        l,
        `spec.port: port ${l.spec.port}/${transportOf(protocol).toUpperCase()} is already taken by the older Listener ${nameOf(holder.listener)} on agents both select: the listener is not served`,
      );
      continue;
    }
    accepted.set(nameOf(l), { listener: l, protocol, certificates, refs });
  }
  return accepted;
}

/**
 * TLS passthrough listeners may share a port (agents open one socket and pick the route by
 * the ClientHello's server name), when they agree on what arrives first (a PROXY header or not).
 */
function sharePassthroughPort(a: AcceptedListener, l: Listener, protocol: Protocol): boolean {
  return (
    a.protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH &&
    protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH &&
    (a.listener.spec.proxyProtocol?.accept ?? false) === (l.spec.proxyProtocol?.accept ?? false)
  );
}

/**
 * TLS passthrough listeners sharing a port: a server name two of their routes list (or two
 * catch-alls) goes to the first listener by name on the agents; the other route is told.
 */
function reportSniOverlaps(ctx: Context, accepted: ReadonlyMap<string, AcceptedListener>, l4: ReadonlyMap<string, TCPRoute | UDPRoute>): void {
  const passthrough = [...accepted.values()]
    .filter((a) => a.protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH)
    .sort((x, y) => compareStrings(nameOf(x.listener), nameOf(y.listener)));
  for (const [i, a] of passthrough.entries()) {
    const route = l4.get(nameOf(a.listener));
    if (route?.kind !== 'TCPRoute') continue;
    const mine = (route.spec.hostnames ?? []).map((h) => h.toLowerCase());
    for (const b of passthrough.slice(0, i)) {
      if (b.listener.spec.port !== a.listener.spec.port || !selectorsOverlap(a.listener.spec.agentSelector, b.listener.spec.agentSelector)) continue;
      const other = l4.get(nameOf(b.listener));
      if (other?.kind !== 'TCPRoute') continue;
      const theirs = new Set((other.spec.hostnames ?? []).map((h) => h.toLowerCase()));
      const shared = mine.length === 0 && theirs.size === 0 ? ['every name (no hostnames)'] : mine.filter((h) => theirs.has(h));
      if (shared.length === 0) continue;
      report(ctx, route, `spec.hostnames: ${shared.join(', ')} also taken by TCPRoute ${nameOf(other)} on Listener ${nameOf(b.listener)} (port ${a.listener.spec.port}), which agents send it to`);
    }
  }
}

/** Resolves a route's parentRefs to accepted listeners, reporting the ones it cannot attach to. */
function parentsOf(
  ctx: Context,
  route: Route | TCPRoute | UDPRoute,
  listeners: ReadonlyMap<string, Listener>,
  accepted: ReadonlyMap<string, AcceptedListener>,
): AcceptedListener[] {
  const out: AcceptedListener[] = [];
  const own = route.metadata.namespace ?? 'default';
  for (const [i, ref] of route.spec.parentRefs.entries()) {
    const name = refName(ref, own);
    if (!listeners.has(name)) {
      report(ctx, route, `spec.parentRefs[${i}]: Listener ${name} not found`);
      continue;
    }
    const a = accepted.get(name);
    if (a === undefined || out.includes(a)) continue; // not served (reported on it), or named twice
    if ((l4KindFor(a.protocol) ?? 'Route') !== route.kind) {
      report(
        ctx,
        route,
        `spec.parentRefs[${i}]: Listener ${name} speaks ${a.listener.spec.protocol}; a ${route.kind} attaches only to ${ROUTE_PROTOCOLS[route.kind]} listeners`,
      );
      continue;
    }
    out.push(a);
  }
  return out;
}

/** A copy, so a Translation never shares objects with its (store-owned) input. */
function copySelector(s: AgentSelector): AgentSelector {
  const out: AgentSelector = {};
  if (s.matchLabels !== undefined) out.matchLabels = sortedRecord(s.matchLabels);
  if (s.matchExpressions !== undefined) {
    out.matchExpressions = s.matchExpressions.map((e) => (e.values === undefined ? { key: e.key, operator: e.operator } : { key: e.key, operator: e.operator, values: [...e.values] }));
  }
  return out;
}

function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => compareSources(a.source, b.source) || compareStrings(a.message, b.message));
}

/**
 * Translates validated user resources (defaults applied) into data-plane resources. Pure:
 * the same input, in any order, gives byte-identical resources and versions.
 */
export function translate(resources: readonly ApiResource[], options: TranslateOptions): Translation {
  const inputs = indexInputs(resources);
  const ctx: Context = { inputs, problems: [], weights: options.weights ?? new Map(), health: options.health ?? new Map() };
  for (const d of inputs.duplicates) report(ctx, d, `${d.kind} ${nameOf(d)} is given more than once: only the first is used`);
  const out: DataPlaneResource[] = [];

  for (const name of [...inputs.upstreams.keys()].sort(compareStrings)) {
    const u = inputs.upstreams.get(name);
    if (u !== undefined) out.push(...translateUpstream(ctx, u));
  }

  const listeners = new Map(inputs.listeners.map((l) => [nameOf(l), l]));
  const accepted = acceptListeners(ctx, inputs.listeners);

  // L4: one TCPRoute/UDPRoute per listener; the oldest wins, the others are reported.
  const l4 = new Map<string, TCPRoute | UDPRoute>();
  for (const r of [...inputs.tcpRoutes, ...inputs.udpRoutes]) {
    for (const a of parentsOf(ctx, r, listeners, accepted)) {
      const name = nameOf(a.listener);
      const holder = l4.get(name);
      if (holder !== undefined) {
        report(ctx, r, `spec.parentRefs: Listener ${name} already takes the older ${holder.kind} ${nameOf(holder)}: not attached there`);
        continue;
      }
      l4.set(name, r);
    }
  }

  const attached = new Map<string, CompiledRoute[]>();
  for (const r of inputs.routes) {
    const parents = parentsOf(ctx, r, listeners, accepted);
    if (parents.length === 0) continue; // nothing emitted for it
    const compiled = compileRoute(ctx, r);
    for (const a of parents) {
      const name = nameOf(a.listener);
      attached.set(name, [...(attached.get(name) ?? []), compiled]);
    }
  }

  for (const a of accepted.values()) {
    const name = nameOf(a.listener);
    if (isHttp(a.protocol)) out.push(buildRouteTable(a.listener, attached.get(name) ?? []));
    out.push(translateListener(ctx, a, l4.get(name)));
  }
  reportSniOverlaps(ctx, accepted, l4);

  // Only Secrets something uses: no key material travels for nothing.
  const used = new Set(out.flatMap((r) => r.references.filter((ref) => ref.type === ResourceType.RESOURCE_TYPE_SECRET).map((ref) => ref.name)));
  for (const name of [...used].sort(compareStrings)) {
    const s = inputs.secrets.get(name);
    const material = s && secretMaterial(s);
    if (s === undefined || material === undefined) continue; // useSecret already refused it
    const body: Secret = { sources: [sourceOf(s)], ...material };
    out.push(makeResource(name, { $case: 'secret', value: body }, [sourceOf(s)], []));
  }

  out.sort(compareResources);
  return {
    revision: options.revision,
    resources: new Map(out.map((r) => [keyOf(r), r])),
    listeners: [...accepted.values()]
      .map((a) => ({ name: nameOf(a.listener), agentSelector: copySelector(a.listener.spec.agentSelector) }))
      .sort((a, b) => compareStrings(a.name, b.name)),
    problems: sortProblems(ctx.problems),
  };
}
