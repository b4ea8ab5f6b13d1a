import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { RequestRecord } from '../metrics/data-plane-metrics.js';
import { TryOutcome, type EndpointCounters } from './endpoint-stats.js';
import { ANSWERED, onEdgeRequest } from './filters/edge.js';
import {
  ABSOLUTE_FORM,
  appendForwarded,
  clientAddress,
  DROPPED_REQUEST_HEADERS,
  HOP_BY_HOP_HEADERS,
  IDENTITY_HEADERS,
  isConnectFailure,
  NO_REQUEST_LIMITS,
  proxyRequest,
  schemeOf,
  sendError,
  UPSTREAM_OVERLOADED,
  type ListenerView,
} from './http-proxy.js';
import { normalizePath } from './normalize-path.js';
import { LazyQuery, normalizeHost, type CompiledRoute } from './router.js';
import type { UpstreamCluster, UpstreamEndpoint } from './upstream-cluster.js';

// HTTP/1.1 Upgrade (WebSocket and any other `Upgrade:` protocol). The handshake is routed as
// proxyRequest routes a request (host, path, headers; header modifier, URL rewrite, redirect,
// IP access and rate limit) and sent through the endpoint's undici pool with `upgrade`, so it
// gets the pool's TLS, SNI and connect timeout. A 101 hands over the upstream socket: the
// two sockets are piped both ways until either closes. Any other answer is relayed and the
// client connection closed. The tunnel counts as one request in flight on its endpoint for
// its whole life (balancer, circuit breaker max_requests, traffic gauge), so least
// connections sees open WebSockets; its latency is the handshake's.

/** Request headers not forwarded: the HTTP path's, and the body length (a handshake has none to send). */
const DROPPED_UPGRADE_HEADERS: ReadonlySet<string> = new Set([...DROPPED_REQUEST_HEADERS, 'content-length']);

const ABANDONED = new Error('upgrade abandoned');

/** Tunnels per pool: they leave the pool once upgraded, but count against max_connections. */
const tunnelsPerPool = new WeakMap<Pool, number>();

/**
 * The upgrade handler of one listening socket: its tunnels, and their idle timeout (the
 * listener's idle timeout; 0 = none). `closeAll` ends them (a drain that timed out).
 */
export class UpgradeProxy {
  /** Milliseconds without a byte either way after which a tunnel is closed; 0 = never. */
  idleTimeoutMs = 0;
  private readonly tunnels = new Set<Tunnel>();

  /** The server's 'upgrade' event. `view`: the listener's view when the request arrived. */
  handle(view: ListenerView, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', noop);
    const answer = new Answer(req, socket);
    if (isH2cWithoutBody(req)) {
      // HTTP/2 is hop-by-hop, and this upgrade deprecated (RFC 9113 §3.1): the request is
      // served as the HTTP/1.1 request it also is, and the connection closes after it.
      proxyRequest(view, NO_REQUEST_LIMITS, req, answer.response());
      return;
    }
    const record = view.stats?.start(req, answer.response());
    const url = req.url ?? '/';
    let target = url;
    if (url.charCodeAt(0) !== 47 /* / */) {
      const authority = ABSOLUTE_FORM.exec(url);
      if (authority === null) return answer.error(400, 'bad request target');
      const rest = url.slice(authority[0].length);
      target = rest.charCodeAt(0) === 47 ? rest : `/${rest}`;
    }
    const q = target.indexOf('?');
    const path = normalizePath(q < 0 ? target : target.slice(0, q));
    if (path === undefined) return answer.error(400, 'bad request path');
    const search = q < 0 ? '' : target.slice(q);
    const host = req.headers.host;
    const route = view.table?.findVirtualHost(host)?.match(req.method ?? 'GET', path, req.headers, new LazyQuery(search.slice(1)));
    if (route === undefined) return answer.error(404, `no route for host "${host ?? ''}" path "${path}"`);
    if (record !== undefined) record.route = route;
    const edge = route.filters.edge;
    if (edge !== undefined && (edge.ipAccess !== undefined || edge.rateLimit !== undefined)) {
      // Only the access filters: a cached or compressed answer makes no sense for an upgrade.
      const access = { ipAccess: edge.ipAccess, rateLimit: edge.rateLimit, cache: undefined, compression: undefined, responseHeaders: undefined };
      if (onEdgeRequest(access, req, answer.response(), view.trustedProxies, host, path, search) === ANSWERED) return;
    }
    const scheme = schemeOf(req);
    const redirect = route.filters.redirect;
    if (redirect !== undefined) {
      const hostHeader = host ?? '';
      const portAt = hostHeader.lastIndexOf(':');
      const port = portAt > hostHeader.lastIndexOf(']') ? hostHeader.slice(portAt + 1) : undefined;
      const location = redirect.location(scheme, normalizeHost(hostHeader), port, path, search.slice(1), route.prefix);
      const res = answer.response();
      res.writeHead(redirect.statusCode, { location, 'content-length': '0', server: 'sluice' });
      res.end();
      return;
    }
    const upstreamPath = route.filters.rewrite === undefined ? path + search : route.filters.rewrite.rewritePath(path, route.prefix) + search;
    const tunnel = new Tunnel(this, view, route, req, answer, head, upstreamPath, upstreamHeaders(view, route, req, host), record);
    this.tunnels.add(tunnel);
    tunnel.start();
  }

