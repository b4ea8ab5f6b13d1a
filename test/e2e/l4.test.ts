import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, createTestPki, freePort, runSluicectl, tempDir, watchUntil, type TempDir } from '@sluice/testing';

// L4 through real processes: a controller, one agent, and TCP, UDP and TLS backends started
// here on loopback. Configuration goes in with the real sluicectl, as users write it.

const HOST = '127.0.0.1';

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
/** A second agent with --workers 2 on 127.0.0.2 serving the same listeners. */
let pool: AgentProcess;
const POOL_HOST = '127.0.0.2';
const closers: (() => void)[] = [];
const ports = { tcp: 0, udp: 0, tls: 0, ppV1: 0, ppV2: 0 };
/** What the PROXY-aware backend saw at the start of each connection. */
const proxyHeaders: string[] = [];

async function listen(server: Server): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

/** Echoes every byte back and ends when the client ends (so half-close is exercised). */
function tcpEcho(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.pipe(socket);
  });
  closers.push(() => sockets.forEach((s) => s.destroy()));
  return listen(server);
}

async function udpEcho(): Promise<number> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, from) => socket.send(Buffer.concat([Buffer.from('udp:'), msg]), from.port, from.address));
  socket.bind(0, HOST);
  await once(socket, 'listening');
  closers.push(() => socket.close());
  return socket.address().port;
}

/** Reads the PROXY header line (v1) or block (v2), records it, answers "ok" and closes. */
function proxyAwareBackend(): Promise<number> {
  const server = createServer((socket) => {
    socket.once('data', (chunk: Buffer) => {
      if (chunk[0] === 0x50) proxyHeaders.push(chunk.toString('latin1', 0, chunk.indexOf('\r\n')));
      else {
        // v2: signature, ver/cmd, fam, length; the IPv4 source address is at 16..20, its port at 24.
        const source = `${chunk[16]}.${chunk[17]}.${chunk[18]}.${chunk[19]}:${chunk.readUInt16BE(24)}`;
        proxyHeaders.push(`v2 ${chunk[13] === 0x11 ? 'TCP4' : String(chunk[13])} ${source}`);
      }
      socket.end('ok');
    });
  });
  return listen(server);
}

async function apply(yaml: string): Promise<number> {
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: yaml });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = JSON.parse(result.stdout) as { items?: { metadata: { resourceVersion: string } }[] };
  return Math.max(...(out.items ?? []).map((o) => Number(o.metadata.resourceVersion)));
}

function listener(name: string, port: number, protocol: string, extra = ''): string {
  return `apiVersion: sluice/v1\nkind: Listener\nmetadata: {name: ${name}}\nspec: {port: ${port}, protocol: ${protocol}${extra}}\n---\n`;
}

function upstream(name: string, port: number, extra = ''): string {
  return `apiVersion: sluice/v1\nkind: Upstream\nmetadata: {name: ${name}}\nspec:\n  endpoints: [{address: ${HOST}, port: ${port}}]\n${extra}---\n`;
}

function l4Route(kind: 'TCPRoute' | 'UDPRoute', name: string, backend: string, extra = ''): string {
  return `apiVersion: sluice/v1\nkind: ${kind}\nmetadata: {name: ${name}}\nspec:\n  parentRefs: [{name: ${name}}]\n  backendRefs: [{name: ${backend}}]\n${extra}---\n`;
}

async function exchange(port: number, payload: Buffer | string, host = HOST): Promise<string> {
  const socket = connect(port, host);
  socket.end(payload);
  let out = '';
  socket.setEncoding('latin1');
  for await (const chunk of socket) out += chunk as string;
  return out;
}

let tlsCa: Buffer;

beforeAll(async () => {
  dir = await tempDir();
  const pki = await createTestPki(dir.path);
  const [cert, key] = await Promise.all([readFile(pki.server.cert), readFile(pki.server.key)]);
  tlsCa = await readFile(pki.ca.cert);
  const tlsBackend = (name: string) => listen(createTlsServer({ cert, key }, (socket) => socket.end(`tls backend ${name} saw ${socket.servername || 'no SNI'}`)));
  const [echoPort, udpPort, tlsA, tlsB, ppPort] = await Promise.all([tcpEcho(), udpEcho(), tlsBackend('a'), tlsBackend('b'), proxyAwareBackend()]);
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();

  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
  [agent, pool] = await Promise.all([
    AgentProcess.start({ controller: controller.grpcAddress, id: 'l4-agent', listenAddress: HOST, workers: 1 }),
    AgentProcess.start({ controller: controller.grpcAddress, id: 'l4-pool', listenAddress: POOL_HOST, workers: 2 }),
  ]);
  const rev = await apply(
    listener('tcp', ports.tcp, 'TCP') +
      upstream('echo', echoPort) +
      l4Route('TCPRoute', 'tcp', 'echo') +
      listener('udp', ports.udp, 'UDP') +
      upstream('udp-echo', udpPort) +
      l4Route('UDPRoute', 'udp', 'udp-echo') +
      // Two passthrough listeners on one port: the ClientHello's server name picks the route.
      listener('tls-a', ports.tls, 'TLS', ', tls: {mode: Passthrough}') +
      upstream('tls-a', tlsA) +
      l4Route('TCPRoute', 'tls-a', 'tls-a', '  hostnames: [a.example.com]\n') +
      listener('tls-b', ports.tls, 'TLS', ', tls: {mode: Passthrough}') +
      upstream('tls-b', tlsB) +
      l4Route('TCPRoute', 'tls-b', 'tls-b', "  hostnames: ['*.b.example.com']\n") +
      listener('pp-v1', ports.ppV1, 'TCP', ', proxyProtocol: {accept: true}') +
      upstream('pp-v1', ppPort, '  proxyProtocol: {send: v1}\n') +
      l4Route('TCPRoute', 'pp-v1', 'pp-v1') +
      listener('pp-v2', ports.ppV2, 'TCP', ', proxyProtocol: {accept: true}') +
      upstream('pp-v2', ppPort, '  proxyProtocol: {send: v2}\n') +
      l4Route('TCPRoute', 'pp-v2', 'pp-v2'),
  );
  for (const id of ['l4-agent', 'l4-pool']) {
    await watchUntil<{ metadata: { name: string }; status?: { appliedRevision?: number } }>(controller.url, 'agents', (a) => a.metadata.name === id && (a.status?.appliedRevision ?? 0) >= rev);
  }
}, 120_000);

