import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { createServer as createNetServer, isIPv6, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ListenerLimits } from '@sluice/proto';
import { sniffH2c, withHead } from './h2c-sniff.js';
import { readProxyHeader, type ProxyAddress } from './l4/proxy-protocol.js';
import { PREFIX_TIMEOUT_MS } from './l4/tcp-proxy.js';
import { NO_REQUEST_LIMITS, proxyRequest, sendError, type ListenerView, type RequestLimits } from './http-proxy.js';
import type { ListenerTlsView } from './tls-contexts.js';
import { UpgradeProxy } from './upgrade-proxy.js';

/**
 * One listening socket. Its view, limits and protocol settings are replaced on every config
 * version; the socket stays. It only accepts: each connection goes to the protocol front its
 * listener has at that moment (TLS, then HTTP/1.1 or HTTP/2 by ALPN; or h2c sniffing; or
 * plain HTTP/1.1), so even a change of protocol takes effect without rebinding.
 */
interface BoundServer {
  readonly key: string;
  readonly server: NetServer;
  /** HTTP/1.1, cleartext or inside TLS. It never listens itself. */
  readonly http1: HttpServer;
  /** HTTP/2 (h2 by ALPN, or h2c), created on first use. */
  h2: Http2Server | undefined;
  /** TLS termination, created on first use. */
  tlsServer: TlsServer | undefined;
  /** undefined: cleartext. */
  tls: ListenerTlsView | undefined;
  /** The `tls.key` the TLS server's default context was built for. */
  tlsContextKey: string;
  /** Cleartext only: sniff each connection for the HTTP/2 preface. */
  h2c: boolean;
  /** Every connection starts with a PROXY header naming the client (l4/proxy-protocol.ts). */
  acceptProxyProtocol: boolean;
  view: ListenerView;
  requestLimits: RequestLimits;
  /** 0 = no cap. */
  maxConnectionsPerClient: number;
  /** Open connections per client address. */
  readonly clients: Map<string, number>;
  /** Every accepted connection, for the end of a drain. */
  readonly sockets: Set<Socket>;
  /** Open HTTP/2 sessions, closed gracefully (GOAWAY) by a drain. */
  readonly sessions: Set<ServerHttp2Session>;
  draining: boolean;
  /** Upgrade requests (WebSocket) and the tunnels they became. */
  readonly upgrades: UpgradeProxy;
}

// Node's own defaults, restored when a limit is removed.
const DEFAULT_MAX_HEADERS = 2000;
/**
 * How often Node checks connections for the headers and request timeouts (its default, 30 s,
 * lets a slow-header client hold a socket up to 30 s past requestHeadersTimeout).
 */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;
const DEFAULT_HEADERS_TIMEOUT_MS = 60_000;
const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface ListenerSpec {
  /** Listener resource name. */
  readonly name: string;
  /** Bind address; "" = every address (Node's default: "::" with IPv4 fallback). */
  readonly address: string;
  readonly port: number;
  readonly limits: ListenerLimits | undefined;
  readonly view: ListenerView;
  /** HTTPS: certificates by SNI, TLS versions, ALPN. undefined: cleartext HTTP. */
  readonly tls?: ListenerTlsView | undefined;
  /** Cleartext HTTP also takes HTTP/2 with prior knowledge. */
  readonly h2c?: boolean;
  /** Each connection starts with a PROXY protocol v1/v2 header (the client address for everything after). */
  readonly acceptProxyProtocol?: boolean;
}

/** Same address and port = same socket across versions (port 0, test-only, is per name). */
export function bindKey(spec: Pick<ListenerSpec, 'name' | 'address' | 'port'>): string {
  return spec.port === 0 ? `${spec.address}:0:${spec.name}` : `${spec.address}:${spec.port}`;
}

/**
 * Binds, rebinds and drains the listening sockets. `bind` creates sockets ahead of a swap
 * (a failure is that listener's rejection); `commit` hands every socket its new view in
 * one synchronous pass and drains the sockets no listener uses any more.
 */
export class ListenerManager {
  private servers = new Map<string, BoundServer>();
  /** Listener name -> socket key, as of the last commit. */
  private names = new Map<string, string>();
  private readonly draining = new Set<Promise<void>>();

  constructor(private readonly drainTimeoutMs: number) {}

  has(key: string): boolean {
    return this.servers.has(key);
  }

