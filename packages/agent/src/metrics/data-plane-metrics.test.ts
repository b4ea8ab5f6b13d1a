import { setImmediate as nextTurn } from 'node:timers/promises';
import { createSocket } from 'node:dgram';
import { createServer, connect, type AddressInfo } from 'node:net';
import { MatchType, Protocol } from '@sluice/proto';
import { startBackend, type Backend } from '@sluice/testing';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DataPlane } from '../data-plane/data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from '../data-plane/test-support/resources.js';
import { AccessLog, type AccessLogEntry } from './access-log.js';
import { BucketHistogram } from './histogram.js';
import { exposition, type MetricsJSON } from './registry.js';
import { isValidRequestId, requestIdSource } from './request-id.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';

const cleanups: (() => PromiseLike<unknown>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(accessLog: boolean): Promise<{ dp: DataPlane; backend: Backend; origin: string; client: Agent }> {
  const backend = await startBackend('a');
  cleanups.push(() => backend[Symbol.asyncDispose]());
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
  cleanups.push(() => dp.close());
  const errors = await dp.apply({
    resources: [
      clusterResource('default/a'),
      endpointsResource('default/a', [{ port: backend.port }]),
      routeTableResource(LISTENER, [vhost(['*'], [route('default/shop/rule/0/match/0', 'default/a', {}, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/shop' } })])]),
      listenerResource(LISTENER, { accessLog }),
    ],
    removed: [],
  });
  expect(errors).toEqual([]);
  const client = new Agent({ keepAliveTimeout: 1_000 });
  cleanups.push(() => client.close());
  return { dp, backend, origin: `http://127.0.0.1:${dp.listeners().get(LISTENER)!.port}`, client };
}

function value(metrics: MetricsJSON[], name: string, labels: Record<string, string | number>, series?: string): number | undefined {
  const metric = metrics.flat().find((m) => m.name === name);
  return metric?.values.find((v) => (v as { metricName?: string }).metricName === series && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('request metrics, request ids and the access log', () => {
  it('counts requests by route, upstream and class; times requests and tries; reports endpoints and connections', async () => {
    const { dp, backend, origin, client } = await setup(false);
    for (let i = 0; i < 3; i++) expect((await request(`${origin}/shop/${i}`, { dispatcher: client }).then(async (r) => (await r.body.text(), r))).statusCode).toBe(200);
    expect((await request(`${origin}/nowhere`, { dispatcher: client }).then(async (r) => (await r.body.text(), r))).statusCode).toBe(404);
    await nextTurn();
    const metrics = await dp.collectMetrics();
    const labels = { listener: LISTENER, route: 'default/shop', upstream: 'default/a' };
    expect(value(metrics, 'sluice_agent_requests_total', { ...labels, code_class: '2xx' })).toBe(3);
    expect(value(metrics, 'sluice_agent_requests_total', { listener: LISTENER, route: '', upstream: '', code_class: '4xx' })).toBe(1);
    expect(value(metrics, 'sluice_agent_request_duration_seconds', { listener: LISTENER }, 'sluice_agent_request_duration_seconds_count')).toBe(4);
    expect(value(metrics, 'sluice_agent_upstream_request_duration_seconds', { upstream: 'default/a' }, 'sluice_agent_upstream_request_duration_seconds_count')).toBe(3);
    expect(value(metrics, 'sluice_agent_upstream_request_duration_seconds', { upstream: 'default/a', le: '+Inf' }, 'sluice_agent_upstream_request_duration_seconds_bucket')).toBe(3);
    const endpoint = `127.0.0.1:${backend.port}`;
    expect(value(metrics, 'sluice_agent_endpoint_healthy', { upstream: 'default/a', endpoint })).toBe(1);
    expect(value(metrics, 'sluice_agent_endpoint_weight', { upstream: 'default/a', endpoint })).toBe(1);
    // The keep-alive client holds its connection open.
    expect(value(metrics, 'sluice_agent_active_connections', { listener: LISTENER })).toBeGreaterThanOrEqual(1);
    const text = await exposition(metrics);
    expect(text).toContain('sluice_agent_requests_total{listener="default/web",route="default/shop",upstream="default/a",code_class="2xx"} 3');
  });

  it('keeps a valid client request id, replaces a bad one, sends it upstream and back; passes traceparent untouched', async () => {
    const { backend, origin, client } = await setup(false);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const kept = await request(`${origin}/shop`, { dispatcher: client, headers: { 'x-request-id': 'req-42:abc', traceparent, tracestate: 'congo=t61rcWkgMzE' } });
    await kept.body.text();
    expect(kept.headers['x-request-id']).toBe('req-42:abc');
    expect(backend.last?.headers['x-request-id']).toBe('req-42:abc');
    expect(backend.last?.headers.traceparent).toBe(traceparent);
    expect(backend.last?.headers.tracestate).toBe('congo=t61rcWkgMzE');

    const replaced = await request(`${origin}/shop`, { dispatcher: client, headers: { 'x-request-id': 'has "quotes" and spaces' } });
    await replaced.body.text();
    const id = replaced.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(backend.last?.headers['x-request-id']).toBe(id);

    const fresh = await request(`${origin}/nowhere`, { dispatcher: client });
    await fresh.body.text();
    expect(fresh.statusCode).toBe(404);
    expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f]{12}-/);
    expect(fresh.headers['x-request-id']).not.toBe(id);
  });

  it('writes one JSON line per request when the listener enables the access log', async () => {
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = String(chunk);
      if (text.includes('"request_id"')) {
        lines.push(...text.trimEnd().split('\n'));
        return true;
      }
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    });
    const { backend, origin, client } = await setup(true);
    const response = await request(`${origin}/shop/x?q=1`, { dispatcher: client, headers: { 'user-agent': 'metrics-test', 'x-request-id': 'log-1' } });
    await response.body.text();
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    const entry = JSON.parse(lines[0]!) as AccessLogEntry;
    expect(entry).toMatchObject({
      request_id: 'log-1',
      listener: LISTENER,
      route: 'default/shop/rule/0/match/0',
      upstream: 'default/a',
      endpoint: `127.0.0.1:${backend.port}`,
      client_address: '127.0.0.1',
      method: 'GET',
      path: '/shop/x?q=1',
      protocol: 'HTTP/1.1',
      status: 200,
      user_agent: 'metrics-test',
      retries: 0,
    });
    expect(entry.authority).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(entry.bytes_sent).toBeGreaterThan(0);
    expect(entry.duration_ms).toBeGreaterThanOrEqual(entry.upstream_duration_ms ?? Infinity);
    expect(Date.parse(entry.time)).not.toBeNaN();
  });
});

/** Access-log lines written to stdout while a test runs (other output passes through). */
function captureAccessLog(): string[] {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('"listener"')) {
      lines.push(...text.trimEnd().split('\n'));
      return true;
    }
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  });
  return lines;
}

describe('L4 metrics and access log', () => {
  it('counts TCP connections by upstream and bytes both ways, and logs the connection', async () => {
    const lines = captureAccessLog();
    const echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => echo.close(() => resolve())));
    const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
    cleanups.push(() => dp.close());
    const l4Route = { sources: [], backends: [{ cluster: 'default/echo', weight: 1 }], idleTimeoutMs: 0, hostnames: [] };
    expect(
      await dp.apply({
        resources: [
          clusterResource('default/echo'),
          endpointsResource('default/echo', [{ port: (echo.address() as AddressInfo).port }]),
          listenerResource('default/tcp', { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route, accessLog: true }),
        ],
        removed: [],
      }),
    ).toEqual([]);
    const socket = connect(dp.listeners().get('default/tcp')!.port, '127.0.0.1');
    socket.write('hello');
    const echoed = await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(String(chunk))));
    expect(echoed).toBe('hello');
    expect(value(await dp.collectMetrics(), 'sluice_agent_active_connections', { listener: 'default/tcp' })).toBe(1);
    socket.end();
    await new Promise((resolve) => socket.once('close', resolve));
    await vi.waitFor(async () => {
      const metrics = await dp.collectMetrics();
      expect(value(metrics, 'sluice_agent_l4_connections_total', { listener: 'default/tcp', upstream: 'default/echo' })).toBe(1);
      expect(value(metrics, 'sluice_agent_l4_bytes_total', { listener: 'default/tcp', direction: 'in' })).toBe(5);
      expect(value(metrics, 'sluice_agent_l4_bytes_total', { listener: 'default/tcp', direction: 'out' })).toBe(5);
    });
    await vi.waitFor(() => expect(lines).toHaveLength(1));
    expect(JSON.parse(lines[0]!)).toMatchObject({
      listener: 'default/tcp',
      protocol: 'TCP',
      upstream: 'default/echo',
      endpoint: `127.0.0.1:${(echo.address() as AddressInfo).port}`,
      client_address: '127.0.0.1',
      bytes_received: 5,
      bytes_sent: 5,
    });
  });

  it('counts UDP sessions and datagram bytes, and logs the session when it ends', async () => {
    const lines = captureAccessLog();
    const echo = createSocket('udp4');
    echo.on('message', (msg, from) => echo.send(msg, from.port, from.address));
    await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => echo.close(() => resolve())));
    const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
    cleanups.push(() => dp.close());
    const l4Route = { sources: [], backends: [{ cluster: 'default/echo', weight: 1 }], idleTimeoutMs: 200, hostnames: [] };
    expect(
      await dp.apply({
        resources: [
          clusterResource('default/echo'),
          endpointsResource('default/echo', [{ port: echo.address().port }]),
          listenerResource('default/udp', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', l4Route, accessLog: true }),
        ],
        removed: [],
      }),
    ).toEqual([]);
    const client = createSocket('udp4');
    cleanups.push(() => new Promise<void>((resolve) => client.close(() => resolve())));
    const reply = new Promise<string>((resolve) => client.once('message', (msg) => resolve(String(msg))));
    client.send('ping!!', dp.listeners().get('default/udp')!.port, '127.0.0.1');
    expect(await reply).toBe('ping!!');
    const metrics = await dp.collectMetrics();
    expect(value(metrics, 'sluice_agent_l4_connections_total', { listener: 'default/udp', upstream: 'default/echo' })).toBe(1);
    expect(value(metrics, 'sluice_agent_l4_bytes_total', { listener: 'default/udp', direction: 'in' })).toBe(6);
    expect(value(metrics, 'sluice_agent_l4_bytes_total', { listener: 'default/udp', direction: 'out' })).toBe(6);
    // The session ends after its idle timeout (200 ms); then it is logged.
    await vi.waitFor(() => expect(lines).toHaveLength(1), { timeout: 5_000 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ listener: 'default/udp', protocol: 'UDP', upstream: 'default/echo', bytes_received: 6, bytes_sent: 6, client_address: '127.0.0.1' });
  });
});

