import type { IncomingMessage, ServerResponse } from 'node:http';
import { SessionPersistence_Type, type Cluster, type HttpRoute, type Resource } from '@sluice/proto';
import { startBackend, type Backend } from '@sluice/testing';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlane } from './data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';

// The request path's resilience with real sockets: outlier ejection, circuit breaker, retry
// rules and budget, session persistence.

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';
const POOL = 'default/pool';

const cleanups: (() => PromiseLike<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

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

/** One listener routing everything to one cluster over `backends`. */
async function proxy(backends: Backend[], cluster: Partial<Cluster> = {}, routeOver: Partial<HttpRoute> = {}): Promise<{ dp: DataPlane; url: string }> {
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 2_000 });
  cleanups.push(() => dp.close());
  const resources: Resource[] = [
    clusterResource(POOL, undefined, cluster),
    endpointsResource(
      POOL,
      backends.map((b) => ({ port: b.port })),
    ),
    routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', POOL, routeOver)])]),
    listenerResource(LISTENER),
  ];
  expect(await dp.apply({ resources, removed: [] })).toEqual([]);
  return { dp, url: `http://127.0.0.1:${dp.listeners().get(LISTENER)!.port}` };
}

async function send(url: string, opts: { method?: string; headers?: Record<string, string>; dispatcher?: Agent } = {}) {
  const res = await request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, dispatcher: opts.dispatcher });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const retryOn = (on: string[], attempts = 1): Partial<HttpRoute> => ({ retry: { attempts, on, perTryTimeoutMs: 0 } });

const failing = (status: number) => (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  res.writeHead(status).end('failing\n');
};

describe('outlier detection on the request path', () => {
  it('ejects an endpoint after consecutive 5xx and sends everything to the others', async () => {
    const [good, bad] = [await backend('good'), await backend('bad', failing(500))];
    const { dp, url } = await proxy([good, bad], {
      outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 0, baseEjectionTimeMs: 60_000, maxEjectionPercent: 50, maxEjectionTimeMs: 0, intervalMs: 0 },
    });
    const agent = client();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await send(url, { dispatcher: agent })).status);
    // Round robin: the bad endpoint gets every other request until its third 500.
    expect(statuses.filter((s) => s === 500)).toHaveLength(3);
    expect(statuses.slice(6).every((s) => s === 200)).toBe(true);
    expect(bad.requests).toBe(3);
    const outliers = dp.clusterStats().get(POOL)!.outliers;
    expect(outliers.filter((o) => o.ejected)).toEqual([expect.objectContaining({ id: `${POOL}#1`, reason: 'consecutive-5xx', timesEjected: 1 })]);
  });
});

describe('circuit breaker on the request path', () => {
  it('answers 503 "upstream overloaded" at once over maxRequests, and counts it', async () => {
    const held: ServerResponse[] = [];
    let release = false;
    const slow = await backend('slow', (req, res) => {
      req.resume();
      if (release) res.end('done\n');
      else held.push(res);
    });
    const { dp, url } = await proxy([slow], { circuitBreaker: { maxConnections: 0, maxPendingRequests: 0, maxRequests: 2 } });
    const agent = client();
    const first = [send(url, { dispatcher: agent }), send(url, { dispatcher: agent })];
    while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    const over = await send(url, { dispatcher: agent });
    expect(performance.now() - started).toBeLessThan(500);
    expect(over).toMatchObject({ status: 503, text: 'upstream overloaded\n' });
    expect(over.headers.server).toBe('sluice');
    release = true;
    for (const res of held) res.end('done\n');
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    expect(dp.clusterStats().get(POOL)!.breaker).toMatchObject({ activeRequests: 0, requestOverflow: 1 });
    expect((await send(url, { dispatcher: agent })).status).toBe(200);
  });
  it('holds maxConnections per endpoint and refuses a try beyond maxPendingRequests waiting for one', async () => {
    const held: ServerResponse[] = [];
    let release = false;
    const slow = await backend('slow', (req, res) => {
      req.resume();
      if (release) res.end('done\n');
      else held.push(res);
    });
    const { dp, url } = await proxy([slow], { circuitBreaker: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 0 } });
    const agent = client();
    const onConnection = send(url, { dispatcher: agent });
    while (held.length < 1) await new Promise((r) => setTimeout(r, 5));
    const waiting = send(url, { dispatcher: agent });
    while (dp.clusterStats().get(POOL)!.breaker.pendingRequests < 1) await new Promise((r) => setTimeout(r, 5));
    expect(await send(url, { dispatcher: agent })).toMatchObject({ status: 503, text: 'upstream overloaded\n' });
    expect(held).toHaveLength(1); // one connection: the waiting request has not reached the backend
    release = true;
    held[0]!.end('done\n');
    expect((await Promise.all([onConnection, waiting])).map((r) => r.status)).toEqual([200, 200]);
    expect(dp.clusterStats().get(POOL)!.breaker).toMatchObject({ pendingRequests: 0, pendingOverflow: 1, requestOverflow: 0 });
  });
});

