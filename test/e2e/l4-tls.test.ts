import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, createTestPki, freePort, runSluicectl, selfSignedCertificate, tempDir, watchUntil, type PemPair, type TempDir } from '@sluice/testing';

// TLS on L4 through real processes: a Listener of protocol TLS with mode Terminate (the agent
// decrypts with the listener's certificate Secret and proxies the stream as TCP), and TCP
// routes to an Upstream with tls (the agent connects with TLS, verified by the CA Secret).

const HOST = '127.0.0.1';
let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let shop: PemPair;
const closers: (() => void)[] = [];
const ports = { terminate: 0, originate: 0, reencrypt: 0 };

async function listen(server: Server): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => sockets.add(s));
  server.listen(0, HOST);
  await once(server, 'listening');
  closers.push(() => {
    server.close();
    for (const s of sockets) s.destroy();
  });
  return (server.address() as AddressInfo).port;
}

const indent = (text: string) => text.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');

async function apply(yaml: string): Promise<number> {
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: yaml });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = JSON.parse(result.stdout) as { items?: { metadata: { resourceVersion: string } }[] };
  return Math.max(...(out.items ?? []).map((o) => Number(o.metadata.resourceVersion)));
}

function tcpRoute(name: string, backend: string): string {
  return `apiVersion: sluice/v1\nkind: TCPRoute\nmetadata: {name: ${name}}\nspec:\n  parentRefs: [{name: ${name}}]\n  backendRefs: [{name: ${backend}}]\n---\n`;
}

function upstream(name: string, port: number, extra = ''): string {
  return `apiVersion: sluice/v1\nkind: Upstream\nmetadata: {name: ${name}}\nspec:\n  endpoints: [{address: ${HOST}, port: ${port}}]\n${extra}---\n`;
}

async function plainExchange(port: number, payload: string): Promise<string> {
  const socket = connect(port, HOST);
  socket.end(payload);
  let out = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) out += chunk as string;
  return out;
}

/** Over TLS, verifying the listener's self-signed certificate for `servername`. */
async function tlsExchange(port: number, servername: string, payload: string): Promise<string> {
  const socket = tlsConnect({ port, host: HOST, servername, ca: shop.cert });
  await once(socket, 'secureConnect');
  expect(socket.authorized).toBe(true);
  socket.end(payload);
  let out = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) out += chunk as string;
  return out;
}

beforeAll(async () => {
  dir = await tempDir();
  const pki = await createTestPki(dir.path);
  shop = await selfSignedCertificate('shop.example.com');
  const [cert, key, ca] = await Promise.all([readFile(pki.server.cert), readFile(pki.server.key), readFile(pki.ca.cert, 'utf8')]);
  const plainEcho = await listen(
    createServer({ allowHalfOpen: true }, (socket) => {
      socket.write('plain:');
      socket.pipe(socket);
    }),
  );
  const tlsEcho = await listen(
    createTlsServer({ cert, key, allowHalfOpen: true }, (socket: TLSSocket) => {
      socket.write(`tls(${String(socket.servername)}):`);
      socket.pipe(socket);
    }),
  );
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'l4-tls-agent', listenAddress: HOST });
  const secrets = `apiVersion: sluice/v1
kind: Secret
metadata: {name: shop-cert}
type: tls
stringData:
  tls.crt: |
${indent(shop.cert)}
  tls.key: |
${indent(shop.key)}
---
apiVersion: sluice/v1
kind: Secret
metadata: {name: backend-ca}
stringData:
  ca.crt: |
${indent(ca)}
---
`;
  const terminating = (name: string, port: number) =>
    `apiVersion: sluice/v1\nkind: Listener\nmetadata: {name: ${name}}\nspec:\n  port: ${port}\n  protocol: TLS\n  tls: {mode: Terminate, certificateRefs: [{name: shop-cert}]}\n---\n`;
  const rev = await apply(
    secrets +
      upstream('plain-echo', plainEcho) +
      upstream('tls-echo', tlsEcho, '  tls: {caCertificateRefs: [{name: backend-ca}], sni: localhost}\n') +
      terminating('terminate', ports.terminate) +
      tcpRoute('terminate', 'plain-echo') +
      `apiVersion: sluice/v1\nkind: Listener\nmetadata: {name: originate}\nspec: {port: ${ports.originate}, protocol: TCP}\n---\n` +
      tcpRoute('originate', 'tls-echo') +
      terminating('reencrypt', ports.reencrypt) +
      tcpRoute('reencrypt', 'tls-echo'),
  );
  await watchUntil<{ metadata: { name: string }; status?: { appliedRevision?: number } }>(
    controller.url,
    'agents',
    (a) => a.metadata.name === 'l4-tls-agent' && (a.status?.appliedRevision ?? 0) >= rev,
  );
}, 120_000);

afterAll(async () => {
  await agent?.[Symbol.asyncDispose]();
  await controller?.[Symbol.asyncDispose]();
  for (const close of closers.splice(0)) close();
  await dir?.[Symbol.asyncDispose]();
});

describe('TLS on L4 listeners through a real agent', () => {
  it('terminates TLS with the listener certificate and proxies the decrypted stream to a TCP backend', async () => {
    expect(await tlsExchange(ports.terminate, 'shop.example.com', 'hello')).toBe('plain:hello');
    // A client that does not trust the listener's certificate fails the handshake.
    const untrusted = tlsConnect({ port: ports.terminate, host: HOST, servername: 'shop.example.com' });
    const [err] = (await once(untrusted, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('connects a TCP route to a TLS backend verified by the CA Secret, with the Upstream SNI', async () => {
    expect(await plainExchange(ports.originate, 'ping')).toBe('tls(localhost):ping');
  });

  it('terminates and re-encrypts: TLS listener to a TLS Upstream', async () => {
    expect(await tlsExchange(ports.reencrypt, 'shop.example.com', 'both')).toBe('tls(localhost):both');
  });
});
