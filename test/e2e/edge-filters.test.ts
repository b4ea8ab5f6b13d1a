import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, tempDir, watchUntil, type Backend, type TempDir } from '@sluice/testing';

// Issue 6, the edge filters, with real processes on loopback: a controller, an agent, a
// backend; configuration applied and the cache purged with the real sluicectl; responses
// read with a real HTTP client.

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let backend: Backend;
let proxyPort: number;

const page = 'edge filters at work '.repeat(200);

const config = (port: number, backendPort: number) => `apiVersion: sluice/v1
kind: Listener
metadata: {name: web}
spec: {port: ${port}, protocol: HTTP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: shop}
spec:
  endpoints:
    - {address: 127.0.0.1, port: ${backendPort}}
---
apiVersion: sluice/v1
kind: Route
metadata: {name: shop}
spec:
  parentRefs: [{name: web}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /compress}}]
      filters:
        - {type: Compression, compression: {algorithms: [br, gzip]}}
      backendRefs: [{name: shop}]
    - matches: [{path: {type: PathPrefix, value: /cache}}]
      filters:
        - {type: Cache, cache: {maxBytes: 1048576}}
      backendRefs: [{name: shop}]
    - matches: [{path: {type: PathPrefix, value: /limited}}]
      filters:
        - {type: RateLimit, rateLimit: {requestsPerSecond: 1, burst: 3}}
      backendRefs: [{name: shop}]
    - matches: [{path: {type: PathPrefix, value: /denied}}]
      filters:
        - {type: IPAccess, ipAccess: {deny: [127.0.0.0/8]}}
      backendRefs: [{name: shop}]
`;

/** Resolves once the agent applied a snapshot built at store revision `rev` or later. */
async function inSync(rev: number): Promise<void> {
  await watchUntil<{ metadata: { name: string }; status?: { connected?: boolean; appliedRevision?: number } }>(
    controller.url,
    'agents',
    (a) => a.metadata.name === 'edge-1' && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= rev,
  );
}

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await request(`http://127.0.0.1:${proxyPort}${path}`, { headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

beforeAll(async () => {
  dir = await tempDir();
  backend = await startBackend('shop', (req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/compress/small')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
      res.end('small');
    } else if (url.startsWith('/compress/encoded')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      res.end(Buffer.from('not really gzip'));
    } else if (url.startsWith('/compress')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
    } else if (url.startsWith('/cache/private')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private, max-age=60' });
      res.end(`private ${backend.requests}`);
    } else if (url.startsWith('/cache')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300', etag: '"v1"' });
      res.end(`cached ${backend.requests}`);
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    }
  });
  proxyPort = await freePort();
  const grpcPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr: `127.0.0.1:${grpcPort}` });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge-1', listenAddress: '127.0.0.1' });
  const applied = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: config(proxyPort, backend.port) });
  expect(applied.stderr).toBe('');
  const out = JSON.parse(applied.stdout) as { items: { metadata: { resourceVersion: string } }[] };
  await inSync(Math.max(...out.items.map((o) => Number(o.metadata.resourceVersion))));
});

afterAll(async () => {
  await agent?.stop();
  await controller?.stop();
  await backend?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

describe('edge filters', () => {
  it('compresses with gzip and br as the client accepts, with Vary; not when small or already encoded', async () => {
    const gz = await get('/compress/page', { 'accept-encoding': 'gzip' });
    expect([gz.status, gz.headers['content-encoding'], gz.headers.vary]).toEqual([200, 'gzip', 'Accept-Encoding']);
    expect(gunzipSync(gz.body).toString()).toBe(page);
    const br = await get('/compress/page', { 'accept-encoding': 'gzip;q=0.5, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.body).toString()).toBe(page);
    const small = await get('/compress/small', { 'accept-encoding': 'gzip, br' });
    expect([small.headers['content-encoding'], small.body.toString()]).toEqual([undefined, 'small']);
    const encoded = await get('/compress/encoded', { 'accept-encoding': 'gzip, br' });
    expect([encoded.headers['content-encoding'], encoded.body.toString()]).toEqual(['gzip', 'not really gzip']);
  });

  it('caches: MISS then HIT, never a private response, and a purge with sluicectl empties it', async () => {
    const first = await get('/cache/item');
    const second = await get('/cache/item');
    expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(second.body.toString()).toBe(first.body.toString());
    await get('/cache/private');
    expect((await get('/cache/private')).headers['x-cache']).toBe('MISS');

    const purged = await runSluicectl(['purge', 'route', 'shop', '-o', 'name'], { server: controller.url });
    expect(purged).toMatchObject({ code: 0, stdout: 'route/shop\n' });
    const route = await watchUntil<{ metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> } }>(
      controller.url,
      'namespaces/default/routes',
      (r) => r.metadata.name === 'shop' && r.metadata.annotations?.['sluice.io/cache-purge'] !== undefined,
    );
    await inSync(Number(route.metadata.resourceVersion));
    const after = await get('/cache/item');
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.body.toString()).not.toBe(first.body.toString());
    expect((await get('/cache/item')).headers['x-cache']).toBe('HIT');
  });

  it('answers 429 with Retry-After once a client spends its burst', async () => {
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await get('/limited'));
    const limited = answers.find((a) => a.status === 429);
    expect(answers[0]?.status).toBe(200);
    expect(limited?.headers['retry-after']).toBe('1');
    expect(limited?.headers.server).toBe('sluice');
  });

  it('answers 403 to a denied client address without asking the backend', async () => {
    const before = backend.requests;
    const denied = await get('/denied');
    expect([denied.status, denied.headers.server]).toEqual([403, 'sluice']);
    expect(backend.requests).toBe(before);
  });
});
