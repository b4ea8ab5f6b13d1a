import { NO_ENDPOINT, type Balancer, type BalancerPolicy, type PickContext, type PickResult, type WeightedEndpoint } from './balancer.js';

/**
 * Smooth weighted round robin (nginx): every pick adds each weight to its member's running
 * score, takes the highest score and subtracts the total from it. Over `total` picks each
 * member is chosen exactly `weight` times, interleaved: {5,1,1} gives a a b a c a a, never
 * a long run on the heaviest one. Also used to split a route between its backends.
 */
export class SmoothWeighted<T extends WeightedEndpoint> {
  private readonly scores: number[];
  private readonly total: number;

  constructor(readonly members: readonly T[]) {
    this.scores = members.map(() => 0);
    this.total = members.reduce((sum, m) => sum + m.weight, 0);
  }

  get size(): number {
    return this.members.length;
  }

  /** The next member, skipping `exclude`d ones while another is left; undefined when empty. */
  next(exclude?: ReadonlySet<T>): T | undefined {
    const members = this.members;
    let best = -1;
    let bestExcluded = -1;
    for (let i = 0; i < members.length; i++) {
      const score = (this.scores[i] as number) + (members[i] as T).weight;
      this.scores[i] = score;
      if (exclude !== undefined && exclude.has(members[i] as T)) {
        if (bestExcluded < 0 || score > (this.scores[bestExcluded] as number)) bestExcluded = i;
      } else if (best < 0 || score > (this.scores[best] as number)) {
        best = i;
      }
    }
    if (best < 0) best = bestExcluded;
    if (best < 0) return undefined;
    this.scores[best] = (this.scores[best] as number) - this.total;
    return members[best];
  }
}

class WeightedRoundRobin<E extends WeightedEndpoint> implements Balancer<E> {
  private readonly wrr: SmoothWeighted<E>;
  private readonly none: PickResult<E> = { kind: 'none', reason: NO_ENDPOINT };

  constructor(endpoints: readonly E[]) {
    this.wrr = new SmoothWeighted(endpoints);
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const endpoint = this.wrr.next(ctx.exclude);
    return endpoint === undefined ? this.none : { kind: 'endpoint', endpoint };
  }

  onStart(): void {}
  onEnd(): void {}
}

export const weightedRoundRobin: BalancerPolicy = {
  name: 'weighted-round-robin',
  create: (endpoints) => new WeightedRoundRobin(endpoints),
};
