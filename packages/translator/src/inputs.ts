import type { Resource as ApiResource, Listener, Route, Secret, TCPRoute, UDPRoute, Upstream } from '@sluice/api';
import type { Source } from '@sluice/proto';
import { compareStrings } from './resource-key.js';

/** What a problem or a data-plane resource points back at. */
export function sourceOf(r: ApiResource): Source {
  return { kind: r.kind, namespace: r.metadata.namespace ?? '', name: r.metadata.name };
}

/** `<namespace>/<name>`: the data-plane name of whatever a user object becomes. */
export function qualifiedName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function nameOf(r: ApiResource): string {
  return qualifiedName(r.metadata.namespace ?? 'default', r.metadata.name);
}

/** A reference as written (`{name, namespace?}`), resolved against the referrer's namespace. */
export function refName(ref: { name: string; namespace?: string | undefined }, ownNamespace: string): string {
  return qualifiedName(ref.namespace ?? ownNamespace, ref.name);
}

function createdAt(r: ApiResource): number {
  const t = r.metadata.creationTimestamp === undefined ? Number.NaN : Date.parse(r.metadata.creationTimestamp);
  // Not stamped yet (offline translate): newer than anything stamped.
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** Gateway API tie-break: older first (creationTimestamp), then namespace/name. */
export function compareAge(a: ApiResource, b: ApiResource): number {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return compareStrings(nameOf(a), nameOf(b));
}

export interface Inputs {
  listeners: Listener[];
  routes: Route[];
  tcpRoutes: TCPRoute[];
  udpRoutes: UDPRoute[];
  upstreams: ReadonlyMap<string, Upstream>;
  secrets: ReadonlyMap<string, Secret>;
  /** Objects given twice (same kind, namespace and name): the first one counts. */
  duplicates: ApiResource[];
}

/**
 * Splits the input by kind, each list oldest first, so the output does not depend on the
 * order the objects came in (store order, file order).
 */
export function indexInputs(resources: readonly ApiResource[]): Inputs {
  const seen = new Set<string>();
  const duplicates: ApiResource[] = [];
  const byKind = { listeners: [] as Listener[], routes: [] as Route[], tcpRoutes: [] as TCPRoute[], udpRoutes: [] as UDPRoute[] };
  const upstreams = new Map<string, Upstream>();
  const secrets = new Map<string, Secret>();
  for (const r of resources) {
    const id = `${r.kind}/${nameOf(r)}`;
    if (seen.has(id)) {
      duplicates.push(r);
      continue;
    }
    seen.add(id);
    switch (r.kind) {
      case 'Listener':
        byKind.listeners.push(r);
        break;
      case 'Route':
        byKind.routes.push(r);
        break;
      case 'TCPRoute':
        byKind.tcpRoutes.push(r);
        break;
      case 'UDPRoute':
        byKind.udpRoutes.push(r);
        break;
      case 'Upstream':
        upstreams.set(nameOf(r), r);
        break;
      case 'Secret':
        secrets.set(nameOf(r), r);
        break;
      case 'Agent':
        break; // read-only status objects: nothing to translate
    }
  }
  byKind.listeners.sort(compareAge);
  byKind.routes.sort(compareAge);
  byKind.tcpRoutes.sort(compareAge);
  byKind.udpRoutes.sort(compareAge);
  return { ...byKind, upstreams, secrets, duplicates };
}
