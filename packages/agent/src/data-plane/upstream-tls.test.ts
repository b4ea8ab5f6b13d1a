import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ResourceType, type Resource, type UpstreamTls } from '@sluice/proto';
import { createTestPki, tempDir } from '@sluice/testing';
import { request } from 'undici';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { DataPlane } from './data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';

const cleanups: (() => PromiseLike<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** PEM of a CA that signed the backend's certificate, and of one that did not. */
let pem: { ca: string; otherCa: string; cert: string; key: string };
beforeAll(async () => {
  const dir = await tempDir('upstream-tls');
  const [good, other] = await Promise.all([createTestPki(dir.path, 'good'), createTestPki(dir.path, 'other')]);
  const read = (f: string) => readFile(f, 'utf8');
  pem = { ca: await read(good.ca.cert), otherCa: await read(other.ca.cert), cert: await read(good.server.cert), key: await read(good.server.key) };
  return () => dir[Symbol.asyncDispose]();
});

interface TlsBackend {
  readonly port: number;
  /** The SNI of each request's connection ('' = none). */
  readonly servernames: string[];
}

/** An HTTPS backend (certificate for 127.0.0.1, ::1, localhost) that also echoes WebSocket messages. */
async function tlsBackend(): Promise<TlsBackend> {
  const servernames: string[] = [];
  const server: Server = createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
    servernames.push((req.socket as TLSSocket).servername || '');
    req.resume();
    res.end(`tls ${req.headers.host ?? ''}\n`);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    servernames.push((req.socket as TLSSocket).servername || '');
    ws.on('message', (data) => ws.send(`tls:${(data as Buffer).toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, servernames };
}

function dataPlane(): DataPlane {
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
  cleanups.push(() => dp.close());
  return dp;
}

let secretVersion = 0;
function caSecret(name: string, chain: string): Resource {
  return { name, version: `s${++secretVersion}`, body: { $case: 'secret', value: { sources: [], certificateChain: chain, privateKey: '' } } };
}

function tls(over: Partial<UpstreamTls> = {}): UpstreamTls {
  return { enabled: true, sni: 'localhost', insecureSkipVerify: false, caSecret: 'default/ca', ...over };
}

function config(backend: TlsBackend, upstreamTls: UpstreamTls, secrets: Resource[]): Resource[] {
  return [
    ...secrets,
    clusterResource('default/secure', undefined, { tls: upstreamTls }),
    endpointsResource('default/secure', [{ port: backend.port }]),
    routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/secure')])]),
    listenerResource(LISTENER),
  ];
}

function base(dp: DataPlane): string {
  return `127.0.0.1:${dp.listeners().get(LISTENER)?.port ?? 0}`;
}

async function get(dp: DataPlane, host?: string): Promise<{ status: number; text: string }> {
  const res = await request(`http://${base(dp)}/`, { headers: host === undefined ? {} : { host } });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('TLS to upstreams', () => {
  it('verifies the endpoint against the CA Secret and sends the configured SNI, whatever the Host', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    expect(await dp.apply({ resources: config(backend, tls(), [caSecret('default/ca', pem.ca)]), removed: [] })).toEqual([]);
    expect(await get(dp, 'shop.example.com')).toEqual({ status: 200, text: 'tls shop.example.com\n' });
    expect(await get(dp, 'other.example.com')).toEqual({ status: 200, text: 'tls other.example.com\n' });
    expect(backend.servernames).toEqual(['localhost', 'localhost']);
  });

  it('checks an IP endpoint against its IP address when no SNI is set (and sends none)', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    expect(await dp.apply({ resources: config(backend, tls({ sni: '' }), [caSecret('default/ca', pem.ca)]), removed: [] })).toEqual([]);
    expect((await get(dp, 'shop.example.com')).status).toBe(200);
    expect(backend.servernames).toEqual(['']);
  });

  it('checks the certificate against an IP address given as SNI, and sends none', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    // The certificate names ::1 (not the endpoint's 127.0.0.1): the configured address is what counts.
    expect(await dp.apply({ resources: config(backend, tls({ sni: '::1' }), [caSecret('default/ca', pem.ca)]), removed: [] })).toEqual([]);
    expect((await get(dp)).status).toBe(200);
    expect(backend.servernames).toEqual(['']);
    expect(await dp.apply({ resources: [clusterResource('default/secure', undefined, { tls: tls({ sni: '10.0.0.1' }) })], removed: [] })).toEqual([]);
    expect((await get(dp)).status).toBe(502);
  });

  it('answers 502 at once when the certificate does not verify, and recovers when the CA Secret is fixed', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    const resources = config(backend, tls(), [caSecret('default/ca', pem.otherCa)]);
    expect(await dp.apply({ resources, removed: [] })).toEqual([]);
    const failed = await get(dp);
    expect(failed.status).toBe(502);
    expect(failed.text).toBe('upstream connect error\n');
    expect(backend.servernames).toEqual([]);
    // Only the Secret changes (a CA rotation): the cluster's connections must follow it.
    expect(await dp.apply({ resources: [caSecret('default/ca', pem.ca)], removed: [] })).toEqual([]);
    expect((await get(dp)).status).toBe(200);
  });

  it('a wrong SNI fails verification; insecure_skip_verify connects without a CA', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    expect(await dp.apply({ resources: config(backend, tls({ sni: 'wrong.example.com' }), [caSecret('default/ca', pem.ca)]), removed: [] })).toEqual([]);
    expect((await get(dp)).status).toBe(502);
    const cluster = clusterResource('default/secure', undefined, { tls: tls({ caSecret: '', insecureSkipVerify: true }) });
    expect(await dp.apply({ resources: [cluster], removed: [] })).toEqual([]);
    expect((await get(dp)).status).toBe(200);
  });

  it('rejects a cluster whose CA Secret is missing, naming the field and the Secret', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    const errors = await dp.apply({ resources: config(backend, tls({ caSecret: 'default/nope' }), []), removed: [] });
    expect(errors.map((e) => [e.key?.type, e.key?.name, e.message])).toEqual([
      [ResourceType.RESOURCE_TYPE_CLUSTER, 'default/secure', 'tls.ca_secret: Secret "default/nope" is not among this agent\'s resources'],
    ]);
    expect((await get(dp)).status).toBe(503);
  });

  it('tunnels a WebSocket to a TLS endpoint', async () => {
    const backend = await tlsBackend();
    const dp = dataPlane();
    expect(await dp.apply({ resources: config(backend, tls(), [caSecret('default/ca', pem.ca)]), removed: [] })).toEqual([]);
    const ws = new WebSocket(`ws://${base(dp)}/chat`);
    cleanups.push(() => ws.terminate());
    await once(ws, 'open');
    ws.send('over tls');
    const [data] = (await once(ws, 'message')) as [Buffer];
    expect(data.toString()).toBe('tls:over tls');
    expect(backend.servernames).toEqual(['localhost']);
  });
});
