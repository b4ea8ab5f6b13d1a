import { describe, expect, it } from 'vitest';
import { computeWeights, DEFAULT_WEIGHT_ENGINE_OPTIONS, effectiveWeight, dataPlaneWeight, referenceLatency, type WeightEngineEndpoint, type WeightEngineStats } from './weight-engine.js';

/** mulberry32: a small seeded PRNG, so every simulation is reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const o = DEFAULT_WEIGHT_ENGINE_OPTIONS;
const IDS = ['a', 'b', 'c', 'd'];

interface World {
  /** Base latency per endpoint (ms); changed mid-run to slow one down. */
  latency: Record<string, number>;
  errors: Record<string, number>;
  health: Record<string, 'Healthy' | 'Unhealthy' | 'Unknown'>;
}

/**
 * Simulates `intervals` engine runs over 4 endpoints: each interval 2000 requests are spread by
 * effective weight, each endpoint reports its latency with +-5 % noise (an EWMA over a window of thousands of requests) and its error rate.
 * Returns the factors and traffic shares after each interval.
 */
function simulate(seed: number, intervals: number, world: (i: number) => World, start = new Map<string, number>()) {
  const rand = prng(seed);
  let factors = start;
  const history: { factors: Map<string, number>; share: Record<string, number>; published: boolean }[] = [];
  for (let i = 0; i < intervals; i++) {
    const w = world(i);
    const weights = IDS.map((id) => dataPlaneWeight(effectiveWeight(1, factors.get(id) ?? 1)));
    const total = weights.reduce((s, x) => s + x, 0);
    const share: Record<string, number> = {};
    const endpoints: WeightEngineEndpoint[] = IDS.map((id, k) => {
      share[id] = weights[k]! / total;
      const requests = Math.round(2000 * share[id]);
      const stats: WeightEngineStats = { requests, errorRate: w.errors[id] ?? 0, latencyMs: w.latency[id]! * (0.95 + 0.1 * rand()) };
      return { id, weight: 1, health: w.health[id] ?? 'Healthy', stats };
    });
    const result = computeWeights({ previous: factors, endpoints, options: o, now: 1_000_000 + i * 5000 });
    history.push({ factors: result.factors, share, published: result.changed.size > 0 });
    factors = result.factors;
  }
  return history;
}

const fast = { a: 5, b: 5, c: 5, d: 5 };
const unhealthyA = (yes: boolean): World['health'] => (yes ? { a: 'Unhealthy' } : {});

