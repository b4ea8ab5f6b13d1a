import { Pool } from 'undici';

/** How to connect to one endpoint; part of the pool's identity. */
export interface PoolSettings {
  readonly address: string;
  readonly port: number;
  /** 0 = undici's default (10 s). */
  readonly connectTimeoutMs: number;
  /** Idle keep-alive connections close after this; 0 = 4 s (under Node's 5 s server default). */
  readonly idleTimeoutMs: number;
  /** Connections to the endpoint at most (circuit breaker max_connections); 0 = no limit. */
  readonly maxConnections: number;
}

const DEFAULT_IDLE_MS = 4_000;

export function poolKey(s: PoolSettings): string {
  const host = s.address.includes(':') ? `[${s.address}]` : s.address;
  return `${host}:${s.port}/${s.connectTimeoutMs}/${s.idleTimeoutMs}/${s.maxConnections}`;
}

/**
 * Keep-alive connection pools, one per endpoint (address, port and connection settings).
 * A new config version reuses the pool of every endpoint it still has, so a weight change
 * touches no connection; pools nobody uses any more close gracefully (their in-flight
 * requests finish) once the new version is live.
 */
export class UpstreamPools {
  private pools = new Map<string, Pool>();

  /**
   * The pools for a candidate version: existing ones reused, missing ones created. Nothing
   * is closed until `commit`, so a rejected candidate can be dropped with `discard`.
   */
  prepare(wanted: Iterable<PoolSettings>): Map<string, Pool> {
    const next = new Map<string, Pool>();
    for (const s of wanted) {
      const key = poolKey(s);
      if (next.has(key)) continue;
      next.set(key, this.pools.get(key) ?? createPool(s));
    }
    return next;
  }

  /** Makes `next` current and closes (gracefully) the pools it no longer has. */
  commit(next: Map<string, Pool>): void {
    const old = this.pools;
    this.pools = next;
    for (const [key, pool] of old) {
      if (!next.has(key)) void pool.close().catch(() => undefined);
    }
  }

  /** Closes the pools `next` created that are not current (a candidate that was dropped). */
  discard(next: Map<string, Pool>): void {
    for (const [key, pool] of next) {
      if (this.pools.get(key) !== pool) void pool.close().catch(() => undefined);
    }
  }

  /** Graceful close of every pool, bounded: after `timeoutMs` the rest are destroyed. */
  async close(timeoutMs: number): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools = new Map();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    await Promise.race([Promise.allSettled(pools.map((p) => p.close())), deadline]);
    clearTimeout(timer);
    await Promise.allSettled(pools.filter((p) => !p.destroyed).map((p) => p.destroy()));
  }
}

function createPool(s: PoolSettings): Pool {
  const host = s.address.includes(':') ? `[${s.address}]` : s.address;
  return new Pool(`http://${host}:${s.port}`, {
    pipelining: 1,
    ...(s.maxConnections > 0 ? { connections: s.maxConnections } : {}),
    keepAliveTimeout: s.idleTimeoutMs || DEFAULT_IDLE_MS,
    ...(s.connectTimeoutMs > 0 ? { connect: { timeout: s.connectTimeoutMs } } : {}),
    // Route timeouts govern; these are only a backstop against a stuck upstream.
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  });
}
