import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { ProxyProtocolVersion } from '@sluice/proto';
import type { Dispatcher } from 'undici';
import type { CompiledRoute, CompiledRouteTable, WeightedBackend } from './router.js';
import { TryOutcome, type EndpointCounters } from './endpoint-stats.js';
import type { ListenerStats, RequestRecord } from '../metrics/data-plane-metrics.js';
import { ANSWERED, onEdgeRequest, type EdgeExchange } from './filters/edge.js';
import { normalizePath } from './normalize-path.js';
import { isReplaySafe } from './retry-policy.js';
import { isTlsFailure } from './upstream-pool.js';
import { LazyQuery, normalizeHost } from './router.js';
import type { UpstreamCluster, UpstreamEndpoint } from './upstream-cluster.js';

// The HTTP/1.1 request path: route, split, balance, forward with undici `dispatch` (no
// response stream object in between: chunks go straight to the client's socket, with
// backpressure both ways), retry while the request can still be replayed.
//
// Resilience on that path: the cluster's circuit breaker admits the request (maxRequests) and
// each try (maxPendingRequests), or it gets a 503 "upstream overloaded" at once; session
// affinity may pin the first try; every try's outcome feeds outlier detection; a retry needs
// a replay-safe request (idempotent method, or nothing reached a backend) and room in the
// retry budget and maxRetries.

/** What a listener serves with, swapped whole on every config version. */
export interface ListenerView {
  /** undefined: the listener's route table is not (yet) known; every request gets a 404. */
  readonly table: CompiledRouteTable | undefined;
  readonly clusters: ReadonlyMap<string, UpstreamCluster>;
  /** Peers whose X-Forwarded-* headers are kept and extended; undefined = none. */
  readonly trustedProxies: BlockList | undefined;
  /** Request metrics, request ids and access log of this listener (metrics/data-plane-metrics.ts). */
  readonly stats?: ListenerStats | undefined;
}

/** A listener's per-request limits (ListenerLimits); 0 = no limit. */
export interface RequestLimits {
  /** Bigger bodies get a 413 (or, once the response has started, a reset). */
  readonly maxBodyBytes: number;
  /** A client that sends no body byte for this long, while we read, gets a 408. */
  readonly bodyTimeoutMs: number;
}

export const NO_REQUEST_LIMITS: RequestLimits = { maxBodyBytes: 0, bodyTimeoutMs: 0 };

/** Hop-by-hop headers (RFC 9110 §7.6.1): never relayed as they came, either way. */
export const HOP_BY_HOP_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'] as const;

/** Response headers that would name the backend's software (DESIGN §9). */
export const IDENTITY_HEADERS = ['server', 'x-powered-by'] as const;

/** Request headers never forwarded as they came: hop-by-hop ones, and the ones we set. */
export const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  // Node answers "100-continue" itself; undici refuses to send Expect.
  'expect',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  // Replaced by the one the request is known by (the client's when valid): request-id.ts.
  'x-request-id',
]);

/** Response headers never forwarded: hop-by-hop ones, and the backend's identity (DESIGN §9). */
const DROPPED_RESPONSE_HEADERS = [...HOP_BY_HOP_HEADERS, ...IDENTITY_HEADERS] as const;

/** gRPC's status fields: trailers, even when a backend sends them in the headers. */
const GRPC_STATUS_HEADERS = ['grpc-status', 'grpc-message', 'grpc-status-details-bin'] as const;

/** Absolute-form request target: "http://host:port" before the path. */
export const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

const TEXT_PLAIN = 'text/plain; charset=utf-8';

