import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { LoadBalancingPolicy, MatchType, Protocol, ResourceType, type Resource } from '@sluice/proto';
import { selfSignedCertificate } from '@sluice/testing';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { DataPlane } from './data-plane.js';
import { clusterResource, endpointsResource, filter, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const LISTENER = 'default/web';

const cleanups: (() => PromiseLike<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dataPlane(drainTimeoutMs = 2_000): DataPlane {
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs });
  cleanups.push(() => dp.close());
  return dp;
}

interface WsBackend {
  readonly name: string;
  readonly port: number;
  /** The upgrade requests it saw. */
  readonly upgrades: IncomingMessage[];
  readonly wss: WebSocketServer;
  readonly server: Server;
}

/**
 * An HTTP server that answers plain requests with its name and echoes WebSocket messages
 * prefixed with it. `refuse`: upgrade requests get that status instead.
 */
async function wsBackend(name: string, refuse?: number): Promise<WsBackend> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(`${name}\n`);
  });
  const wss = new WebSocketServer({ noServer: true });
  const upgrades: IncomingMessage[] = [];
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    upgrades.push(req);
    if (refuse !== undefined) {
      socket.end(`HTTP/1.1 ${refuse} Nope\r\ncontent-type: text/plain\r\ncontent-length: 7\r\nx-backend: ${name}\r\n\r\nrefused`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, binary) => ws.send(binary ? data : `${name}:${(data as Buffer).toString()}`, { binary }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { name, port: (server.address() as AddressInfo).port, upgrades, wss, server };
}

function config(backends: WsBackend[], opts: { policy?: LoadBalancingPolicy; routeOver?: Parameters<typeof route>[2]; listener?: Parameters<typeof listenerResource>[1]; cluster?: Parameters<typeof clusterResource>[2] } = {}): Resource[] {
  return [
    clusterResource('default/ws', opts.policy, opts.cluster),
    endpointsResource('default/ws', backends.map((b) => ({ port: b.port }))),
    routeTableResource(LISTENER, [vhost(['*'], [route('default/r/rule/0/match/0', 'default/ws', opts.routeOver)])]),
    listenerResource(LISTENER, opts.listener),
  ];
}

function port(dp: DataPlane): number {
  const l = dp.listeners().get(LISTENER);
  if (!l) throw new Error('listener not bound');
  return l.port;
}

async function openWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers });
  cleanups.push(() => ws.terminate());
  await once(ws, 'open');
  return ws;
}

async function nextMessage(ws: WebSocket): Promise<string> {
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}

/** The status line and headers an upgrade request gets (for answers that are not a 101). */
async function rawUpgrade(p: number, path = '/chat', extra = '', protocol = 'websocket', connection = 'Upgrade'): Promise<string> {
  const socket = connect(p, '127.0.0.1');
  cleanups.push(() => void socket.destroy());
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: chat.example.com\r\nConnection: ${connection}\r\nUpgrade: ${protocol}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  await once(socket, 'close');
  return text;
}