  /** Binds a socket for `spec` unless one is bound at its key. Throws the bind error. */
  async bind(spec: ListenerSpec): Promise<void> {
    const key = bindKey(spec);
    if (this.servers.has(key)) return;
    // As http.Server accepts: half-open allowed (the HTTP layer decides), no Nagle delay.
    const server = createNetServer({ allowHalfOpen: true, noDelay: true });
    const http1 = createHttpServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS });
    const bound: BoundServer = {
      key,
      server,
      http1,
      h2: undefined,
      tlsServer: undefined,
      tls: undefined,
      tlsContextKey: '',
      h2c: false,
      acceptProxyProtocol: false,
      view: spec.view,
      requestLimits: NO_REQUEST_LIMITS,
      maxConnectionsPerClient: 0,
      clients: new Map(),
      sockets: new Set(),
      sessions: new Set(),
      draining: false,
      upgrades: new UpgradeProxy(),
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      // The view at request start serves the whole request, whatever is applied meanwhile.
      if (bound.draining) res.setHeader('connection', 'close');
      // maxHeadersCount is one over the limit (applyLimits): Node drops headers past it silently,
      // so a request that reaches it had too many.
      if (req.rawHeaders.length >= (http1.maxHeadersCount ?? DEFAULT_MAX_HEADERS + 1) * 2) {
        sendError(res, 431, 'too many request headers', true);
        return;
      }
      proxyRequest(bound.view, bound.requestLimits, req, res);
    };
    http1.on('request', onRequest);
    // Left to Node, "Expect: 100-continue" is answered 100 before any check: a body over the
    // limit would be invited, then refused. Here the 413 comes instead of the 100.
    http1.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const max = bound.requestLimits.maxBodyBytes;
      const length = req.headers['content-length'];
      if (!(max > 0 && length !== undefined && Number(length) > max)) res.writeContinue();
      onRequest(req, res);
    });
    http1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => bound.upgrades.handle(bound.view, req, socket, head));
    http1.on('clientError', onClientError);
    // Node starts its header and request timeout checks when a server starts listening;
    // this one is handed its connections, so it is told it listens.
    http1.emit('listening');
    server.on('connection', (socket: Socket) => {
      if (!bound.acceptProxyProtocol) {
        if (countClient(bound, socket)) accept(bound, socket);
        return;
      }
      // The client is who the header names: read it before counting or serving the connection.
      readProxyHeader(socket, PROXY_HEADER_TIMEOUT_MS).then(
        (info) => {
          if (socket.destroyed) return;
          if (info.source !== null) lendPeer(socket, info.source);
          if (countClient(bound, socket)) accept(bound, socket);
        },
        () => undefined, // the socket is closed: no header, a bad one, or too slow
      );
    });
    applySettings(bound, spec);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: spec.port, host: spec.address === '' ? undefined : spec.address }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.set(key, bound);
  }

  /**
   * Makes `specs` the live listeners: each bound socket gets its new view, limits and
   * protocol settings, and every socket not in `specs` stops accepting and drains.
   */
  commit(specs: readonly ListenerSpec[]): void {
    const names = new Map<string, string>();
    const keep = new Set<string>();
    for (const spec of specs) {
      const key = bindKey(spec);
      const bound = this.servers.get(key);
      if (bound === undefined) continue;
      applySettings(bound, spec);
      names.set(spec.name, key);
      keep.add(key);
    }
    this.names = names;
    for (const [key, bound] of this.servers) {
      if (!keep.has(key)) {
        this.servers.delete(key);
        this.drain(bound);
      }
    }
  }

  /** Name -> bound address and port (the real port when bound to 0). */
  listeners(): Map<string, { address: string; port: number }> {
    const out = new Map<string, { address: string; port: number }>();
    for (const [name, key] of [...this.names].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const address = this.servers.get(key)?.server.address() as AddressInfo | null | undefined;
      if (address) out.set(name, { address: address.address, port: address.port });
    }
    return out;
  }

  /** Open client connections by listener name (the metrics' active connections). */
  connections(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, key] of this.names) {
      let open = 0;
      for (const n of this.servers.get(key)?.clients.values() ?? []) open += n;
      out.set(name, open);
    }
    return out;
  }

  /** Stops every listener and waits for the drains (bounded by the drain timeout). */
  async close(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    this.names.clear();
    for (const bound of all) this.drain(bound);
    await Promise.all([...this.draining]);
  }

  private drain(bound: BoundServer): void {
    bound.draining = true;
    const server = bound.server;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const socket of bound.sockets) socket.destroy();
        // Upgraded connections are no longer the HTTP server's to close.
        bound.upgrades.closeAll();
      }, this.drainTimeoutMs);
      timer.unref();
      // The listening socket stops accepting; its callback runs once every connection it
      // accepted is closed. Idle keep-alive connections close now; busy HTTP/1.1 ones after
      // their response, which carries "connection: close"; HTTP/2 sessions get a GOAWAY
      // and end when their open streams do.
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      bound.http1.close();
      for (const session of bound.sessions) session.close();
    });
    this.draining.add(done);
    void done.then(() => this.draining.delete(done));
  }
}

