import { randomBytes } from 'node:crypto';
import { connect as connectH2 } from 'node:http2';
import { connect } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { edgeFilter, edgeProxy } from '../test-support/edge-proxy.js';
import { addVary, CompiledCompression, parseAcceptEncoding } from './compression.js';

const big = 'hello compression '.repeat(200);

describe('Compression negotiation', () => {
  const c = new CompiledCompression({ algorithms: [], minBytes: 0, contentTypes: [] });

  it('parses q-values; a malformed q is 0', () => {
    expect([...parseAcceptEncoding('gzip;q=0.5, br , *;q=0, deflate;q=x')]).toEqual([
      ['gzip', 0.5],
      ['br', 1],
      ['*', 0],
      ['deflate', 0],
    ]);
  });

  it.each([
    ['gzip, deflate, br', 'br'],
    ['gzip', 'gzip'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, gzip;q=0.1', 'gzip'],
    ['*', 'br'],
    ['*;q=0.5, br;q=0', 'gzip'],
    ['identity', undefined],
    ['identity;q=0', undefined],
    ['br;q=0, gzip;q=0', undefined],
    ['deflate', undefined],
    ['x-gzip', 'gzip'],
    ['', undefined],
  ])('Accept-Encoding "%s" -> %s', (header, expected) => {
    expect(c.negotiate(header)).toBe(expected);
  });

  it('prefers the configured order on ties', () => {
    const gzipFirst = new CompiledCompression({ algorithms: ['gzip', 'br'], minBytes: 0, contentTypes: [] });
    expect(gzipFirst.negotiate('br, gzip')).toBe('gzip');
  });

  it('adds to Vary once', () => {
    const h: Record<string, string> = { vary: 'Origin' };
    addVary(h, 'Accept-Encoding');
    addVary(h, 'Accept-Encoding');
    expect(h.vary).toBe('Origin, Accept-Encoding');
  });
});

describe('Compression through the proxy', () => {
  async function fetch(origin: string, path: string, headers: Record<string, string>, method = 'GET') {
    const res = await request(`${origin}${path}`, { headers, method: method as 'GET' });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  }

  it('gzips and brotlis what the client accepts, with Vary, no Content-Length and a weak ETag', async () => {
    await using proxy = await edgeProxy([edgeFilter.compression()], (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(big), etag: '"v1"' });
      res.end(big);
    });
    const gz = await fetch(proxy.origin, '/', { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers['content-length']).toBeUndefined();
    expect(gz.headers.vary).toBe('Accept-Encoding');
    expect(gz.headers.etag).toBe('W/"v1"');
    expect(gunzipSync(gz.body).toString()).toBe(big);
    expect(gz.body.length).toBeLessThan(big.length / 4);
    const br = await fetch(proxy.origin, '/', { 'accept-encoding': 'gzip, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.body).toString()).toBe(big);
    const plain = await fetch(proxy.origin, '/', { 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('Accept-Encoding');
    expect(plain.body.toString()).toBe(big);
    const head = await fetch(proxy.origin, '/', { 'accept-encoding': 'gzip' }, 'HEAD');
    expect(head.headers['content-encoding']).toBeUndefined();
  });

  it('leaves small, already encoded, no-transform and non-text responses alone', async () => {
    await using proxy = await edgeProxy([edgeFilter.compression()], (req, res) => {
      const url = req.url ?? '/';
      const headers: Record<string, string> = { 'content-type': url === '/png' ? 'image/png' : 'text/plain' };
      if (url === '/encoded') headers['content-encoding'] = 'gzip';
      if (url === '/no-transform') headers['cache-control'] = 'public, no-transform';
      const body = url === '/small' ? 'tiny' : big;
      headers['content-length'] = String(Buffer.byteLength(body));
      res.writeHead(200, headers);
      res.end(body);
    });
    for (const path of ['/small', '/encoded', '/no-transform', '/png']) {
      const r = await fetch(proxy.origin, path, { 'accept-encoding': 'gzip, br' });
      expect({ path, encoding: r.headers['content-encoding'] }).toEqual({ path, encoding: path === '/encoded' ? 'gzip' : undefined });
      expect(r.body.length).toBe(path === '/small' ? 4 : big.length);
    }
    const small = await fetch(proxy.origin, '/small', { 'accept-encoding': 'gzip' });
    expect(small.headers.vary).toBeUndefined();
  });

  it('compresses a chunked response of unknown length', async () => {
    await using proxy = await edgeProxy([edgeFilter.compression({ algorithms: ['gzip'] })], (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      res.end(`${'1,'.repeat(10)}1]`);
    });
    const r = await fetch(proxy.origin, '/', { 'accept-encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(r.body).toString()).toBe(`[${'1,'.repeat(10)}1]`);
  });

  it('keeps backpressure through zlib: a client that stops reading stops the backend', async () => {
    // Incompressible: the compressed stream is as big as the input, so the client's socket fills.
    const chunk = randomBytes(64 * 1024);
    const total = 512 * 1024 * 1024;
    let written = 0;
    let blocked: (() => void) | undefined;
    const backendBlocked = new Promise<void>((resolve) => (blocked = resolve));
    await using proxy = await edgeProxy([edgeFilter.compression({ algorithms: ['gzip'], contentTypes: ['application/octet-stream'] })], (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            blocked?.();
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const socket = connect(proxy.port, '127.0.0.1');
    try {
      socket.write('GET / HTTP/1.1\r\nhost: x\r\naccept-encoding: gzip\r\n\r\n');
      socket.pause();
      await backendBlocked;
      // Blocked end to end, the backend stops writing: `written` settles far below the total.
      let stableFor = 0;
      for (let i = 0; i < 300 && stableFor < 10; i++) {
        const before = written;
        await new Promise((r) => setTimeout(r, 10));
        stableFor = written === before ? stableFor + 1 : 0;
      }
      expect(stableFor).toBe(10);
      expect(written).toBeLessThan(64 * 1024 * 1024);
    } finally {
      socket.destroy();
    }
  });

  it('compresses HTTP/2 (h2c) responses too, a cached one included', async () => {
    await using proxy = await edgeProxy(
      [edgeFilter.cache(), edgeFilter.compression()],
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end(big);
      },
      { h2c: true },
    );
    const session = connectH2(proxy.origin);
    try {
      const fetchH2 = () =>
        new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
          const stream = session.request({ ':path': '/', 'accept-encoding': 'gzip' });
          const chunks: Buffer[] = [];
          let headers: Record<string, unknown> = {};
          stream.on('response', (h) => (headers = h));
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
          stream.on('error', reject);
        });
      for (const expected of ['MISS', 'HIT']) {
        const r = await fetchH2();
        expect([r.headers[':status'], r.headers['content-encoding'], r.headers['x-cache']]).toEqual([200, 'gzip', expected]);
        expect(gunzipSync(r.body).toString()).toBe(big);
      }
    } finally {
      session.close();
    }
  });
});
