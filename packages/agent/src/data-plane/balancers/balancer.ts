// The balancer plug-in interface (STYLE §6, grpc-js picker): a policy turns a cluster's
// endpoints (one config version) into a picker; picking is synchronous and allocation-free.

/** What a balancer needs to know about an endpoint; the data plane passes richer objects. */
export interface WeightedEndpoint {
  /** Effective weight; 0 = out of rotation (never picked). */
  readonly weight: number;
}

export interface PickContext<E> {
  /** The client's address, for policies that hash on it. */
  readonly clientAddress: string;
  /** Endpoints already tried by this request (retries): avoided while another one is left. */
  readonly exclude: ReadonlySet<E> | undefined;
}

export type PickResult<E> = { kind: 'endpoint'; endpoint: E } | { kind: 'none'; reason: string };

export interface Balancer<E extends WeightedEndpoint> {
  pick(ctx: PickContext<E>): PickResult<E>;
  /** A request to `endpoint` starts (in-flight accounting). */
  onStart(endpoint: E): void;
  /** It ended: how long it took and whether the endpoint answered without a failure. */
  onEnd(endpoint: E, outcome: { latencyMs: number; ok: boolean }): void;
}

export interface BalancerPolicy {
  /** kebab-case, as in logs: "round-robin". */
  readonly name: string;
  /** Builds a picker over `endpoints`, whose weight-0 members are already filtered out. */
  create<E extends WeightedEndpoint>(endpoints: readonly E[]): Balancer<E>;
}

export const NO_ENDPOINT = 'no endpoint available';
