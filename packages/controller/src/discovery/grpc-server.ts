import { Server, ServerCredentials } from '@grpc/grpc-js';

/** Keepalive pings so a dead agent is noticed (docs/discovery-protocol.md, "Stream" 8). */
const SERVER_OPTIONS = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
};

/** Binds a gRPC server on `host:port` (0 picks a port); resolves with it and its `host:port`. */
export async function listenGrpc(host: string, port: number, register: (server: Server) => void): Promise<{ server: Server; address: string }> {
  const server = new Server(SERVER_OPTIONS);
  register(server);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${shownHost}:${port}`, ServerCredentials.createInsecure(), (error, actual) => {
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
