import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { ListenerTlsView } from '../tls-contexts.js';
import { PREFIX_TIMEOUT_MS } from './tcp-proxy.js';

// TLS termination in front of an L4 route (Listener protocol TLS, mode Terminate). One TLS
// server per bound socket, never listening itself: raw sockets are handed to it after the
// PROXY header (if any), as listener-manager.ts does for HTTPS. Its SNICallback reads the
// view of the current config version, so a rotated certificate serves new handshakes.

interface Pending {
  readonly resolve: (socket: TLSSocket) => void;
  readonly reject: (err: Error) => void;
}

/** The raw socket a TLS server wrapped (Node keeps it as `_parent`). */
function parentOf(socket: TLSSocket): Socket | undefined {
  return (socket as TLSSocket & { _parent?: Socket })._parent;
}

export class TlsTerminator {
  private server: Server | undefined;
  private serverKey = '';
  private readonly pending = new WeakMap<Socket, Pending>();

  constructor(private view: ListenerTlsView) {}

  /** A new config version's certificates and TLS versions, for handshakes from now on. */
  update(view: ListenerTlsView): void {
    this.view = view;
    if (this.server !== undefined && this.serverKey !== view.key) {
      this.server.setSecureContext(defaultContext(view));
      this.serverKey = view.key;
    }
  }

  /** The decrypted stream once the handshake is done; rejects on a failed or abandoned handshake. */
  handshake(raw: Socket): Promise<TLSSocket> {
    return new Promise<TLSSocket>((resolve, reject) => {
      this.pending.set(raw, { resolve, reject });
      this.front().emit('connection', raw);
    });
  }

  private front(): Server {
    if (this.server !== undefined) return this.server;
    const server = createServer({
      ...defaultContext(this.view),
      // Bounds a client that opens and never finishes the handshake, like the prefix reads.
      handshakeTimeout: PREFIX_TIMEOUT_MS,
      SNICallback: (serverName, callback) => callback(null, this.view.sni.select(serverName).context),
    });
    server.on('secureConnection', (socket: TLSSocket) => this.settle(socket, undefined));
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      socket.destroy();
      this.settle(socket, err);
    });
    this.server = server;
    this.serverKey = this.view.key;
    return server;
  }

  private settle(socket: TLSSocket, err: Error | undefined): void {
    const raw = parentOf(socket);
    const pending = raw === undefined ? undefined : this.pending.get(raw);
    if (raw === undefined || pending === undefined) {
      socket.destroy();
      return;
    }
    this.pending.delete(raw);
    if (err === undefined) pending.resolve(socket);
    else pending.reject(err);
  }
}

function defaultContext(view: ListenerTlsView): { cert: string; key: string; minVersion: ListenerTlsView['minVersion']; maxVersion: ListenerTlsView['maxVersion'] } {
  const first = view.sni.default;
  return { cert: first.certificateChain, key: first.privateKey, minVersion: view.minVersion, maxVersion: view.maxVersion };
}