/** Handles one request on a listener whose current view and limits are given (captured by the caller). */
export function proxyRequest(view: ListenerView, limits: RequestLimits, req: IncomingMessage, res: ServerResponse): void {
  const record = view.stats?.start(req, res);
  const url = req.url ?? '/';
  let target = url;
  if (url.charCodeAt(0) !== 47 /* / */) {
    // Absolute form ("GET http://host/path"), as proxies may be sent.
    const authority = ABSOLUTE_FORM.exec(url);
    if (authority === null) {
      sendError(res, 400, 'bad request target');
      return;
    }
    const rest = url.slice(authority[0].length);
    target = rest.charCodeAt(0) === 47 ? rest : `/${rest}`;
  }
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  // Matched and forwarded normalized, so the backend sees the path the route was chosen for.
  const path = normalizePath(rawPath);
  if (path === undefined) {
    sendError(res, 400, 'bad request path');
    return;
  }
  const search = q < 0 ? '' : target.slice(q);
  const query = search.slice(1);
  if (limits.maxBodyBytes > 0) {
    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) > limits.maxBodyBytes) {
      sendError(res, 413, 'request body too large', true);
      return;
    }
  }
  // HTTP/2 names the host in :authority (a Host header, if sent, must agree: RFC 9113 §8.3.1).
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
  const method = req.method ?? 'GET';
  const vhost = view.table?.findVirtualHost(host);
  const route = vhost?.match(method, path, req.headers, new LazyQuery(query));
  if (record !== undefined) record.route = route;
  if (route === undefined) {
    sendError(res, 404, `no route for host "${host ?? ''}" path "${path}"`);
    return;
  }
  let edge: EdgeExchange | undefined;
  if (route.filters.edge !== undefined) {
    const outcome = onEdgeRequest(route.filters.edge, req, res, view.trustedProxies, host, path, search);
    if (outcome === ANSWERED) return;
    edge = outcome;
  }
  const redirect = route.filters.redirect;
  if (redirect !== undefined) {
    const hostHeader = host ?? '';
    const hostName = normalizeHost(hostHeader);
    const portAt = hostHeader.lastIndexOf(':');
    const port = portAt > hostHeader.lastIndexOf(']') ? hostHeader.slice(portAt + 1) : undefined;
    res.writeHead(redirect.statusCode, { location: redirect.location(schemeOf(req), hostName, port, path, query, route.prefix), 'content-length': '0', server: 'sluice' });
    res.end();
    return;
  }
  // The unchanged origin-form target is forwarded as it came (no new string).
  const upstreamPath = route.filters.rewrite === undefined ? (path === rawPath && target === url ? url : path + search) : route.filters.rewrite.rewritePath(path, route.prefix) + search;
  const exchange = new Exchange(view, limits, route, req, res, upstreamPath, host, edge);
  exchange.record = record;
  exchange.start();
}

/**
 * An answer of the proxy's own (the only responses that say `server: sluice`). `close`: the
 * rest of the request is not read, so the connection cannot carry another one.
 */
export function sendError(res: ServerResponse, status: number, message: string, close = false): void {
  if (res.headersSent) {
    // Too late for a status: cut the response so the client sees it is incomplete.
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  const headers: Record<string, string | number> = { 'content-type': TEXT_PLAIN, 'content-length': Buffer.byteLength(body), server: 'sluice' };
  // HTTP/2 has no Connection header (Node refuses it); the stream ends on its own.
  if (close && !isHttp2(res)) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/** The try reached no backend: it could not connect (a failed TLS handshake or certificate check included). */
export function isConnectFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    isTlsFailure(err) ||
    code === 'ECONNREFUSED' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'UND_ERR_CLOSED' ||
    code === 'UND_ERR_DESTROYED'
  );
}

function isClosedByUs(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED';
}

const RETRY = new Error('retrying on another endpoint');
/** The circuit breaker's answer (with a 503). */
export const UPSTREAM_OVERLOADED = 'upstream overloaded';
const ABANDONED = new Error('request abandoned');