afterAll(async () => {
  await agent?.[Symbol.asyncDispose]();
  await pool?.[Symbol.asyncDispose]();
  await controller?.[Symbol.asyncDispose]();
  for (const close of closers.splice(0)) close();
  await dir?.[Symbol.asyncDispose]();
});

describe('L4 listeners through a real agent', () => {
  it('echoes TCP, with the upload half-closed before the echo is read', async () => {
    expect(await exchange(ports.tcp, 'hello over tcp')).toBe('hello over tcp');
    const big = Buffer.alloc(1024 * 1024, 'z');
    expect((await exchange(ports.tcp, big)).length).toBe(big.length);
  });

  it.each([
    ['1 worker', HOST],
    ['2 workers', POOL_HOST],
  ])('echoes UDP datagrams back from the listener port (%s)', async (_workers, host) => {
    const client: DgramSocket = createSocket('udp4');
    client.bind(0, HOST);
    await once(client, 'listening');
    try {
      for (const text of ['one', 'two', 'three']) {
        const reply = once(client, 'message') as Promise<[Buffer, { address: string; port: number }]>;
        client.send(text, ports.udp, host);
        const [message, from] = await reply;
        expect(message.toString()).toBe(`udp:${text}`);
        expect(from).toMatchObject({ address: host, port: ports.udp });
      }
    } finally {
      client.close();
    }
  });

  it('echoes TCP through an agent with --workers 2', async () => {
    const answers = await Promise.all(['a', 'b', 'c', 'd'].map((text) => exchange(ports.tcp, `pool ${text}`, POOL_HOST)));
    expect(answers).toEqual(['pool a', 'pool b', 'pool c', 'pool d']);
  });

  it('routes TLS by SNI to the right backend and passes it through untouched', async () => {
    const hello = async (servername: string) => {
      // The backends' certificate is for localhost: verify the chain (the backend terminated
      // TLS, not the agent), not the name.
      const socket = tlsConnect({ port: ports.tls, host: HOST, servername, ca: tlsCa, checkServerIdentity: () => undefined });
      let out = '';
      socket.setEncoding('utf8');
      for await (const chunk of socket) out += chunk as string;
      expect(socket.authorized).toBe(true);
      return out;
    };
    expect(await hello('a.example.com')).toBe('tls backend a saw a.example.com');
    expect(await hello('x.b.example.com')).toBe('tls backend b saw x.b.example.com');
    // No route takes the name: the agent closes before any backend answers.
    const stranger = tlsConnect({ port: ports.tls, host: HOST, servername: 'c.example.com', ca: tlsCa });
    const [err] = (await once(stranger, 'error')) as [Error & { code?: string }];
    expect(err.code).toMatch(/ECONNRESET|EPIPE/);
  });

  it('accepts PROXY v1 and v2 from clients and sends them on to PROXY-aware upstreams', async () => {
    const v1 = 'PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n';
    expect(await exchange(ports.ppV1, `${v1}data`)).toBe('ok');
    const v2 = Buffer.from('0d0a0d0a000d0a515549540a' + '2111000c' + 'cb007109' + '7f000001' + '1f90' + '01bb', 'hex'); // 203.0.113.9:8080
    expect(await exchange(ports.ppV2, Buffer.concat([v2, Buffer.from('data')]))).toBe('ok');
    expect(proxyHeaders).toEqual(['PROXY TCP4 198.51.100.7 127.0.0.1 40000 443', 'v2 TCP4 203.0.113.9:8080']);
    // No header where one is required: the agent closes without reaching the upstream.
    expect(await exchange(ports.ppV1, 'GET / HTTP/1.1\r\n\r\n')).toBe('');
    expect(proxyHeaders).toHaveLength(2);
  });
});
