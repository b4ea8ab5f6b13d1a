import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { LoadBalancingPolicy, Protocol, ProxyProtocolVersion, ResourceType, type L4Route, type ListenerLimits, type OutlierDetection, type Resource } from '@sluice/proto';
import { createTestPki, freePort, tempDir } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlane } from '../data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from '../test-support/resources.js';
import { encodeProxyHeader, parseProxyHeader } from './proxy-protocol.js';

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

/** A TCP server on 127.0.0.1:0 whose every connection is handed to `onConnection`. */
async function tcpServer(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** Echoes what it reads, prefixed with its name once; ends when the client ends (half-close). */
function echo(name: string): (socket: Socket) => void {
  return (socket) => {
    socket.write(`${name}:`);
    socket.pipe(socket);
  };
}

function l4Route(backends: [string, number][], over: Partial<L4Route> = {}): L4Route {
  return { sources: [{ kind: 'TCPRoute', namespace: 'default', name: 'r' }], backends: backends.map(([cluster, weight]) => ({ cluster, weight })), idleTimeoutMs: 0, hostnames: [], ...over };
}

function tcpListener(name: string, route: L4Route, over: Parameters<typeof listenerResource>[1] = {}): Resource {
  return listenerResource(name, { protocol: Protocol.PROTOCOL_TCP, routeTable: '', l4Route: route, ...over });
}

async function talk(port: number, send: Buffer | string, host = '127.0.0.1'): Promise<string> {
  const socket = connect(port, host);
  socket.end(send);
  let out = '';
  socket.setEncoding('latin1');
  for await (const chunk of socket) out += chunk as string;
  return out;
}

function portOf(dp: DataPlane, name: string): number {
  const l = dp.listeners().get(name);
  if (l === undefined) throw new Error(`listener ${name} not bound`);
  return l.port;
}

describe('TCP listeners', () => {
  it('proxies both ways with half-close, splitting connections by route weight', async () => {
    const a = await tcpServer(echo('a'));
    const b = await tcpServer(echo('b'));
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        clusterResource('default/a'),
        endpointsResource('default/a', [{ port: a.port }]),
        clusterResource('default/b'),
        endpointsResource('default/b', [{ port: b.port }]),
        tcpListener('default/tcp', l4Route([['default/a', 1], ['default/b', 1]])),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const port = portOf(dp, 'default/tcp');
    const [one, two] = await Promise.all([talk(port, 'one'), talk(port, 'two')]);
    expect(one).toMatch(/^[ab]:one$/);
    expect(two).toMatch(/^[ab]:two$/);
    expect(new Set([one[0], two[0]])).toEqual(new Set(['a', 'b']));
    // A large upload and its echo: backpressure both ways, nothing lost.
    const big = Buffer.alloc(4 * 1024 * 1024, 'x');
    const echoed = await talk(port, big);
    expect(echoed.length).toBe(big.length + 2);
    const traffic = dp.drainTraffic().traffic;
    expect(traffic.reduce((sum, t) => sum + t.requests, 0)).toBe(3);
  });

  it('tries another endpoint when one refuses, and feeds outlier detection', async () => {
    const live = await tcpServer(echo('live'));
    const deadPort = await freePort();
    const dp = dataPlane();
    const outlierDetection: OutlierDetection = { consecutive5xx: 0, consecutiveGatewayErrors: 0, consecutiveConnectFailures: 1, baseEjectionTimeMs: 60_000, maxEjectionPercent: 50, maxEjectionTimeMs: 0, intervalMs: 0 };
    await dp.apply({
      resources: [
        clusterResource('default/c', undefined, { outlierDetection }),
        endpointsResource('default/c', [{ port: deadPort }, { port: live.port }]),
        tcpListener('default/tcp', l4Route([['default/c', 1]])),
      ],
      removed: [],
    });
    const port = portOf(dp, 'default/tcp');
    for (let i = 0; i < 4; i++) expect(await talk(port, `${i}`)).toBe(`live:${i}`);
    const stats = dp.clusterStats().get('default/c');
    expect(stats?.outliers.some((o) => o.ejected)).toBe(true);
    const counters = dp.drainTraffic().traffic;
    expect(counters.find((t) => t.endpointId === 'default/c#0')?.connectFailures).toBeGreaterThanOrEqual(1);
  });

  it('accepts PROXY v1 and v2 from clients and sends the client address upstream', async () => {
    const headers: string[] = [];
    const backend = await tcpServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const parsed = parseProxyHeader(chunk);
        if (parsed === 'incomplete') throw new Error('short header');
        headers.push(`${parsed.info.version} ${parsed.info.source?.address}:${parsed.info.source?.port}`);
        socket.end(chunk.subarray(parsed.length));
      });
    });
    const dp = dataPlane();
    await dp.apply({
      resources: [
        clusterResource('default/v1', undefined, { proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1 }),
        endpointsResource('default/v1', [{ port: backend.port }]),
        clusterResource('default/v2', undefined, { proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V2 }),
        endpointsResource('default/v2', [{ port: backend.port }]),
        tcpListener('default/in-v1', l4Route([['default/v1', 1]]), { acceptProxyProtocol: true }),
        tcpListener('default/in-v2', l4Route([['default/v2', 1]]), { acceptProxyProtocol: true }),
      ],
      removed: [],
    });
    const v1 = encodeProxyHeader(1, { address: '203.0.113.7', port: 4242 }, { address: '127.0.0.1', port: 1 });
    expect(await talk(portOf(dp, 'default/in-v1'), Buffer.concat([v1, Buffer.from('hello')]))).toBe('hello');
    const v2 = encodeProxyHeader(2, { address: '2001:db8::9', port: 5353 }, { address: '::1', port: 1 });
    expect(await talk(portOf(dp, 'default/in-v2'), Buffer.concat([v2, Buffer.from('world')]))).toBe('world');
    expect(headers).toEqual(['1 203.0.113.7:4242', '2 2001:db8::9:5353']);
    // No header on a listener that expects one: closed without reaching the backend.
    expect(await talk(portOf(dp, 'default/in-v1'), 'GET / HTTP/1.1\r\n\r\n')).toBe('');
    expect(headers).toHaveLength(2);
  });

  it('caps connections per client (listener limits) and per cluster (max_connections)', async () => {
    const held: Socket[] = [];
    const backend = await tcpServer((socket) => {
      held.push(socket);
      socket.write('hi');
    });
    const dp = dataPlane();
    const limits: ListenerLimits = { maxConnections: 0, maxConnectionsPerClient: 2, maxRequestHeaderBytes: 0, maxRequestHeaders: 0, maxRequestBodyBytes: 0, requestHeadersTimeoutMs: 0, requestBodyTimeoutMs: 0, idleTimeoutMs: 0 };
    await dp.apply({
      resources: [clusterResource('default/c'), endpointsResource('default/c', [{ port: backend.port }]), tcpListener('default/tcp', l4Route([['default/c', 1]]), { limits })],
      removed: [],
    });
    const port = portOf(dp, 'default/tcp');
    const open = async () => {
      const s = connect(port, '127.0.0.1');
      cleanups.push(() => void s.destroy());
      const [first] = (await Promise.race([once(s, 'data'), once(s, 'close').then(() => [undefined])])) as [Buffer | undefined];
      return first?.toString();
    };
    expect(await open()).toBe('hi');
    expect(await open()).toBe('hi');
    expect(await open()).toBeUndefined();

    // max_connections 1 on the cluster: a second connection is closed while the first is open.
    const circuitBreaker = { maxConnections: 1, maxPendingRequests: 0, maxRequests: 0 };
    await dp.apply({
      resources: [clusterResource('default/one', undefined, { circuitBreaker }), endpointsResource('default/one', [{ port: backend.port }]), tcpListener('default/one', l4Route([['default/one', 1]]))],
      removed: [],
    });
    const onePort = portOf(dp, 'default/one');
    const first = connect(onePort, '127.0.0.1');
    cleanups.push(() => void first.destroy());
    await once(first, 'data');
    expect(await talk(onePort, 'x')).toBe('');
  });

  it('closes a connection idle longer than the route idle timeout', async () => {
    const backend = await tcpServer(() => undefined);
    const dp = dataPlane();
    await dp.apply({
      resources: [clusterResource('default/c'), endpointsResource('default/c', [{ port: backend.port }]), tcpListener('default/tcp', l4Route([['default/c', 1]], { idleTimeoutMs: 200 }))],
      removed: [],
    });
    const s = connect(portOf(dp, 'default/tcp'), '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'close');
    expect(s.bytesRead).toBe(0);
  });
});

