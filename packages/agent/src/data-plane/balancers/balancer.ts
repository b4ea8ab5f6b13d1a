// The balancer plug-in interface (STYLE §6, grpc-js picker). A policy parses its own options
// from the wire and turns one set of eligible endpoints (with their effective weights and
// live load) into a picker; picking is synchronous and allocates nothing in the common case.
// The cluster-level `Balancer` (cluster-balancer.ts) owns eligibility (health, ejection,
// panic threshold), slow start and load accounting, and rebuilds the picker when they change.

import type { LoadBalancing } from '@sluice/proto';
import type { EndpointLoad } from './endpoint-load.js';

/** What a balancer needs to know about an endpoint; the data plane passes richer objects. */
export interface WeightedEndpoint {
  /** Stable across config versions (hashing, load and slow-start state are keyed by it). */
  readonly id: string;
  /** Configured effective weight; 0 = out of rotation (never picked). */
  readonly weight: number;
}

/** The parts of an HTTP request a hashing policy may read (node's IncomingMessage fits). */
export interface RequestKeys {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Request target: path and query. */
  readonly url?: string | undefined;
}

export interface PickContext<E> {
  /** The client's address, for policies that hash on it. */
  readonly clientAddress: string;
  /** Endpoints already tried by this request (retries): avoided while another one is left. */
  readonly exclude: ReadonlySet<E> | undefined;
  /**
   * The request, for policies hashing a header, cookie or query parameter. Passing it costs
   * nothing: only those policies read it, and only the one field they hash.
   */
  readonly request?: RequestKeys | undefined;
}

export type PickResult<E> = { kind: 'endpoint'; endpoint: E } | { kind: 'none'; reason: string };

/** What the request path talks to: one per cluster version. */
export interface Balancer<E extends WeightedEndpoint> {
  pick(ctx: PickContext<E>): PickResult<E>;
  /** A request to `endpoint` starts (in-flight accounting). */
  onStart(endpoint: E): void;
  /** It ended: how long it took and whether the endpoint answered without a failure. */
  onEnd(endpoint: E, outcome: { latencyMs: number; ok: boolean }): void;
}

/** An eligible endpoint as a policy sees it. */
export interface Member<E> {
  readonly endpoint: E;
  /** Effective weight (> 0): the configured one, scaled by slow start. */
  readonly weight: number;
  /** Live in-flight count and latency, shared across pickers and config versions. */
  readonly load: EndpointLoad;
}

export interface Picker<E> {
  pick(ctx: PickContext<E>): PickResult<E>;
}

/** Injected so tests drive time and chance. */
export interface BalancerEnv {
  /** Monotonic milliseconds. */
  readonly now: () => number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

export const systemEnv: BalancerEnv = { now: () => performance.now(), random: Math.random };

export type Parsed<O> = { ok: true; options: O } | { ok: false; error: string };

export interface BalancerPolicy<O = unknown> {
  /** kebab-case, as in logs: "round-robin". */
  readonly name: string;
  /** Spreads traffic by weight (so slow start can ramp a member up by scaling its weight). */
  readonly weighted: boolean;
  /** Its options from the wire; errors name the field ("load_balancing.consistent_hash.key: ..."). */
  parse(lb: LoadBalancing | undefined): Parsed<O>;
  /** A picker over `members` (never empty of weight: every member has weight > 0). */
  create<E extends WeightedEndpoint>(members: readonly Member<E>[], options: O, env: BalancerEnv): Picker<E>;
}

export const NO_ENDPOINT = 'no endpoint available';

const NONE: PickResult<never> = { kind: 'none', reason: NO_ENDPOINT };

/** The shared "none" result (no allocation). */
export function noEndpoint<E>(): PickResult<E> {
  return NONE;
}

/** Options-free policies parse nothing. */
export function noOptions(): Parsed<undefined> {
  return { ok: true, options: undefined };
}

/** Weighted random index over `members`, skipping excluded ones (-1 when all are). */
export function weightedRandomIndex<E>(members: readonly Member<E>[], exclude: ReadonlySet<E> | undefined, random: () => number): number {
  let total = 0;
  for (const m of members) if (exclude === undefined || !exclude.has(m.endpoint)) total += m.weight;
  if (total <= 0) return -1;
  let r = random() * total;
  let last = -1;
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as Member<E>;
    if (exclude !== undefined && exclude.has(m.endpoint)) continue;
    last = i;
    r -= m.weight;
    if (r < 0) return i;
  }
  return last;
}
