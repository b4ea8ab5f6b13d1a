import { SlowStartClock, type SlowStartSettings } from '../slow-start.js';
import type { Balancer, BalancerEnv, BalancerPolicy, Member, PickContext, PickResult, Picker, WeightedEndpoint } from './balancer.js';
import { EndpointLoad } from './endpoint-load.js';

/**
 * Local, fast-changing availability of endpoints (outlier ejection, local probes), on top of
 * the health the config carries. The balancer reads `generation` on every pick and rebuilds
 * its eligible set (and the policy's tables) only when it changed.
 */
export interface EndpointAvailability {
  /** Bumped whenever `available` may answer differently for some endpoint. */
  readonly generation: number;
  available(id: string): boolean;
}

/**
 * A cluster's balancing state that outlives its config versions (dynamic weights push a new
 * endpoints version every few seconds): per-endpoint load and latency, and slow start. The
 * data plane hands the previous version's state to the next one.
 */
export class BalancerState {
  private readonly loads = new Map<string, EndpointLoad>();
  readonly slowStart = new SlowStartClock();
  /** Plugged in by outlier detection; undefined = every endpoint the config calls healthy is available. */
  availability: EndpointAvailability | undefined;

  loadOf(id: string): EndpointLoad {
    let load = this.loads.get(id);
    if (load === undefined) {
      load = new EndpointLoad();
      this.loads.set(id, load);
    }
    return load;
  }

  /** Forgets endpoints that left the cluster (a balancer still serving them keeps its own references). */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.loads.keys()) if (!ids.has(id)) this.loads.delete(id);
  }
}

export interface ClusterBalancerConfig<O> {
  readonly policy: BalancerPolicy<O>;
  readonly options: O;
  /** Below this percentage of healthy endpoints in rotation, balance over all of them; 0 = never. */
  readonly panicThresholdPercent: number;
  readonly slowStart: SlowStartSettings | undefined;
}

/**
 * The balancer of one cluster version. It owns which endpoints a policy sees:
 *   in rotation (weight > 0) -> healthy per the config (`healthy`) and available per
 *   `state.availability` -> unless fewer than `panicThresholdPercent` % of those in rotation
 *   are, in which case all in rotation (panic, as in Envoy).
 * Weights are scaled by slow start for weighted policies. The policy's picker (and its ring or
 * Maglev table) is built once per eligible set, rebuilt when availability changes and, while
 * an endpoint ramps up, every few percent of the window.
 */
export class ClusterBalancer<E extends WeightedEndpoint, O = unknown> implements Balancer<E> {
  private readonly inRotation: readonly E[];
  private readonly loads = new Map<E, EndpointLoad>();
  private picker!: Picker<E>;
  private seenAvailability: EndpointAvailability | undefined;
  private seenGeneration = 0;
  /** While some endpoint ramps up: when to rebuild with new weights (Infinity = never). */
  private rebuildAt = Infinity;
  private members: readonly Member<E>[] = [];
  private panic = false;

  constructor(
    endpoints: readonly E[],
    private readonly healthy: (endpoint: E) => boolean,
    private readonly config: ClusterBalancerConfig<O>,
    private readonly state: BalancerState,
    private readonly env: BalancerEnv,
  ) {
    this.inRotation = endpoints.filter((e) => e.weight > 0);
    for (const e of endpoints) this.loads.set(e, state.loadOf(e.id));
    state.retain(new Set(endpoints.map((e) => e.id)));
    this.rebuild(env.now());
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const availability = this.state.availability;
    if (availability !== this.seenAvailability || (availability !== undefined && availability.generation !== this.seenGeneration)) {
      this.rebuild(this.env.now());
    } else if (this.rebuildAt !== Infinity) {
      const now = this.env.now();
      if (now >= this.rebuildAt) this.rebuild(now);
    }
    return this.picker.pick(ctx);
  }

  onStart(endpoint: E): void {
    const load = this.loads.get(endpoint);
    if (load !== undefined) load.inFlight++;
  }

  onEnd(endpoint: E, outcome: { latencyMs: number; ok: boolean }): void {
    const load = this.loads.get(endpoint);
    if (load === undefined) return;
    load.inFlight = Math.max(0, load.inFlight - 1);
    // A failure never makes an endpoint look faster (a refused connection answers quickly).
    const now = this.env.now();
    if (outcome.ok || outcome.latencyMs > (load.latency(now) ?? 0)) load.observe(outcome.latencyMs, now);
  }

  /** The policy's name, as in logs: "round-robin". */
  get policy(): string {
    return this.config.policy.name;
  }

  /** The endpoints the policy balances over now (for status and tests). */
  get eligible(): readonly E[] {
    return this.members.map((m) => m.endpoint);
  }

  /** True while too few endpoints are healthy and health is ignored. */
  get panicking(): boolean {
    return this.panic;
  }

  private rebuild(now: number): void {
    const availability = this.state.availability;
    this.seenAvailability = availability;
    this.seenGeneration = availability?.generation ?? 0;
    const healthy = this.inRotation.filter((e) => this.healthy(e) && (availability === undefined || availability.available(e.id)));
    const threshold = this.config.panicThresholdPercent;
    this.panic = threshold > 0 && this.inRotation.length > 0 && healthy.length * 100 < threshold * this.inRotation.length;
    const chosen = this.panic ? this.inRotation : healthy;
    const slowStart = this.config.slowStart;
    this.state.slowStart.update(new Set(healthy.map((e) => e.id)), now);
    let ramping = false;
    this.members = chosen.map((endpoint) => {
      let weight = endpoint.weight;
      if (slowStart !== undefined && this.config.policy.weighted) {
        const factor = this.state.slowStart.factor(endpoint.id, slowStart, now);
        if (factor < 1) ramping = true;
        weight *= factor;
      }
      return { endpoint, weight, load: this.loads.get(endpoint) as EndpointLoad };
    });
    // Re-weigh about 50 times per window, but not more than 20 times a second.
    this.rebuildAt = ramping && slowStart !== undefined ? now + Math.max(50, slowStart.windowMs / 50) : Infinity;
    this.picker = this.config.policy.create(this.members, this.config.options, this.env);
  }
}