describe('TCP balancing', () => {
  it('least-connections counts open connections for their whole life', async () => {
    const a = await tcpServer(echo('a'));
    const b = await tcpServer(echo('b'));
    const dp = dataPlane();
    await dp.apply({
      resources: [
        clusterResource('default/lc', LoadBalancingPolicy.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS),
        endpointsResource('default/lc', [{ port: a.port }, { port: b.port }]),
        tcpListener('default/tcp', l4Route([['default/lc', 1]])),
      ],
      removed: [],
    });
    const port = portOf(dp, 'default/tcp');
    // Two connections held open at once land on different endpoints: the first one still counts.
    const hold = async () => {
      const socket = connect(port, '127.0.0.1');
      cleanups.push(() => void socket.destroy());
      const [greeting] = (await once(socket, 'data')) as [Buffer];
      return greeting.toString()[0];
    };
    const first = await hold();
    const second = await hold();
    expect(new Set([first, second])).toEqual(new Set(['a', 'b']));
  });
});

describe('TLS passthrough listeners', () => {
  it('routes by SNI across listeners sharing a port, forwarding the TLS bytes untouched', async () => {
    await using dir = await tempDir();
    const pki = await createTestPki(dir.path);
    const [cert, key, ca] = await Promise.all([readFile(pki.server.cert), readFile(pki.server.key), readFile(pki.ca.cert)]);
    const tlsBackend = async (name: string) => {
      const server = createTlsServer({ cert, key }, (socket) => socket.end(name));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      cleanups.push(() => void server.close());
      return (server.address() as AddressInfo).port;
    };
    const [a, b, other] = await Promise.all([tlsBackend('a'), tlsBackend('b'), tlsBackend('other')]);
    const port = await freePort();
    const dp = dataPlane();
    const passthrough = (name: string, cluster: string, hostnames: string[]) =>
      listenerResource(name, { protocol: Protocol.PROTOCOL_TLS_PASSTHROUGH, routeTable: '', port, l4Route: l4Route([[cluster, 1]], { hostnames }) });
    const errors = await dp.apply({
      resources: [
        ...[['a', a], ['b', b], ['other', other]].flatMap(([n, p]) => [clusterResource(`default/${n}`), endpointsResource(`default/${n}`, [{ port: p as number }])]),
        passthrough('default/tls-a', 'default/a', ['a.example.com']),
        passthrough('default/tls-b', 'default/b', ['*.b.example.com']),
        passthrough('default/tls-other', 'default/other', []),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const hello = async (servername: string) => {
      // The backend's own certificate verifies: the agent did not terminate TLS.
      const socket = tlsConnect({ port, host: '127.0.0.1', servername, ca, checkServerIdentity: () => undefined });
      let out = '';
      socket.setEncoding('utf8');
      for await (const chunk of socket) out += chunk as string;
      return out;
    };
    expect(await hello('a.example.com')).toBe('a');
    expect(await hello('x.b.example.com')).toBe('b');
    expect(await hello('elsewhere.example')).toBe('other');
  });
});

describe('UDP listeners', () => {
  async function udpEcho(name: string, seen?: Buffer[]): Promise<number> {
    const socket = createSocket('udp4');
    socket.on('message', (msg, from) => {
      seen?.push(msg);
      socket.send(Buffer.concat([Buffer.from(`${name}:`), msg]), from.port, from.address);
    });
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    cleanups.push(() => void socket.close());
    return socket.address().port;
  }

  async function client(): Promise<DgramSocket> {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    cleanups.push(() => void socket.close());
    return socket;
  }

  async function ask(socket: DgramSocket, port: number, text: string): Promise<string> {
    const reply = once(socket, 'message') as Promise<[Buffer]>;
    socket.send(text, port, '127.0.0.1');
    return (await reply)[0].toString();
  }

  it('keeps a client on one endpoint for its session and answers from the listener port', async () => {
    const a = await udpEcho('a');
    const b = await udpEcho('b');
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        clusterResource('default/u'),
        endpointsResource('default/u', [{ port: a }, { port: b }]),
        listenerResource('default/udp', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', l4Route: l4Route([['default/u', 1]]) }),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const port = portOf(dp, 'default/udp');
    const one = await client();
    const two = await client();
    const first = await ask(one, port, 'x');
    expect(await ask(one, port, 'y')).toBe(`${first[0]}:y`);
    const other = await ask(two, port, 'z');
    // Round robin: the second client's session went to the other endpoint.
    expect(new Set([first[0], other[0]])).toEqual(new Set(['a', 'b']));
  });

  it('ends an idle session, so the next datagram of the client opens a new one', async () => {
    const a = await udpEcho('a');
    const b = await udpEcho('b');
    const dp = dataPlane();
    await dp.apply({
      resources: [
        clusterResource('default/u'),
        endpointsResource('default/u', [{ port: a }, { port: b }]),
        listenerResource('default/udp', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', l4Route: l4Route([['default/u', 1]], { idleTimeoutMs: 100 }) }),
      ],
      removed: [],
    });
    const port = portOf(dp, 'default/udp');
    const socket = await client();
    const first = (await ask(socket, port, 'x'))[0];
    // A session reports to the traffic counters when it ends: wait for that.
    let ended = 0;
    while (ended === 0) {
      await new Promise((r) => setTimeout(r, 50));
      ended = dp.drainTraffic().traffic.reduce((sum, t) => sum + t.requests, 0);
    }
    // Round robin: the new session goes to the other endpoint.
    const second = (await ask(socket, port, 'y'))[0];
    expect(new Set([first, second])).toEqual(new Set(['a', 'b']));
  });

  it('prefixes every datagram with a PROXY v2 header when the cluster asks for it', async () => {
    const seen: Buffer[] = [];
    const port0 = await udpEcho('p', seen);
    const dp = dataPlane();
    await dp.apply({
      resources: [
        clusterResource('default/u', undefined, { proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V2 }),
        endpointsResource('default/u', [{ port: port0 }]),
        listenerResource('default/udp', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', l4Route: l4Route([['default/u', 1]]) }),
      ],
      removed: [],
    });
    const socket = await client();
    await ask(socket, portOf(dp, 'default/udp'), 'one');
    await ask(socket, portOf(dp, 'default/udp'), 'two');
    expect(seen).toHaveLength(2);
    for (const [i, datagram] of seen.entries()) {
      const parsed = parseProxyHeader(datagram);
      if (parsed === 'incomplete') throw new Error('no header');
      expect(parsed.info).toMatchObject({ transport: 'udp', source: { address: '127.0.0.1', port: socket.address().port } });
      expect(datagram.subarray(parsed.length).toString()).toBe(['one', 'two'][i]);
    }
  });
});

describe('L4 make-before-break', () => {
  it('drains a removed TCP listener: open connections keep working, new ones are refused', async () => {
    const backend = await tcpServer(echo('e'));
    const dp = dataPlane();
    await dp.apply({ resources: [clusterResource('default/c'), endpointsResource('default/c', [{ port: backend.port }]), tcpListener('default/tcp', l4Route([['default/c', 1]]))], removed: [] });
    const port = portOf(dp, 'default/tcp');
    const open = connect(port, '127.0.0.1');
    cleanups.push(() => void open.destroy());
    open.write('before');
    await once(open, 'data');
    await dp.apply({ resources: [], removed: [{ type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/tcp' }] });
    expect(dp.listeners().has('default/tcp')).toBe(false);
    const refused = connect(port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('ECONNREFUSED');
    // The open connection still carries bytes both ways, and ends cleanly.
    open.end('after');
    let rest = '';
    open.setEncoding('latin1');
    for await (const chunk of open) rest += chunk as string;
    expect(rest).toBe('after');
  });

  it('rejects only the listener whose port is taken, and keeps the previous version of a rebound one', async () => {
    const backend = await tcpServer(echo('e'));
    const taken = await tcpServer(() => undefined);
    const dp = dataPlane();
    const cluster = [clusterResource('default/c'), endpointsResource('default/c', [{ port: backend.port }])];
    const fixed = await freePort();
    await dp.apply({ resources: [...cluster, tcpListener('default/keep', l4Route([['default/c', 1]]), { port: fixed })], removed: [] });
    const errors = await dp.apply({
      resources: [
        tcpListener('default/keep', l4Route([['default/c', 1]]), { port: taken.port }),
        listenerResource('default/udp', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', l4Route: l4Route([['default/c', 1]]) }),
      ],
      removed: [],
    });
    expect(errors.map((e) => `${e.key?.name}: ${e.message}`)).toEqual([`default/keep: cannot listen on 127.0.0.1:${taken.port}: EADDRINUSE`]);
    // The old version of the listener still serves on its old port; the UDP one was added.
    expect(dp.listeners().get('default/keep')?.port).toBe(fixed);
    expect(await talk(fixed, 'still')).toBe('e:still');
    expect(dp.listeners().has('default/udp')).toBe(true);
  });
});

describe('L4 validation', () => {
  it('rejects an L4 listener without backends, hostnames off passthrough, PROXY on UDP', async () => {
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        tcpListener('default/none', l4Route([])),
        tcpListener('default/host', l4Route([['default/c', 1]], { hostnames: ['a.example'] })),
        listenerResource('default/udp', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', acceptProxyProtocol: true, l4Route: l4Route([['default/c', 1]]) }),
        listenerResource('default/bad-host', { protocol: Protocol.PROTOCOL_TLS_PASSTHROUGH, routeTable: '', l4Route: l4Route([['default/c', 1]], { hostnames: ['no spaces'] }) }),
      ],
      removed: [],
    });
    expect(errors.map((e) => `${e.key?.name}: ${e.message}`).sort()).toEqual([
      'default/bad-host: l4_route.hostnames[0]: "no spaces" is not a hostname',
      'default/host: l4_route.hostnames: only TLS passthrough listeners route by host name',
      'default/none: l4_route.backends: must have at least one backend',
      'default/udp: accept_proxy_protocol: not supported on UDP listeners',
    ]);
  });

  it('lets a TCP and a UDP listener share a port number, but not two TCP ones', async () => {
    const port = await freePort();
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        tcpListener('default/a', l4Route([['default/c', 1]]), { port }),
        listenerResource('default/b', { protocol: Protocol.PROTOCOL_UDP, routeTable: '', port, l4Route: l4Route([['default/c', 1]]) }),
        tcpListener('default/c', l4Route([['default/c', 1]]), { port }),
      ],
      removed: [],
    });
    expect(errors.map((e) => e.key?.name)).toEqual(['default/c']);
    expect([...dp.listeners().keys()]).toEqual(['default/a', 'default/b']);
  });

  it('answers 502 to HTTP requests routed to a cluster that expects PROXY protocol', async () => {
    const dp = dataPlane();
    const errors = await dp.apply({
      resources: [
        clusterResource('default/pp', undefined, { proxyProtocol: ProxyProtocolVersion.PROXY_PROTOCOL_VERSION_V1 }),
        endpointsResource('default/pp', [{ port: await freePort() }]),
        routeTableResource('default/web', [vhost(['*'], [route('default/r/rule/0/match/0', 'default/pp')])]),
        listenerResource('default/web'),
      ],
      removed: [],
    });
    expect(errors).toEqual([]);
    const response = await fetch(`http://127.0.0.1:${portOf(dp, 'default/web')}/`);
    expect(response.status).toBe(502);
    expect(await response.text()).toContain('expects the PROXY protocol');
  });
});