/** One client request through its tries. One per request; its tries are `Attempt`s. */
class Exchange {
  private readonly body: IncomingMessage | null;
  private readonly headers: string[];
  private readonly clientAddress: string;
  private cluster: UpstreamCluster | undefined;
  /** Counted in the cluster breaker's active requests (released by done()). */
  private admitted = false;
  /** Session cookie: the endpoint id the request's cookie named ('' = none). */
  private cookieId = '';
  private tried: Set<UpstreamEndpoint> | undefined;
  private retriesLeft: number;
  /** The live try; callbacks of any other (abandoned) one are ignored. */
  attempt: Attempt | undefined;
  /** Metrics and access-log record (undefined: the view has no stats). */
  record: RequestRecord | undefined;
  /** The request body started flowing to some backend: it cannot be replayed. */
  bodyStarted = false;
  finished = false;
  private requestTimer: NodeJS.Timeout | undefined;
  private tryTimer: NodeJS.Timeout | undefined;
  /** Request body bytes read from the client (counted only under a body limit). */
  private bodyBytes = 0;
  private bodyTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly view: ListenerView,
    private readonly limits: RequestLimits,
    private readonly route: CompiledRoute,
    private readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly upstreamPath: string,
    host: string | undefined,
    /** Cache and Compression on the way back (edge.ts). */
    readonly edge: EdgeExchange | undefined,
  ) {
    const cl = req.headers['content-length'];
    // HTTP/2 frames the body itself: a stream not ended with its headers has one, length or not (gRPC).
    const h2 = (req as { stream?: { endAfterHeaders: boolean } }).stream;
    this.body = (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined || (h2 !== undefined && !h2.endAfterHeaders) ? req : null;
    this.clientAddress = clientAddress(req);
    this.headers = this.buildHeaders(host, route.filters.rewrite?.hostname || undefined);
    this.retriesLeft = route.retry.attempts;
  }

  private buildHeaders(host: string | undefined, rewriteHost: string | undefined): string[] {
    const req = this.req;
    const raw = req.rawHeaders;
    const connection = req.headers.connection;
    // Headers named in Connection are hop-by-hop too ("Connection: close, X-Foo").
    const named = connection !== undefined && connection.includes(',') ? new Set(connection.toLowerCase().split(',').map((s) => s.trim())) : undefined;
    const namedOne = named === undefined && connection !== undefined ? connection.trim().toLowerCase() : undefined;
    let out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      // HTTP/2 pseudo-headers (":method", ":authority"...) are not headers to forward.
      if (name.charCodeAt(0) === 58 /* : */) continue;
      const lower = name.toLowerCase();
      if (DROPPED_REQUEST_HEADERS.has(lower) || lower === namedOne || (named !== undefined && named.has(lower))) {
        // HTTP/2's one TE value is end-to-end for gRPC (the client reads trailers).
        if (lower === 'te' && raw[i + 1] === 'trailers' && req.httpVersionMajor === 2) out.push(name, 'trailers');
        continue;
      }
      if (this.body === null && lower === 'content-length') continue;
      out.push(name, raw[i + 1] as string);
    }
    appendForwarded(out, this.view.trustedProxies, req, this.clientAddress, host);
    const outHost = rewriteHost ?? host;
    if (outHost !== undefined) out.push('host', outHost);
    // The listener's stats put the id in force there (the client's when valid, else a new one).
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') out.push('x-request-id', requestId);
    const modifier = this.route.filters.requestHeaders;
    if (modifier !== undefined) out = modifier.applyToList(out);
    this.edge?.addRequestHeaders(out);
    return out;
  }

  start(): void {
    this.res.once('close', this.onClientClose);
    if (this.route.requestTimeoutMs > 0) this.requestTimer = setTimeout(this.onRequestTimeout, this.route.requestTimeoutMs);
    if (this.body !== null && (this.limits.maxBodyBytes > 0 || this.limits.bodyTimeoutMs > 0)) this.watchBody();
    const backend = this.route.backends.next();
    if (this.record !== undefined && backend !== undefined) this.record.upstream = backend.cluster;
    if (backend === undefined) {
      this.fail(503, 'no backend available');
      return;
    }
    const cluster = this.resolve(backend);
    if (cluster === undefined) return;
    this.cluster = cluster;
    if (!cluster.breaker.tryStartRequest()) {
      this.fail(503, UPSTREAM_OVERLOADED);
      return;
    }
    this.admitted = true;
    this.tryOnce(false);
  }

  private resolve(backend: WeightedBackend): UpstreamCluster | undefined {
    const cluster = backend.cluster === '' ? undefined : this.view.clusters.get(backend.cluster);
    if (cluster === undefined) this.fail(503, backend.cluster === '' ? 'backend does not exist' : `upstream ${backend.cluster} is not available`);
    else if (cluster.l4.proxyProtocol !== ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_UNSPECIFIED) {
      // Pooled HTTP connections carry many clients: no one PROXY header is true for all (docs/l4.md).
      this.fail(502, `upstream ${backend.cluster} expects the PROXY protocol, which HTTP routes do not send`);
      return undefined;
    }
    return cluster;
  }

  /** `retry`: this try holds a slot of the cluster's retries in flight (released if it cannot start). */
  private tryOnce(retry: boolean): void {
    const cluster = this.cluster as UpstreamCluster;
    let endpoint: UpstreamEndpoint | undefined;
    if (cluster.affinity !== undefined && this.tried === undefined) {
      const affinity = cluster.affinity.find(this.req.headers, this.clientAddress, cluster.eligible);
      endpoint = affinity.endpoint;
      this.cookieId = affinity.cookieId;
    }
    if (endpoint === undefined) {
      const picked = cluster.balancer.pick({ clientAddress: this.clientAddress, exclude: this.tried, request: this.req });
      if (picked.kind === 'none') {
        if (retry) cluster.breaker.endRetry();
        this.fail(503, `${picked.reason} for upstream ${cluster.name}`);
        return;
      }
      endpoint = picked.endpoint;
    }
    // A try that finds no free connection waits for one: maxPendingRequests bounds those.
    const breaker = cluster.breaker;
    if (!breaker.tryStartPending(breaker.limits.maxPendingRequests > 0 && endpoint.pool.stats.free === 0)) {
      if (retry) breaker.endRetry();
      this.fail(503, UPSTREAM_OVERLOADED);
      return;
    }
    const attempt = new Attempt(this, endpoint, cluster, retry);
    this.attempt = attempt;
    cluster.balancer.onStart(endpoint);
    attempt.counters.start();
    const perTry = this.route.perTryTimeoutMs;
    if (perTry > 0) {
      clearTimeout(this.tryTimer);
      this.tryTimer = setTimeout(this.onTryTimeout, perTry);
    }
    endpoint.pool.dispatch(
      { path: this.upstreamPath, method: this.req.method as Dispatcher.HttpMethod, headers: this.headers, body: this.body },
      attempt,
    );
  }

  /**
   * Counts the body against the size limit and watches for a client that stops sending it.
   * The body is paused first: a 'data' listener would otherwise start the flow before undici
   * (which resumes the body when it starts sending it) listens, and those chunks would be lost.
   */
  private watchBody(): void {
    const req = this.req;
    req.pause();
    req.on('data', this.onBodyData);
    if (this.limits.bodyTimeoutMs > 0) {
      this.bodyTimer = setTimeout(this.onBodyTimeout, this.limits.bodyTimeoutMs);
      req.once('end', this.onBodyEnd);
    }
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    this.bodyBytes += chunk.length;
    this.bodyTimer?.refresh();
    const max = this.limits.maxBodyBytes;
    if (max > 0 && this.bodyBytes > max) this.fail(413, 'request body too large', true);
  };

  private readonly onBodyEnd = (): void => {
    clearTimeout(this.bodyTimer);
  };

  private readonly onBodyTimeout = (): void => {
    // Paused, we are the ones not reading (backend not connected yet, or pushing back): the
    // client is not to blame. Flowing and silent, it is.
    if (this.req.readableFlowing !== true) this.bodyTimer?.refresh();
    else this.fail(408, 'request body timeout', true);
  };

  /**
   * May another try start after `attempt` failed (before any byte reached the client)?
   * `connectFailure`: the request reached no backend, so it is safe to replay whatever its method.
   */
  retryAfter(attempt: Attempt, condition: boolean, connectFailure: boolean): boolean {
    if (!condition || this.retriesLeft <= 0 || this.finished || this.res.headersSent) return false;
    if (this.body !== null && this.bodyStarted) return false;
    if (!isReplaySafe(this.req.method ?? 'GET', connectFailure)) return false;
    if (!(this.cluster as UpstreamCluster).breaker.tryStartRetry(!connectFailure)) return false;
    this.retriesLeft--;
    if (this.record !== undefined) this.record.retries++;
    (this.tried ??= new Set()).add(attempt.endpoint);
    this.tryOnce(true);
    return true;
  }

  /** Session cookie: the Set-Cookie to add to a response from `endpoint`, if the client needs a (new) one. */
  affinityCookie(endpoint: UpstreamEndpoint): string | undefined {
    return this.cluster?.affinity?.setCookie(endpoint, this.cookieId);
  }

  /** The response is complete (or the client is gone): clear timers, once. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.attempt = undefined;
    clearTimeout(this.requestTimer);
    clearTimeout(this.tryTimer);
    clearTimeout(this.bodyTimer);
    if (this.admitted) {
      this.admitted = false;
      (this.cluster as UpstreamCluster).breaker.endRequest();
    }
    this.res.off('close', this.onClientClose);
    this.req.off('data', this.onBodyData);
  }

  /** An error answer before the response started (or a cut connection after). */
  fail(status: number, message: string, close = false): void {
    const attempt = this.attempt;
    this.done();
    attempt?.abandon();
    sendError(this.res, status, message, close);
  }

  private readonly onClientClose = (): void => {
    const attempt = this.attempt;
    this.done();
    attempt?.abandon();
  };

  private readonly onRequestTimeout = (): void => {
    this.attempt?.timedOut();
    this.fail(504, 'upstream request timeout');
  };

  private readonly onTryTimeout = (): void => {
    const attempt = this.attempt;
    if (attempt === undefined || this.finished) return;
    attempt.timedOut();
    if (this.res.headersSent) {
      this.fail(504, 'upstream request timeout');
      return;
    }
    // Still waiting for its connection: the request reached nobody, any method may be replayed.
    const connecting = attempt.pending;
    attempt.abandon();
    if (!this.retryAfter(attempt, this.route.retry.timeout, connecting)) this.fail(504, 'upstream request timeout');
  };

  readonly onDrain = (): void => {
    this.attempt?.controller?.resume();
  };

  get routeRetry(): CompiledRoute['retry'] {
    return this.route.retry;
  }

  get responseHeaders(): CompiledRoute['filters']['responseHeaders'] {
    return this.route.filters.responseHeaders;
  }
}

