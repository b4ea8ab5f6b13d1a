import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
import { Protocol, ResourceType, type Resource } from '@sluice/proto';
import { freePort, selfSignedCertificate, startBackend, type Backend, type PemPair } from '@sluice/testing';
import { request } from 'undici';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataPlane } from './data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';

// TLS termination, HTTP/2 (h2 by ALPN, h2c by prior knowledge) and gRPC through a DataPlane on
// loopback: real sockets, real clients, certificates made per run.

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let shop: PemPair;
let api: PemPair;
let wildcard: PemPair;
beforeAll(async () => {
  [shop, api, wildcard] = await Promise.all([
    selfSignedCertificate('shop.example.com'),
    selfSignedCertificate('api.example.com'),
    selfSignedCertificate('wild', ['*.apps.example.com']),
  ]);
});

function dataPlane(): DataPlane {
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
  cleanups.push(() => dp.close());
  return dp;
}

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  cleanups.push(() => b[Symbol.asyncDispose]());
  return b;
}

let secretVersion = 0;
function secretResource(name: string, pem: PemPair): Resource {
  return { name, version: `s${++secretVersion}`, body: { $case: 'secret', value: { sources: [], certificateChain: pem.cert, privateKey: pem.key } } };
}

function httpsListener(secrets: string[], tls: { minVersion?: string; maxVersion?: string; alpnProtocols?: string[] } = {}): Resource {
  return listenerResource(LISTENER, {
    protocol: Protocol.PROTOCOL_HTTPS,
    tls: { certificateSecrets: secrets, minVersion: tls.minVersion ?? '', maxVersion: tls.maxVersion ?? '', alpnProtocols: tls.alpnProtocols ?? [] },
  });
}

/** A cluster named after the backend and a catch-all route to it. */
function upstream(b: Backend, over: Parameters<typeof clusterResource>[2] = {}): Resource[] {
  return [
    clusterResource(`default/${b.name}`, undefined, over),
    endpointsResource(`default/${b.name}`, [{ port: b.port }]),
    routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', `default/${b.name}`)])]),
  ];
}

function port(dp: DataPlane): number {
  const l = dp.listeners().get(LISTENER);
  if (!l) throw new Error('listener not bound');
  return l.port;
}

/** One TLS handshake with `servername` (none: no SNI); resolves with the socket once secure. */
async function handshake(p: number, servername: string | undefined, options: ConnectionOptions = {}): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port: p, rejectUnauthorized: false, ...(servername ? { servername } : {}), ...options });
  cleanups.push(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

const subjectOf = (cert: PeerCertificate): string => String(cert.subject.CN);

/** GET over an open TLS socket, keeping it open (raw HTTP/1.1 keep-alive): "status body". */
async function getOver(socket: TLSSocket, host: string, path = '/'): Promise<string> {
  socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      const length = /\r\ncontent-length: (\d+)/i.exec(head);
      const body = text.slice(end + 4);
      let done: string | undefined;
      if (length !== null && body.length >= Number(length[1])) done = body.slice(0, Number(length[1]));
      else if (length === null && body.endsWith('0\r\n\r\n')) done = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      if (done === undefined) return;
      socket.off('data', onData);
      resolve(`${head.split(' ')[1] ?? ''} ${done}`);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

async function h2get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  const stream = session.request({ ':path': path, ...headers });
  return new Promise((resolve, reject) => {
    let responseHeaders: IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => resolve({ headers: responseHeaders, body }));
    stream.on('error', reject);
  });
}

function h2session(url: string, options: Parameters<typeof h2connect>[1] = {}): ClientHttp2Session {
  const session = h2connect(url, options);
  session.on('error', () => {});
  cleanups.push(() => session.destroy());
  return session;
}

