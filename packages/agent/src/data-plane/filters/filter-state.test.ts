import { describe, expect, it } from 'vitest';
import { FilterState } from './filter-state.js';

const cache = (purgeToken = '', maxBytes = 1000) => ({ maxBytes, defaultTtlMs: 0, purgeToken, maxEntryBytes: 0 });
const limit = (requestsPerSecond: number) => ({ requestsPerSecond, burst: 1, key: { key: { $case: 'sourceIp' as const, value: true } } });

describe('FilterState', () => {
  it('hands a new version of a route the same cache store and rate limiter', () => {
    const state = new FilterState();
    const v1 = state.scope('web', 'v1');
    const store = v1.cacheStore('r', cache());
    const limiter = v1.rateLimiter('r', limit(5));
    const v2 = state.scope('web', 'v2');
    expect(v2.cacheStore('r', cache())).toBe(store);
    expect(v2.rateLimiter('r', limit(5))).toBe(limiter);
    // Other settings: another limiter; a new purge token: another (empty) store.
    expect(v2.rateLimiter('r', limit(6))).not.toBe(limiter);
    expect(v2.cacheStore('r', cache('t2'))).not.toBe(store);
  });

  it('drops the state no live route table uses', () => {
    const state = new FilterState();
    const kept = state.scope('web', 'v1').cacheStore('r', cache());
    const dropped = state.scope('admin', 'v1').cacheStore('r2', cache());
    state.retain(new Map([['web', { version: 'v1' }]]));
    // Still there for web's route; admin's table is gone, so is its store.
    expect(state.scope('web', 'v2').cacheStore('r', cache())).toBe(kept);
    expect(state.scope('admin', 'v2').cacheStore('r2', cache())).not.toBe(dropped);
    // A new version of web without the route: its store goes at the next retain.
    state.scope('web', 'v3');
    state.retain(new Map([['web', { version: 'v3' }]]));
    expect(state.scope('web', 'v4').cacheStore('r', cache())).not.toBe(kept);
  });
});
