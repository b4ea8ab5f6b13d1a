import type { LoadBalancing } from '@sluice/proto';
import { noEndpoint, type BalancerEnv, type BalancerPolicy, type Member, type Parsed, type PickContext, type PickResult, type Picker } from './balancer.js';

/** Most endpoints sampled per pick (the API allows 2-10). */
const MAX_CHOICES = 10;

export interface ChoiceOptions {
  /** Endpoints compared per pick; 0 = all of them. */
  readonly choiceCount: number;
}

export function parseChoiceCount(lb: LoadBalancing | undefined, fallback: number): Parsed<ChoiceOptions> {
  const n = lb?.choiceCount ?? 0;
  if (n === 1 || n > MAX_CHOICES) return { ok: false, error: `load_balancing.choice_count: must be 0 (default) or 2-${MAX_CHOICES}, got ${n}` };
  return { ok: true, options: { choiceCount: n === 0 ? fallback : n } };
}

/**
 * Picks the member with the lowest `score`, among all members or among `choiceCount` sampled
 * at random (power of N choices). Ties go to a random one (weighted by weight for weighted
 * policies, so idle endpoints still share traffic by weight). Excluded (already tried)
 * members count only when every member is excluded.
 */
export class LowestScore<E> implements Picker<E> {
  private readonly sampled: Int32Array;

  constructor(
    private readonly members: readonly Member<E>[],
    private readonly choiceCount: number,
    private readonly env: BalancerEnv,
    private readonly score: (m: Member<E>, now: number) => number,
    private readonly weightedTies: boolean,
  ) {
    this.sampled = new Int32Array(Math.min(choiceCount, MAX_CHOICES));
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const n = this.members.length;
    if (n === 0) return noEndpoint();
    let best = this.choose(ctx.exclude);
    if (best < 0) best = this.choose(undefined);
    return { kind: 'endpoint', endpoint: (this.members[best] as Member<E>).endpoint };
  }

  // The running choice of one pick, in fields so that a pick allocates nothing.
  private best = -1;
  private bestScore = Infinity;
  private tieWeight = 0;
  private now = 0;

  private choose(exclude: ReadonlySet<E> | undefined): number {
    const members = this.members;
    const n = members.length;
    this.now = this.env.now();
    this.best = -1;
    this.bestScore = Infinity;
    this.tieWeight = 0;
    const k = this.choiceCount;
    if (k === 0 || k >= n) {
      for (let i = 0; i < n; i++) if (exclude === undefined || !exclude.has((members[i] as Member<E>).endpoint)) this.consider(i);
      return this.best;
    }
    // Sample k distinct members; give up on exclusions after a few draws and scan instead.
    let taken = 0;
    for (let draws = 0; taken < k && draws < k * 4; draws++) {
      const i = Math.floor(this.env.random() * n);
      if (exclude !== undefined && exclude.has((members[i] as Member<E>).endpoint)) continue;
      let seen = false;
      for (let j = 0; j < taken; j++) if (this.sampled[j] === i) seen = true;
      if (seen) continue;
      this.sampled[taken++] = i;
      this.consider(i);
    }
    if (this.best < 0) for (let i = 0; i < n; i++) if (exclude === undefined || !exclude.has((members[i] as Member<E>).endpoint)) this.consider(i);
    return this.best;
  }

  private consider(i: number): void {
    const m = this.members[i] as Member<E>;
    const s = this.score(m, this.now);
    const w = this.weightedTies ? m.weight : 1;
    if (s < this.bestScore) {
      this.best = i;
      this.bestScore = s;
      this.tieWeight = w;
    } else if (s === this.bestScore) {
      // Reservoir sampling among the tied ones.
      this.tieWeight += w;
      if (this.env.random() * this.tieWeight < w) this.best = i;
    }
  }
}

/** Fewest requests in flight (HAProxy leastconn, NGINX least_conn without weights). */
export const leastConnections: BalancerPolicy<ChoiceOptions> = {
  name: 'least-connections',
  weighted: false,
  parse: (lb) => parseChoiceCount(lb, 0),
  create: (members, options, env) => new LowestScore(members, options.choiceCount, env, (m) => m.load.inFlight, false),
};

/** Fewest requests in flight per unit of weight (HAProxy leastconn, NGINX least_conn). */
export const weightedLeastConnections: BalancerPolicy<ChoiceOptions> = {
  name: 'weighted-least-connections',
  weighted: true,
  parse: (lb) => parseChoiceCount(lb, 0),
  create: (members, options, env) => new LowestScore(members, options.choiceCount, env, (m) => m.load.inFlight / m.weight, true),
};