/** Hands an accepted connection to the front its listener has now. */
function accept(bound: BoundServer, socket: Socket): void {
  bound.sockets.add(socket);
  socket.once('close', () => bound.sockets.delete(socket));
  if (bound.tls !== undefined) {
    tlsFront(bound).emit('connection', socket);
    return;
  }
  if (!bound.h2c) {
    bound.http1.emit('connection', socket);
    return;
  }
  sniffH2c(socket, bound.http1.headersTimeout, (h2, head) => {
    if (!h2) {
      socket.unshift(head);
      bound.http1.emit('connection', socket);
      socket.resume();
      return;
    }
    const front = h2Front(bound);
    const stream = withHead(socket, head);
    // The session sees a JS stream, which has no peer address: lend it the socket's, for
    // X-Forwarded-For, IP access rules and rate limits (read through req.socket).
    const lend = (session: ServerHttp2Session): void => {
      Object.assign(session.socket as object, { _peername: { address: socket.remoteAddress, family: socket.remoteFamily, port: socket.remotePort } });
    };
    // Node makes the session synchronously, within the 'connection' event.
    front.once('session', lend);
    front.emit('connection', stream);
    front.off('session', lend);
  });
}

function onRequest(bound: BoundServer, req: Http2ServerRequest, res: Http2ServerResponse): void {
  // HTTP/2 has no header-count setting: the HTTP/1.1 front's limit (431) is checked here, on
  // the regular fields (pseudo-headers such as :path are not the client's to trim).
  const max = (bound.http1.maxHeadersCount ?? DEFAULT_MAX_HEADERS + 1) - 1;
  if (req.rawHeaders.length > max * 2 && regularHeaderCount(req.rawHeaders) > max) {
    sendError(res as unknown as ServerResponse, 431, 'too many request headers');
    return;
  }
  // The compat request and response have the http.IncomingMessage/ServerResponse members the
  // proxy uses; http-proxy.ts handles what differs (pseudo-headers, no connection headers).
  proxyRequest(bound.view, bound.requestLimits, req as unknown as IncomingMessage, res as unknown as ServerResponse);
}

function regularHeaderCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) !== 58 /* : */) n++;
  return n;
}

function h2Front(bound: BoundServer): Http2Server {
  if (bound.h2 !== undefined) return bound.h2;
  const h2 = createH2Server(h2HeaderSettings(bound));
  h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => onRequest(bound, req, res));
  h2.on('session', (session: ServerHttp2Session) => {
    bound.sessions.add(session);
    session.once('close', () => bound.sessions.delete(session));
    if (bound.draining) session.close();
  });
  // A session silent this long is closed gracefully (the HTTP/1.1 keep-alive timeout's
  // counterpart): GOAWAY, open streams may finish. Node would destroy it otherwise.
  h2.setTimeout(bound.http1.keepAliveTimeout);
  h2.on('timeout', (session: ServerHttp2Session) => session.close());
  bound.h2 = h2;
  return h2;
}

function tlsFront(bound: BoundServer): TlsServer {
  if (bound.tlsServer !== undefined) return bound.tlsServer;
  const tls = bound.tls as ListenerTlsView;
  const server = createTlsServer({
    ...defaultContext(tls),
    // Read per handshake: a new config version (a rotated certificate) serves new handshakes
    // at once; open connections keep the context they were made with.
    SNICallback: (serverName, callback) => callback(null, bound.tls?.sni.select(serverName).context),
    ALPNCallback: ({ protocols }) => bound.tls?.alpn.find((p) => protocols.includes(p)),
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    // A TLS socket reads its peer from the handle: hand it the PROXY header's client too.
    const lent = (socket as TLSSocket & { _parent?: { _peername?: unknown } })._parent?._peername;
    if (lent !== undefined) Object.assign(socket, { _peername: lent });
    if (socket.alpnProtocol === 'h2') h2Front(bound).emit('connection', socket);
    else bound.http1.emit('connection', socket);
  });
  // Failed handshakes (scanners, wrong versions) are the client's problem: no log on the hot path.
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  bound.tlsServer = server;
  bound.tlsContextKey = tls.key;
  return server;
}

/** The TLS server's default context: the first certificate (clients without SNI) and the protocol versions. */
function defaultContext(tls: ListenerTlsView): { cert: string; key: string; minVersion: ListenerTlsView['minVersion']; maxVersion: ListenerTlsView['maxVersion'] } {
  const first = tls.sni.default;
  return { cert: first.certificateChain, key: first.privateKey, minVersion: tls.minVersion, maxVersion: tls.maxVersion };
}

