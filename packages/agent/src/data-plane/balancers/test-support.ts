// Fakes for balancer tests: endpoints, a clock and a seeded random source. No sockets.
import { LoadBalancingPolicy, type LoadBalancing } from '@sluice/proto';
import type { Balancer, BalancerEnv, PickContext } from './balancer.js';

export interface Fake {
  readonly id: string;
  readonly weight: number;
}

/** Endpoints named by the keys, with the values as weights. */
export function fakes(weights: Record<string, number>): Fake[] {
  return Object.entries(weights).map(([id, weight]) => ({ id, weight }));
}

export function lb(policy: LoadBalancingPolicy, over: Partial<LoadBalancing> = {}): LoadBalancing {
  return { policy, panicThresholdPercent: 0, choiceCount: 0, ...over };
}

export const P = LoadBalancingPolicy;

/** mulberry32: a small seeded PRNG, so property tests are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FakeEnv implements BalancerEnv {
  time = 0;
  readonly random: () => number;
  constructor(seed = 1) {
    this.random = seeded(seed);
  }
  now = (): number => this.time;
}

export function ctx<E>(over: Partial<PickContext<E>> = {}): PickContext<E> {
  return { clientAddress: '', exclude: undefined, ...over };
}

/** The id picked; throws on none. */
export function pickId<E extends Fake>(balancer: Balancer<E>, context: PickContext<E> = ctx()): string {
  const r = balancer.pick(context);
  if (r.kind !== 'endpoint') throw new Error(r.reason);
  return r.endpoint.id;
}

/** Share of each id among `n` picks. */
export function shares<E extends Fake>(balancer: Balancer<E>, n: number, context: () => PickContext<E> = () => ctx()): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = pickId(balancer, context());
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return new Map([...counts].map(([id, c]) => [id, c / n]));
}