describe('weight engine (seeded simulation)', () => {
  it('a slowed endpoint loses share within a few intervals, and regains it once fast again', () => {
    const h = simulate(1, 40, (i) => ({ latency: i >= 10 && i < 25 ? { ...fast, d: 55 } : fast, errors: {}, health: {} }));
    expect(h[9]!.share.d).toBeCloseTo(0.25, 1);
    // Slowed at interval 10: after 4 intervals its factor is near minFactor and its share small.
    expect(h[14]!.factors.get('d')).toBeLessThan(0.2);
    expect(h[15]!.share.d).toBeLessThan(0.06);
    // Fast again at 25: share back near a quarter within a few intervals.
    expect(h[31]!.factors.get('d')).toBeGreaterThan(0.85);
    expect(h[32]!.share.d).toBeGreaterThan(0.2);
  });

  it('oscillation is bounded: steady noisy latencies do not flap between extremes', () => {
    for (const seed of [2, 3, 4, 5, 6]) {
      const h = simulate(seed, 200, () => ({ latency: fast, errors: {}, health: {} }));
      for (const step of h.slice(5)) {
        for (const id of IDS) {
          const f = step.factors.get(id)!;
          expect(f).toBeGreaterThan(0.8);
          expect(f).toBeLessThan(1.25);
        }
      }
      // The dead band keeps most intervals silent: no publication every interval.
      const published = h.slice(5).filter((s) => s.published).length;
      expect(published).toBeLessThan(40);
    }
  });

  it('a persistently slow endpoint settles instead of swinging between min and max', () => {
    const h = simulate(7, 100, () => ({ latency: { ...fast, c: 15 }, errors: {}, health: {} }));
    const tail = h.slice(30).map((s) => s.factors.get('c')!);
    expect(Math.max(...tail) - Math.min(...tail)).toBeLessThan(0.25);
    expect(Math.max(...tail)).toBeLessThan(0.6);
  });

  it('errors push weight down', () => {
    const h = simulate(8, 20, () => ({ latency: fast, errors: { b: 0.1 }, health: {} }));
    expect(h[19]!.factors.get('b')).toBeLessThan(0.6);
    expect(h[19]!.share.b).toBeLessThan(0.17);
    const all = simulate(9, 20, () => ({ latency: fast, errors: { b: 0.5 }, health: {} }));
    expect(all[19]!.factors.get('b')).toBe(o.minFactor);
  });

  it('absent data leaves weights alone (and too few requests count as absent)', () => {
    const previous = new Map(IDS.map((id) => [id, 1]));
    const none = computeWeights({ previous, endpoints: IDS.map((id) => ({ id, weight: 1, health: 'Unknown' })), options: o, now: 0 });
    expect([...none.factors.values()]).toEqual([1, 1, 1, 1]);
    expect(none.changed.size).toBe(0);
    const few = computeWeights({
      previous,
      endpoints: IDS.map((id) => ({ id, weight: 1, health: 'Healthy', stats: { requests: 3, errorRate: id === 'a' ? 1 : 0, latencyMs: id === 'a' ? 500 : 5 } })),
      options: o,
      now: 0,
    });
    expect(few.changed.size).toBe(0);
    // An endpoint that was penalised drifts back to 1 when its data goes away.
    const back = computeWeights({ previous: new Map([...previous, ['a', 0.1]]), endpoints: IDS.map((id) => ({ id, weight: 1, health: 'Healthy' })), options: o, now: 0 });
    expect(back.factors.get('a')).toBe(0.55);
  });

  it('Unhealthy is 0 at once; back to health it ramps up from minFactor', () => {
    const h = simulate(10, 12, (i) => ({ latency: fast, errors: {}, health: unhealthyA(i >= 2 && i < 5) }));
    expect(h[2]!.factors.get('a')).toBe(0);
    expect(h[5]!.factors.get('a')).toBeGreaterThan(0);
    expect(h[5]!.factors.get('a')).toBeLessThan(0.6);
    expect(h[11]!.factors.get('a')).toBeGreaterThan(0.9);
  });

  it('a new endpoint ramps up; the first run of an upstream starts everyone at 1', () => {
    const first = computeWeights({ previous: new Map(), endpoints: IDS.map((id) => ({ id, weight: 1, health: 'Unknown' })), options: o, now: 0 });
    expect([...first.factors.values()]).toEqual([1, 1, 1, 1]);
    expect(first.changed.size).toBe(4);
    const h = simulate(11, 8, () => ({ latency: fast, errors: {}, health: {} }), new Map([['a', 1], ['b', 1], ['c', 1]]));
    const ramp = h.map((s) => s.factors.get('d')!);
    expect(ramp[0]).toBeLessThan(0.6);
    for (let i = 1; i < ramp.length; i++) expect(ramp[i]).toBeGreaterThanOrEqual(ramp[i - 1]!);
    expect(ramp[7]).toBeGreaterThan(0.9);
  });

  it('the reference is the request-weighted median; effective and data-plane weights round', () => {
    const endpoints: WeightEngineEndpoint[] = [
      { id: 'a', weight: 1, health: 'Healthy', stats: { requests: 100, errorRate: 0, latencyMs: 5 } },
      { id: 'b', weight: 1, health: 'Healthy', stats: { requests: 100, errorRate: 0, latencyMs: 6 } },
      { id: 'c', weight: 1, health: 'Healthy', stats: { requests: 300, errorRate: 0, latencyMs: 50 } },
    ];
    expect(referenceLatency(endpoints, o)).toBe(50);
    expect(effectiveWeight(3, 0.333)).toBe(1);
    expect(effectiveWeight(1, 0.001)).toBe(0.01);
    expect(effectiveWeight(0, 1)).toBe(0);
    expect(dataPlaneWeight(0.01)).toBe(1);
    expect(dataPlaneWeight(1)).toBe(100);
    expect(dataPlaneWeight(0)).toBe(0);
  });
});
