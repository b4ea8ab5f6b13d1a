import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatHostPort } from '../host-port.js';
import type { AgentStatus } from './agent-status.js';
import type { ListeningDataPlane } from './data-plane-port.js';

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The agent's admin port (node:http): `/healthz` (the process runs), `/readyz` (a configuration
 * is applied), `/config_dump` (what it serves and why). No per-request logs.
 */
type AdminDataPlane = Pick<ListeningDataPlane, 'resources' | 'listeners' | 'clusterStats'>;

/** The `/metrics` exposition (metrics/registry.ts); absent: 404. */
export interface AdminMetrics {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export async function listenAdmin(host: string, port: number, status: AgentStatus, dataPlane: AdminDataPlane, metrics?: AdminMetrics): Promise<AdminServer> {
  const server = createServer((req, res) => handle(req, res, status, dataPlane, metrics));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return { url: `http://${formatHostPort(address.address, address.port)}`, close: () => closeServer(server) };
}

function handle(req: IncomingMessage, res: ServerResponse, status: AgentStatus, dataPlane: AdminDataPlane, metrics: AdminMetrics | undefined): void {
  const path = new URL(req.url ?? '/', 'http://agent').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(res, 405, 'text/plain', `method ${req.method} not allowed\n`);
  }
  switch (path) {
    case '/healthz':
      return send(res, 200, 'text/plain', 'ok\n');
    case '/readyz': {
      const { ready, reason } = status.readiness();
      return send(res, ready ? 200 : 503, 'text/plain', `${ready ? 'ok' : 'not ready'}: ${reason}\n`);
    }
    case '/config_dump':
      return send(res, 200, 'application/json', `${JSON.stringify(status.dump(dataPlane.resources(), dataPlane.listeners(), dataPlane.clusterStats?.()), null, 2)}\n`);
    case '/metrics':
      if (metrics === undefined) break;
      metrics.metrics().then(
        (body) => send(res, 200, metrics.contentType, body, true),
        (error: unknown) => send(res, 500, 'text/plain', `metrics failed: ${error instanceof Error ? error.message : String(error)}\n`),
      );
      return;
  }
  return send(res, 404, 'text/plain', `no such path ${path}; try /healthz, /readyz, /config_dump or /metrics\n`);
}

/** `fullType`: `type` already carries its parameters (Prometheus' content type does). */
function send(res: ServerResponse, code: number, type: string, body: string, fullType = false): void {
  res.writeHead(code, { 'content-type': fullType ? type : `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(body);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
