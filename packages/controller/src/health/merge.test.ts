import { describe, expect, it } from 'vitest';
import { maxResultAge, mergeHealth } from './merge.js';

const now = 10_000;

describe('mergeHealth', () => {
  it('is Unknown without a fresh result', () => {
    expect(mergeHealth([], now, 600)).toEqual({ health: 'Unknown', reporters: 0 });
    expect(mergeHealth([{ healthy: false, observedAt: now - 601 }], now, 600)).toEqual({ health: 'Unknown', reporters: 0 });
  });

  it('is Unhealthy only when a strict majority of fresh results says so', () => {
    expect(mergeHealth([{ healthy: false, observedAt: now }, { healthy: false, observedAt: now - 100 }], now, 600).health).toBe('Unhealthy');
    expect(mergeHealth([{ healthy: false, observedAt: now }, { healthy: true, observedAt: now }], now, 600).health).toBe('Healthy');
    expect(mergeHealth([{ healthy: false, observedAt: now }], now, 600).health).toBe('Unhealthy');
    expect(mergeHealth([{ healthy: false, observedAt: now }, { healthy: false, observedAt: now }, { healthy: true, observedAt: now }], now, 600)).toEqual({
      health: 'Unhealthy',
      reporters: 3,
    });
  });

  it('ignores stale results in the vote', () => {
    // The stale "healthy" does not outvote the fresh "unhealthy".
    expect(mergeHealth([{ healthy: true, observedAt: now - 5000 }, { healthy: false, observedAt: now }], now, 600)).toEqual({ health: 'Unhealthy', reporters: 1 });
  });

  it('keeps results for 3 x the longer interval', () => {
    expect(maxResultAge(200, 1000)).toBe(3000);
    expect(maxResultAge(5000, 1000)).toBe(15000);
  });
});