describe('request ids', () => {
  it('accepts ids of safe characters up to 128 long, nothing else', () => {
    expect(isValidRequestId('0af7651916cd43dd8448eb211c80319c')).toBe(true);
    expect(isValidRequestId('a/b+c=d@e:f.g_h-i')).toBe(true);
    expect(isValidRequestId('x'.repeat(128))).toBe(true);
    expect(isValidRequestId('x'.repeat(129))).toBe(false);
    expect(isValidRequestId('')).toBe(false);
    expect(isValidRequestId('a b')).toBe(false);
    expect(isValidRequestId('a"b')).toBe(false);
    expect(isValidRequestId(['a', 'b'])).toBe(false);
    expect(isValidRequestId(undefined)).toBe(false);
  });

  it('makes distinct ids per call and per process source', () => {
    const a = requestIdSource();
    const b = requestIdSource();
    const ids = new Set([a(), a(), a(), b()]);
    expect(ids.size).toBe(4);
  });
});

describe('BucketHistogram', () => {
  it('puts a value in the first bucket whose bound it does not exceed', () => {
    const h = new BucketHistogram([1, 2]);
    for (const v of [0.5, 1, 1.5, 3]) h.observe(v);
    expect([...h.counts]).toEqual([2, 1, 1]);
    expect(h.count).toBe(4);
    expect(h.sum).toBe(6);
  });
});

describe('AccessLog', () => {
  it('writes the lines of one turn in one write, and drops lines while the sink is backed up', async () => {
    const writes: string[] = [];
    const sink = { writableLength: 0, write: (chunk: string) => (writes.push(chunk), true) };
    const log = new AccessLog(sink);
    const entry = { request_id: 'x' } as AccessLogEntry;
    log.write(entry);
    log.write(entry);
    await nextTurn();
    expect(writes).toEqual(['{"request_id":"x"}\n{"request_id":"x"}\n']);
    sink.writableLength = 64 * 1024 * 1024;
    log.write(entry);
    await nextTurn();
    expect(writes).toHaveLength(1);
    expect(log.dropped).toBe(1);
  });
});