/** A spec's view, limits and protocol settings onto its bound socket (at bind and on every commit). */
function applySettings(bound: BoundServer, spec: ListenerSpec): void {
  bound.view = spec.view;
  bound.h2c = spec.h2c === true;
  bound.acceptProxyProtocol = spec.acceptProxyProtocol === true;
  bound.tls = spec.tls;
  if (spec.tls !== undefined && bound.tlsServer !== undefined && bound.tlsContextKey !== spec.tls.key) {
    // Versions and the no-SNI certificate live in the server's default context.
    bound.tlsServer.setSecureContext(defaultContext(spec.tls));
    bound.tlsContextKey = spec.tls.key;
  }
  applyLimits(bound, spec.limits);
}

/**
 * The one place ListenerLimits take effect, at bind and on every commit. Each is read per
 * new connection (header size and count, per-client cap), per check (timeouts) or per
 * request (body limits), so a change applies to a bound socket without rebinding it.
 */
function applyLimits(bound: BoundServer, limits: ListenerLimits | undefined): void {
  bound.server.maxConnections = limits?.maxConnections || Infinity;
  const server = bound.http1 as HttpServer & { maxHeaderSize: number | undefined };
  server.maxHeadersCount = (limits?.maxRequestHeaders || DEFAULT_MAX_HEADERS) + 1;
  // Node reads it when it sets up each connection's parser (undefined: --max-http-header-size).
  server.maxHeaderSize = limits?.maxRequestHeaderBytes || undefined;
  server.headersTimeout = limits?.requestHeadersTimeoutMs || DEFAULT_HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = limits?.idleTimeoutMs || DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  bound.h2?.setTimeout(server.keepAliveTimeout);
  bound.h2?.updateSettings(h2HeaderSettings(bound).settings);
  bound.maxConnectionsPerClient = limits?.maxConnectionsPerClient ?? 0;
  // A WebSocket quiet for the listener's idle timeout is closed; none set: it may idle on.
  bound.upgrades.idleTimeoutMs = limits?.idleTimeoutMs ?? 0;
  const maxBodyBytes = limits?.maxRequestBodyBytes ?? 0;
  const bodyTimeoutMs = limits?.requestBodyTimeoutMs ?? 0;
  bound.requestLimits = maxBodyBytes === 0 && bodyTimeoutMs === 0 ? NO_REQUEST_LIMITS : { maxBodyBytes, bodyTimeoutMs };
}

/** How long a client has to send its PROXY header (as on L4 listeners). */
const PROXY_HEADER_TIMEOUT_MS = PREFIX_TIMEOUT_MS;

/**
 * Makes `socket.remoteAddress`/`remotePort` answer the PROXY header's client: Node caches the
 * peer in `_peername` and reads it from there. X-Forwarded-For, IP access rules, rate limits,
 * source-IP hashing and the per-client cap all read the socket's remote address.
 */
function lendPeer(socket: Socket, client: ProxyAddress): void {
  Object.assign(socket, { _peername: { address: client.address, family: isIPv6(client.address) ? 'IPv6' : 'IPv4', port: client.port } });
}

/** Node's default SETTINGS_MAX_HEADER_LIST_SIZE, restored when the limit is removed. */
const DEFAULT_H2_MAX_HEADER_LIST_SIZE = 65_535;

/**
 * HTTP/2's counterpart of the header size limit: SETTINGS_MAX_HEADER_LIST_SIZE, advertised to
 * clients (new sessions take a change).
 */
function h2HeaderSettings(bound: BoundServer): { settings: { maxHeaderListSize: number } } {
  const max = (bound.http1 as HttpServer & { maxHeaderSize: number | undefined }).maxHeaderSize;
  return { settings: { maxHeaderListSize: max ?? DEFAULT_H2_MAX_HEADER_LIST_SIZE } };
}

/** Counts a new connection against its client's cap; over the cap, it is closed at once (false). */
function countClient(bound: BoundServer, socket: Socket): boolean {
  const client = socket.remoteAddress ?? '';
  const open = (bound.clients.get(client) ?? 0) + 1;
  if (bound.maxConnectionsPerClient > 0 && open > bound.maxConnectionsPerClient) {
    socket.destroy();
    return false;
  }
  bound.clients.set(client, open);
  socket.once('close', () => {
    const left = (bound.clients.get(client) ?? 1) - 1;
    if (left > 0) bound.clients.set(client, left);
    else bound.clients.delete(client);
  });
  return true;
}

const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * Malformed requests (smuggling attempts included) get a bare 400 (431, 413, 408 for limits),
 * never a stack. As Node does, only when no response has started on the socket: bytes in the
 * middle of one would corrupt it.
 */
function onClientError(err: Error & { code?: string }, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && err.code !== 'ECONNRESET' && !inFlight?.headersSent) {
    const status = (err.code !== undefined ? CLIENT_ERROR_STATUS[err.code] : undefined) ?? '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nserver: sluice\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  } else socket.destroy();
}
