import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Protocol, ProxyProtocolVersion, type L4Route, type Resource } from '@sluice/proto';
import { createTestPki, selfSignedCertificate, tempDir, type PemPair } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlane } from '../data-plane.js';
import { clusterResource, endpointsResource, listenerResource } from '../test-support/resources.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const cleanups: (() => PromiseLike<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dataPlane(): DataPlane {
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
  cleanups.push(() => dp.close());
  return dp;
}

async function listen(server: Server): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => sockets.add(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return (server.address() as AddressInfo).port;
}

/** Plain TCP echo, prefixed with its name; ends when the client ends. */
function plainEcho(name: string): Promise<number> {
  return listen(
    createServer({ allowHalfOpen: true }, (socket) => {
      socket.write(`${name}:`);
      socket.pipe(socket);
    }),
  );
}

/** TLS echo with `pem`, prefixed with its name and the SNI it was sent. */
function tlsEcho(name: string, pem: { cert: Buffer | string; key: Buffer | string }): Promise<number> {
  return listen(
    createTlsServer({ ...pem, allowHalfOpen: true }, (socket: TLSSocket) => {
      socket.write(`${name}(${String(socket.servername)}):`);
      socket.pipe(socket);
    }),
  );
}

let version = 0;
function secret(name: string, pem: PemPair | { cert: string; key: string }): Resource {
  return { name, version: `v${++version}`, body: { $case: 'secret', value: { sources: [], certificateChain: pem.cert, privateKey: pem.key } } };
}

function l4Route(cluster: string): L4Route {
  return { sources: [], backends: [{ cluster, weight: 1 }], idleTimeoutMs: 0, hostnames: [] };
}

function terminating(name: string, secrets: string[], cluster: string, acceptProxyProtocol = false): Resource {
  return listenerResource(name, {
    acceptProxyProtocol,
    protocol: Protocol.PROTOCOL_TCP,
    routeTable: '',
    l4Route: l4Route(cluster),
    tls: { certificateSecrets: secrets, minVersion: '', maxVersion: '', alpnProtocols: [] },
  });
}

function portOf(dp: DataPlane, name: string): number {
  const l = dp.listeners().get(name);
  if (l === undefined) throw new Error(`listener ${name} not bound`);
  return l.port;
}

/** Sends `send` over TLS verified against `ca` for `servername`, half-closes, returns the reply and the certificate's CN. */
async function tlsTalk(port: number, servername: string, ca: string, send: string): Promise<{ reply: string; subject: string }> {
  const socket = tlsConnect({ port, host: '127.0.0.1', servername, ca });
  await once(socket, 'secureConnect');
  const subject = String(socket.getPeerCertificate().subject.CN);
  socket.end(send);
  let reply = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) reply += chunk as string;
  return { reply, subject };
}

async function plainTalk(port: number, send: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.end(send);
  let out = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) out += chunk as string;
  return out;
}

