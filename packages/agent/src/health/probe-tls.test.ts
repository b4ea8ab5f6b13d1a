import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { EndpointHealth, HealthCheck, Resource, UpstreamTls } from '@sluice/proto';
import { createTestPki, tempDir } from '@sluice/testing';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { HealthChecker } from './health-checker.js';
import { probe } from './probe.js';

// Health probes of a TLS Upstream verify the endpoint as the request path does: the CA
// Secret, the configured SNI.

const CLUSTER = 'default/secure';
const check: HealthCheck = { intervalMs: 20, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 1, check: { $case: 'http', value: { path: '/healthz', expectedStatuses: [], host: '', method: '' } } };

let pem: { ca: string; otherCa: string; cert: string; key: string };
beforeAll(async () => {
  const dir = await tempDir('probe-tls');
  const [good, other] = await Promise.all([createTestPki(dir.path, 'good'), createTestPki(dir.path, 'other')]);
  const read = (f: string) => readFile(f, 'utf8');
  pem = { ca: await read(good.ca.cert), otherCa: await read(other.ca.cert), cert: await read(good.server.cert), key: await read(good.server.key) };
  return () => dir[Symbol.asyncDispose]();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An HTTPS server (certificate for 127.0.0.1 and localhost) that records each probe's SNI. */
async function httpsBackend(): Promise<{ port: number; servernames: string[] }> {
  const servernames: string[] = [];
  const server: Server = createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
    servernames.push((req.socket as TLSSocket).servername || '');
    req.resume();
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, servernames };
}

const tls = (over: Partial<UpstreamTls> = {}): UpstreamTls => ({ enabled: true, sni: 'localhost', insecureSkipVerify: false, caSecret: 'default/ca', ...over });

describe('TLS health probes', () => {
  it('verify the endpoint with the CA and send the SNI; another CA fails the probe', async () => {
    const b = await httpsBackend();
    const spec = { address: '127.0.0.1', port: b.port, check, tls: tls(), userAgent: 'ua' };
    expect(await probe({ ...spec, ca: pem.ca })).toEqual({ ok: true });
    expect(b.servernames).toEqual(['localhost']);
    const failed = await probe({ ...spec, ca: pem.otherCa });
    expect(failed.ok).toBe(false);
    expect(b.servernames).toHaveLength(1);
    expect(await probe({ ...spec, tls: tls({ insecureSkipVerify: true }) })).toEqual({ ok: true });
  });

  it('HealthChecker takes the CA from the Secret the cluster names', async () => {
    const b = await httpsBackend();
    const verdicts: EndpointHealth[] = [];
    let resolve: () => void = () => undefined;
    const first = new Promise<void>((r) => (resolve = r));
    const checker = new HealthChecker({
      logger: silentLogger(),
      userAgent: 'ua',
      onVerdict: (v) => {
        verdicts.push(v);
        resolve();
      },
    });
    cleanups.push(() => checker.stop());
    const resources: Resource[] = [
      { name: 'default/ca', version: 's1', body: { $case: 'secret', value: { sources: [], certificateChain: pem.ca, privateKey: '' } } },
      { name: CLUSTER, version: 'c', body: { $case: 'cluster', value: { source: undefined, loadBalancing: undefined, connectTimeoutMs: 0, idleTimeoutMs: 0, healthCheck: check, tls: tls(), proxyProtocol: 0 } as never } },
      { name: CLUSTER, version: 'e', body: { $case: 'endpoints', value: { endpoints: [{ id: 'e1', address: '127.0.0.1', port: b.port, weight: 1, labels: {}, health: 0 as never }] } } },
    ];
    checker.configure(resources);
    checker.assign([{ cluster: CLUSTER, endpointIds: ['e1'] }]);
    await first;
    expect(verdicts[0]).toMatchObject({ cluster: CLUSTER, endpointId: 'e1', healthy: true, lastError: '' });
  });
});