describe('HTTPS listeners', () => {
  it('picks the certificate by SNI: exact name, wildcard, and the first one without a match or SNI', async () => {
    const b = await backend('shop');
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [secretResource('default/shop', shop), secretResource('default/api', api), secretResource('default/wild', wildcard), ...upstream(b), httpsListener(['default/shop', 'default/api', 'default/wild'])],
      removed: [],
    });
    expect(errors).toEqual([]);
    const p = port(dp);
    expect(subjectOf((await handshake(p, 'api.example.com')).getPeerCertificate())).toBe('api.example.com');
    expect(subjectOf((await handshake(p, 'SHOP.example.com')).getPeerCertificate())).toBe('shop.example.com');
    expect(subjectOf((await handshake(p, 'a.apps.example.com')).getPeerCertificate())).toBe('wild');
    // A wildcard covers one label only; unknown names and no SNI get the first certificate.
    expect(subjectOf((await handshake(p, 'a.b.apps.example.com')).getPeerCertificate())).toBe('shop.example.com');
    expect(subjectOf((await handshake(p, undefined)).getPeerCertificate())).toBe('shop.example.com');

    // The request is proxied, and the backend learns the client used https.
    const socket = await handshake(p, 'api.example.com', { ALPNProtocols: ['http/1.1'] });
    expect(await getOver(socket, 'api.example.com', '/x')).toBe('200 shop\n');
    expect(b.last?.headers['x-forwarded-proto']).toBe('https');
    expect(b.last?.headers.host).toBe('api.example.com');
  });

  it('serves a renewed certificate on new handshakes while an open connection keeps working', async () => {
    const b = await backend('shop');
    const dp = dataPlane();
    expect(await dp.apply({ resources: [secretResource('default/shop', shop), ...upstream(b), httpsListener(['default/shop'])], removed: [] })).toEqual([]);
    const p = port(dp);
    const old = await handshake(p, 'shop.example.com', { ALPNProtocols: ['http/1.1'] });
    expect(await getOver(old, 'shop.example.com')).toBe('200 shop\n');
    const oldFingerprint = old.getPeerCertificate().fingerprint256;

    const renewed = await selfSignedCertificate('shop.example.com');
    expect(await dp.apply({ resources: [secretResource('default/shop', renewed)], removed: [] })).toEqual([]);

    const fresh = await handshake(p, 'shop.example.com');
    expect(fresh.getPeerCertificate().fingerprint256).not.toBe(oldFingerprint);
    expect(fresh.getPeerCertificate().raw.equals(new X509Certificate(renewed.cert).raw)).toBe(true);
    // Clients without SNI get the server's default context: renewed too.
    expect((await handshake(p, undefined)).getPeerCertificate().raw.equals(new X509Certificate(renewed.cert).raw)).toBe(true);
    // Same socket, same certificate, still serving.
    expect(await getOver(old, 'shop.example.com')).toBe('200 shop\n');
    expect(old.getPeerCertificate().fingerprint256).toBe(oldFingerprint);
  });

  it('enforces min_version and offers only the configured ALPN protocols', async () => {
    const b = await backend('shop');
    const dp = dataPlane();
    expect(await dp.apply({ resources: [secretResource('default/shop', shop), ...upstream(b), httpsListener(['default/shop'], { minVersion: 'TLSv1.3', alpnProtocols: ['http/1.1'] })], removed: [] })).toEqual([]);
    const p = port(dp);
    await expect(handshake(p, 'shop.example.com', { maxVersion: 'TLSv1.2' })).rejects.toThrow();
    const socket = await handshake(p, 'shop.example.com', { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(socket.alpnProtocol).toBe('http/1.1');
    expect(socket.getProtocol()).toBe('TLSv1.3');

    // Default ALPN: h2 first.
    expect(await dp.apply({ resources: [httpsListener(['default/shop'])], removed: [] })).toEqual([]);
    expect((await handshake(p, 'shop.example.com', { ALPNProtocols: ['h2', 'http/1.1'] })).alpnProtocol).toBe('h2');
  });

  it('keeps the https scheme in redirects', async () => {
    const dp = dataPlane();
    const redirect = route('default/r/rule/0/match/0', [], { filters: [{ filter: { $case: 'requestRedirect', value: { scheme: '', hostname: '', port: 0, statusCode: 301, path: { $case: 'replaceFullPath', value: '/new' } } } }] });
    const errors = await dp.apply({ resources: [secretResource('default/shop', shop), routeTableResource(LISTENER, [vhost(['*'], [redirect])]), httpsListener(['default/shop'])], removed: [] });
    expect(errors).toEqual([]);
    const socket = await handshake(port(dp), 'shop.example.com', { ALPNProtocols: ['http/1.1'] });
    socket.write('GET /old HTTP/1.1\r\nhost: shop.example.com:8443\r\n\r\n');
    let head = '';
    for await (const chunk of socket) {
      head += (chunk as Buffer).toString('latin1');
      if (head.includes('\r\n\r\n')) break;
    }
    expect(head).toMatch(/^HTTP\/1\.1 301 /);
    expect(head).toMatch(/\r\nlocation: https:\/\/shop\.example\.com:8443\/new\r\n/i);
  });

  it('switches a port between HTTPS and HTTP without rebinding it', async () => {
    const b = await backend('shop');
    const dp = dataPlane();
    expect(await dp.apply({ resources: [secretResource('default/shop', shop), ...upstream(b), httpsListener(['default/shop'])], removed: [] })).toEqual([]);
    const p = port(dp);
    const tlsSocket = await handshake(p, 'shop.example.com', { ALPNProtocols: ['http/1.1'] });
    expect(await dp.apply({ resources: [listenerResource(LISTENER)], removed: [] })).toEqual([]);
    expect(port(dp)).toBe(p);
    const plain = await request(`http://127.0.0.1:${p}/`);
    expect(await plain.body.text()).toBe('shop\n');
    // The TLS connection made before the switch still serves.
    expect(await getOver(tlsSocket, 'shop.example.com')).toBe('200 shop\n');
  });

  it('rejects an HTTPS listener whose certificate Secret is missing, naming it', async () => {
    const b = await backend('shop');
    const dp = dataPlane();
    const errors = await dp.apply({ resources: [...upstream(b), httpsListener(['default/nope'])], removed: [] });
    expect(errors.map((e) => e.message)).toEqual(['tls.certificate_secrets[0]: Secret "default/nope" is not among this agent\'s resources']);
    expect(dp.listeners().has(LISTENER)).toBe(false);
  });
});