/** One try against one endpoint: the undici dispatch handler. */
class Attempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined;
  private abandoned = false;
  private readonly startedAt = performance.now();
  /** Waiting for a connection (counted in the breaker's pending requests). */
  pending = true;
  /** The endpoint's traffic counters (report stream); `outcome` is what end() records. */
  readonly counters: EndpointCounters;
  private outcome: TryOutcome = TryOutcome.OK;

  /** `retry`: holds one of the cluster's retries in flight until it ends. */
  constructor(
    private readonly exchange: Exchange,
    readonly endpoint: UpstreamEndpoint,
    private readonly cluster: UpstreamCluster,
    private readonly retry: boolean,
  ) {
    this.counters = cluster.traffic.counters(endpoint.id);
  }

  private endPending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.cluster.breaker.endPending();
  }

  /** The try ran out of time: a connect failure while connecting, else a gateway error (Envoy's 504). */
  timedOut(): void {
    if (this.ended) return;
    this.outcome = this.pending ? TryOutcome.CONNECT_FAILURE : TryOutcome.TIMEOUT;
    if (this.pending) this.cluster.outliers.onConnectFailure(this.endpoint.id);
    else this.cluster.outliers.onGatewayFailure(this.endpoint.id);
  }

  private live(): boolean {
    return !this.abandoned && this.exchange.attempt === this;
  }

  /** Stop caring about this try: abort it upstream (now or as soon as it connects). */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    this.controller?.abort(ABANDONED);
    this.end(false);
  }

  private ended = false;
  private end(ok: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.endPending();
    if (this.retry) this.cluster.breaker.endRetry();
    const latencyMs = performance.now() - this.startedAt;
    this.cluster.balancer.onEnd(this.endpoint, { latencyMs, ok });
    this.counters.end(latencyMs, this.outcome);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.endPending();
    if (!this.live()) {
      controller.abort(ABANDONED);
      return;
    }
    this.exchange.bodyStarted = true;
    this.cluster.outliers.onConnected(this.endpoint.id);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (!this.live()) {
      controller.abort(ABANDONED);
      return;
    }
    const exchange = this.exchange;
    exchange.record?.tried(this.cluster.name, this.endpoint, performance.now() - this.startedAt);
    this.cluster.outliers.onResponse(this.endpoint.id, statusCode);
    if (statusCode >= 500) this.outcome = TryOutcome.SERVER_ERROR;
    if (exchange.routeRetry.retriesStatus(statusCode)) {
      this.abandoned = true;
      this.end(false);
      if (exchange.retryAfter(this, true, false)) {
        controller.abort(RETRY);
        return;
      }
      this.abandoned = false;
    }
    const connection = headers.connection;
    for (const name of DROPPED_RESPONSE_HEADERS) delete headers[name];
    if (typeof connection === 'string') {
      for (const token of connection.split(',')) delete headers[token.trim().toLowerCase()];
    }
    if (exchange.edge !== undefined) statusCode = exchange.edge.onResponse(statusCode, headers);
    const cookie = exchange.affinityCookie(this.endpoint);
    if (cookie !== undefined) {
      const set = headers['set-cookie'];
      headers['set-cookie'] = set === undefined ? cookie : Array.isArray(set) ? [...set, cookie] : [set, cookie];
    }
    exchange.responseHeaders?.applyToObject(headers);
    // A gRPC "trailers-only" answer (status in the headers, no body): relayed as headers
    // then trailers, which every gRPC client reads, whatever frames the two hops use.
    if (headers['grpc-status'] !== undefined && isHttp2(exchange.res)) {
      const trailers: Record<string, string | string[] | undefined> = {};
      for (const name of GRPC_STATUS_HEADERS) {
        if (headers[name] !== undefined) trailers[name] = headers[name];
        delete headers[name];
      }
      exchange.res.addTrailers(trailers);
    }
    exchange.res.writeHead(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.live()) return;
    const out = this.exchange.edge?.writer ?? this.exchange.res;
    if (!out.write(chunk) && !controller.paused) {
      controller.pause();
      out.once('drain', this.exchange.onDrain);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (!this.live()) return;
    this.end(true);
    const exchange = this.exchange;
    exchange.done();
    // gRPC's status travels in trailers. HTTP/1.1 clients get them only on a chunked response (Node drops them otherwise).
    if (hasAny(trailers)) exchange.res.addTrailers(trailers);
    (exchange.edge?.writer ?? exchange.res).end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.live()) return;
    const exchange = this.exchange;
    const connect = isConnectFailure(err);
    const ours = isClosedByUs(err);
    if (!ours && this.outcome === TryOutcome.OK) this.outcome = connect ? TryOutcome.CONNECT_FAILURE : TryOutcome.RESET;
    this.abandoned = true;
    this.end(false);
    // A pool we closed (config change, shutdown) says nothing about the endpoint.
    if (!ours) {
      if (connect) this.cluster.outliers.onConnectFailure(this.endpoint.id);
      else this.cluster.outliers.onGatewayFailure(this.endpoint.id);
    }
    const retry = exchange.routeRetry;
    if (exchange.retryAfter(this, connect ? retry.connectFailure : retry.reset, connect)) return;
    exchange.fail(502, connect ? 'upstream connect error' : 'upstream connection reset');
  }
}