describe('TLS-terminating TCP listeners', () => {
  it('terminates with the certificate the SNI picks and proxies the decrypted stream; a rotated certificate serves new handshakes', async () => {
    const [shop, api, shop2] = await Promise.all([
      selfSignedCertificate('shop.example.com'),
      selfSignedCertificate('api.example.com'),
      selfSignedCertificate('shop.example.com'),
    ]);
    const backend = await plainEcho('plain');
    const dp = dataPlane();
    const base = [clusterResource('default/plain'), endpointsResource('default/plain', [{ port: backend }])];
    expect(
      await dp.apply({ resources: [...base, secret('default/shop', shop), secret('default/api', api), terminating('default/tls', ['default/shop', 'default/api'], 'default/plain')], removed: [] }),
    ).toEqual([]);
    const port = portOf(dp, 'default/tls');
    // Each client verifies the certificate for its name: the agent chose by SNI.
    expect(await tlsTalk(port, 'shop.example.com', shop.cert, 'hello')).toEqual({ reply: 'plain:hello', subject: 'shop.example.com' });
    expect(await tlsTalk(port, 'api.example.com', api.cert, 'hi')).toEqual({ reply: 'plain:hi', subject: 'api.example.com' });

    expect(await dp.apply({ resources: [secret('default/shop', shop2)], removed: [] })).toEqual([]);
    expect((await tlsTalk(port, 'shop.example.com', shop2.cert, 'again')).reply).toBe('plain:again');
    // The old certificate is not served any more: a client trusting only it fails the handshake.
    await expect(tlsTalk(port, 'shop.example.com', shop.cert, 'x')).rejects.toThrow();
  });

  it('reads the PROXY header before the handshake and passes its client on upstream', async () => {
    const pem = await selfSignedCertificate('shop.example.com');
    const headers: string[] = [];
    const backend = await listen(
      createServer((socket) => {
        socket.once('data', (chunk: Buffer) => {
          headers.push(chunk.toString('latin1', 0, chunk.indexOf('\r\n')));
          socket.end('ok');
        });
      }),
    );
    const dp = dataPlane();
    const listener = terminating('default/tls', ['default/shop'], 'default/b', true);
    expect(
      await dp.apply({
        resources: [
          clusterResource('default/b', undefined, { proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1 }),
          endpointsResource('default/b', [{ port: backend }]),
          secret('default/shop', pem),
          listener,
        ],
        removed: [],
      }),
    ).toEqual([]);
      const raw = connect(portOf(dp, 'default/tls'), '127.0.0.1');
    raw.write('PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n');
    const socket = tlsConnect({ socket: raw, servername: 'shop.example.com', ca: pem.cert });
    socket.end('hi');
    let reply = '';
    socket.setEncoding('utf8');
    for await (const chunk of socket) reply += chunk as string;
    expect(reply).toBe('ok');
    expect(headers).toEqual([expect.stringMatching(/^PROXY TCP4 198\.51\.100\.7 127\.0\.0\.1 40000 443$/)]);
  });

  it('closes a client that does not speak TLS without reaching the backend', async () => {
    const pem = await selfSignedCertificate('shop.example.com');
    let reached = 0;
    const backend = await listen(createServer((s) => {
      reached++;
      s.end();
    }));
    const dp = dataPlane();
    expect(
      await dp.apply({ resources: [clusterResource('default/b'), endpointsResource('default/b', [{ port: backend }]), secret('default/shop', pem), terminating('default/tls', ['default/shop'], 'default/b')], removed: [] }),
    ).toEqual([]);
    expect(await plainTalk(portOf(dp, 'default/tls'), 'GET / HTTP/1.1\r\n\r\n')).not.toContain('HTTP/1.1 200');
    expect(reached).toBe(0);
  });

  it('rejects a TLS-terminating listener without certificates, and tls on a UDP listener', async () => {
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        clusterResource('default/b'),
        endpointsResource('default/b', [{ port: 1 }]),
        terminating('default/none', [], 'default/b'),
        listenerResource('default/udp', {
          protocol: Protocol.PROTOCOL_UDP,
          routeTable: '',
          l4Route: l4Route('default/b'),
          tls: { certificateSecrets: ['default/x'], minVersion: '', maxVersion: '', alpnProtocols: [] },
        }),
        terminating('default/missing', ['default/nope'], 'default/b'),
      ],
      removed: [],
    });
    const messages = new Map(errors.map((e) => [e.key?.name, e.message]));
    expect(messages.get('default/none')).toMatch(/^tls\.certificate_secrets:/);
    expect(messages.get('default/udp')).toMatch(/^tls: must not be set on a UDP listener/);
    expect(messages.get('default/missing')).toMatch(/tls\.certificate_secrets\[0\]: Secret "default\/nope"/);
  });
});

