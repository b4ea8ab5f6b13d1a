import { describe, expect, it } from 'vitest';
import { createBalancer } from './registry.js';
import { ctx, fakes, lb, P, pickId, type Fake } from './test-support.js';
import { SmoothWeighted } from './weighted-round-robin.js';

const WRR = lb(P.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN);

function picks(weights: Record<string, number>, n: number): string[] {
  const balancer = createBalancer(WRR, fakes(weights));
  return Array.from({ length: n }, () => pickId(balancer));
}

describe('weighted round robin (smooth)', () => {
  it.each([
    [{ a: 5, b: 1, c: 1 }],
    [{ a: 1, b: 1 }],
    [{ a: 3, b: 2, c: 1, d: 0 }],
    [{ a: 100, b: 1 }],
    [{ a: 7, b: 13, c: 29 }],
  ])('gives each endpoint its share and never a weight-0 one: %o', (weights) => {
    const total = Object.values(weights).reduce((s, w) => s + w, 0);
    const n = total * 50;
    const seq = picks(weights, n);
    for (const [name, weight] of Object.entries(weights)) {
      const share = seq.filter((p) => p === name).length / n;
      expect(Math.abs(share - weight / total)).toBeLessThan(0.01);
      if (weight === 0) expect(seq).not.toContain(name);
    }
  });

  it('never picks one endpoint twice in a row while a spread exists', () => {
    // Heaviest weight at most the sum of the others: a perfect interleave is possible.
    const sets: Record<string, number>[] = [{ a: 1, b: 1 }, { a: 2, b: 1, c: 1 }, { a: 3, b: 3 }, { a: 5, b: 3, c: 2 }];
    for (const weights of sets) {
      const seq = picks(weights, 400);
      for (let i = 1; i < seq.length; i++) expect(seq[i], `${JSON.stringify(weights)} at ${i}`).not.toBe(seq[i - 1]);
    }
  });

  it('interleaves the heavy endpoint as nginx does: {5,1,1} -> a a b a c a a', () => {
    expect(picks({ a: 5, b: 1, c: 1 }, 7).join(' ')).toBe('a a b a c a a');
  });

  it('avoids excluded endpoints while another is left, and answers none when empty', () => {
    const endpoints = fakes({ a: 10, b: 1 });
    const balancer = createBalancer(WRR, endpoints);
    const exclude = new Set([endpoints[0]!]);
    for (let i = 0; i < 5; i++) expect(pickId(balancer, ctx({ exclude }))).toBe('b');
    expect(balancer.pick(ctx({ exclude: new Set(endpoints) })).kind).toBe('endpoint');
    expect(createBalancer<Fake>(WRR, []).pick(ctx())).toEqual({ kind: 'none', reason: 'no endpoint available' });
  });

  it('SmoothWeighted over zero members yields undefined', () => {
    expect(new SmoothWeighted<Fake>([]).next()).toBeUndefined();
  });
});

describe('weighted round robin on random weights (seeded)', () => {
  it('keeps exact shares and, where an alternation exists, never repeats', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const weights: Record<string, number> = {};
      const count = 2 + rand(5);
      for (let i = 0; i < count; i++) weights[`e${i}`] = rand(20);
      const values = Object.values(weights);
      const total = values.reduce((s, w) => s + w, 0);
      if (total === 0) continue;
      const seq = picks(weights, total * 20);
      for (const [name, weight] of Object.entries(weights)) {
        expect(seq.filter((p) => p === name).length, JSON.stringify(weights)).toBe(weight * 20);
      }
      if (Math.max(...values) * 2 <= total) {
        for (let i = 1; i < seq.length; i++) expect(seq[i], `${JSON.stringify(weights)} at ${i}`).not.toBe(seq[i - 1]);
      }
    }
  });
});