  /** Open tunnels (and handshakes in progress). */
  get size(): number {
    return this.tunnels.size;
  }

  /** Ends every tunnel now. */
  closeAll(): void {
    for (const tunnel of [...this.tunnels]) tunnel.close();
  }

  /** @internal */
  forget(tunnel: Tunnel): void {
    this.tunnels.delete(tunnel);
  }
}

function noop(): void {}

function isH2cWithoutBody(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || !/(?:^|,)\s*h2c\s*(?:,|$)/i.test(upgrade)) return false;
  const length = req.headers['content-length'];
  return (length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined;
}

/** The forwarded handshake headers: the client's end-to-end ones, X-Forwarded-*, Host, then the route's modifier. */
function upstreamHeaders(view: ListenerView, route: CompiledRoute, req: IncomingMessage, host: string | undefined): string[] {
  const raw = req.rawHeaders;
  // Headers named in Connection are hop-by-hop too ("Connection: Upgrade, X-Foo").
  const named = new Set((req.headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  let out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (DROPPED_UPGRADE_HEADERS.has(lower) || named.has(lower)) continue;
    out.push(name, raw[i + 1] as string);
  }
  appendForwarded(out, view.trustedProxies, req, clientAddress(req), host);
  const outHost = route.filters.rewrite?.hostname || host;
  if (outHost !== undefined) out.push('host', outHost);
  // The listener's stats put the id in force there (the client's when valid, else a new one).
  const requestId = req.headers['x-request-id'];
  if (typeof requestId === 'string') out.push('x-request-id', requestId);
  const modifier = route.filters.requestHeaders;
  if (modifier !== undefined) out = modifier.applyToList(out);
  return out;
}

/**
 * The client side before a 101: answers in HTTP through a ServerResponse made for the
 * upgraded socket (Node hands it over without one), then closes the connection.
 */
class Answer {
  private res: ServerResponse | undefined;

  constructor(
    private readonly req: IncomingMessage,
    readonly socket: Duplex,
  ) {}

  response(): ServerResponse {
    if (this.res !== undefined) return this.res;
    const res = new ServerResponse(this.req);
    res.shouldKeepAlive = false;
    res.assignSocket(this.socket as Socket);
    // Left assigned, so the socket's close ends the response (and its metrics record).
    res.once('finish', () => this.socket.end());
    return (this.res = res);
  }

  /** Anything written yet? (then the only way to signal an error is to cut the connection) */
  get started(): boolean {
    return this.res?.headersSent === true;
  }

  error(status: number, message: string): void {
    if (this.socket.destroyed) return;
    sendError(this.response(), status, message, true);
  }
}

/** One upgrade request: its tries, then (on a 101) the tunnel. */
class Tunnel {
  private cluster: UpstreamCluster | undefined;
  private admitted = false;
  private cookieId = '';
  private tried: Set<UpstreamEndpoint> | undefined;
  private retriesLeft: number;
  private timer: NodeJS.Timeout | undefined;
  attempt: TunnelAttempt | undefined;
  /** Upgraded: the upstream socket (piped with the client's). */
  private upstream: Duplex | undefined;
  private closed = false;

  constructor(
    private readonly proxy: UpgradeProxy,
    private readonly view: ListenerView,
    private readonly route: CompiledRoute,
    private readonly req: IncomingMessage,
    readonly answer: Answer,
    private readonly head: Buffer,
    private readonly upstreamPath: string,
    private readonly headers: string[],
    readonly record: RequestRecord | undefined,
  ) {
    this.retriesLeft = route.retry.attempts;
  }

  start(): void {
    this.answer.socket.once('close', this.onClientClose);
    const backend = this.route.backends.next();
    if (this.record !== undefined && backend !== undefined) this.record.upstream = backend.cluster;
    const cluster = backend === undefined || backend.cluster === '' ? undefined : this.view.clusters.get(backend.cluster);
    if (cluster === undefined) {
      this.fail(503, backend === undefined || backend.cluster === '' ? 'backend does not exist' : `upstream ${backend.cluster} is not available`);
      return;
    }
    this.cluster = cluster;
    if (!cluster.breaker.tryStartRequest()) {
      this.fail(503, UPSTREAM_OVERLOADED);
      return;
    }
    this.admitted = true;
    if (this.route.requestTimeoutMs > 0) this.timer = setTimeout(this.onHandshakeTimeout, this.route.requestTimeoutMs);
    this.tryOnce(false);
  }

  private tryOnce(retry: boolean): void {
    const cluster = this.cluster as UpstreamCluster;
    let endpoint: UpstreamEndpoint | undefined;
    if (cluster.affinity !== undefined && this.tried === undefined) {
      const affinity = cluster.affinity.find(this.req.headers, clientAddress(this.req), cluster.eligible);
      endpoint = affinity.endpoint;
      this.cookieId = affinity.cookieId;
    }
    if (endpoint === undefined) {
      const picked = cluster.balancer.pick({ clientAddress: clientAddress(this.req), exclude: this.tried, request: this.req });
      if (picked.kind === 'none') {
        if (retry) cluster.breaker.endRetry();
        this.fail(503, `${picked.reason} for upstream ${cluster.name}`);
        return;
      }
      endpoint = picked.endpoint;
    }
    const pool = endpoint.pool;
    if (!(pool instanceof Pool)) {
      // An HTTP/2 Upstream (Http2Pool): HTTP/2 has no Upgrade, and WebSocket over it (RFC 8441) is not implemented.
      if (retry) cluster.breaker.endRetry();
      this.fail(502, `upstream ${cluster.name} speaks HTTP/2: Upgrade needs HTTP/1.1`);
      return;
    }
    const breaker = cluster.breaker;
    const max = cluster.l4.maxConnections;
    if (max > 0 && (tunnelsPerPool.get(pool) ?? 0) + pool.stats.connected >= max) {
      if (retry) breaker.endRetry();
      this.fail(503, UPSTREAM_OVERLOADED);
      return;
    }
    if (!breaker.tryStartPending(breaker.limits.maxPendingRequests > 0 && pool.stats.free === 0)) {
      if (retry) breaker.endRetry();
      this.fail(503, UPSTREAM_OVERLOADED);
      return;
    }
    const attempt = new TunnelAttempt(this, endpoint, cluster, retry);
    this.attempt = attempt;
    cluster.balancer.onStart(endpoint);
    attempt.counters.start();
    const upgrade = this.req.headers.upgrade ?? 'websocket';
    pool.dispatch({ path: this.upstreamPath, method: this.req.method ?? 'GET', headers: this.headers, body: null, upgrade }, attempt);
  }

  /** A try could not connect: another endpoint if the route retries connect failures. */
  retryAfterConnectFailure(attempt: TunnelAttempt): boolean {
    if (this.closed || !this.route.retry.connectFailure || this.retriesLeft <= 0) return false;
    if (!(this.cluster as UpstreamCluster).breaker.tryStartRetry(false)) return false;
    this.retriesLeft--;
    if (this.record !== undefined) this.record.retries++;
    (this.tried ??= new Set()).add(attempt.endpoint);
    this.tryOnce(true);
    return true;
  }

  /** The backend said 101: answer the client likewise and join the sockets. */
  upgraded(attempt: TunnelAttempt, headers: Record<string, string | string[] | undefined>, upstream: Duplex): void {
    clearTimeout(this.timer);
    this.upstream = upstream;
    const pool = attempt.endpoint.pool;
    tunnelsPerPool.set(pool, (tunnelsPerPool.get(pool) ?? 0) + 1);
    upstream.once('close', () => {
      const left = (tunnelsPerPool.get(pool) ?? 1) - 1;
      if (left > 0) tunnelsPerPool.set(pool, left);
      else tunnelsPerPool.delete(pool);
    });
    for (const name of IDENTITY_HEADERS) delete headers[name];
    const cookie = this.cluster?.affinity?.setCookie(attempt.endpoint, this.cookieId);
    if (cookie !== undefined) {
      const set = headers['set-cookie'];
      headers['set-cookie'] = set === undefined ? cookie : Array.isArray(set) ? [...set, cookie] : [set, cookie];
    }
    this.route.filters.responseHeaders?.applyToObject(headers);
    // Without one, Node would add "connection: close" to the 101.
    headers.connection ??= 'Upgrade';
    // Through the ServerResponse (then left unfinished): it stays on the socket, so the
    // request's record (metrics, access log) ends with the tunnel, as status 101.
    const res = this.answer.response();
    res.writeHead(101, headers);
    res.flushHeaders();
    const client = this.answer.socket as Socket;
    if (this.head.length > 0) upstream.write(this.head);
    upstream.on('error', this.onSocketError);
    client.on('error', this.onSocketError);
    upstream.once('close', this.onSideClose);
    client.off('close', this.onClientClose);
    client.once('close', this.onSideClose);
    // Bytes either way are activity on the client socket (read from it, or written to it).
    const idle = this.proxy.idleTimeoutMs;
    if (idle > 0) client.setTimeout(idle, this.onIdle);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  /** An answer before any tunnel (the client connection closes after it). */
  fail(status: number, message: string): void {
    const attempt = this.attempt;
    this.attempt = undefined;
    attempt?.abandon();
    this.answer.error(status, message);
    this.finish();
  }

  /** Ends the tunnel (or handshake) now: both sockets destroyed. */
  close(): void {
    if (this.closed) return;
    const attempt = this.attempt;
    this.attempt = undefined;
    if (this.upstream === undefined) attempt?.abandon();
    else attempt?.endTunnel();
    this.upstream?.destroy();
    this.answer.socket.destroy();
    this.finish();
  }

  /** The request is over: release the breaker, once. */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.admitted) {
      this.admitted = false;
      (this.cluster as UpstreamCluster).breaker.endRequest();
    }
    this.proxy.forget(this);
  }

  /** The client left during the handshake. */
  private readonly onClientClose = (): void => {
    this.close();
  };

  /**
   * One side of the tunnel closed: the other one writes what the pipe gave it (a WebSocket
   * close frame, say) and closes too.
   */
  private readonly onSideClose = (): void => {
    if (this.closed) return;
    (this.upstream as Socket).destroySoon();
    (this.answer.socket as Socket).destroySoon();
    const attempt = this.attempt;
    this.attempt = undefined;
    attempt?.endTunnel();
    this.finish();
  };

  private readonly onSocketError = (): void => {
    this.attempt?.markReset();
    this.close();
  };

  private readonly onIdle = (): void => {
    this.close();
  };

  private readonly onHandshakeTimeout = (): void => {
    this.attempt?.timedOut();
    this.fail(504, 'upstream request timeout');
  };
}

