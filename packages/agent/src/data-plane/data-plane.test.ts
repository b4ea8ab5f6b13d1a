import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { ConsistentHash_Algorithm, LoadBalancingPolicy, MatchType, ResourceType, type ListenerLimits, type Resource } from '@sluice/proto';
import { startBackend, type Backend } from '@sluice/testing';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlane } from './data-plane.js';
import { clusterResource, endpointsResource, filter, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';

const cleanups: (() => PromiseLike<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dataPlane(options: { drainTimeoutMs?: number } = {}): DataPlane {
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: options.drainTimeoutMs ?? 2_000 });
  cleanups.push(() => dp.close());
  return dp;
}

async function backend(name: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<Backend> {
  const b = await startBackend(name, handler);
  cleanups.push(() => b[Symbol.asyncDispose]());
  return b;
}

function client(): Agent {
  const agent = new Agent({ keepAliveTimeout: 1_000 });
  cleanups.push(() => agent.close());
  return agent;
}

/** A listener, its route table, and one cluster per backend (named after it). */
function config(virtualHosts: Parameters<typeof routeTableResource>[1], backends: Backend[], listener: Partial<Parameters<typeof listenerResource>[1]> = {}): Resource[] {
  return [
    ...backends.flatMap((b) => [clusterResource(`default/${b.name}`), endpointsResource(`default/${b.name}`, [{ port: b.port }])]),
    routeTableResource(LISTENER, virtualHosts),
    listenerResource(LISTENER, listener),
  ];
}

function origin(dp: DataPlane, name = LISTENER): string {
  const l = dp.listeners().get(name);
  if (!l) throw new Error(`listener ${name} not bound`);
  return `http://127.0.0.1:${l.port}`;
}

async function get(url: string, opts: { headers?: Record<string, string>; method?: string; dispatcher?: Agent } = {}) {
  const res = await request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, dispatcher: opts.dispatcher });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('DataPlane routing', () => {
  it('sends each request to the backend its host, path, method, header and query select', async () => {
    const [a, b, c, d, e, f] = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => backend(n)));
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: config(
        [
          vhost(['shop.example.com'], [
            route('default/shop/rule/0/match/0', 'default/b', {}, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/exact' } }),
            route('default/shop/rule/1/match/0', 'default/c', {}, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/api' }, method: 'POST' }),
            route('default/shop/rule/2/match/0', 'default/d', {}, { headers: [{ name: 'x-canary', type: MatchType.MATCH_TYPE_EXACT, value: 'true' }] }),
            route('default/shop/rule/3/match/0', 'default/e', {}, { queryParams: [{ name: 'v', type: MatchType.MATCH_TYPE_REGULAR_EXPRESSION, value: '2|3' }] }),
            route('default/shop/rule/4/match/0', 'default/a'),
          ]),
          vhost(['*.example.com'], [route('default/wild/rule/0/match/0', 'default/f')]),
        ],
        [a!, b!, c!, d!, e!, f!],
      ),
      removed: [],
    });
    expect(errors).toEqual([]);
    const base = origin(dp);
    const host = (h: string) => ({ host: h });
    expect((await get(`${base}/exact`, { headers: host('shop.example.com') })).text).toBe('b\n');
    expect((await get(`${base}/exact/more`, { headers: host('shop.example.com') })).text).toBe('a\n');
    expect((await get(`${base}/api/x`, { headers: host('SHOP.example.com:8080'), method: 'POST' })).text).toBe('c\n');
    expect((await get(`${base}/api/x`, { headers: host('shop.example.com') })).text).toBe('a\n');
    expect((await get(`${base}/apix`, { headers: host('shop.example.com'), method: 'POST' })).text).toBe('a\n');
    expect((await get(`${base}/`, { headers: { host: 'shop.example.com', 'X-Canary': 'true' } })).text).toBe('d\n');
    expect((await get(`${base}/?v=3`, { headers: host('shop.example.com') })).text).toBe('e\n');
    expect((await get(`${base}/?v=33`, { headers: host('shop.example.com') })).text).toBe('a\n');
    expect((await get(`${base}/`, { headers: host('x.y.example.com') })).text).toBe('f\n');
    const miss = await get(`${base}/nothing`, { headers: host('other.test') });
    expect(miss.status).toBe(404);
    expect(miss.text).toBe('no route for host "other.test" path "/nothing"\n');
  });

  it('splits a route between weighted backends (canary) within tolerance', async () => {
    const [stable, canary] = await Promise.all([backend('stable'), backend('canary')]);
    const dp = dataPlane();
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', [['default/stable', 90], ['default/canary', 10]])])], [stable, canary]), removed: [] });
    const base = origin(dp);
    const agent = client();
    const counts = { 'stable\n': 0, 'canary\n': 0 } as Record<string, number>;
    for (let i = 0; i < 50; i++) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => get(`${base}/`, { dispatcher: agent })));
      for (const r of batch) counts[r.text] = (counts[r.text] ?? 0) + 1;
    }
    expect(counts['stable\n']! + counts['canary\n']!).toBe(1000);
    expect(counts['canary\n']).toBeGreaterThanOrEqual(80);
    expect(counts['canary\n']).toBeLessThanOrEqual(120);
  });

  it('applies header modifiers, URL rewrite and redirects', async () => {
    const seen: IncomingMessage[] = [];
    const a = await backend('a', (req, res) => {
      seen.push(req);
      res.setHeader('x-internal', 'secret');
      res.setHeader('x-keep', 'yes');
      res.end('a\n');
    });
    const dp = dataPlane();
    await dp.apply({
      resources: config(
        [
          vhost(['*'], [
            route('default/r/rule/0/match/0', 'default/a', {
              filters: [
                filter.requestHeaders([['x-env', 'prod']], [['x-added', 'one']], ['x-debug']),
                filter.responseHeaders([['x-served-by', 'sluice']], [], ['x-internal']),
                { filter: { $case: 'urlRewrite', value: { hostname: 'internal.svc', path: { $case: 'replacePrefixMatch', value: '/v1' } } } },
              ],
            }, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/api' } }),
            route('default/r/rule/1/match/0', [], {
              filters: [{ filter: { $case: 'requestRedirect', value: { scheme: 'https', hostname: '', port: 0, statusCode: 301, path: { $case: 'replacePrefixMatch', value: '/new' } } } }],
            }, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/old' } }),
          ]),
        ],
        [a],
      ),
      removed: [],
    });
    const base = origin(dp);
    const res = await get(`${base}/api/items?q=1`, { headers: { host: 'shop.example.com', 'x-debug': '1', 'x-env': 'dev' } });
    expect(res.status).toBe(200);
    expect(res.headers['x-internal']).toBeUndefined();
    expect(res.headers['x-keep']).toBe('yes');
    expect(res.headers['x-served-by']).toBe('sluice');
    const req = seen[0]!;
    expect(req.url).toBe('/v1/items?q=1');
    expect(req.headers.host).toBe('internal.svc');
    expect(req.headers['x-forwarded-host']).toBe('shop.example.com');
    expect(req.headers['x-env']).toBe('prod');
    expect(req.headers['x-added']).toBe('one');
    expect(req.headers['x-debug']).toBeUndefined();

    const redirect = await get(`${base}/old/page?x=1`, { headers: { host: 'shop.example.com:8080' } });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('https://shop.example.com/new/page?x=1');
  });

  it('extends X-Forwarded-For only for trusted proxies', async () => {
    const a = await backend('a');
    const untrusted = dataPlane();
    await untrusted.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a], { trustedProxies: ['10.0.0.0/8'] }), removed: [] });
    await get(`${origin(untrusted)}/`, { headers: { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' } });
    expect(a.last?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(a.last?.headers['x-forwarded-proto']).toBe('http');

    const trusted = dataPlane();
    await trusted.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a], { trustedProxies: ['127.0.0.0/8'] }), removed: [] });
    await get(`${origin(trusted)}/`, { headers: { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' } });
    expect(a.last?.headers['x-forwarded-for']).toBe('1.2.3.4, 127.0.0.1');
    expect(a.last?.headers['x-forwarded-proto']).toBe('https');
  });

  it('strips hop-by-hop headers both ways, including those named in Connection', async () => {
    const a = await backend('a', (req, res) => {
      req.resume();
      res.writeHead(200, { connection: 'keep-alive, x-hop-res', 'x-hop-res': '1', 'keep-alive': 'timeout=5', 'x-end': '1' });
      res.end('a\n');
    });
    const dp = dataPlane();
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a]), removed: [] });
    // A raw request, so that the client library does not police the headers we send.
    const { port } = dp.listeners().get(LISTENER)!;
    const response = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-End: 1\r\n\r\n');
    const h = a.last!.headers;
    expect(h['x-hop']).toBeUndefined();
    expect(h['te']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h['proxy-connection']).toBeUndefined();
    expect(h['x-end']).toBe('1');
    expect(response.toLowerCase()).not.toContain('x-hop-res');
    expect(response.toLowerCase()).not.toContain('keep-alive: timeout=5');
    expect(response.toLowerCase()).toContain('x-end: 1');
  });
});

