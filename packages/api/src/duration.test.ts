import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['100ms', 100],
    ['5s', 5000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1500],
    ['0s', 0],
    ['0.5ms', 0.5],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '5', '5x', 's', '-1s', '1 s', '1d', '5S', '.5s', 'ms'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [100, '100ms'],
    [1500, '1500ms'],
    [5000, '5s'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [3_661_000, '1h1m1s'],
  ])('%d ms = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('rejects negative and non-finite values', () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('round-trips: parse(format(ms)) === ms for many values', () => {
    // A deterministic pseudo-random walk over magnitudes from ms to days.
    let seed = 42;
    const next = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    for (let i = 0; i < 2000; i++) {
      const magnitude = 10 ** (next() % 9);
      const ms = next() % magnitude;
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it('round-trips: format(parse(text)) is canonical and re-parses to the same value', () => {
    for (const text of ['90s', '1m30s', '0.25s', '2h0m', '61m']) {
      const ms = parseDuration(text)!;
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
    expect(formatDuration(parseDuration('90s')!)).toBe('1m30s');
  });
});
