import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { ProxyProtocolVersion } from '@sluice/proto';
import { TryOutcome, type EndpointCounters } from '../endpoint-stats.js';
import type { UpstreamCluster, UpstreamEndpoint } from '../upstream-cluster.js';
import { closeConnection, plainAddress, tryOpenConnection, type CompiledL4Route } from './l4-route.js';
import { encodeProxyHeader } from './proxy-protocol.js';

// The UDP path: a session per client address:port, each with its own connected socket to an
// endpoint picked once (so replies, and the upstream's view of the client, stay consistent);
// replies go back to the client from the listener's socket. A session ends after
// idle_timeout_ms with no datagram either way, or when the endpoint refuses (ICMP).

/** What a UDP listener serves with; swapped whole on every config version. */
export interface UdpView {
  readonly route: CompiledL4Route | undefined;
  /** Sessions at most (listener max_connections); 0 = no cap. Datagrams of new clients over it are dropped. */
  readonly maxSessions: number;
}

/** Datagrams held per session while its upstream socket connects. */
const MAX_QUEUED = 64;

class UdpSession {
  private upstream: DgramSocket | undefined;
  private queue: Buffer[] | undefined = [];
  private readonly timer: NodeJS.Timeout;
  private readonly counters: EndpointCounters;
  private readonly startedAt = performance.now();
  private firstReplyMs = -1;
  private outcome: TryOutcome = TryOutcome.OK;
  /** PROXY v2 header sent before every datagram (HAProxy/Envoy do so for UDP); undefined = none. */
  private readonly header: Buffer | undefined;
  private closed = false;
  /** Datagram bytes from the client and back to it (for the access log). */
  bytesReceived = 0;
  bytesSent = 0;

  constructor(
    private readonly owner: UdpProxy,
    readonly key: string,
    private readonly client: RemoteInfo,
    private readonly cluster: UpstreamCluster,
    private readonly endpoint: UpstreamEndpoint,
    idleTimeoutMs: number,
  ) {
    this.counters = cluster.traffic.counters(endpoint.id);
    cluster.balancer.onStart(endpoint);
    this.counters.start();
    // v1 has no UDP form: a UDP session sends v2 whichever version the cluster names.
    if (cluster.l4.proxyProtocol === ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1 || cluster.l4.proxyProtocol === ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V2) {
      const local = owner.localAddress();
      this.header = encodeProxyHeader(2, { address: plainAddress(client.address), port: client.port }, local, 'udp');
    }
    this.timer = setTimeout(() => this.close(), idleTimeoutMs);
    this.timer.unref();
    const upstream = createSocket(isIPv6(endpoint.address) ? 'udp6' : 'udp4');
    this.upstream = upstream;
    upstream.on('message', this.onReply);
    upstream.on('error', (err: Error & { code?: string }) => {
      // A connected UDP socket hears ICMP port unreachable as ECONNREFUSED.
      this.outcome = TryOutcome.CONNECT_FAILURE;
      if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') cluster.outliers.onConnectFailure(endpoint.id);
      this.close();
    });
    upstream.connect(endpoint.port, endpoint.address, () => {
      if (this.closed) return;
      const queued = this.queue ?? [];
      this.queue = undefined;
      for (const datagram of queued) this.forward(datagram);
    });
  }

  /** A datagram from the client. */
  send(datagram: Buffer): void {
    if (this.closed) return;
    this.timer.refresh();
    if (this.queue !== undefined) {
      if (this.queue.length < MAX_QUEUED) this.queue.push(datagram);
      return;
    }
    this.forward(datagram);
  }

  private forward(datagram: Buffer): void {
    const upstream = this.upstream;
    if (upstream === undefined) return;
    if (this.header === undefined) upstream.send(datagram);
    else upstream.send([this.header, datagram]);
  }

  private readonly onReply = (datagram: Buffer): void => {
    if (this.closed) return;
    if (this.firstReplyMs < 0) {
      this.firstReplyMs = performance.now() - this.startedAt;
      this.cluster.outliers.onConnected(this.endpoint.id);
    }
    this.timer.refresh();
    this.bytesSent += datagram.length;
    this.owner.reply(datagram, this.client);
  };

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.upstream?.close();
    this.upstream = undefined;
    this.owner.forget(this);
    // A session's latency is its first reply's delay (none: its whole life).
    const latencyMs = this.firstReplyMs >= 0 ? this.firstReplyMs : performance.now() - this.startedAt;
    const ok = this.outcome === TryOutcome.OK;
    this.cluster.balancer.onEnd(this.endpoint, { latencyMs, ok });
    this.counters.end(latencyMs, this.outcome);
    closeConnection(this.cluster);
    const stats = this.owner.view.route?.stats;
    if (stats?.accessLog !== undefined) {
      stats.log(this.cluster.name, this.endpoint, plainAddress(this.client.address), this.bytesReceived, this.bytesSent, performance.now() - this.startedAt);
    }
  }
}

/** One UDP listening socket and its sessions. */
export class UdpProxy {
  private readonly sessions = new Map<string, UdpSession>();

  constructor(
    readonly socket: DgramSocket,
    public view: UdpView,
  ) {
    socket.on('message', this.onMessage);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  localAddress(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: plainAddress(a.address), port: a.port };
  }

  private readonly onMessage = (datagram: Buffer, from: RemoteInfo): void => {
    const key = `${from.address}|${from.port}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      const view = this.view;
      const route = view.route;
      if (route === undefined || (view.maxSessions > 0 && this.sessions.size >= view.maxSessions)) return;
      const cluster = route.nextCluster();
      if (cluster === undefined) return;
      const picked = cluster.balancer.pick({ clientAddress: plainAddress(from.address), exclude: undefined });
      if (picked.kind === 'none' || !tryOpenConnection(cluster)) return;
      session = new UdpSession(this, key, from, cluster, picked.endpoint, route.idleTimeoutMs);
      this.sessions.set(key, session);
      route.stats?.connected(cluster.name);
    }
    const stats = this.view.route?.stats;
    if (stats !== undefined) stats.bytesIn += datagram.length;
    session.bytesReceived += datagram.length;
    session.send(datagram);
  };

  reply(datagram: Buffer, to: RemoteInfo): void {
    this.socket.send(datagram, to.port, to.address);
    const stats = this.view.route?.stats;
    if (stats !== undefined) stats.bytesOut += datagram.length;
  }

  forget(session: UdpSession): void {
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
  }

  /** Ends every session and closes the socket (UDP has nothing to drain: replies need the socket). */
  close(): Promise<void> {
    for (const session of [...this.sessions.values()]) session.close();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
