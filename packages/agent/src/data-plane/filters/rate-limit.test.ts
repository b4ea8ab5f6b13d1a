import type { IncomingMessage } from 'node:http';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { edgeFilter, edgeProxy } from '../test-support/edge-proxy.js';
import { RateLimiter, retryAfterSeconds } from './rate-limit.js';

const config = (requestsPerSecond: number, burst: number) => ({ requestsPerSecond, burst, key: { key: { $case: 'sourceIp' as const, value: true } } });

describe('RateLimiter', () => {
  it('admits a burst, then one request per 1/rate seconds', () => {
    const limiter = new RateLimiter(config(2, 3));
    expect([0, 0, 0].map(() => limiter.take('a', 1000))).toEqual([0, 0, 0]);
    expect(limiter.take('a', 1000)).toBe(500);
    expect(limiter.take('a', 1250)).toBe(250);
    expect(limiter.take('a', 1500)).toBe(0);
    // Another key has its own bucket.
    expect(limiter.take('b', 1500)).toBe(0);
  });

  it('refills no higher than the burst', () => {
    const limiter = new RateLimiter(config(1, 2));
    limiter.take('a', 0);
    expect([limiter.take('a', 100_000), limiter.take('a', 100_000), limiter.take('a', 100_000)]).toEqual([0, 0, 1000]);
  });

  it('keeps at most maxBuckets buckets, dropping full ones first', () => {
    const limiter = new RateLimiter(config(1, 1), 10);
    for (let i = 0; i < 10; i++) limiter.take(`idle${i}`, 0);
    limiter.take('busy', 5_000);
    // At 5 s the idle buckets are full again: they go, the busy one stays empty.
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`, 5_000);
    expect(limiter.size).toBeLessThanOrEqual(10);
    const flood = new RateLimiter(config(1, 1), 10);
    for (let i = 0; i < 1000; i++) flood.take(`k${i}`, 0);
    expect(flood.size).toBeLessThanOrEqual(10);
  });

  it('keeps long header values as a short hash, one bucket per value', () => {
    const limiter = new RateLimiter({ requestsPerSecond: 1, burst: 1, key: { key: { $case: 'header', value: 'X-Api-Key' } } });
    const keyOf = (value: string) => limiter.keyOf({ headers: { 'x-api-key': value } } as unknown as IncomingMessage, '10.0.0.1');
    expect(keyOf('short')).toBe('short');
    const a = keyOf('a'.repeat(8000));
    expect(a.length).toBeLessThan(50);
    expect(keyOf('a'.repeat(8000))).toBe(a);
    expect(keyOf(`${'a'.repeat(7999)}b`)).not.toBe(a);
    expect(limiter.keyOf({ headers: {} } as unknown as IncomingMessage, '10.0.0.1')).toBe('');
  });

  it('rounds Retry-After up to whole seconds, at least 1', () => {
    expect([retryAfterSeconds(1), retryAfterSeconds(999), retryAfterSeconds(1000), retryAfterSeconds(1001)]).toEqual([1, 1, 1, 2]);
  });

  it('answers 429 with Retry-After past the burst, and keeps its buckets across config versions', async () => {
    await using proxy = await edgeProxy([edgeFilter.rateLimit(1, 2)]);
    const send = async () => {
      const res = await request(`${proxy.origin}/`);
      await res.body.text();
      return { status: res.statusCode, retryAfter: res.headers['retry-after'], server: res.headers.server };
    };
    const started = performance.now();
    const answers = [await send(), await send(), await send()];
    // A new version of the same route and limit (a weight push) must not hand out a new burst.
    await proxy.reapply([edgeFilter.rateLimit(1, 2)]);
    answers.push(await send(), await send(), await send());
    const elapsedMs = performance.now() - started;
    const admitted = answers.filter((a) => a.status === 200).length;
    // Tokens: the burst, plus one per second elapsed (a slow machine refills some).
    expect(admitted).toBeLessThanOrEqual(Math.floor(2 + elapsedMs / 1000));
    expect(answers.find((a) => a.status !== 200)).toEqual({ status: 429, retryAfter: '1', server: 'sluice' });
    expect(proxy.backend.requests).toBe(admitted);
    // Other settings are another limiter, with a full bucket.
    await proxy.reapply([edgeFilter.rateLimit(1, 5)]);
    expect((await send()).status).toBe(200);
  });

  it('counts per header value when keyed by a header', async () => {
    await using proxy = await edgeProxy([edgeFilter.rateLimit(1, 1, 'x-api-key')]);
    const status = async (key: string) => {
      const res = await request(`${proxy.origin}/`, { headers: { 'x-api-key': key } });
      await res.body.text();
      return res.statusCode;
    };
    expect([await status('a'), await status('a'), await status('b')]).toEqual([200, 429, 200]);
  });
});
