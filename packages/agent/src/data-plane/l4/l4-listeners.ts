import { createSocket } from 'node:dgram';
import { createServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { Protocol, type Listener, type Resource } from '@sluice/proto';
import { bindKey } from '../listener-manager.js';
import type { ListenerTlsView } from '../tls-contexts.js';
import type { UpstreamCluster } from '../upstream-cluster.js';
import { CompiledL4Route } from './l4-route.js';
import { SniTable } from './sni.js';
import { serveTcp, type ClientGate, type TcpView } from './tcp-proxy.js';
import { TlsTerminator } from './tls-terminate.js';
import { UdpProxy } from './udp-proxy.js';

// Binding, committing and draining the L4 sockets, with listener-manager.ts's make-before-break
// order: `bind` opens sockets ahead of the swap (a failure rejects that listener only),
// `commit` hands every socket its new view in one synchronous pass and drains the sockets no
// listener uses any more. TLS passthrough listeners on one address and port share the socket:
// the ClientHello's server name picks among their routes.

/** Idle defaults when neither the route nor the listener limits set one. */
export const TCP_IDLE_DEFAULT_MS = 3_600_000;
export const UDP_IDLE_DEFAULT_MS = 30_000;

export function isL4Protocol(protocol: Protocol): boolean {
  return protocol === Protocol.PROTOCOL_TCP || protocol === Protocol.PROTOCOL_UDP || protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH;
}

export function isL4Resource(resource: Resource): boolean {
  return resource.body?.$case === 'listener' && isL4Protocol(resource.body.value.protocol);
}

/**
 * The key two listeners must not share: TCP and UDP ports are separate spaces. TCP-based L4
 * listeners take the key an HTTP listener would, so the two conflict as their sockets would.
 */
export function l4SocketKey(protocol: Protocol, name: string, address: string, port: number): string {
  const key = bindKey({ name, address, port });
  return protocol === Protocol.PROTOCOL_UDP ? `udp/${key}` : key;
}

/** May two listeners on one address and port both be served (one socket for both)? */
export function mayShareSocket(a: Listener, b: Listener): boolean {
  return a.protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH && b.protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH && a.acceptProxyProtocol === b.acceptProxyProtocol;
}

export interface L4ListenerSpec {
  readonly name: string;
  readonly key: string;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly listener: Listener;
  readonly route: CompiledL4Route;
  /** TCP with tls: the certificates and TLS versions the agent terminates with. */
  readonly tls: ListenerTlsView | undefined;
}

/** Compiles one L4 Listener for this version (its route over the version's clusters). */
export function l4ListenerSpec(
  name: string,
  address: string,
  listener: Listener,
  clusters: ReadonlyMap<string, UpstreamCluster>,
  tls?: ListenerTlsView,
): L4ListenerSpec {
  const udp = listener.protocol === Protocol.PROTOCOL_UDP;
  const idle = listener.limits?.idleTimeoutMs || (udp ? UDP_IDLE_DEFAULT_MS : TCP_IDLE_DEFAULT_MS);
  return {
    name,
    key: l4SocketKey(listener.protocol, name, address, listener.port),
    protocol: listener.protocol,
    address,
    port: listener.port,
    listener,
    route: new CompiledL4Route(listener.l4Route, clusters, idle),
    tls,
  };
}

interface BoundTcp {
  readonly kind: 'tcp';
  readonly server: Server;
  view: TcpView;
  maxConnectionsPerClient: number;
  readonly clients: Map<string, number>;
  readonly sockets: Set<Socket>;
  /** Created when the socket first serves a TLS-terminating listener; kept across versions. */
  terminator: TlsTerminator | undefined;
}

interface BoundUdp {
  readonly kind: 'udp';
  readonly proxy: UdpProxy;
}

type Bound = BoundTcp | BoundUdp;

const NO_TCP_VIEW: TcpView = { route: undefined, sni: undefined, acceptProxyProtocol: false };

export class L4ListenerManager {
  private bound = new Map<string, Bound>();
  /** Listener name -> socket key, as of the last commit. */
  private names = new Map<string, string>();
  private readonly draining = new Set<Promise<void>>();
  private readonly binding = new Map<string, Promise<void>>();

  constructor(private readonly drainTimeoutMs: number) {}

  has(key: string): boolean {
    return this.bound.has(key);
  }

  /** Binds a socket for `spec` unless one is bound at its key. Throws the bind error. */
  async bind(spec: L4ListenerSpec): Promise<void> {
    if (this.bound.has(spec.key)) return;
    // Passthrough listeners sharing a port bind it once, whichever asks first.
    let binding = this.binding.get(spec.key);
    if (binding === undefined) {
      binding = this.bindNow(spec).finally(() => this.binding.delete(spec.key));
      this.binding.set(spec.key, binding);
    }
    await binding;
  }

  private async bindNow(spec: L4ListenerSpec): Promise<void> {
    const host = spec.address === '' ? undefined : spec.address;
    if (spec.protocol === Protocol.PROTOCOL_UDP) {
      const socket = createSocket({ type: host !== undefined && !isIPv6(host) ? 'udp4' : 'udp6' });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: spec.port, address: host ?? '::' }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      // Replies to vanished clients may come back as errors; sessions handle their own.
      socket.on('error', () => undefined);
      this.bound.set(spec.key, { kind: 'udp', proxy: new UdpProxy(socket, { route: undefined, maxSessions: 0 }) });
      return;
    }
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    const bound: BoundTcp = { kind: 'tcp', server, view: NO_TCP_VIEW, maxConnectionsPerClient: 0, clients: new Map(), sockets: new Set(), terminator: undefined };
    const gate: ClientGate = {
      admit: (client) => {
        const open = (bound.clients.get(client) ?? 0) + 1;
        if (bound.maxConnectionsPerClient > 0 && open > bound.maxConnectionsPerClient) return false;
        bound.clients.set(client, open);
        return true;
      },
      release: (client) => {
        const left = (bound.clients.get(client) ?? 1) - 1;
        if (left > 0) bound.clients.set(client, left);
        else bound.clients.delete(client);
      },
    };
    server.on('connection', (socket: Socket) => {
      bound.sockets.add(socket);
      socket.once('close', () => bound.sockets.delete(socket));
      void serveTcp(socket, bound.view, gate);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: spec.port, host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.bound.set(spec.key, bound);
  }

  /** Makes `specs` the live L4 listeners; sockets no spec uses any more drain. */
  commit(specs: readonly L4ListenerSpec[]): void {
    const byKey = new Map<string, L4ListenerSpec[]>();
    for (const spec of specs) {
      if (!this.bound.has(spec.key)) continue;
      byKey.set(spec.key, [...(byKey.get(spec.key) ?? []), spec]);
    }
    const names = new Map<string, string>();
    for (const [key, group] of byKey) {
      const bound = this.bound.get(key) as Bound;
      // Listeners sharing a socket (TLS passthrough) in name order: the first one's limits
      // apply, and the catch-all among several is stable whatever order binds completed in.
      group.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const first = group[0] as L4ListenerSpec;
      const limits = first.listener.limits;
      for (const spec of group) names.set(spec.name, key);
      if (bound.kind === 'udp') {
        bound.proxy.view = { route: first.route, maxSessions: limits?.maxConnections ?? 0 };
        continue;
      }
      bound.server.maxConnections = limits?.maxConnections || Infinity;
      bound.maxConnectionsPerClient = limits?.maxConnectionsPerClient ?? 0;
      const passthrough = first.protocol === Protocol.PROTOCOL_TLS_PASSTHROUGH;
      if (first.tls !== undefined) {
        if (bound.terminator === undefined) bound.terminator = new TlsTerminator(first.tls);
        else bound.terminator.update(first.tls);
      }
      bound.view = {
        route: passthrough ? undefined : first.route,
        sni: passthrough ? new SniTable(group.map((s) => ({ hostnames: s.route.hostnames, route: s.route }))) : undefined,
        acceptProxyProtocol: first.listener.acceptProxyProtocol,
        terminate: first.tls === undefined ? undefined : bound.terminator,
      };
    }
    this.names = names;
    for (const [key, bound] of this.bound) {
      if (!byKey.has(key)) {
        this.bound.delete(key);
        this.drain(bound);
      }
    }
  }

  /**
   * Open connections (UDP: sessions) by listener name, for the metrics. TLS passthrough
   * listeners sharing a socket: all its connections count under the first name.
   */
  connections(): Map<string, number> {
    const out = new Map<string, number>();
    const counted = new Set<string>();
    for (const [name, key] of [...this.names].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const bound = this.bound.get(key);
      if (bound === undefined || counted.has(key)) continue;
      counted.add(key);
      out.set(name, bound.kind === 'udp' ? bound.proxy.sessionCount : bound.sockets.size);
    }
    return out;
  }

  /** Name -> bound address and port (the real port when bound to 0). */
  listeners(): Map<string, { address: string; port: number }> {
    const out = new Map<string, { address: string; port: number }>();
    for (const [name, key] of this.names) {
      const bound = this.bound.get(key);
      if (bound === undefined) continue;
      const address = bound.kind === 'udp' ? bound.proxy.socket.address() : (bound.server.address() as AddressInfo | null);
      if (address) out.set(name, { address: address.address, port: address.port });
    }
    return out;
  }

  /** Stops every L4 listener and waits for the drains (bounded by the drain timeout). */
  async close(): Promise<void> {
    const all = [...this.bound.values()];
    this.bound.clear();
    this.names.clear();
    for (const bound of all) this.drain(bound);
    await Promise.all([...this.draining]);
  }

  /** TCP: stop accepting, let open connections finish up to the drain timeout. UDP: close now. */
  private drain(bound: Bound): void {
    let done: Promise<void>;
    if (bound.kind === 'udp') done = bound.proxy.close();
    else {
      done = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const socket of bound.sockets) socket.destroy();
        }, this.drainTimeoutMs);
        timer.unref();
        bound.server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.draining.add(done);
    void done.then(() => this.draining.delete(done));
  }
}

