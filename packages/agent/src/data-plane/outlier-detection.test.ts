import { describe, expect, it } from 'vitest';
import { OutlierDetector, outlierSettings, type OutlierSettings } from './outlier-detection.js';
import { clusterResource } from './test-support/resources.js';
import { validateResource } from './validate.js';

function detector(over: Partial<OutlierSettings> = {}, ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) {
  let now = 1_000;
  const d = new OutlierDetector(() => now);
  d.configure(
    {
      consecutive5xx: 5,
      consecutiveGatewayErrors: 0,
      consecutiveConnectFailures: 3,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      intervalMs: 10_000,
      maxEjectionPercent: 50,
      ...over,
    },
    ids,
  );
  return { d, advance: (ms: number) => (now += ms) };
}

describe('OutlierDetector', () => {
  it('ejects after N consecutive 5xx and returns the endpoint when the ejection time is up', () => {
    const { d, advance } = detector();
    for (let i = 0; i < 4; i++) d.onResponse('a', 500);
    expect(d.isEjected('a')).toBe(false);
    d.onResponse('a', 500);
    expect(d.isEjected('a')).toBe(true);
    expect(d.snapshot().find((s) => s.id === 'a')).toMatchObject({ ejected: true, ejectedForMs: 30_000, reason: 'consecutive-5xx', timesEjected: 1 });
    advance(29_999);
    expect(d.isEjected('a')).toBe(true);
    advance(1);
    expect(d.isEjected('a')).toBe(false);
    expect(d.anyEjected()).toBe(false);
  });

  it('starts the count over after a success', () => {
    const { d } = detector();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) d.onResponse('a', 503);
      d.onResponse('a', 200);
    }
    expect(d.isEjected('a')).toBe(false);
  });

  it('counts gateway errors apart from other 5xx, which break their run', () => {
    const { d } = detector({ consecutive5xx: 0, consecutiveGatewayErrors: 3 });
    d.onResponse('a', 502);
    d.onResponse('a', 504);
    d.onResponse('a', 500);
    d.onResponse('a', 503);
    d.onResponse('a', 503);
    expect(d.isEjected('a')).toBe(false);
    d.onGatewayFailure('a'); // a reset counts as a gateway error
    expect(d.snapshot().find((s) => s.id === 'a')?.reason).toBe('consecutive-gateway-errors');
  });

  it('ejects after consecutive connect failures; a connection made starts the count over', () => {
    const { d } = detector({ consecutive5xx: 0 });
    d.onConnectFailure('b');
    d.onConnectFailure('b');
    d.onConnected('b');
    d.onConnectFailure('b');
    d.onConnectFailure('b');
    expect(d.isEjected('b')).toBe(false);
    d.onConnectFailure('b');
    expect(d.snapshot().find((s) => s.id === 'b')).toMatchObject({ ejected: true, reason: 'consecutive-connect-failures' });
  });

  it('grows the ejection time with each ejection, capped at maxEjectionTime, and decays the multiplier', () => {
    const { d, advance } = detector({ consecutive5xx: 1, baseEjectionMs: 10_000, maxEjectionMs: 25_000, intervalMs: 60_000 });
    const eject = () => d.onResponse('a', 500);
    const remaining = () => d.snapshot().find((s) => s.id === 'a')?.ejectedForMs;
    eject();
    expect(remaining()).toBe(10_000);
    advance(10_000);
    eject();
    expect(remaining()).toBe(20_000);
    advance(20_000);
    eject();
    expect(remaining()).toBe(25_000); // 30 s capped
    advance(25_000);
    // Two intervals without an ejection: the multiplier drops from 3 to 1.
    advance(120_000);
    expect(d.snapshot().find((s) => s.id === 'a')?.timesEjected).toBe(1);
    eject();
    expect(remaining()).toBe(20_000);
  });

  it('never ejects more than maxEjectionPercent of the endpoints at once', () => {
    const { d, advance } = detector({ consecutive5xx: 1, maxEjectionPercent: 30 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) d.onResponse(id, 500);
    expect(d.snapshot().filter((s) => s.ejected).map((s) => s.id)).toEqual(['a', 'b', 'c']);
    advance(30_000);
    expect(d.anyEjected()).toBe(false);
    d.onResponse('d', 500);
    expect(d.isEjected('d')).toBe(true);
  });

  it('ejects one endpoint even when the percent rounds to none (Envoy), and none at 0 %', () => {
    const low = detector({ consecutive5xx: 1, maxEjectionPercent: 10 }, ['a', 'b', 'c']);
    low.d.onResponse('a', 500);
    low.d.onResponse('b', 500);
    expect([low.d.isEjected('a'), low.d.isEjected('b')]).toEqual([true, false]);
    const off = detector({ consecutive5xx: 1, maxEjectionPercent: 0 }, ['a', 'b', 'c']);
    off.d.onResponse('a', 500);
    expect(off.d.isEjected('a')).toBe(false);
  });

  it('keeps state across config versions for the endpoints that stay, and drops the others', () => {
    const { d } = detector({ consecutive5xx: 1 });
    d.onResponse('a', 500);
    const generation = d.generation;
    d.configure(outlierSettings({ consecutive5xx: 1, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 0, baseEjectionTimeMs: 0, maxEjectionPercent: 50, maxEjectionTimeMs: 0, intervalMs: 0 }), ['a', 'b']);
    expect(d.isEjected('a')).toBe(true);
    expect(d.generation).toBe(generation);
    d.configure(undefined, ['a', 'b']);
    expect(d.isEjected('a')).toBe(false);
    expect(d.generation).toBe(generation + 1);
  });

  it('fills in Envoy defaults', () => {
    expect(outlierSettings({ consecutive5xx: 5, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 0, baseEjectionTimeMs: 0, maxEjectionPercent: 10, maxEjectionTimeMs: 0, intervalMs: 0 })).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayErrors: 0,
      consecutiveConnectFailures: 0,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      intervalMs: 10_000,
      maxEjectionPercent: 10,
    });
  });

  it('is checked again at the agent: maxEjectionPercent at most 100', () => {
    const od = { consecutive5xx: 5, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 0, baseEjectionTimeMs: 0, maxEjectionTimeMs: 0, intervalMs: 0 };
    expect(validateResource(clusterResource('default/a', undefined, { outlierDetection: { ...od, maxEjectionPercent: 100 } }))).toBeUndefined();
    expect(validateResource(clusterResource('default/a', undefined, { outlierDetection: { ...od, maxEjectionPercent: 101 } }))?.message).toBe(
      'outlier_detection.max_ejection_percent: must be 0-100, got 101',
    );
  });
});
