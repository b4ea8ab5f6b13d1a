import type { Cache, RateLimit } from '@sluice/proto';
import { CacheStore } from './cache.js';
import { RateLimiter } from './rate-limit.js';

/** Where compiled route filters get their state that outlives a config version. */
export interface FilterScope {
  cacheStore(routeName: string, config: Cache): CacheStore;
  rateLimiter(routeName: string, config: RateLimit): RateLimiter;
}

/** Fresh state every time: for route tables compiled outside a data plane (tests, tools). */
export const EPHEMERAL_SCOPE: FilterScope = {
  cacheStore: (_route, config) => new CacheStore(config.maxBytes),
  rateLimiter: (_route, config) => new RateLimiter(config),
};

/**
 * Filter state owned by the data plane across versions (dynamic weights push new route
 * tables often; a cache or a rate limit that reset on every push would be worthless).
 * Cache stores are keyed by route name and purge token (a new token = an empty store), rate
 * limiters by route name and their settings. Each compiled route table records the keys it
 * uses; retain() drops whatever no live table uses any more.
 */
export class FilterState {
  private readonly caches = new Map<string, CacheStore>();
  private readonly limiters = new Map<string, RateLimiter>();
  /** "table\0version" -> keys its filters use. */
  private readonly scopes = new Map<string, Set<string>>();

  scope(table: string, version: string): FilterScope {
    const keys = new Set<string>();
    this.scopes.set(`${table}\0${version}`, keys);
    return {
      cacheStore: (routeName, config) => {
        const key = `cache\0${routeName}\0${config.purgeToken}`;
        keys.add(key);
        let store = this.caches.get(key);
        if (store === undefined) this.caches.set(key, (store = new CacheStore(config.maxBytes)));
        else store.resize(config.maxBytes);
        return store;
      },
      rateLimiter: (routeName, config) => {
        const key = `rate\0${routeName}\0${config.requestsPerSecond}\0${config.burst}\0${JSON.stringify(config.key?.key ?? null)}`;
        keys.add(key);
        let limiter = this.limiters.get(key);
        if (limiter === undefined) this.limiters.set(key, (limiter = new RateLimiter(config)));
        return limiter;
      },
    };
  }

  /** Keeps the state of the route tables now live (name -> version), drops the rest. */
  retain(live: ReadonlyMap<string, { readonly version: string }>): void {
    const used = new Set<string>();
    for (const [scope, keys] of this.scopes) {
      const sep = scope.indexOf('\0');
      if (live.get(scope.slice(0, sep))?.version !== scope.slice(sep + 1)) this.scopes.delete(scope);
      else for (const k of keys) used.add(k);
    }
    for (const key of this.caches.keys()) if (!used.has(key)) this.caches.delete(key);
    for (const key of this.limiters.keys()) if (!used.has(key)) this.limiters.delete(key);
  }

}
