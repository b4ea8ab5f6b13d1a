import { describe, expect, it } from 'vitest';
import { SlowStartClock, slowStartFactor, slowStartSettings, validateSlowStart } from './slow-start.js';

describe('slow start', () => {
  it("follows Envoy's formula: max(minWeight, (elapsed / window)^(1 / aggression)), 1 after the window", () => {
    const linear = { windowMs: 1000, aggression: 1, minWeight: 0.1 };
    expect(slowStartFactor(linear, 0)).toBe(0.1);
    expect(slowStartFactor(linear, 50)).toBe(0.1);
    expect(slowStartFactor(linear, 500)).toBeCloseTo(0.5);
    expect(slowStartFactor(linear, 1000)).toBe(1);
    const aggressive = { windowMs: 1000, aggression: 2, minWeight: 0 };
    expect(slowStartFactor(aggressive, 250)).toBeCloseTo(0.5);
    // Monotonic over the window.
    let last = 0;
    for (let t = 0; t <= 1000; t += 10) {
      const f = slowStartFactor({ windowMs: 1000, aggression: 1.5, minWeight: 0.05 }, t);
      expect(f).toBeGreaterThanOrEqual(last);
      last = f;
    }
  });

  it('reads the wire: unset aggression is 1, unset minimum weight 10 %, a zero window is off', () => {
    expect(slowStartSettings({ windowMs: 30_000, aggression: 0 })).toEqual({ windowMs: 30_000, aggression: 1, minWeight: 0.1 });
    expect(slowStartSettings({ windowMs: 30_000, aggression: 3, minWeightPercent: 0 })).toEqual({ windowMs: 30_000, aggression: 3, minWeight: 0 });
    expect(slowStartSettings({ windowMs: 0, aggression: 1 })).toBeUndefined();
    expect(validateSlowStart({ windowMs: 1, aggression: -1 })).toMatch(/^slow_start\.aggression/);
    expect(validateSlowStart({ windowMs: 1, aggression: 1, minWeightPercent: 101 })).toMatch(/^slow_start\.min_weight_percent/);
  });

  it('ramps endpoints that join or come back, not those of the first set', () => {
    const clock = new SlowStartClock();
    const s = { windowMs: 1000, aggression: 1, minWeight: 0 };
    clock.update(new Set(['a', 'b']), 0);
    expect(clock.factor('a', s, 0)).toBe(1);
    clock.update(new Set(['a']), 100);
    clock.update(new Set(['a', 'b', 'c']), 200);
    expect(clock.factor('b', s, 700)).toBeCloseTo(0.5);
    expect(clock.factor('c', s, 700)).toBeCloseTo(0.5);
    expect(clock.factor('c', s, 1200)).toBe(1);
  });
});
