import { noEndpoint, noOptions, type BalancerPolicy, type Member, type PickContext, type PickResult, type Picker } from './balancer.js';

/** Anything with a weight: endpoints here, a route's backends in the router. */
interface Weighted {
  readonly weight: number;
}

/**
 * Smooth weighted round robin (nginx): every pick adds each weight to its member's running
 * score, takes the highest score and subtracts the total from it. Over `total` picks each
 * member is chosen exactly `weight` times, interleaved: {5,1,1} gives a a b a c a a, never
 * a long run on the heaviest one. Also used to split a route between its backends.
 *
 * One addition: plain nginx repeats at cycle boundaries ({2,1,1}: a b c a | a b c a). When
 * no member outweighs all the others together, an alternation exists, so a pick that would
 * repeat the previous member goes to the best other member with a positive score instead.
 * Scores still sum to zero after every pick, so the long-run shares stay exact.
 */
export class SmoothWeighted<T extends Weighted> {
  private readonly scores: number[];
  private readonly total: number;
  private readonly canAlternate: boolean;
  private last = -1;

  constructor(readonly members: readonly T[]) {
    this.scores = members.map(() => 0);
    this.total = members.reduce((sum, m) => sum + m.weight, 0);
    const heaviest = members.reduce((max, m) => Math.max(max, m.weight), 0);
    this.canAlternate = members.length > 1 && heaviest * 2 <= this.total;
  }

  get size(): number {
    return this.members.length;
  }

  /** The next member, skipping those `skip` names while another is left; undefined when empty. */
  next(skip?: (member: T) => boolean): T | undefined {
    const members = this.members;
    let best = -1;
    let other = -1; // the best candidate that is not the previous pick
    let bestExcluded = -1;
    for (let i = 0; i < members.length; i++) {
      const score = (this.scores[i] as number) + (members[i] as T).weight;
      this.scores[i] = score;
      if (skip !== undefined && skip(members[i] as T)) {
        if (bestExcluded < 0 || score > (this.scores[bestExcluded] as number)) bestExcluded = i;
        continue;
      }
      if (best < 0 || score > (this.scores[best] as number)) best = i;
      if (i !== this.last && (other < 0 || score > (this.scores[other] as number))) other = i;
    }
    if (best === this.last && this.canAlternate && other >= 0 && (this.scores[other] as number) > 0) best = other;
    if (best < 0) best = bestExcluded;
    if (best < 0) return undefined;
    this.last = best;
    this.scores[best] = (this.scores[best] as number) - this.total;
    return members[best];
  }
}

class WeightedRoundRobin<E> implements Picker<E> {
  private readonly wrr: SmoothWeighted<Member<E>>;

  constructor(members: readonly Member<E>[]) {
    this.wrr = new SmoothWeighted(members);
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const exclude = ctx.exclude;
    // A closure only on retries: first tries allocate nothing.
    const member = exclude === undefined ? this.wrr.next() : this.wrr.next((m) => exclude.has(m.endpoint));
    return member === undefined ? noEndpoint() : { kind: 'endpoint', endpoint: member.endpoint };
  }
}

export const weightedRoundRobin: BalancerPolicy<undefined> = {
  name: 'weighted-round-robin',
  weighted: true,
  parse: noOptions,
  create: (members) => new WeightedRoundRobin(members),
};