describe('Upgrade proxy', () => {
  it('tunnels a WebSocket: messages both ways, the route headers and X-Forwarded-* reach the backend, close propagates', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    const over = { filters: [filter.requestHeaders([['x-route', 'chat']])] };
    expect(await dp.apply({ resources: config([backend], { routeOver: over }), removed: [] })).toEqual([]);
    const ws = await openWs(`ws://127.0.0.1:${port(dp)}/chat?room=1`, { host: 'chat.example.com' });
    ws.send('hello');
    expect(await nextMessage(ws)).toBe('a:hello');
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect([...Buffer.from(await nextMessage(ws), 'binary')]).toEqual([1, 2, 3]);
    const seen = backend.upgrades[0] as IncomingMessage;
    expect(seen.url).toBe('/chat?room=1');
    expect(seen.headers.host).toBe('chat.example.com');
    expect(seen.headers['x-route']).toBe('chat');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('chat.example.com');
    expect(seen.headers.upgrade?.toLowerCase()).toBe('websocket');

    // The client closes: the backend sees the close frame with its code and reason.
    const [server] = [...backend.wss.clients];
    const backendClosed = once(server as WebSocket, 'close');
    ws.close(4001, 'bye');
    const [code, reason] = (await backendClosed) as [number, Buffer];
    expect(code).toBe(4001);
    expect(reason.toString()).toBe('bye');

    // The backend closes: the client sees it.
    const ws2 = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    ws2.send('x');
    await nextMessage(ws2);
    const server2 = [...backend.wss.clients].find((c) => c !== server) as WebSocket;
    const clientClosed = once(ws2, 'close');
    server2.close(4002, 'server says bye');
    const [code2, reason2] = (await clientClosed) as [number, Buffer];
    expect(code2).toBe(4002);
    expect(reason2.toString()).toBe('server says bye');
  });

  it('records a tunnel as one request with status 101 when it closes (metrics), with a request id sent upstream', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    expect(await dp.apply({ resources: config([backend]), removed: [] })).toEqual([]);
    const ws = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    expect(backend.upgrades[0]?.headers['x-request-id']).toMatch(/^[\w-]{8,}$/);
    const closed = once(ws, 'close');
    ws.close();
    await closed;
    // A refused upgrade (the backend's 400 to an unknown protocol) is a request too.
    expect(await rawUpgrade(port(dp), '/chat', '', 'nope-not-websocket')).toMatch(/^HTTP\/1\.1 400 /);
    const count = async (codeClass: string) => {
      const metrics = (await dp.collectMetrics()).flat();
      const requests = metrics.find((m) => m.name === 'sluice_agent_requests_total');
      return requests?.values.find((v) => v.labels.listener === LISTENER && v.labels.upstream === 'default/ws' && v.labels.code_class === codeClass)?.value;
    };
    await expect.poll(() => count('1xx')).toBe(1);
    await expect.poll(() => count('4xx')).toBe(1);
  });

  it('counts an open WebSocket as a connection for least connections until it closes', async () => {
    const [a, b] = await Promise.all([wsBackend('a'), wsBackend('b')]);
    const dp = dataPlane();
    expect(await dp.apply({ resources: config([a, b], { policy: LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS }), removed: [] })).toEqual([]);
    const base = `127.0.0.1:${port(dp)}`;
    const ws = await openWs(`ws://${base}/chat`);
    ws.send('who');
    const holder = (await nextMessage(ws)).split(':')[0];
    const other = holder === 'a' ? 'b' : 'a';
    // Plain requests one after another: the WebSocket's endpoint has one in flight, the other none.
    for (let i = 0; i < 6; i++) {
      const res = await request(`http://${base}/`);
      expect(await res.body.text()).toBe(`${other}\n`);
    }
    const closed = once(ws, 'close');
    ws.close();
    await closed;
    // The tunnel's end released its count: traffic reaches both endpoints again.
    const seen = new Set<string>();
    await expect
      .poll(async () => {
        const res = await request(`http://${base}/`);
        seen.add((await res.body.text()).trim());
        return seen.size;
      })
      .toBe(2);
  });

  it('relays a backend that refuses the upgrade, and closes the connection', async () => {
    const backend = await wsBackend('a', 403);
    const dp = dataPlane();
    expect(await dp.apply({ resources: config([backend]), removed: [] })).toEqual([]);
    const text = await rawUpgrade(port(dp));
    expect(text).toMatch(/^HTTP\/1\.1 403 /);
    expect(text).toMatch(/x-backend: a/i);
    expect(text).toMatch(/connection: close/i);
    expect(text.endsWith('refused')).toBe(true);
  });

  it('tunnels a WebSocket from a TLS client on an HTTPS listener (X-Forwarded-Proto https)', async () => {
    const backend = await wsBackend('a');
    const pem = await selfSignedCertificate('chat.example.com');
    const dp = dataPlane();
    const secret: Resource = { name: 'default/chat-cert', version: 's1', body: { $case: 'secret', value: { sources: [], certificateChain: pem.cert, privateKey: pem.key } } };
    const listener = { protocol: Protocol.PROTOCOL_HTTPS, tls: { certificateSecrets: ['default/chat-cert'], minVersion: '', maxVersion: '', alpnProtocols: [] } };
    expect(await dp.apply({ resources: [secret, ...config([backend], { listener })], removed: [] })).toEqual([]);
    const ws = new WebSocket(`wss://127.0.0.1:${port(dp)}/chat`, { headers: { host: 'chat.example.com' }, rejectUnauthorized: false });
    cleanups.push(() => ws.terminate());
    await once(ws, 'open');
    ws.send('secure');
    expect(await nextMessage(ws)).toBe('a:secure');
    expect(backend.upgrades[0]?.headers['x-forwarded-proto']).toBe('https');
  });

  it('applies the route IP access rules to upgrades', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    const over = { filters: [{ filter: { $case: 'ipAccess' as const, value: { allow: [], deny: ['127.0.0.0/8'] } } }] };
    expect(await dp.apply({ resources: config([backend], { routeOver: over }), removed: [] })).toEqual([]);
    expect(await rawUpgrade(port(dp))).toMatch(/^HTTP\/1\.1 403 /);
    expect(backend.upgrades).toEqual([]);
  });

  it('serves an h2c upgrade request as the plain HTTP/1.1 request it also is', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    expect(await dp.apply({ resources: config([backend]), removed: [] })).toEqual([]);
    const text = await rawUpgrade(port(dp), '/', 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n', 'h2c', 'Upgrade, HTTP2-Settings');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/connection: close/i);
    expect(text.endsWith('a\n')).toBe(true);
    expect(backend.upgrades).toEqual([]);
  });

  it('answers 502 when the endpoint refuses connections, 404 without a route, and a redirect route redirects', async () => {
    const dead = await wsBackend('dead');
    const deadPort = dead.port;
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    const dp = dataPlane();
    const resources = [
      clusterResource('default/ws'),
      endpointsResource('default/ws', [{ port: deadPort }]),
      routeTableResource(LISTENER, [
        vhost(['chat.example.com'], [
          route('default/r/rule/0/match/0', 'default/ws', {}, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/chat' } }),
          route('default/r/rule/1/match/0', [], {
            filters: [{ filter: { $case: 'requestRedirect', value: { scheme: 'https', hostname: '', port: 0, statusCode: 301, path: undefined } } }],
          }, { path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value: '/old' } }),
        ]),
      ]),
      listenerResource(LISTENER),
    ];
    expect(await dp.apply({ resources, removed: [] })).toEqual([]);
    expect(await rawUpgrade(port(dp))).toMatch(/^HTTP\/1\.1 502 [^]*upstream connect error/);
    expect(await rawUpgrade(port(dp), '/nowhere')).toMatch(/^HTTP\/1\.1 404 /);
    const redirect = await rawUpgrade(port(dp), '/old/x');
    expect(redirect).toMatch(/^HTTP\/1\.1 301 /);
    expect(redirect).toMatch(/location: https:\/\/chat\.example\.com\/old\/x/i);
  });

  it('answers 502 to an upgrade routed to an HTTP/2 Upstream', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    expect(await dp.apply({ resources: config([backend], { cluster: { http2: true } }), removed: [] })).toEqual([]);
    expect(await rawUpgrade(port(dp))).toMatch(/^HTTP\/1\.1 502 [^]*speaks HTTP\/2: Upgrade needs HTTP\/1\.1/);
    expect(backend.upgrades).toEqual([]);
  });

  it('refuses an upgrade over the circuit breaker max_requests while a tunnel is open', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    const cluster = { circuitBreaker: { maxConnections: 0, maxRequests: 1, maxPendingRequests: 0, maxRetries: undefined } };
    expect(await dp.apply({ resources: config([backend], { cluster }), removed: [] })).toEqual([]);
    const ws = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    expect(await rawUpgrade(port(dp))).toMatch(/^HTTP\/1\.1 503 [^]*upstream overloaded/);
    const closed = once(ws, 'close');
    ws.close();
    await closed;
    await expect.poll(() => dp.clusterStats().get('default/ws')?.breaker.activeRequests).toBe(0);
    const again = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    again.send('ok');
    expect(await nextMessage(again)).toBe('a:ok');
  });

  it('counts open tunnels against the circuit breaker max_connections of their endpoint', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    const cluster = { circuitBreaker: { maxConnections: 1, maxRequests: 0, maxPendingRequests: 0, maxRetries: undefined } };
    expect(await dp.apply({ resources: config([backend], { cluster }), removed: [] })).toEqual([]);
    const ws = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    expect(await rawUpgrade(port(dp))).toMatch(/^HTTP\/1\.1 503 [^]*upstream overloaded/);
    expect(backend.upgrades).toHaveLength(1);
    const closed = once(ws, 'close');
    ws.close();
    await closed;
    // Once the tunnel is gone the endpoint takes upgrades again (an unknown protocol: the backend's refusal closes the connection).
    await expect.poll(async () => (await rawUpgrade(port(dp), '/chat', '', 'nope-not-websocket')).slice(0, 12)).toBe('HTTP/1.1 400');
  });

  it('closes a tunnel idle for the listener idle timeout', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane();
    const limits = { idleTimeoutMs: 200 } as NonNullable<Parameters<typeof listenerResource>[1]>['limits'];
    expect(await dp.apply({ resources: config([backend], { listener: { limits } }), removed: [] })).toEqual([]);
    const ws = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    const [code] = (await once(ws, 'close')) as [number];
    // Cut, not closed with a close frame: 1006.
    expect(code).toBe(1006);
  });

  it('closes open tunnels when a removed listener has drained for the drain timeout', async () => {
    const backend = await wsBackend('a');
    const dp = dataPlane(300);
    const resources = config([backend]);
    expect(await dp.apply({ resources, removed: [] })).toEqual([]);
    const ws = await openWs(`ws://127.0.0.1:${port(dp)}/chat`);
    ws.send('still here');
    expect(await nextMessage(ws)).toBe('a:still here');
    const closed = once(ws, 'close');
    const listener = resources.find((r) => r.body?.$case === 'listener') as Resource;
    expect(await dp.apply({ resources: [], removed: [{ type: ResourceType.RESOURCE_TYPE_LISTENER, name: listener.name }] })).toEqual([]);
    const [code] = (await closed) as [number];
    expect(code).toBe(1006);
  });
});
