import type { Resource as ApiResource, Secret } from '@sluice/api';
import { ResourceType, type HealthStatus, type Source, type WeightedCluster } from '@sluice/proto';
import type { ResourceRef } from './data-plane-resource.js';
import { refName, sourceOf, type Inputs } from './inputs.js';

export interface Problem {
  source: Source;
  message: string;
}

/** State shared by the steps of one translation. */
export interface Context {
  readonly inputs: Inputs;
  readonly problems: Problem[];
  /** Dynamic weights: effective weight by endpoint id. Absent: the configured weight. */
  readonly weights: ReadonlyMap<string, number>;
  /** Merged active health: status by endpoint id. Absent: unknown (routes normally). */
  readonly health: ReadonlyMap<string, HealthStatus>;
}

/** A listener certificate needs a tls Secret (chain and key); a CA needs only certificates. */
export type SecretUse = 'certificate' | 'ca';

export function report(ctx: Context, r: ApiResource, message: string): void {
  ctx.problems.push({ source: sourceOf(r), message });
}

/**
 * A backendRef as a weighted cluster. A missing Upstream becomes cluster "" (the agent
 * answers 503 for its share) and a problem, so the other shares keep working.
 */
export function resolveBackend(
  ctx: Context,
  owner: ApiResource,
  ref: { name: string; namespace?: string | undefined; weight: number },
  field: string,
  refs: ResourceRef[],
): WeightedCluster {
  const name = refName(ref, owner.metadata.namespace ?? 'default');
  if (!ctx.inputs.upstreams.has(name)) {
    report(ctx, owner, `${field}: Upstream ${name} not found: its share (weight ${ref.weight}) is answered with 503`);
    return { cluster: '', weight: ref.weight };
  }
  refs.push({ type: ResourceType.RESOURCE_TYPE_CLUSTER, name });
  return { cluster: name, weight: ref.weight };
}

/** What a Secret gives the data plane: tls -> chain and key; opaque with ca.crt -> CA certificates. */
export function secretMaterial(s: Secret): { certificateChain: string; privateKey: string } | undefined {
  const decode = (key: string): string | undefined => {
    const v = s.data?.[key];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  };
  if (s.type === 'tls') {
    const certificateChain = decode('tls.crt');
    const privateKey = decode('tls.key');
    return certificateChain === undefined || privateKey === undefined ? undefined : { certificateChain, privateKey };
  }
  const ca = decode('ca.crt');
  return ca === undefined ? undefined : { certificateChain: ca, privateKey: '' };
}

/**
 * Checks a Secret reference and adds it to `refs`. Returns its data-plane name, or undefined
 * (and a problem) when it is missing or unusable.
 */
export function useSecret(
  ctx: Context,
  owner: ApiResource,
  ref: { name: string; namespace?: string | undefined },
  field: string,
  use: SecretUse,
  refs: ResourceRef[],
): string | undefined {
  const name = refName(ref, owner.metadata.namespace ?? 'default');
  const secret = ctx.inputs.secrets.get(name);
  if (secret === undefined) {
    report(ctx, owner, `${field}: Secret ${name} not found`);
    return undefined;
  }
  if (use === 'certificate' && secret.type !== 'tls') {
    report(ctx, owner, `${field}: Secret ${name} is of type ${secret.type}; a certificate needs type tls`);
    return undefined;
  }
  if (secretMaterial(secret) === undefined) {
    report(ctx, owner, `${field}: Secret ${name} has no ${use === 'ca' ? 'ca.crt (or type tls with tls.crt)' : 'tls.crt and tls.key'}`);
    return undefined;
  }
  refs.push({ type: ResourceType.RESOURCE_TYPE_SECRET, name });
  return name;
}

/** `path` when `value` is set: for listing fields the data plane cannot carry yet. */
export function ifSet(value: unknown, path: string): string | undefined {
  return value === undefined ? undefined : path;
}

/**
 * One problem per object for optional fields the wire format has no place for yet: the
 * agent applies its defaults instead, which an operator should know.
 */
export function reportUnsupported(ctx: Context, owner: ApiResource, fields: readonly (string | undefined)[]): void {
  const set = fields.filter((f): f is string => f !== undefined);
  if (set.length > 0) report(ctx, owner, `not supported by the data plane yet (the agent's defaults apply): ${set.join(', ')}`);
}