describe('DataPlane path normalization', () => {
  async function apiAndRoot() {
    const seen: string[] = [];
    const record = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
      seen.push(`${name} ${req.url ?? ''}`);
      req.resume();
      res.end(`${name}\n`);
    };
    const [api, root] = await Promise.all([backend('api', record('api')), backend('root', record('root'))]);
    const dp = dataPlane();
    await dp.apply({
      resources: config(
        [
          vhost(['*'], [
            route('default/r/rule/0/match/0', 'default/api', {}, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/api' } }),
            route('default/r/rule/1/match/0', 'default/root'),
          ]),
        ],
        [api, root],
      ),
      removed: [],
    });
    const { port } = dp.listeners().get(LISTENER)!;
    const send = async (target: string) => parseResponse(await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    return { seen, send, api };
  }

  it('matches and forwards the normalized path, so /api/../admin does not take the /api route', async () => {
    const { seen, send } = await apiAndRoot();
    const cases: [string, string][] = [
      ['/api/../admin?next=/api/../x', 'root /admin?next=/api/../x'],
      ['/api/%2e%2e/admin', 'root /admin'],
      ['/api/%2E%2E/admin', 'root /admin'],
      ['/api%2F..%2Fadmin', 'root /api%2F..%2Fadmin'],
      ['//api//items/./1', 'api /api/items/1'],
      ['/admin/../api/%69tems', 'api /api/items'],
      ['/api/items?q=%2e%2e', 'api /api/items?q=%2e%2e'],
      ['http://x/api/../admin', 'root /admin'],
    ];
    for (const [target, expected] of cases) {
      const res = await send(target);
      expect([target, res.status, seen.at(-1)]).toEqual([target, 200, expected]);
    }
  });

  it('refuses a path that escapes the root or is badly encoded with a 400, before any backend', async () => {
    const { seen, send } = await apiAndRoot();
    for (const target of ['/../etc/passwd', '/api/../../admin', '/api/%2e%2e/%2e%2e/admin', '/api/a%zz', '/api/a%00b']) {
      const res = await send(target);
      expect([target, res.status, res.body]).toEqual([target, 400, 'bad request path\n']);
    }
    expect(seen).toEqual([]);
  });
});

/**
 * A raw client connection, so that the client library neither polices nor normalizes what
 * we send. `closed` resolves with everything received once the connection is gone (a reset
 * included: what matters is what arrived).
 */
class RawClient {
  text = '';
  readonly closed: Promise<string>;
  private readonly socket: Socket;
  private waiting: { marker: string; resolve: () => void }[] = [];

  constructor(port: number, localAddress?: string) {
    this.socket = connect({ port, host: '127.0.0.1', localAddress });
    this.socket.setEncoding('utf8');
    this.socket.on('error', () => undefined);
    this.socket.on('data', (d: string) => {
      this.text += d;
      this.waiting = this.waiting.filter((w) => !this.text.includes(w.marker) || (w.resolve(), false));
    });
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve(this.text)));
    cleanups.push(async () => {
      this.socket.destroy();
      await this.closed;
    });
  }

  write(text: string): this {
    this.socket.write(text);
    return this;
  }

  /** Resolves once `marker` has been received. */
  until(marker: string): Promise<void> {
    if (this.text.includes(marker)) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ marker, resolve }));
  }
}

