import { Server, ServerCredentials } from '@grpc/grpc-js';

/** Keepalive pings so a dead agent is noticed (docs/discovery-protocol.md, "Stream" 8). */
const SERVER_OPTIONS = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
};

/**
 * Plaintext without --grpc-tls-*; else TLS, and with a CA every agent must present a client
 * certificate it verifies: the handshake fails before any stream (or Secret) is served.
 */
export function serverCredentials(tls: { cert: Buffer; key: Buffer; ca?: Buffer } | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
}

/** Binds a gRPC server on `host:port` (0 picks a port); resolves with it and its `host:port`. */
export async function listenGrpc(
  host: string,
  port: number,
  register: (server: Server) => void,
  credentials: ServerCredentials = ServerCredentials.createInsecure(),
): Promise<{ server: Server; address: string }> {
  const server = new Server(SERVER_OPTIONS);
  register(server);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${shownHost}:${port}`, credentials, (error, actual) => {
      if (error) reject(error);
      else resolve(actual);
    });
  });
  return { server, address: `${shownHost}:${bound}` };
}

/** Stops accepting streams and ends open ones (agents reconnect elsewhere). */
export function closeGrpc(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.tryShutdown(() => resolve());
    // Open bidirectional streams never finish by themselves: end them.
    setImmediate(() => server.forceShutdown());
  });
}
