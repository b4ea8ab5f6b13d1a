import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Backend extends AsyncDisposable {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Requests answered so far. */
  readonly requests: number;
  /** The last request's method, url and headers, for assertions on what the proxy sent. */
  readonly last: { method: string; url: string; headers: IncomingMessage['headers'] } | undefined;
  /** Closes the listening socket and destroys open connections (an abrupt backend death). */
  kill(): Promise<void>;
}

/**
 * A real HTTP backend on 127.0.0.1:0 that answers every request with its own name (text),
 * echoing nothing else unless `handler` takes over. `/healthz` answers 200.
 */
export async function startBackend(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
  options: { port?: number } = {},
): Promise<Backend> {
  let requests = 0;
  let last: Backend['last'];
  const server: Server = createServer((req, res) => {
    requests++;
    last = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    if (handler) {
      handler(req, res);
      return;
    }
    // Drain the body before answering so keep-alive connections stay usable.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(`${name}\n`);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const kill = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get last() {
      return last;
    },
    kill,
    async [Symbol.asyncDispose]() {
      if (server.listening) await kill();
    },
  };
}
