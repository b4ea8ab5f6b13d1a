import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { ProxyProtocolVersion } from '@sluice/proto';
import { TryOutcome, type EndpointCounters } from '../endpoint-stats.js';
import type { UpstreamCluster, UpstreamEndpoint } from '../upstream-cluster.js';
import { tlsConnectOptions } from '../upstream-pool.js';
import { closeConnection, plainAddress, tryOpenConnection, type CompiledL4Route } from './l4-route.js';
import { encodeProxyHeader, readProxyHeader, type ProxyAddress } from './proxy-protocol.js';
import { readPrefix } from './read-prefix.js';
import { parseClientHelloSni, type SniTable } from './sni.js';
import type { TlsTerminator } from './tls-terminate.js';

// The TCP and TLS-passthrough connection path: (PROXY header) -> (ClientHello SNI) -> cluster
// by weight -> endpoint by the cluster's balancer -> connect (other endpoints on failure) ->
// (PROXY header to the upstream) -> bytes both ways with backpressure and half-close.
// Nothing is logged per connection; outcomes go to the traffic counters and outlier detection.

/** What a TCP or TLS passthrough listener serves with; swapped whole on every config version. */
export interface TcpView {
  /** TCP: the one route. */
  readonly route: CompiledL4Route | undefined;
  /** TLS passthrough: routes by the ClientHello's server name. */
  readonly sni: SniTable<CompiledL4Route> | undefined;
  readonly acceptProxyProtocol: boolean;
  /** TLS terminated here (TCP with tls): the route gets the decrypted stream. */
  readonly terminate?: TlsTerminator | undefined;
}

/** A PROXY header or ClientHello must arrive this fast (HAProxy's default `timeout client` order). */
export const PREFIX_TIMEOUT_MS = 5_000;
/** Envoy's default connect timeout; clusters may set theirs. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Endpoints tried per connection before giving up (Envoy's max_connect_attempts is 1; one retry on another endpoint, then a third, keeps a dead endpoint from costing clients). */
export const MAX_CONNECT_ATTEMPTS = 3;

/** Per-client bookkeeping the listener does (limits), told the client address once known. */
export interface ClientGate {
  /** false: over the per-client cap; the connection is closed. */
  admit(client: string): boolean;
  release(client: string): void;
}

/** Serves one accepted connection with the view current at accept. */
export async function serveTcp(raw: Socket, view: TcpView, gate: ClientGate): Promise<void> {
  let client = raw;
  client.on('error', noop); // an RST from the client is a normal end; the close handler cleans up
  let source: ProxyAddress = { address: plainAddress(client.remoteAddress), port: client.remotePort ?? 0 };
  let destination: ProxyAddress = { address: plainAddress(client.localAddress), port: client.localPort ?? 0 };
  try {
    if (view.acceptProxyProtocol) {
      const info = await readProxyHeader(client, PREFIX_TIMEOUT_MS);
      if (info.source !== null && info.destination !== null) {
        source = { address: plainAddress(info.source.address), port: info.source.port };
        destination = info.destination;
      }
    }
    if (view.terminate !== undefined) {
      client = await view.terminate.handshake(client);
      client.on('error', noop);
    }
    let route = view.route;
    if (view.sni !== undefined) {
      const name = await readPrefix(client, parseClientHelloSni, PREFIX_TIMEOUT_MS, 'TLS ClientHello');
      route = view.sni.match(name);
    }
    // Reset while we read (its 'close' may already have been emitted): nothing to count.
    if (client.destroyed) return;
    if (route === undefined) {
      client.destroy();
      return;
    }
    if (!gate.admit(source.address)) {
      client.destroy();
      return;
    }
    client.once('close', () => gate.release(source.address));
    // Passthrough forwards the client's own TLS: Cluster.tls would wrap it a second time.
    new TcpConnection(client, route, source, destination, view.sni === undefined).start();
  } catch {
    // readPrefix destroyed the socket: bad header, timeout or the client left.
    client.destroy();
  }
}

function noop(): void {}

