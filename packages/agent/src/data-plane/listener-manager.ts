import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ListenerLimits } from '@sluice/proto';
import { NO_REQUEST_LIMITS, proxyRequest, type ListenerView, type RequestLimits } from './http-proxy.js';
import { UpgradeProxy } from './upgrade-proxy.js';

/** One listening socket. Its view and limits are replaced on every config version; the socket stays. */
interface BoundServer {
  readonly key: string;
  readonly server: Server;
  view: ListenerView;
  requestLimits: RequestLimits;
  /** 0 = no cap. */
  maxConnectionsPerClient: number;
  /** Open connections per client address. */
  readonly clients: Map<string, number>;
  draining: boolean;
  /** Upgrade requests (WebSocket) and the tunnels they became. */
  readonly upgrades: UpgradeProxy;
}

// Node's own defaults, restored when a limit is removed.
const DEFAULT_MAX_HEADERS = 2000;
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
    const server = createServer();
    const bound: BoundServer = { key, server, view: spec.view, requestLimits: NO_REQUEST_LIMITS, maxConnectionsPerClient: 0, clients: new Map(), draining: false, upgrades: new UpgradeProxy() };
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // The view at request start serves the whole request, whatever is applied meanwhile.
      if (bound.draining) res.setHeader('connection', 'close');
      proxyRequest(bound.view, bound.requestLimits, req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => bound.upgrades.handle(bound.view, req, socket, head));
    server.on('connection', (socket: Socket) => countClient(bound, socket));
    server.on('clientError', onClientError);
    applyLimits(bound, spec.limits);
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
   * Makes `specs` the live listeners: each bound socket gets its new view and limits, and
   * every socket not in `specs` stops accepting and drains.
   */
  commit(specs: readonly ListenerSpec[]): void {
    const names = new Map<string, string>();
    const keep = new Set<string>();
    for (const spec of specs) {
      const key = bindKey(spec);
      const bound = this.servers.get(key);
      if (bound === undefined) continue;
      bound.view = spec.view;
      applyLimits(bound, spec.limits);
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
        server.closeAllConnections();
        // Upgraded connections are no longer the HTTP server's to close.
        bound.upgrades.closeAll();
      }, this.drainTimeoutMs);
      timer.unref();
      // close() stops accepting and (Node >= 19) closes idle keep-alive connections; busy
      // ones end after their response, which carries "connection: close".
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    });
    this.draining.add(done);
    void done.then(() => this.draining.delete(done));
  }
}

/**
 * The one place ListenerLimits take effect, at bind and on every commit. Each is read per
 * new connection (header size and count, per-client cap), per check (timeouts) or per
 * request (body limits), so a change applies to a bound socket without rebinding it.
 */
function applyLimits(bound: BoundServer, limits: ListenerLimits | undefined): void {
  const server = bound.server as Server & { maxHeaderSize: number | undefined };
  server.maxConnections = limits?.maxConnections || Infinity;
  server.maxHeadersCount = limits?.maxRequestHeaders || DEFAULT_MAX_HEADERS;
  // Node reads it when it sets up each connection's parser (undefined: --max-http-header-size).
  server.maxHeaderSize = limits?.maxRequestHeaderBytes || undefined;
  server.headersTimeout = limits?.requestHeadersTimeoutMs || DEFAULT_HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = limits?.idleTimeoutMs || DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  bound.maxConnectionsPerClient = limits?.maxConnectionsPerClient ?? 0;
  // A WebSocket quiet for the listener's idle timeout is closed; none set: it may idle on.
  bound.upgrades.idleTimeoutMs = limits?.idleTimeoutMs ?? 0;
  const maxBodyBytes = limits?.maxRequestBodyBytes ?? 0;
  const bodyTimeoutMs = limits?.requestBodyTimeoutMs ?? 0;
  bound.requestLimits = maxBodyBytes === 0 && bodyTimeoutMs === 0 ? NO_REQUEST_LIMITS : { maxBodyBytes, bodyTimeoutMs };
}

/** Counts a new connection against its client's cap; over the cap, it is closed at once. */
function countClient(bound: BoundServer, socket: Socket): void {
  const client = socket.remoteAddress ?? '';
  const open = (bound.clients.get(client) ?? 0) + 1;
  if (bound.maxConnectionsPerClient > 0 && open > bound.maxConnectionsPerClient) {
    socket.destroy();
    return;
  }
  bound.clients.set(client, open);
  socket.once('close', () => {
    const left = (bound.clients.get(client) ?? 1) - 1;
    if (left > 0) bound.clients.set(client, left);
    else bound.clients.delete(client);
  });
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