describe('retries on the request path', () => {
  it('does not retry a POST after a backend reset, but retries a GET', async () => {
    const reset = await backend('reset', (req) => req.socket.destroy());
    const ok = await backend('ok');
    const { url } = await proxy([reset, ok], {}, retryOn(['reset', 'connect-failure']));
    const agent = client();
    const posts: number[] = [];
    const gets: number[] = [];
    for (let i = 0; i < 6; i++) {
      posts.push((await send(url, { method: 'POST', dispatcher: agent })).status);
      gets.push((await send(url, { dispatcher: agent })).status);
    }
    // Round robin: POSTs that hit the resetting backend fail; every GET is retried to ok.
    expect(posts).toContain(502);
    expect(gets.every((s) => s === 200)).toBe(true);
  });

  it('retries a POST after a connect failure (it reached no backend)', async () => {
    const ok = await backend('ok');
    const dead = await backend('dead');
    await dead.kill();
    const { url } = await proxy([dead, ok], {}, retryOn(['connect-failure']));
    const agent = client();
    for (let i = 0; i < 6; i++) expect(await send(url, { method: 'POST', dispatcher: agent })).toMatchObject({ status: 200, text: 'ok\n' });
  });

  it('keeps retries in flight within the retry budget (max(3, 20 % of active requests))', async () => {
    // 10 requests wait at `held`, 10 get a 503 from `failing` once all 20 are in: 20 active, so
    // 4 of the 10 retries (to `held`, the only other endpoint) fit the budget.
    const held: ServerResponse[] = [];
    let release = false;
    const holding = await backend('held', (req, res) => {
      req.resume();
      if (release) res.end('held\n');
      else held.push(res);
    });
    const waiting: ServerResponse[] = [];
    const refusing = await backend('failing', (req, res) => {
      req.resume();
      waiting.push(res);
      if (waiting.length === 10) void answerWhenAllIn();
    });
    const answerWhenAllIn = async () => {
      while (held.length < 10) await new Promise((r) => setTimeout(r, 5));
      for (const res of waiting) res.writeHead(503).end('failing\n');
    };
    const { dp, url } = await proxy([holding, refusing], {}, retryOn(['gateway-error']));
    const agent = new Agent({ connections: 50 });
    cleanups.push(() => agent.close());
    const all = Promise.all(Array.from({ length: 20 }, () => send(url, { dispatcher: agent })));
    // Wait for the 6 over budget to be answered and the 4 retries to arrive, then release.
    const deadline = Date.now() + 5_000;
    while ((held.length < 14 || dp.clusterStats().get(POOL)!.breaker.retryBudgetExhausted < 6) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    release = true;
    for (const res of held) res.end('held\n');
    const statuses = (await all).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(14);
    expect(statuses.filter((s) => s === 503)).toHaveLength(6);
    expect(dp.clusterStats().get(POOL)!.breaker).toMatchObject({ retryBudgetExhausted: 6, activeRetries: 0, activeRequests: 0 });
  });
});

describe('session persistence on the request path', () => {
  const sticky = { type: SessionPersistence_Type.TYPE_COOKIE, cookieName: 'sticky', headerName: '', ttlMs: 0 };

  it('keeps a cookie-pinned client on its endpoint across 100 requests; moves it only when that endpoint dies, with a new cookie', async () => {
    const backends = [await backend('a'), await backend('b'), await backend('c')];
    const { url } = await proxy(
      backends,
      {
        sessionPersistence: sticky,
        outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 1, baseEjectionTimeMs: 60_000, maxEjectionPercent: 50, maxEjectionTimeMs: 0, intervalMs: 0 },
      },
      retryOn(['connect-failure', 'reset']),
    );
    const agent = client();
    const first = await send(url, { dispatcher: agent });
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/^sticky=[^;]+; Path=\/; HttpOnly$/);
    for (const b of backends) expect(setCookie).not.toContain(String(b.port));
    expect(setCookie).not.toContain('127.0.0.1');
    const cookie = setCookie.split(';')[0]!;
    const home = first.text;
    for (let i = 0; i < 100; i++) {
      const res = await send(url, { dispatcher: agent, headers: { cookie } });
      expect(res.text).toBe(home);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    await backends.find((b) => `${b.name}\n` === home)!.kill();
    const moved = await send(url, { dispatcher: agent, headers: { cookie } });
    expect(moved.status).toBe(200);
    expect(moved.text).not.toBe(home);
    const newCookie = String(moved.headers['set-cookie']).split(';')[0]!;
    expect(newCookie).not.toBe(cookie);
    expect(newCookie).not.toContain('127.0.0.1');
    for (let i = 0; i < 20; i++) {
      const res = await send(url, { dispatcher: agent, headers: { cookie: newCookie } });
      expect(res.text).toBe(moved.text);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // The old cookie now names an ejected endpoint: served elsewhere, cookie re-issued.
    const stale = await send(url, { dispatcher: agent, headers: { cookie } });
    expect(stale.status).toBe(200);
    expect(stale.headers['set-cookie']).toBeDefined();
  });

  it('keeps a header value on one endpoint (type Header)', async () => {
    const backends = [await backend('a'), await backend('b'), await backend('c')];
    const { url } = await proxy(backends, { sessionPersistence: { type: SessionPersistence_Type.TYPE_HEADER, cookieName: '', headerName: 'x-session', ttlMs: 0 } });
    const agent = client();
    for (const user of ['u1', 'u2', 'u3', 'u4']) {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await send(url, { dispatcher: agent, headers: { 'x-session': user } })).text);
      expect(seen.size).toBe(1);
    }
  });
});
