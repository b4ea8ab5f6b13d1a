import { createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { HealthCheck } from '@sluice/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { probe, type ProbeSpec } from './probe.js';

// HTTP checks of an HTTP/2 Upstream speak HTTP/2: a gRPC-only backend (h2c, no HTTP/1.1)
// answers them, and its status decides.

const servers: Http2Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A cleartext HTTP/2-only server: /healthz 200, anything else 503; it records user agents. */
async function h2cBackend(): Promise<{ port: number; userAgents: string[] }> {
  const userAgents: string[] = [];
  const server = createServer((req, res) => {
    userAgents.push(req.headers['user-agent'] ?? '');
    res.writeHead(req.url === '/healthz' ? 200 : 503);
    res.end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, userAgents };
}

const httpCheck = (path: string): HealthCheck => ({
  intervalMs: 1000,
  timeoutMs: 2000,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  check: { $case: 'http', value: { path, expectedStatuses: [], host: '', method: '' } },
});

const spec = (port: number, path: string, http2: boolean): ProbeSpec => ({ address: '127.0.0.1', port, check: httpCheck(path), tls: undefined, userAgent: 'sluice-probe/test', http2 });

describe('HTTP/2 health probes', () => {
  it('checks an h2c-only backend over HTTP/2, by its status', async () => {
    const b = await h2cBackend();
    expect(await probe(spec(b.port, '/healthz', true))).toEqual({ ok: true });
    expect(await probe(spec(b.port, '/broken', true))).toEqual({ ok: false, error: 'HTTP 503' });
    expect(b.userAgents).toEqual(['sluice-probe/test', 'sluice-probe/test']);
  });

  it('fails an HTTP/1.1 probe against the same backend (why the cluster setting matters)', async () => {
    const b = await h2cBackend();
    expect((await probe(spec(b.port, '/healthz', false))).ok).toBe(false);
  });
});