class TcpConnection {
  private cluster: UpstreamCluster | undefined;
  private endpoint: UpstreamEndpoint | undefined;
  private counters: EndpointCounters | undefined;
  private upstream: Socket | undefined;
  private tried: Set<UpstreamEndpoint> | undefined;
  private attempts = 0;
  private startedAt = 0;
  private connectMs = 0;
  private outcome: TryOutcome = TryOutcome.OK;
  private connected = false;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastMoved = 0;
  /** For the access log: when the connection was taken, and the endpoint it reached. */
  private readonly openedAt = performance.now();
  private reached: UpstreamEndpoint | undefined;

  constructor(
    private readonly client: Socket,
    private readonly route: CompiledL4Route,
    private readonly source: ProxyAddress,
    private readonly destination: ProxyAddress,
    private readonly originateTls: boolean,
  ) {}

  start(): void {
    const cluster = this.route.nextCluster();
    if (cluster === undefined || !tryOpenConnection(cluster)) {
      this.client.destroy();
      return;
    }
    this.cluster = cluster;
    this.route.stats?.connected(cluster.name);
    // Nothing is read from the client until an upstream takes it (backpressure from the start).
    this.client.pause();
    this.client.once('close', this.onClientClose);
    this.lastMoved = this.client.bytesRead + this.client.bytesWritten;
    this.idleTimer = setTimeout(this.onIdleCheck, this.route.idleTimeoutMs);
    this.idleTimer.unref();
    this.tryConnect();
  }

  private tryConnect(): void {
    const cluster = this.cluster as UpstreamCluster;
    const picked = cluster.balancer.pick({ clientAddress: this.source.address, exclude: this.tried });
    if (picked.kind === 'none' || this.closed) {
      this.finish();
      this.client.destroy();
      return;
    }
    const endpoint = picked.endpoint;
    this.attempts++;
    this.endpoint = endpoint;
    this.counters = cluster.traffic.counters(endpoint.id);
    this.outcome = TryOutcome.OK;
    cluster.balancer.onStart(endpoint);
    this.counters.start();
    this.startedAt = performance.now();
    const tls = this.originateTls ? cluster.l4.tls : undefined;
    let upstream: Socket;
    if (tls === undefined) upstream = connect({ host: endpoint.address, port: endpoint.port, allowHalfOpen: true, noDelay: true });
    else {
      // Cluster.tls: the connection counts as made once the handshake is; a handshake failure
      // (certificate not trusted, not TLS) is a connect failure like a refused connection.
      // A PROXY header goes first in clear, before the ClientHello (as HAProxy's send-proxy
      // with ssl does): the backend reads it at the transport layer, then does TLS.
      const options = tlsConnectOptions(endpoint.address, endpoint.port, tls);
      const header = this.proxyHeader(cluster);
      if (header === undefined) {
        // Node's tls.connect honours allowHalfOpen (its typings omit it): half-close works as in plain TCP.
        upstream = tlsConnect({ ...options, allowHalfOpen: true } as ConnectionOptions).setNoDelay(true);
      } else {
        const raw = connect({ host: endpoint.address, port: endpoint.port, allowHalfOpen: true, noDelay: true });
        raw.write(header);
        // The TLS socket re-emits the raw socket's errors (a refused connect fails the try).
        upstream = tlsConnect({ ...options, socket: raw, allowHalfOpen: true } as ConnectionOptions);
      }
    }
    this.upstream = upstream;
    upstream.setTimeout(cluster.l4.connectTimeoutMs || DEFAULT_CONNECT_TIMEOUT_MS, () => this.onConnectFailure(upstream));
    upstream.once(tls === undefined ? 'connect' : 'secureConnect', () => this.onConnect(upstream));
    upstream.once('error', (err: Error & { code?: string }) => {
      if (!this.connected) this.onConnectFailure(upstream);
      else if (err.code !== 'ERR_STREAM_DESTROYED') this.outcome = TryOutcome.RESET;
    });
  }

