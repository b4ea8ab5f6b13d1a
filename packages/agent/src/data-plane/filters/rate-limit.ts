import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RateLimit } from '@sluice/proto';

/** Buckets one limiter keeps at most; past it, full (idle) buckets go first, then the oldest. */
export const MAX_BUCKETS = 100_000;
/** Longer header values are kept as a hash, so a bucket costs the same whatever the client sends. */
const MAX_KEY_CHARS = 64;

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
}

/**
 * RateLimit: a token bucket per key (client address or a header's value), `burst` tokens
 * deep, refilled at `requests_per_second`. Counted per agent process (per worker with
 * --workers). Kept across config versions while the filter's settings stay the same (see
 * filter-state.ts), so a weight push does not hand every client a fresh burst.
 */
export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  /** Lower-case header name; undefined: the client address. */
  readonly header: string | undefined;
  private readonly buckets = new Map<string, Bucket>();
  /** A bucket idle this long is full again: the same as no bucket. */
  private readonly refillMs: number;

  constructor(
    config: RateLimit,
    private readonly maxBuckets = MAX_BUCKETS,
  ) {
    this.rate = config.requestsPerSecond;
    this.burst = Math.max(1, config.burst || config.requestsPerSecond);
    this.header = config.key?.key?.$case === 'header' ? config.key.key.value.toLowerCase() : undefined;
    this.refillMs = (this.burst * 1000) / this.rate;
  }

  /** The bucket key of a request: the header's value ("" when absent: one shared bucket) or the client address. */
  keyOf(req: IncomingMessage, clientAddress: string): string {
    if (this.header === undefined) return clientAddress;
    const raw = req.headers[this.header];
    const value = raw === undefined ? '' : typeof raw === 'string' ? raw : raw.join(', ');
    // NUL never occurs in a header value: a hashed key cannot be sent as a literal one.
    return value.length <= MAX_KEY_CHARS ? value : `\0${createHash('sha256').update(value).digest('base64url')}`;
  }

  /** Takes a token for `key`: 0 when admitted, else the milliseconds until a token is due. */
  take(key: string, now = performance.now()): number {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxBuckets) this.evict(now);
      bucket = { tokens: this.burst, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) * this.rate) / 1000);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return ((1 - bucket.tokens) * 1000) / this.rate;
  }

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Makes room: buckets that have refilled completely carry no state, so they go first. If
   * the keys are all busy (a flood of distinct keys), the oldest tenth goes: those clients
   * get a fresh burst, which is the price of bounded memory.
   */
  private evict(now: number): void {
    for (const [key, b] of this.buckets) {
      if (now - b.at >= this.refillMs) this.buckets.delete(key);
    }
    if (this.buckets.size < this.maxBuckets) return;
    let drop = Math.max(1, Math.floor(this.maxBuckets / 10));
    for (const key of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(key);
    }
  }
}

/** Retry-After for a wait of `ms`: whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
