export const API_VERSION = 'sluice/v1';

export interface KindInfo {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** False for kinds only the controller writes (Agent): users may read them but not apply them. */
  userWritable: boolean;
}

function info(kind: string, shortNames: string[], namespaced = true, userWritable = true): KindInfo {
  const singular = kind.toLowerCase();
  return { kind, listKind: `${kind}List`, plural: `${singular}s`, singular, shortNames, namespaced, userWritable };
}

export const KINDS: readonly KindInfo[] = Object.freeze([
  info('Listener', ['li']),
  info('Route', ['rt']),
  info('TCPRoute', ['tr']),
  info('UDPRoute', ['ur']),
  info('Upstream', ['us']),
  info('Secret', ['sec']),
  info('Agent', ['ag'], false, false),
]);

export type KindName = 'Listener' | 'Route' | 'TCPRoute' | 'UDPRoute' | 'Upstream' | 'Secret' | 'Agent';

/** Resolves what a user typed (`Upstream`, `upstream`, `upstreams`, `us`), ignoring case. */
export function resolveKind(name: string): KindInfo | undefined {
  const n = name.trim().toLowerCase();
  if (n === '') return undefined;
  return KINDS.find((k) => k.singular === n || k.plural === n || k.shortNames.includes(n));
}

/** Looks up an exact `kind` value as written in a manifest (`Upstream`, not `upstream`). */
export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}