  private onConnectFailure(upstream: Socket): void {
    if (this.upstream !== upstream || this.connected) return;
    upstream.destroy();
    const cluster = this.cluster as UpstreamCluster;
    const endpoint = this.endpoint as UpstreamEndpoint;
    this.outcome = TryOutcome.CONNECT_FAILURE;
    cluster.outliers.onConnectFailure(endpoint.id);
    this.endTry(false);
    this.upstream = undefined;
    if (this.closed) return this.finish();
    (this.tried ??= new Set()).add(endpoint);
    if (this.attempts >= MAX_CONNECT_ATTEMPTS) {
      this.finish();
      this.client.destroy();
      return;
    }
    this.tryConnect();
  }

  private onConnect(upstream: Socket): void {
    if (this.upstream !== upstream) return;
    this.connected = true;
    this.reached = this.endpoint;
    this.connectMs = performance.now() - this.startedAt;
    upstream.setTimeout(0);
    const cluster = this.cluster as UpstreamCluster;
    cluster.outliers.onConnected((this.endpoint as UpstreamEndpoint).id);
    if (this.closed) {
      upstream.destroy();
      return;
    }
    // Over TLS the header went out in clear before the handshake.
    const header = this.originateTls && cluster.l4.tls !== undefined ? undefined : this.proxyHeader(cluster);
    if (header !== undefined) upstream.write(header);
    const client = this.client;
    // pipe() pushes back both ways and ends the other side's write half on a FIN (half-close).
    client.pipe(upstream);
    upstream.pipe(client);
    upstream.once('close', (hadError: boolean) => {
      this.endTry(this.outcome === TryOutcome.OK);
      // A reset upstream takes the client down too; a clean close lets the client drain.
      if (hadError) client.destroy();
      this.finish();
    });
  }

  /** The PROXY header the cluster wants sent at connect, if any. */
  private proxyHeader(cluster: UpstreamCluster): Buffer | undefined {
    const pp = cluster.l4.proxyProtocol;
    if (pp !== ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1 && pp !== ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V2) return undefined;
    return encodeProxyHeader(pp === ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1 ? 1 : 2, this.source, this.destination);
  }

  private endTry(ok: boolean): void {
    const endpoint = this.endpoint;
    if (endpoint === undefined) return;
    this.endpoint = undefined;
    const cluster = this.cluster as UpstreamCluster;
    // The latency a connection reports is its connect time: its length says nothing of the endpoint.
    const latencyMs = this.connected ? this.connectMs : performance.now() - this.startedAt;
    cluster.balancer.onEnd(endpoint, { latencyMs, ok });
    this.counters?.end(latencyMs, this.outcome);
  }

  private readonly onClientClose = (hadError: boolean): void => {
    this.closed = true;
    const stats = this.route.stats;
    if (stats !== undefined) {
      stats.bytesIn += this.client.bytesRead;
      stats.bytesOut += this.client.bytesWritten;
      if (stats.accessLog !== undefined) {
        stats.log(this.cluster?.name ?? '', this.reached, this.source.address, this.client.bytesRead, this.client.bytesWritten, performance.now() - this.openedAt);
      }
    }
    const upstream = this.upstream;
    if (upstream === undefined) return this.finish();
    if (!this.connected) {
      // Still connecting: stop (no 'connect' or 'error' follows a destroy). The client left; the
      // endpoint did nothing wrong.
      upstream.destroy();
      this.upstream = undefined;
      this.endTry(true);
      this.finish();
      return;
    }
    // An aborted client aborts the upstream; a clean one has ended its write half through pipe().
    if (hadError) upstream.destroy();
  };

  /**
   * Idle check without a per-chunk cost (socket.setTimeout refreshes a timer on every read and
   * write): every idle period, compare the bytes moved with the last check. Every byte passes
   * through the client socket, so its counters see both directions. Fires within one to two
   * idle periods of the last byte.
   */
  private readonly onIdleCheck = (): void => {
    const client = this.client;
    const moved = client.bytesRead + client.bytesWritten;
    if (moved === this.lastMoved) {
      client.destroy();
      this.upstream?.destroy();
      return;
    }
    this.lastMoved = moved;
    this.idleTimer?.refresh();
  };

  private finished = false;
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.idleTimer);
    this.endTry(false);
    if (this.cluster !== undefined) closeConnection(this.cluster);
  }
}