/** The peer's address; IPv4-mapped IPv6 ("::ffff:10.0.0.1") as plain IPv4. */
export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Adds X-Forwarded-For/-Proto/-Host to a forwarded header list: set from this hop, or
 * extended when `peer` is one of the listener's trusted proxies.
 */
export function appendForwarded(out: string[], trustedProxies: BlockList | undefined, req: IncomingMessage, peer: string, host: string | undefined): void {
  const trusted = trustedProxies !== undefined && peer !== '' && trustedProxies.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4');
  // Node joins repeated X-Forwarded-* lines with ", ", so these are strings.
  const xff = req.headers['x-forwarded-for'];
  const xfp = req.headers['x-forwarded-proto'];
  const xfh = req.headers['x-forwarded-host'];
  out.push('x-forwarded-for', trusted && typeof xff === 'string' ? `${xff}, ${peer}` : peer, 'x-forwarded-proto', trusted && typeof xfp === 'string' ? xfp : schemeOf(req));
  const forwardedHost = trusted && typeof xfh === 'string' ? xfh : host;
  if (forwardedHost !== undefined) out.push('x-forwarded-host', forwardedHost);
}

/** The scheme the client used: https on a TLS listener (HTTP/1.1 or HTTP/2 alike). */
export function schemeOf(req: IncomingMessage): 'http' | 'https' {
  return (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http';
}

/** An HTTP/2 response (the compat API's; it has a stream, not a socket of its own). */
export function isHttp2(res: ServerResponse): boolean {
  return (res as { stream?: unknown }).stream !== undefined;
}

function hasAny(record: object | null | undefined): boolean {
  if (record === null || record === undefined) return false;
  for (const _ in record) return true;
  return false;
}
