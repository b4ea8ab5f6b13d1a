import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenerLimits } from '@sluice/proto';
import { proxyRequest, type ListenerView } from './http-proxy.js';

/** One listening socket. Its view is replaced on every config version; the socket stays. */
interface BoundServer {
  readonly key: string;
  readonly server: Server;
  view: ListenerView;
  draining: boolean;
}

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
    const bound: BoundServer = { key, server, view: spec.view, draining: false };
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // The view at request start serves the whole request, whatever is applied meanwhile.
      if (bound.draining) res.setHeader('connection', 'close');
      proxyRequest(bound.view, req, res);
    });
    server.on('clientError', onClientError);
    applyLimits(server, spec.limits);
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
      applyLimits(bound.server, spec.limits);
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
      const timer = setTimeout(() => server.closeAllConnections(), this.drainTimeoutMs);
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

function applyLimits(server: Server, limits: ListenerLimits | undefined): void {
  server.maxConnections = limits?.maxConnections || Infinity;
  server.maxHeadersCount = limits?.maxRequestHeaders || 2000;
  if (limits?.requestHeadersTimeoutMs) server.headersTimeout = limits.requestHeadersTimeoutMs;
  if (limits?.idleTimeoutMs) server.keepAliveTimeout = limits.idleTimeoutMs;
}

/** Malformed requests (smuggling attempts included) get a bare 400, never a stack. */
function onClientError(err: Error & { code?: string }, socket: Socket): void {
  if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  else socket.destroy();
}