function rawRequest(port: number, text: string): Promise<string> {
  return new RawClient(port).write(text).closed;
}

/** Status and body (de-chunked) of a raw HTTP/1.1 response. */
function parseResponse(text: string): { status: number; body: string } {
  const end = text.indexOf('\r\n\r\n');
  let body = end < 0 ? '' : text.slice(end + 4);
  if (/\r\ntransfer-encoding: chunked\r\n/i.test(text.slice(0, end + 2))) {
    let out = '';
    let at = 0;
    for (;;) {
      const line = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, line), 16);
      if (!(size > 0)) break;
      out += body.slice(line + 2, line + 2 + size);
      at = line + 2 + size + 2;
    }
    body = out;
  }
  return { status: Number(text.slice(9, 12)), body };
}

describe('DataPlane errors', () => {
  it('hides the backend identity headers; server: sluice only on its own answers', async () => {
    const a = await backend('a', (req, res) => {
      req.resume();
      res.writeHead(200, { server: 'gunicorn/20.1', 'x-powered-by': 'Express', 'x-keep': '1' });
      res.end('a\n');
    });
    const dp = dataPlane();
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a', {}, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/' } })])], [a]), removed: [] });
    const res = await get(`${origin(dp)}/`);
    expect(res.text).toBe('a\n');
    expect(res.headers.server).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-keep']).toBe('1');
    expect((await get(`${origin(dp)}/missing`)).headers.server).toBe('sluice');
  });

  it('answers 404, 502, 503 and 504 with a short reason and never a backend address', async () => {
    const slow = await backend('slow', (req) => {
      req.resume(); // never answers
    });
    const dead = await backend('dead');
    await dead.kill();
    const dp = dataPlane();
    await dp.apply({
      resources: [
        ...config(
          [
            vhost(['*'], [
              route('default/r/rule/0/match/0', 'default/dead', {}, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/dead' } }),
              route('default/r/rule/1/match/0', 'default/missing', {}, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/missing' } }),
              route('default/r/rule/2/match/0', 'default/empty', {}, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/empty' } }),
              route('default/r/rule/3/match/0', 'default/slow', { requestTimeoutMs: 200 }, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/slow' } }),
              route('default/r/rule/4/match/0', 'default/slow', { backendRequestTimeoutMs: 200 }, { path: { type: MatchType.MATCH_TYPE_EXACT, value: '/slow-try' } }),
            ]),
          ],
          [dead, slow],
        ),
        clusterResource('default/empty'),
        endpointsResource('default/empty', [{ port: 1, weight: 0 }]),
      ],
      removed: [],
    });
    const base = origin(dp);
    const cases: [string, number, RegExp][] = [
      ['/nope', 404, /^no route for host/],
      ['/dead', 502, /^upstream connect error/],
      ['/missing', 503, /^upstream default\/missing is not available/],
      ['/empty', 503, /^no endpoint available for upstream default\/empty/],
      ['/slow', 504, /^upstream request timeout/],
      ['/slow-try', 504, /^upstream request timeout/],
    ];
    for (const [path, status, body] of cases) {
      // The 404 echoes the Host the client sent; give one that is not an address.
      const res = await get(`${base}${path}`, { headers: { host: 'shop.test' } });
      expect([path, res.status]).toEqual([path, status]);
      expect(res.text).toMatch(body);
      expect(res.text).not.toContain('127.0.0.1');
      expect(res.text).not.toContain(String(dead.port));
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.headers.server).toBe('sluice');
    }
  });

  it('retries a connect failure on another endpoint', async () => {
    const live = await backend('live');
    const dead = await backend('dead');
    await dead.kill();
    const dp = dataPlane();
    await dp.apply({
      resources: [
        clusterResource('default/pool'),
        endpointsResource('default/pool', [{ port: dead.port }, { port: live.port }]),
        routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/pool', { retry: { attempts: 1, on: ['connect-failure'], perTryTimeoutMs: 0 } })])]),
        listenerResource(LISTENER),
      ],
      removed: [],
    });
    const agent = client();
    for (let i = 0; i < 10; i++) {
      const res = await get(`${origin(dp)}/`, { dispatcher: agent, method: 'POST' });
      expect(res.status).toBe(200);
      expect(res.text).toBe('live\n');
    }
  });

  it('retries a gateway error without a body on another endpoint', async () => {
    const ok = await backend('ok');
    const bad = await backend('bad', (req, res) => {
      req.resume();
      res.writeHead(503).end('busy');
    });
    const dp = dataPlane();
    await dp.apply({
      resources: [
        clusterResource('default/pool'),
        endpointsResource('default/pool', [{ port: bad.port }, { port: ok.port }]),
        routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/pool', { retry: { attempts: 1, on: ['gateway-error'], perTryTimeoutMs: 0 } })])]),
        listenerResource(LISTENER),
      ],
      removed: [],
    });
    for (let i = 0; i < 6; i++) expect((await get(`${origin(dp)}/`)).text).toBe('ok\n');
  });
});

describe('DataPlane listener limits', () => {
  const LIMITS: ListenerLimits = {
    maxConnections: 0,
    maxConnectionsPerClient: 0,
    maxRequestHeaderBytes: 0,
    maxRequestHeaders: 0,
    maxRequestBodyBytes: 0,
    requestHeadersTimeoutMs: 0,
    requestBodyTimeoutMs: 0,
    idleTimeoutMs: 0,
  };

  async function limited(limits: Partial<ListenerLimits>, handler?: (req: IncomingMessage, res: ServerResponse) => void) {
    const a = await backend('a', handler);
    const dp = dataPlane();
    const resources = config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a], { limits: { ...LIMITS, ...limits } });
    expect(await dp.apply({ resources, removed: [] })).toEqual([]);
    return { a, dp, port: dp.listeners().get(LISTENER)!.port };
  }

  it('answers 431 to request headers over max_request_header_bytes, and applies a change without rebinding', async () => {
    const { dp, port } = await limited({ maxRequestHeaderBytes: 1024 });
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(2000)}\r\nConnection: close\r\n\r\n`;
    const small = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    expect(parseResponse(await rawRequest(port, big)).status).toBe(431);
    expect(parseResponse(await rawRequest(port, small))).toEqual({ status: 200, body: 'a\n' });

    await dp.apply({ resources: [listenerResource(LISTENER, { limits: { ...LIMITS, maxRequestHeaderBytes: 8192 } })], removed: [] });
    expect(dp.listeners().get(LISTENER)?.port).toBe(port);
    expect(parseResponse(await rawRequest(port, big))).toEqual({ status: 200, body: 'a\n' });
  });

  it('answers 413 at once, without the backend, to a Content-Length over max_request_body_bytes', async () => {
    const { a, port } = await limited({ maxRequestBodyBytes: 1000 });
    const res = parseResponse(await rawRequest(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n'));
    expect(res).toEqual({ status: 413, body: 'request body too large\n' });
    expect(a.requests).toBe(0);
    const ok = parseResponse(await rawRequest(port, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n${'x'.repeat(1000)}`));
    expect(ok).toEqual({ status: 200, body: 'a\n' });
  });

  it('counts a chunked body against max_request_body_bytes: 413 before the response starts', async () => {
    const { port } = await limited({ maxRequestBodyBytes: 1000 });
    const chunk = (n: number) => `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`;
    const head = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    expect(parseResponse(await rawRequest(port, `${head}${chunk(400)}${chunk(400)}0\r\n\r\n`))).toEqual({ status: 200, body: 'a\n' });
    expect(parseResponse(await rawRequest(port, `${head}${chunk(800)}${chunk(800)}0\r\n\r\n`))).toEqual({ status: 413, body: 'request body too large\n' });
  });

  it('resets a response already under way when the body goes over max_request_body_bytes', async () => {
    const { port } = await limited({ maxRequestBodyBytes: 1000 }, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started\n');
      req.resume();
      req.on('end', () => res.end('done\n'));
    });
    const client = new RawClient(port).write('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n');
    await client.until('started\n');
    client.write(`7d0\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`);
    const text = await client.closed;
    expect(text).toMatch(/^HTTP\/1.1 200/);
    expect(text).not.toContain('done');
  });

  it('answers 408 to a client that stalls sending its body past request_body_timeout_ms', async () => {
    const { port } = await limited({ requestBodyTimeoutMs: 100 });
    const text = await new RawClient(port).write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc').closed;
    expect(parseResponse(text)).toEqual({ status: 408, body: 'request body timeout\n' });
    expect(text.toLowerCase()).toContain('connection: close');
  });

  it('closes a new connection over max_connections_per_client, counting per source address', async () => {
    const { port } = await limited({ maxConnectionsPerClient: 1 });
    const request = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
    const first = new RawClient(port).write(request);
    await first.until('\r\n0\r\n\r\n');
    expect(await new RawClient(port).write(request).closed).toBe('');
    const other = await new RawClient(port, '127.0.0.2').write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n').closed;
    expect(parseResponse(other)).toEqual({ status: 200, body: 'a\n' });
    // The first connection is still served.
    first.write(request);
    await first.until('\r\n0\r\n\r\nHTTP/1.1 200');
  });
});

