import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '@sluice/testing';
import type { EndpointHealth, HealthCheck, Resource } from '@sluice/proto';
import { silentLogger } from '../logger.js';
import { HealthChecker, truncate } from './health-checker.js';
import { probe } from './probe.js';

const CLUSTER = 'default/shop';

function httpCheck(over: Partial<HealthCheck> = {}, expectedStatuses: number[] = [], method = ''): HealthCheck {
  return { intervalMs: 20, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 3, check: { $case: 'http', value: { path: '/healthz', expectedStatuses, host: '', method } }, ...over };
}

function tcpCheck(over: Partial<HealthCheck> = {}): HealthCheck {
  return { intervalMs: 20, timeoutMs: 200, healthyThreshold: 1, unhealthyThreshold: 1, check: { $case: 'tcp', value: true }, ...over };
}

function config(check: HealthCheck, endpoints: { id: string; port: number }[]): Resource[] {
  return [
    { name: CLUSTER, version: 'c', body: { $case: 'cluster', value: { source: undefined, loadBalancing: undefined, connectTimeoutMs: 0, idleTimeoutMs: 0, healthCheck: check, proxyProtocol: 0 } as never } },
    { name: CLUSTER, version: 'e', body: { $case: 'endpoints', value: { endpoints: endpoints.map((e) => ({ id: e.id, address: '127.0.0.1', port: e.port, weight: 1, labels: {}, health: 0 as never })) } } },
  ];
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Accepts connections and never answers; closed (connections first) after the test. */
async function blackHole(): Promise<{ server: Server; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { server, port: (server.address() as { port: number }).port };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A checker that resolves `waitFor` once a verdict matching the predicate is reached. */
function checker() {
  const waiters: { pred: (r: EndpointHealth) => boolean; resolve: (r: EndpointHealth) => void }[] = [];
  const c = new HealthChecker({
    logger: silentLogger(),
    userAgent: 'sluice-health-check/test',
    onVerdict: (r) => {
      for (const w of waiters.splice(0)) {
        if (w.pred(r)) w.resolve(r);
        else waiters.push(w);
      }
    },
  });
  cleanups.push(() => c.stop());
  const waitFor = (pred: (r: EndpointHealth) => boolean) => new Promise<EndpointHealth>((resolve) => waiters.push({ pred, resolve }));
  return { c, waitFor };
}

describe('probe', () => {
  it('passes on 2xx, fails on 500 and on an unexpected status, sends method, path, host and user agent', async () => {
    let status = 200;
    await using b = await startBackend('b', (req, res) => {
      res.writeHead(status).end();
      req.resume();
    });
    const spec = (check: HealthCheck) => ({ address: '127.0.0.1', port: b.port, check, tls: undefined, userAgent: 'ua/1' });
    expect(await probe(spec(httpCheck()))).toEqual({ ok: true });
    expect(b.last).toMatchObject({ method: 'GET', url: '/healthz', headers: { host: `127.0.0.1:${b.port}`, 'user-agent': 'ua/1' } });
    status = 500;
    expect(await probe(spec(httpCheck()))).toEqual({ ok: false, error: 'HTTP 500' });
    expect(await probe(spec(httpCheck({}, [500])))).toEqual({ ok: true });
    status = 204;
    expect(await probe(spec(httpCheck({}, [200])))).toEqual({ ok: false, error: 'HTTP 204' });
    const hosted = httpCheck({}, [], 'HEAD');
    if (hosted.check?.$case === 'http') hosted.check.value.host = 'shop.example';
    await probe(spec(hosted));
    expect(b.last).toMatchObject({ method: 'HEAD', headers: { host: 'shop.example' } });
  });

  it('fails on connection refused and on timeout, over HTTP and TCP', async () => {
    const port = await closedPort();
    expect(await probe({ address: '127.0.0.1', port, check: httpCheck(), tls: undefined, userAgent: 'ua' })).toEqual({ ok: false, error: 'ECONNREFUSED' });
    expect(await probe({ address: '127.0.0.1', port, check: tcpCheck(), tls: undefined, userAgent: 'ua' })).toEqual({ ok: false, error: 'ECONNREFUSED' });
    const hole = await blackHole();
    expect(await probe({ address: '127.0.0.1', port: hole.port, check: httpCheck({ timeoutMs: 50 }), tls: undefined, userAgent: 'ua' })).toEqual({ ok: false, error: 'timeout after 50 ms' });
    // TCP connect succeeds on the black hole: it accepts.
    expect(await probe({ address: '127.0.0.1', port: hole.port, check: tcpCheck(), tls: undefined, userAgent: 'ua' })).toEqual({ ok: true });
  });
});

describe('HealthChecker', () => {
  it('probes only assigned endpoints, sets the first verdict at once, then needs the thresholds', async () => {
    let failing = false;
    const hits = { a: 0, b: 0 };
    const handler = (name: 'a' | 'b') => (req: IncomingMessage, res: ServerResponse) => {
      hits[name]++;
      req.resume();
      res.writeHead(failing ? 500 : 200).end();
    };
    const a: Backend = await startBackend('a', handler('a'));
    const b: Backend = await startBackend('b', handler('b'));
    cleanups.push(() => a.kill(), () => b.kill());
    const { c, waitFor } = checker();
    c.configure(config(httpCheck(), [{ id: 'ea', port: a.port }, { id: 'eb', port: b.port }]));
    c.assign([{ cluster: CLUSTER, endpointIds: ['ea'] }]);
    expect(c.size).toBe(1);
    const first = await waitFor((r) => r.endpointId === 'ea' && r.healthy);
    expect(first).toMatchObject({ cluster: CLUSTER, healthy: true, consecutiveSuccesses: 1, consecutiveFailures: 0, lastError: '' });

    failing = true;
    const down = await waitFor((r) => r.endpointId === 'ea' && !r.healthy);
    // unhealthy_threshold = 3 failures in a row.
    expect(down).toMatchObject({ consecutiveFailures: 3, lastError: 'HTTP 500' });
    failing = false;
    const up = await waitFor((r) => r.endpointId === 'ea' && r.healthy);
    expect(up).toMatchObject({ consecutiveSuccesses: 2 }); // healthy_threshold = 2
    expect(hits.b).toBe(0); // never assigned
    expect(c.results().map((r) => r.endpointId)).toEqual(['ea']);
  });

  it('marks a refused endpoint unhealthy, a timing-out one too, and stops probing when unassigned', async () => {
    const refused = await closedPort();
    const hole = await blackHole();
    const { c, waitFor } = checker();
    c.configure(config(httpCheck({ timeoutMs: 30, intervalMs: 40 }), [{ id: 'refused', port: refused }, { id: 'slow', port: hole.port }]));
    c.assign([{ cluster: CLUSTER, endpointIds: ['refused', 'slow'] }]);
    const [r1, r2] = await Promise.all([waitFor((r) => r.endpointId === 'refused'), waitFor((r) => r.endpointId === 'slow')]);
    expect(r1).toMatchObject({ healthy: false, lastError: 'ECONNREFUSED' });
    expect(r2).toMatchObject({ healthy: false, lastError: 'timeout after 30 ms' });
    c.assign([]);
    expect(c.size).toBe(0);
    expect(c.results()).toEqual([]);
  });

  it('waits for configuration it does not have yet, and restarts a target whose endpoint changed', async () => {
    await using a = await startBackend('a');
    await using b = await startBackend('b');
    const { c, waitFor } = checker();
    c.assign([{ cluster: CLUSTER, endpointIds: ['e1'] }]);
    expect(c.size).toBe(0);
    c.configure(config(tcpCheck(), [{ id: 'e1', port: a.port }]));
    expect(c.size).toBe(1);
    await waitFor((r) => r.healthy);
    await a.kill();
    await waitFor((r) => !r.healthy);
    c.configure(config(tcpCheck(), [{ id: 'e1', port: b.port }]));
    expect(c.results()).toEqual([]); // a new target: no verdict until it is probed
    expect(await waitFor((r) => r.healthy)).toMatchObject({ consecutiveSuccesses: 1 });
  });

  it('cuts error texts to 256 bytes without splitting a character', () => {
    expect(Buffer.byteLength(truncate('é'.repeat(200), 256))).toBe(256);
    expect(Buffer.byteLength(truncate('x€'.repeat(100), 256))).toBeLessThanOrEqual(256);
    expect(truncate('short', 256)).toBe('short');
  });
});