/** One try of the handshake against one endpoint: the undici dispatch handler. Lives on as the tunnel's accounting. */
class TunnelAttempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private abandoned = false;
  private pending = true;
  private ended = false;
  private readonly startedAt = performance.now();
  private handshakeMs = -1;
  private outcome: TryOutcome = TryOutcome.OK;
  readonly counters: EndpointCounters;
  /** A non-101 answer being relayed. */
  private relaying = false;

  constructor(
    private readonly tunnel: Tunnel,
    readonly endpoint: UpstreamEndpoint,
    private readonly cluster: UpstreamCluster,
    private readonly retry: boolean,
  ) {
    this.counters = cluster.traffic.counters(endpoint.id);
  }

  private live(): boolean {
    return !this.abandoned && this.tunnel.attempt === this;
  }

  private endPending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.cluster.breaker.endPending();
  }

  /** Released once: at the tunnel's close, or when the try failed. */
  end(ok: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.endPending();
    if (this.retry) this.cluster.breaker.endRetry();
    const latencyMs = this.handshakeMs >= 0 ? this.handshakeMs : performance.now() - this.startedAt;
    this.cluster.balancer.onEnd(this.endpoint, { latencyMs, ok });
    this.counters.end(latencyMs, this.outcome);
  }

  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    this.controller?.abort(ABANDONED);
    this.end(this.outcome === TryOutcome.OK);
  }

  /** The tunnel closed: its one request on the endpoint is over. */
  endTunnel(): void {
    this.end(this.outcome === TryOutcome.OK);
  }

  markReset(): void {
    if (this.outcome === TryOutcome.OK) this.outcome = TryOutcome.RESET;
  }

  timedOut(): void {
    if (this.ended) return;
    this.outcome = this.pending ? TryOutcome.CONNECT_FAILURE : TryOutcome.TIMEOUT;
    if (this.pending) this.cluster.outliers.onConnectFailure(this.endpoint.id);
    else this.cluster.outliers.onGatewayFailure(this.endpoint.id);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.endPending();
    if (!this.live()) {
      controller.abort(ABANDONED);
      return;
    }
    this.cluster.outliers.onConnected(this.endpoint.id);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: Duplex): void {
    if (!this.live()) {
      socket.destroy();
      return;
    }
    this.handshakeMs = performance.now() - this.startedAt;
    this.cluster.outliers.onResponse(this.endpoint.id, statusCode);
    this.tunnel.record?.tried(this.cluster.name, this.endpoint, this.handshakeMs);
    this.tunnel.upgraded(this, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (!this.live()) {
      controller.abort(ABANDONED);
      return;
    }
    this.handshakeMs = performance.now() - this.startedAt;
    this.cluster.outliers.onResponse(this.endpoint.id, statusCode);
    this.tunnel.record?.tried(this.cluster.name, this.endpoint, this.handshakeMs);
    if (statusCode >= 500) this.outcome = TryOutcome.SERVER_ERROR;
    // Refused: relayed as it came (less hop-by-hop headers), and the connection closes after it.
    const connection = headers.connection;
    for (const name of HOP_BY_HOP_HEADERS) delete headers[name];
    for (const name of IDENTITY_HEADERS) delete headers[name];
    if (typeof connection === 'string') for (const token of connection.split(',')) delete headers[token.trim().toLowerCase()];
    this.relaying = true;
    const res = this.tunnel.answer.response();
    res.writeHead(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.live() || !this.relaying) return;
    const res = this.tunnel.answer.response();
    if (!res.write(chunk) && !controller.paused) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (!this.live()) return;
    this.end(this.outcome === TryOutcome.OK);
    this.tunnel.answer.response().end();
    this.tunnel.attempt = undefined;
    this.tunnel.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.live()) return;
    const connect = isConnectFailure(err);
    const ours = (err as { code?: unknown }).code === 'UND_ERR_CLOSED' || (err as { code?: unknown }).code === 'UND_ERR_DESTROYED';
    if (!ours && this.outcome === TryOutcome.OK) this.outcome = connect ? TryOutcome.CONNECT_FAILURE : TryOutcome.RESET;
    this.abandoned = true;
    this.end(false);
    if (!ours) {
      if (connect) this.cluster.outliers.onConnectFailure(this.endpoint.id);
      else this.cluster.outliers.onGatewayFailure(this.endpoint.id);
    }
    const tunnel = this.tunnel;
    if (this.relaying || tunnel.answer.started) {
      tunnel.close();
      return;
    }
    if (connect && tunnel.retryAfterConnectFailure(this)) return;
    tunnel.fail(502, connect ? 'upstream connect error' : 'upstream connection reset');
  }
}