describe('HTTP/2', () => {
  it('proxies an h2 request over TLS: :authority routes and becomes Host, no hop-by-hop headers back', async () => {
    const shopBackend = await backend('shop');
    const other = await backend('other');
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        secretResource('default/shop', shop),
        ...upstream(other).slice(0, 2),
        ...upstream(shopBackend).slice(0, 2),
        routeTableResource(LISTENER, [
          vhost(['shop.example.com'], [route('default/shop/rule/0/match/0', 'default/shop')]),
          vhost(['*'], [route('default/any/rule/0/match/0', 'default/other')]),
        ]),
        httpsListener(['default/shop']),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const session = h2session(`https://127.0.0.1:${port(dp)}`, { ca: shop.cert, servername: 'shop.example.com' });
    const res = await h2get(session, '/a?b=1', { ':authority': 'shop.example.com' });
    expect(res.headers[':status']).toBe(200);
    expect(res.body).toBe('shop\n');
    expect(res.headers.connection).toBeUndefined();
    expect(res.headers['keep-alive']).toBeUndefined();
    expect(shopBackend.last?.url).toBe('/a?b=1');
    expect(shopBackend.last?.headers.host).toBe('shop.example.com');
    expect(shopBackend.last?.headers['x-forwarded-proto']).toBe('https');
    expect(Object.keys(shopBackend.last?.headers ?? {}).filter((h) => h.startsWith(':'))).toEqual([]);
    expect((await h2get(session, '/', { ':authority': 'elsewhere.test' })).body).toBe('other\n');
  });

  it('takes h2c with prior knowledge next to HTTP/1.1 when h2c is on, and not when it is off', async () => {
    const b = await backend('shop');
    const dp = dataPlane();
    expect(await dp.apply({ resources: [...upstream(b), listenerResource(LISTENER, { h2c: true })], removed: [] })).toEqual([]);
    const url = `http://127.0.0.1:${port(dp)}`;
    const session = h2session(url);
    const res = await h2get(session, '/h2c');
    expect(res.body).toBe('shop\n');
    expect(b.last?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(b.last?.headers['x-forwarded-proto']).toBe('http');
    const h1 = await request(`${url}/h1`, { method: 'POST', body: 'x'.repeat(100_000) });
    expect(h1.statusCode).toBe(200);
    expect(await h1.body.text()).toBe('shop\n');

    // The header size limit holds for HTTP/2 too (SETTINGS_MAX_HEADER_LIST_SIZE, new sessions).
    const limits = { maxConnections: 0, maxRequestHeaderBytes: 2048, maxRequestHeaders: 0, requestHeadersTimeoutMs: 0, idleTimeoutMs: 0, maxRequestBodyBytes: 0, requestBodyTimeoutMs: 0, maxConnectionsPerClient: 0 };
    expect(await dp.apply({ resources: [listenerResource(LISTENER, { h2c: true, limits })], removed: [] })).toEqual([]);
    const limited = h2session(url);
    expect((await h2get(limited, '/small')).body).toBe('shop\n');
    await expect(h2get(limited, '/big', { 'x-big': 'a'.repeat(4096) })).rejects.toThrow();

    // And the header count limit: more fields than max_request_headers get a 431, as on HTTP/1.1.
    const counted = { ...limits, maxRequestHeaderBytes: 0, maxRequestHeaders: 10 };
    expect(await dp.apply({ resources: [listenerResource(LISTENER, { h2c: true, limits: counted })], removed: [] })).toEqual([]);
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-field-${i}`, 'v']));
    const countedSession = h2session(url);
    expect((await h2get(countedSession, '/ten', fields(10))).body).toBe('shop\n');
    const tooMany = await h2get(countedSession, '/eleven', fields(11));
    expect(tooMany.headers[':status']).toBe(431);
    expect(b.last?.url).toBe('/ten');

    expect(await dp.apply({ resources: [listenerResource(LISTENER, { h2c: false })], removed: [] })).toEqual([]);
    const refused = h2session(url);
    await expect(h2get(refused, '/h2c')).rejects.toThrow();
  });
});

describe('HTTP/2 drain', () => {
  it('sends GOAWAY to the open sessions of a removed listener; their open streams finish', async () => {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const slow = await startBackend('slow', (req, res) => {
      req.resume();
      arrived();
      void answered.then(() => res.end('late\n'));
    });
    cleanups.push(() => slow[Symbol.asyncDispose]());
    const dp = dataPlane();
    expect(await dp.apply({ resources: [...upstream(slow), listenerResource(LISTENER, { h2c: true })], removed: [] })).toEqual([]);
    const session = h2session(`http://127.0.0.1:${port(dp)}`);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const inFlight = h2get(session, '/slow');
    await reached;
    expect(await dp.apply({ resources: [], removed: [{ type: ResourceType.RESOURCE_TYPE_LISTENER, name: LISTENER }] })).toEqual([]);
    await goaway;
    answer();
    expect((await inFlight).body).toBe('late\n');
  });
});

describe('gRPC', () => {
  const service = {
    call: {
      path: '/sluice.test.Echo/Call',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  } satisfies grpc.ServiceDefinition;

  async function grpcBackend(tls?: PemPair): Promise<number> {
    const server = new grpc.Server();
    server.addService(service, {
      call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const text = call.request.toString();
        if (text === 'missing') callback({ code: grpc.status.NOT_FOUND, details: 'no such thing: missing' });
        else callback(null, Buffer.from(`echo ${text} via ${String(call.metadata.get('x-forwarded-proto')[0])}`));
      },
    });
    const p = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', tls ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }]) : grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))));
    cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    return p;
  }

  function unary(client: grpc.Client, text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(service.call.path, service.call.requestSerialize, service.call.responseDeserialize, Buffer.from(text), (err, value) => (err ? reject(err) : resolve(String(value))));
    });
  }

  it('carries unary calls and their error status both ways, over TLS and over h2c', async () => {
    const grpcPort = await grpcBackend();
    const dp = dataPlane();
    const routes = routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/echo')])]);
    const errors = await dp.apply({
      resources: [
        secretResource('default/shop', shop),
        clusterResource('default/echo', undefined, { http2: true }),
        endpointsResource('default/echo', [{ port: grpcPort }]),
        routes,
        httpsListener(['default/shop']),
        routeTableResource('default/plain', [vhost(['*'], [route('default/r2/rule/0/match/0', 'default/echo')])]),
        listenerResource('default/plain', { h2c: true }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const tlsClient = new grpc.Client(`127.0.0.1:${port(dp)}`, grpc.credentials.createSsl(Buffer.from(shop.cert)), { 'grpc.ssl_target_name_override': 'shop.example.com' });
    cleanups.push(() => tlsClient.close());
    expect(await unary(tlsClient, 'hello')).toBe('echo hello via https');
    await expect(unary(tlsClient, 'missing')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no such thing: missing' });

    const plainPort = dp.listeners().get('default/plain')?.port ?? 0;
    const h2cClient = new grpc.Client(`127.0.0.1:${plainPort}`, grpc.credentials.createInsecure());
    cleanups.push(() => h2cClient.close());
    expect(await unary(h2cClient, 'plain')).toBe('echo plain via http');
    await expect(unary(h2cClient, 'missing')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no such thing: missing' });
  });

  it('reaches a gRPC backend over h2 with TLS (CA Secret, SNI)', async () => {
    const backendCert = await selfSignedCertificate('grpc.internal');
    const grpcPort = await grpcBackend(backendCert);
    const dp = dataPlane();
    const ca: Resource = { name: 'default/grpc-ca', version: 'ca1', body: { $case: 'secret', value: { sources: [], certificateChain: backendCert.cert, privateKey: '' } } };
    const errors = await dp.apply({
      resources: [
        ca,
        clusterResource('default/echo', undefined, { http2: true, tls: { enabled: true, sni: 'grpc.internal', insecureSkipVerify: false, caSecret: 'default/grpc-ca' } }),
        endpointsResource('default/echo', [{ port: grpcPort }]),
        routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/echo')])]),
        listenerResource(LISTENER, { h2c: true }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const client = new grpc.Client(`127.0.0.1:${port(dp)}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    expect(await unary(client, 'secure')).toBe('echo secure via http');
    await expect(unary(client, 'missing')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no such thing: missing' });
  });

  it('retries a call whose HTTP/2 endpoint refuses the connection on another one, body intact', async () => {
    const grpcPort = await grpcBackend();
    const dp = dataPlane();
    const retry = { attempts: 2, on: ['connect-failure'], perTryTimeoutMs: 0 };
    const errors = await dp.apply({
      resources: [
        clusterResource('default/echo', undefined, { http2: true }),
        // A port nothing listens on first, then the live backend: round robin tries them in order.
        endpointsResource('default/echo', [{ port: await freePort() }, { port: grpcPort }]),
        routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/echo', { retry })])]),
        listenerResource(LISTENER, { h2c: true }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const client = new grpc.Client(`127.0.0.1:${port(dp)}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    for (const text of ['one', 'two', 'three']) expect(await unary(client, text)).toBe(`echo ${text} via http`);
  });
});
