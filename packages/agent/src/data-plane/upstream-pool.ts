import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { Http2Pool } from './h2-upstream.js';

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
  /** undefined: plain TCP. */
  readonly tls: UpstreamTlsSettings | undefined;
  /** HTTP/2 (Cluster.http2): h2 by ALPN over TLS, else h2c with prior knowledge. */
  readonly http2?: boolean;
}

/** TLS to an endpoint (Cluster.tls), with its CA resolved from the Secret it names. */
export interface UpstreamTlsSettings {
  /** SNI, and the name the certificate must carry; "" = the endpoint's address. An IP address is checked but not sent as SNI. */
  readonly servername: string;
  /** false: insecure_skip_verify. */
  readonly verify: boolean;
  /** PEM CA bundle (the Secret's certificate_chain); undefined = Node's default trust store. */
  readonly ca: string | undefined;
  /** The CA Secret's name and version ("" = none): a new CA version means new connections. */
  readonly caId: string;
}

const DEFAULT_IDLE_MS = 4_000;

export function poolKey(s: PoolSettings): string {
  const host = s.address.includes(':') ? `[${s.address}]` : s.address;
  const base = `${host}:${s.port}/${s.connectTimeoutMs}/${s.idleTimeoutMs}/${s.maxConnections}`;
  const tls = s.tls;
  const keyed = s.http2 === true ? `${base}/h2` : base;
  return tls === undefined ? keyed : `${keyed}/tls:${tls.servername}:${tls.verify ? 'verify' : 'insecure'}:${tls.caId}`;
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
  const options: Pool.Options = {
    pipelining: 1,
    ...(s.maxConnections > 0 ? { connections: s.maxConnections } : {}),
    keepAliveTimeout: s.idleTimeoutMs || DEFAULT_IDLE_MS,
    ...(s.connectTimeoutMs > 0 ? { connect: { timeout: s.connectTimeoutMs } } : {}),
    // Route timeouts govern; these are only a backstop against a stuck upstream.
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  };
  if (s.http2 === true) {
    // h2 over TLS, or h2c with prior knowledge, on node:http2 (h2-upstream.ts says why not undici).
    const tls = s.tls;
    const pool = new Http2Pool(`${tls === undefined ? 'http' : 'https'}://${host}:${s.port}`, {
      connectTimeoutMs: s.connectTimeoutMs,
      idleTimeoutMs: s.idleTimeoutMs || DEFAULT_IDLE_MS,
      tls: tls === undefined ? undefined : { ca: tls.ca, rejectUnauthorized: tls.verify, servername: tlsServername(s.address, tls) },
    });
    // The request path uses only the Pool members Http2Pool has (dispatch, stats.free, close, destroy).
    return pool as unknown as Pool;
  }
  if (s.tls === undefined) return new Pool(`http://${host}:${s.port}`, options);
  const tls = s.tls;
  // An IP address as the name: no SNI (RFC 6066 has none for addresses), the certificate checked against it.
  const ip = isIP(tls.servername) !== 0;
  const connector = buildConnector({
    ...(s.connectTimeoutMs > 0 ? { timeout: s.connectTimeoutMs } : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(ip ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(tls.servername, cert) } : {}),
    rejectUnauthorized: tls.verify,
  });
  // undici would take the SNI from each request's Host header; the configured name (or
  // none, for an IP address) is what the certificate is checked against.
  const servername = ip ? '' : tls.servername;
  options.connect = (opts, callback) => connector({ ...opts, servername }, callback);
  return new PinnedServernamePool(`https://${host}:${s.port}`, options, tls.servername || s.address);
}

/**
 * A Pool whose requests all carry one servername. undici derives a request's servername from
 * its Host header and closes a connection whose servername differs from the next request's:
 * behind a proxy, where Host varies per client, that would churn TLS connections.
 */
class PinnedServernamePool extends Pool {
  constructor(
    url: string,
    options: Pool.Options,
    private readonly servername: string,
  ) {
    super(url, options);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    (opts as { servername?: string }).servername = this.servername;
    return super.dispatch(opts, handler);
  }
}

/** The certificate-name target of a TLS endpoint, for other clients (health probes, tunnels). */
export function tlsServername(address: string, tls: UpstreamTlsSettings): string | undefined {
  if (tls.servername !== '') return isIP(tls.servername) === 0 ? tls.servername : undefined;
  return isIP(address) === 0 ? address : undefined;
}

/**
 * `tls.connect` options for a raw TLS connection to an endpoint (L4 routes), with the HTTP
 * pools' rules: the configured name (else the endpoint's host name) as SNI and checked name,
 * an IP address checked but not sent, the CA Secret as the trust store, insecure_skip_verify.
 */
export function tlsConnectOptions(address: string, port: number, tls: UpstreamTlsSettings): ConnectionOptions {
  const name = tls.servername || address;
  const ip = isIP(name) !== 0;
  return {
    host: address,
    port,
    ...(ip ? {} : { servername: name }),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(ip ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert) } : {}),
    rejectUnauthorized: tls.verify,
  };
}

/** OpenSSL's certificate verification failures (Node puts them in `code`), besides ERR_TLS_* and ERR_SSL_*. */
const CERTIFICATE_ERRORS: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
]);

/** A TLS handshake that failed: the endpoint's certificate was not accepted, or it does not speak TLS. */
export function isTlsFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || CERTIFICATE_ERRORS.has(code));
}
