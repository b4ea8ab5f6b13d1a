import { describe, expect, it } from 'vitest';
import { EndpointLoad, LATENCY_DECAY_MS } from './endpoint-load.js';
import { createBalancer } from './registry.js';
import { FakeEnv, fakes, lb, P, pickId } from './test-support.js';

const LRT = lb(P.LOAD_BALANCING_POLICY_LEAST_RESPONSE_TIME);

/**
 * Open-loop traffic on a fake clock: a request every `gapMs`; a request to endpoint id lasts
 * latency(id, t) ms, after which onEnd reports that latency. Returns the share of each
 * endpoint among requests started in [from, to).
 */
function simulate(latency: (id: string, t: number) => number, untilMs: number, windows: [number, number][], gapMs = 2) {
  const env = new FakeEnv(11);
  const endpoints = fakes({ a: 1, b: 1, c: 1, d: 1 });
  const byId = new Map(endpoints.map((e) => [e.id, e]));
  const balancer = createBalancer(LRT, endpoints, { env });
  const running: { id: string; start: number; end: number }[] = [];
  const started: { id: string; t: number }[] = [];
  for (let t = 0; t < untilMs; t += gapMs) {
    env.time = t;
    running.sort((x, y) => x.end - y.end);
    while (running.length > 0 && running[0]!.end <= t) {
      const r = running.shift()!;
      env.time = r.end;
      balancer.onEnd(byId.get(r.id)!, { latencyMs: r.end - r.start, ok: true });
    }
    env.time = t;
    const id = pickId(balancer);
    balancer.onStart(byId.get(id)!);
    running.push({ id, start: t, end: t + latency(id, t) });
    started.push({ id, t });
  }
  return windows.map(([from, to]) => {
    const inWindow = started.filter((s) => s.t >= from && s.t < to);
    return (id: string) => inWindow.filter((s) => s.id === id).length / inWindow.length;
  });
}

describe('least response time (peak EWMA x (in flight + 1), power of two choices)', () => {
  it('shifts traffic away from a slow endpoint and back after it recovers', () => {
    // a is 20x slower from 10 s to 40 s; all others answer in 5 ms.
    const slow = (id: string, t: number) => (id === 'a' && t >= 10_000 && t < 40_000 ? 100 : 5);
    const [before, during, after] = simulate(slow, 100_000, [
      [2_000, 10_000],
      [15_000, 40_000],
      [70_000, 100_000],
    ]);
    expect(Math.abs(before!('a') - 0.25)).toBeLessThan(0.06);
    expect(during!('a')).toBeLessThan(0.05);
    expect(Math.abs(after!('a') - 0.25)).toBeLessThan(0.06);
  });

  it('tries an endpoint nobody has measured yet without flooding it', () => {
    const env = new FakeEnv(3);
    const endpoints = fakes({ old: 1, fresh: 1 });
    const balancer = createBalancer(LRT, endpoints, { env });
    // "old" is known to answer in 10 ms; "fresh" was never measured.
    balancer.onStart(endpoints[0]!);
    balancer.onEnd(endpoints[0]!, { latencyMs: 10, ok: true });
    const picks = Array.from({ length: 1000 }, () => pickId(balancer));
    const fresh = picks.filter((p) => p === 'fresh').length / picks.length;
    expect(fresh).toBeGreaterThan(0.3);
    expect(fresh).toBeLessThan(0.7);
  });
});

describe('peak EWMA', () => {
  it('jumps to a slower sample at once, and decays towards faster ones with a 10 s time constant', () => {
    const load = new EndpointLoad();
    expect(load.latency(0)).toBeUndefined();
    load.observe(10, 0);
    load.observe(200, 1);
    expect(load.latency(1)).toBe(200);
    // With nothing observed the estimate decays by e after one time constant.
    expect(load.latency(1 + LATENCY_DECAY_MS)).toBeCloseTo(200 / Math.E, 5);
    // Fast samples pull it down, faster when they are further apart.
    const a = new EndpointLoad();
    a.observe(100, 0);
    a.observe(10, 100);
    const b = new EndpointLoad();
    b.observe(100, 0);
    b.observe(10, 5_000);
    expect(b.latency(5_000)!).toBeLessThan(a.latency(100)!);
    expect(a.latency(100)!).toBeGreaterThan(10);
  });
});
