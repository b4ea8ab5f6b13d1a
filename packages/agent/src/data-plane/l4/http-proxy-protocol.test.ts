import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Protocol, type Resource } from '@sluice/proto';
import { selfSignedCertificate, startBackend, type Backend } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlane } from '../data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from '../test-support/resources.js';
import { encodeProxyHeader } from './proxy-protocol.js';

// HTTP and HTTPS listeners with accept_proxy_protocol: the header's client is the client
// for X-Forwarded-For (and everything else that reads the socket's remote address).

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const cleanups: (() => PromiseLike<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(listener: Parameters<typeof listenerResource>[1], extra: Resource[] = []): Promise<{ port: number; backend: Backend }> {
  const backend = await startBackend('b');
  cleanups.push(() => backend[Symbol.asyncDispose]());
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 500 });
  cleanups.push(() => dp.close());
  const errors = await dp.apply({
    resources: [
      ...extra,
      clusterResource('default/b'),
      endpointsResource('default/b', [{ port: backend.port }]),
      routeTableResource('default/web', [vhost(['*'], [route('default/r/rule/0/match/0', 'default/b')])]),
      listenerResource('default/web', { acceptProxyProtocol: true, ...listener }),
    ],
    removed: [],
  });
  expect(errors).toEqual([]);
  return { port: dp.listeners().get('default/web')?.port ?? 0, backend };
}

async function readAll(socket: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of socket) out += String(chunk);
  return out;
}

const REQUEST = 'GET /who HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n';

describe('accept_proxy_protocol on HTTP listeners', () => {
  it('takes the client address from a v1 or v2 header for X-Forwarded-For', async () => {
    const { port, backend } = await setup({});
    for (const [version, client] of [
      [1, '198.51.100.20'],
      [2, '2001:db8::20'],
    ] as const) {
      const socket = connect(port, '127.0.0.1');
      // write, not end: an HTTP server aborts a request whose client half-closes before the answer.
      socket.write(Buffer.concat([encodeProxyHeader(version, { address: client, port: 5555 }, { address: '127.0.0.1', port }), Buffer.from(REQUEST)]));
      expect(await readAll(socket)).toMatch(/^HTTP\/1\.1 200/);
      expect(backend.last?.headers['x-forwarded-for']).toBe(client);
    }
  });

  it('closes a connection that starts without a header', async () => {
    const { port, backend } = await setup({});
    const socket = connect(port, '127.0.0.1');
    socket.end(REQUEST);
    expect(await readAll(socket)).toBe('');
    expect(backend.requests).toBe(0);
  });

  it('reads the header before the TLS handshake on HTTPS listeners', async () => {
    const pem = await selfSignedCertificate('shop.example.com');
    const secret: Resource = { name: 'default/cert', version: 's1', body: { $case: 'secret', value: { sources: [], certificateChain: pem.cert, privateKey: pem.key } } };
    const tls = { certificateSecrets: ['default/cert'], minVersion: '', maxVersion: '', alpnProtocols: ['http/1.1'] };
    const { port, backend } = await setup({ protocol: Protocol.PROTOCOL_HTTPS, tls }, [secret]);
    const raw = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => raw.once('connect', resolve));
    raw.write(encodeProxyHeader(2, { address: '203.0.113.30', port: 4000 }, { address: '127.0.0.1', port }));
    const secure = tlsConnect({ socket: raw, servername: 'shop.example.com', rejectUnauthorized: false });
    secure.write(REQUEST);
    expect(await readAll(secure)).toMatch(/^HTTP\/1\.1 200/);
    expect(backend.last?.headers['x-forwarded-for']).toBe('203.0.113.30');
    expect(backend.last?.headers['x-forwarded-proto']).toBe('https');
  });
});
