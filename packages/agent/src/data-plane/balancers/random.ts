import { noEndpoint, noOptions, weightedRandomIndex, type BalancerPolicy, type Member, type PickContext, type PickResult, type Picker } from './balancer.js';

/**
 * A weighted random endpoint: each one with probability weight / total (uniform when the
 * weights are equal). Cumulative weights are built once per endpoint set; a pick is one
 * random number and a binary search. Retries draw among the endpoints not yet tried.
 */
export class WeightedRandom<E> implements Picker<E> {
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(
    private readonly members: readonly Member<E>[],
    private readonly random: () => number,
  ) {
    this.cumulative = new Float64Array(members.length);
    let sum = 0;
    for (const [i, m] of members.entries()) {
      sum += m.weight;
      this.cumulative[i] = sum;
    }
    this.total = sum;
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const n = this.members.length;
    if (n === 0) return noEndpoint();
    if (ctx.exclude !== undefined) {
      const i = weightedRandomIndex(this.members, ctx.exclude, this.random);
      if (i >= 0) return { kind: 'endpoint', endpoint: (this.members[i] as Member<E>).endpoint };
    }
    const r = this.random() * this.total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cumulative[mid] as number) > r) hi = mid;
      else lo = mid + 1;
    }
    return { kind: 'endpoint', endpoint: (this.members[lo] as Member<E>).endpoint };
  }
}

export const random: BalancerPolicy<undefined> = {
  name: 'random',
  weighted: true,
  parse: noOptions,
  create: (members, _options, env) => new WeightedRandom(members, env.random),
};