describe('DataPlane streaming', () => {
  const SIZE = 50 * 1024 * 1024;
  const CHUNK = Buffer.alloc(64 * 1024, 120);

  it('streams a 50 MB upload and download both ways without buffering', async () => {
    let firstChunkAt = -1;
    let clientSent = 0;
    let received = 0;
    let backendSent = 0;
    const b = await backend('big', (req, res) => {
      if (req.method === 'POST') {
        req.on('data', (chunk: Buffer) => {
          if (firstChunkAt < 0) firstChunkAt = clientSent;
          received += chunk.length;
        });
        req.on('end', () => res.end(String(received)));
        return;
      }
      res.writeHead(200, { 'content-length': SIZE });
      const pump = (): void => {
        while (backendSent < SIZE) {
          backendSent += CHUNK.length;
          if (!res.write(CHUNK)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const dp = dataPlane();
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/big')])], [b]), removed: [] });
    const base = origin(dp);

    const upload = Readable.from(
      (function* () {
        for (let sent = 0; sent < SIZE; sent += CHUNK.length) {
          clientSent = sent;
          yield CHUNK;
        }
        clientSent = SIZE;
      })(),
    );
    const up = await request(`${base}/upload`, { method: 'POST', body: upload, headers: { 'content-length': String(SIZE) } });
    expect(await up.body.text()).toBe(String(SIZE));
    // The backend had the first bytes while the client still had most of the body to send.
    expect(firstChunkAt).toBeGreaterThanOrEqual(0);
    expect(firstChunkAt).toBeLessThan(SIZE / 2);

    // Download with a client that stops reading after the first chunk: backpressure must
    // reach the backend, so it cannot have sent much more than the socket buffers hold.
    const down = await request(`${base}/download`);
    const chunks = down.body[Symbol.asyncIterator]();
    let got = ((await chunks.next()).value as Buffer).length;
    await new Promise((r) => setTimeout(r, 300));
    expect(backendSent).toBeLessThan(SIZE / 2);
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) got += (next.value as Buffer).length;
    expect(got).toBe(SIZE);
  });
});

describe('DataPlane config changes', () => {
  it('applies a weight change under steady concurrent load with zero failed requests', async () => {
    const [a, b] = await Promise.all([backend('a'), backend('b')]);
    const dp = dataPlane();
    const endpoints = (wa: number, wb: number) => endpointsResource('default/pool', [{ port: a.port, weight: wa }, { port: b.port, weight: wb }]);
    await dp.apply({
      resources: [
        clusterResource('default/pool', LoadBalancingPolicy.LOAD_BALANCING_POLICY_WEIGHTED_ROUND_ROBIN),
        endpoints(1, 1),
        routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/pool')])]),
        listenerResource(LISTENER),
      ],
      removed: [],
    });
    const base = origin(dp);
    const agent = client();
    let failures = 0;
    let total = 0;
    let running = true;
    // Progress is counted in requests, not time: each weight change lands while requests flow.
    let waiter: { until: number; resolve: () => void } | undefined;
    const afterRequests = (n: number) => new Promise<void>((resolve) => (waiter = { until: total + n, resolve }));
    const worker = async () => {
      while (running) {
        try {
          const res = await get(`${base}/`, { dispatcher: agent });
          if (res.status !== 200) failures++;
        } catch {
          failures++;
        }
        total++;
        if (waiter !== undefined && total >= waiter.until) {
          waiter.resolve();
          waiter = undefined;
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    const weights: [number, number][] = [[5, 1], [1, 5], [0, 1], [1, 0], [3, 3], [1, 2]];
    for (const [wa, wb] of weights) {
      await afterRequests(30);
      expect(await dp.apply({ resources: [endpoints(wa, wb)], removed: [] })).toEqual([]);
    }
    await afterRequests(30);
    running = false;
    await Promise.all(workers);
    expect(total).toBeGreaterThanOrEqual(7 * 30);
    expect(failures).toBe(0);
  });

  it('keeps the socket of an unchanged listener and finishes in-flight requests on the table they began with', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const old = await backend('old', (req, res) => {
      req.resume();
      void held.then(() => res.end('old\n'));
    });
    const fresh = await backend('new');
    const dp = dataPlane();
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/old')])], [old, fresh]), removed: [] });
    const before = dp.listeners().get(LISTENER);
    const inFlight = get(`${origin(dp)}/`);
    while (old.requests === 0) await new Promise((r) => setTimeout(r, 5));

    const errors = await dp.apply({ resources: [routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/new')])])], removed: [] });
    expect(errors).toEqual([]);
    expect(dp.listeners().get(LISTENER)).toEqual(before);
    expect((await get(`${origin(dp)}/`)).text).toBe('new\n');
    release();
    expect((await inFlight).text).toBe('old\n');
  });

  it('rejects a listener whose port is taken while the rest of the update applies', async () => {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => squatter.close(r)));
    const taken = (squatter.address() as AddressInfo).port;
    const a = await backend('a');
    const dp = dataPlane();
    const resources = [
      ...config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a]),
      routeTableResource('default/blocked', [vhost(['*'], [route('default/b/rule/0/match/0', 'default/a')])]),
      listenerResource('default/blocked', { port: taken }),
    ];
    const errors = await dp.apply({ resources, removed: [] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      key: { type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/blocked' },
      message: expect.stringContaining('EADDRINUSE'),
      sources: [{ kind: 'Listener', namespace: 'default', name: 'blocked' }],
    });
    expect([...dp.listeners().keys()]).toEqual([LISTENER]);
    expect((await get(`${origin(dp)}/`)).text).toBe('a\n');
    expect(dp.resources().filter((r) => r.body?.$case === 'listener').map((r) => r.name)).toEqual([LISTENER]);
  });

  it('keeps the previous version of a rejected route table and names its route', async () => {
    const [a, b] = await Promise.all([backend('a'), backend('b')]);
    const dp = dataPlane();
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a, b]), removed: [] });
    const bad = routeTableResource(LISTENER, [
      vhost(['*'], [route('default/r/rule/0/match/0', 'default/b', { filters: [{ filter: { $case: 'compression', value: { algorithms: ['lzma'], minBytes: 0, contentTypes: [] } } }] })]),
    ]);
    const errors = await dp.apply({ resources: [bad], removed: [] });
    expect(errors).toEqual([
      {
        key: { type: ResourceType.RESOURCE_TYPE_ROUTE_TABLE, name: LISTENER },
        version: bad.version,
        message: expect.stringContaining('filters[0].algorithms[0]: unknown algorithm "lzma"'),
        sources: [{ kind: 'Route', namespace: 'default', name: 'r' }],
      },
    ]);
    expect((await get(`${origin(dp)}/`)).text).toBe('a\n');
  });

  it('removes a listener and frees its port', async () => {
    const a = await backend('a');
    const dp = dataPlane({ drainTimeoutMs: 200 });
    await dp.apply({ resources: config([vhost(['*'], [route('default/r/rule/0/match/0', 'default/a')])], [a]), removed: [] });
    const base = origin(dp);
    expect((await get(`${base}/`)).status).toBe(200);
    await dp.apply({ resources: [], removed: [{ type: ResourceType.RESOURCE_TYPE_LISTENER, name: LISTENER }] });
    expect(dp.listeners().size).toBe(0);
    await expect(get(`${base}/`, { dispatcher: client() })).rejects.toThrow();
    expect(dp.resources().map((r) => r.body?.$case)).toEqual(['cluster', 'endpoints', 'routeTable']);
  });
});

describe('DataPlane load balancing', () => {
  it('runs every policy itself (no fallback, no warning) and rejects an unknown policy value', async () => {
    const warnings: string[] = [];
    const dp = new DataPlane({ logger: { ...silent, warn: (msg: string) => warnings.push(msg) }, allowEphemeralPorts: true });
    cleanups.push(() => dp.close());
    const cluster = clusterResource('default/pool', LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS);
    await dp.apply({ resources: [cluster, endpointsResource('default/pool', [{ port: 1 }])], removed: [] });
    await dp.apply({ resources: [endpointsResource('default/pool', [{ port: 1, weight: 2 }])], removed: [] });
    expect(await dp.apply({ resources: [clusterResource('default/pool', LoadBalancingPolicy.LOAD_BALANCING_POLICY_RANDOM)], removed: [] })).toEqual([]);
    expect(warnings).toEqual([]);
    const errors = await dp.apply({ resources: [clusterResource('default/pool', LoadBalancingPolicy.UNRECOGNIZED)], removed: [] });
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/^load_balancing\.policy: must be set to a known policy/)]);
  });

  it('hashes a request header to the same endpoint every time (consistent hash through the proxy)', async () => {
    const backends = await Promise.all(['b0', 'b1', 'b2'].map((n) => backend(n)));
    const dp = dataPlane();
    const lb = {
      policy: LoadBalancingPolicy.LOAD_BALANCING_POLICY_CONSISTENT_HASH,
      panicThresholdPercent: 50,
      choiceCount: 0,
      consistentHash: { key: { key: { $case: 'header' as const, value: 'x-user' } }, algorithm: ConsistentHash_Algorithm.ALGORITHM_MAGLEV, boundedLoadPercent: 0, tableSize: 0 },
    };
    await dp.apply({
      resources: [
        clusterResource('default/pool', LoadBalancingPolicy.LOAD_BALANCING_POLICY_CONSISTENT_HASH, { loadBalancing: lb }),
        endpointsResource('default/pool', backends.map((b) => ({ port: b.port }))),
        routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/pool')])]),
        listenerResource(LISTENER, {}),
      ],
      removed: [],
    });
    const base = origin(dp);
    const agent = client();
    const seen = new Set<string>();
    for (let u = 0; u < 12; u++) {
      const answers = new Set<string>();
      for (let i = 0; i < 5; i++) answers.add((await get(`${base}/`, { headers: { 'x-user': `user-${u}` }, dispatcher: agent })).text);
      expect(answers.size).toBe(1);
      seen.add([...answers][0]!);
    }
    expect(seen.size).toBeGreaterThan(1);
  });
});