describe('TCP routes to TLS upstreams', () => {
  it('connects with TLS verified by the CA Secret, skipping an endpoint whose certificate fails', async () => {
    await using dir = await tempDir();
    const [trusted, other] = await Promise.all([createTestPki(dir.path, 'trusted'), createTestPki(dir.path, 'other')]);
    const [cert, key, ca, otherCert, otherKey] = await Promise.all([
      readFile(trusted.server.cert),
      readFile(trusted.server.key),
      readFile(trusted.ca.cert, 'utf8'),
      readFile(other.server.cert),
      readFile(other.server.key),
    ]);
    const good = await tlsEcho('good', { cert, key });
    const bad = await tlsEcho('bad', { cert: otherCert, key: otherKey });
    const dp = dataPlane();
    const caSecret: Resource = { name: 'default/ca', version: 'ca1', body: { $case: 'secret', value: { sources: [], certificateChain: ca, privateKey: '' } } };
    const tls = { enabled: true, sni: 'localhost', insecureSkipVerify: false, caSecret: 'default/ca' };
    const errors = await dp.apply({
      resources: [
        caSecret,
        clusterResource('default/up', undefined, { tls }),
        // The untrusted one first: round robin tries it, fails the handshake, moves on.
        endpointsResource('default/up', [{ port: bad }, { port: good }]),
        clusterResource('default/only-bad', undefined, { tls }),
        endpointsResource('default/only-bad', [{ port: bad }]),
        listenerResource('default/tcp', { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route: l4Route('default/up') }),
        listenerResource('default/tcp-bad', { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route: l4Route('default/only-bad') }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const port = portOf(dp, 'default/tcp');
    // The SNI configured on the cluster reaches the backend; the stream is decrypted there.
    for (let i = 0; i < 3; i++) expect(await plainTalk(port, `m${i}`)).toBe(`good(localhost):m${i}`);
    // No endpoint passes verification: the client is closed with nothing sent.
    expect(await plainTalk(portOf(dp, 'default/tcp-bad'), 'x')).toBe('');
  });

  it('sends the PROXY header in clear before the TLS handshake', async () => {
    await using dir = await tempDir();
    const pki = await createTestPki(dir.path);
    const [cert, key, ca] = await Promise.all([readFile(pki.server.cert), readFile(pki.server.key), readFile(pki.ca.cert, 'utf8')]);
    const headers: string[] = [];
    const tlsServer = createTlsServer({ cert, key, allowHalfOpen: true }, (socket: TLSSocket) => {
      socket.write('tls:');
      socket.pipe(socket);
    });
    // Reads the PROXY v1 line off the raw socket, then hands the rest to the TLS server.
    const backend = await listen(
      createServer({ allowHalfOpen: true }, (socket) => {
        socket.once('data', (chunk: Buffer) => {
          const end = chunk.indexOf('\r\n');
          headers.push(chunk.toString('latin1', 0, end));
          socket.pause();
          if (end + 2 < chunk.length) socket.unshift(chunk.subarray(end + 2));
          tlsServer.emit('connection', socket);
        });
      }),
    );
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        { name: 'default/ca', version: 'ca1', body: { $case: 'secret', value: { sources: [], certificateChain: ca, privateKey: '' } } },
        clusterResource('default/pp', undefined, {
          tls: { enabled: true, sni: 'localhost', insecureSkipVerify: false, caSecret: 'default/ca' },
          proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1,
        }),
        endpointsResource('default/pp', [{ port: backend }]),
        listenerResource('default/pp', { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route: l4Route('default/pp') }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    expect(await plainTalk(portOf(dp, 'default/pp'), 'z')).toBe('tls:z');
    expect(headers).toHaveLength(1);
    expect(headers[0]).toMatch(/^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+$/);
  });

  it('insecure_skip_verify connects to an untrusted certificate, and an IP address is checked but not sent as SNI', async () => {
    await using dir = await tempDir();
    const pki = await createTestPki(dir.path);
    const [cert, key, ca] = await Promise.all([readFile(pki.server.cert), readFile(pki.server.key), readFile(pki.ca.cert, 'utf8')]);
    const backend = await tlsEcho('b', { cert, key });
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        { name: 'default/ca', version: 'ca1', body: { $case: 'secret', value: { sources: [], certificateChain: ca, privateKey: '' } } },
        clusterResource('default/insecure', undefined, { tls: { enabled: true, sni: 'not-the-name.example', insecureSkipVerify: true, caSecret: '' } }),
        endpointsResource('default/insecure', [{ port: backend }]),
        clusterResource('default/by-ip', undefined, { tls: { enabled: true, sni: '', insecureSkipVerify: false, caSecret: 'default/ca' } }),
        endpointsResource('default/by-ip', [{ port: backend, address: '127.0.0.1' }]),
        listenerResource('default/insecure', { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route: l4Route('default/insecure') }),
        listenerResource('default/by-ip', { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route: l4Route('default/by-ip') }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    expect(await plainTalk(portOf(dp, 'default/insecure'), 'x')).toBe('b(not-the-name.example):x');
    // The certificate's IP SAN 127.0.0.1 verifies; no SNI for an address (RFC 6066).
    expect(await plainTalk(portOf(dp, 'default/by-ip'), 'y')).toBe('b(false):y');
  });
});
