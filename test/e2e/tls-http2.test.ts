import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentProcess,
  ControllerProcess,
  freePort,
  runSluicectl,
  selfSignedCertificate,
  startBackend,
  tempDir,
  watchUntil,
  type Backend,
  type PemPair,
  type TempDir,
} from '@sluice/testing';

// TLS termination, HTTP/2 and gRPC through real processes: a controller, one agent, an HTTP
// backend and a gRPC backend. Certificates are made per run and go in as Secrets with
// sluicectl; nothing of a private key may come back out (sluicectl, /config_dump).

const AGENT = 'edge-tls';

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let web: Backend;
let grpcServer: grpc.Server;
let httpsPort: number;
let h2cPort: number;
let shop: PemPair;
let api: PemPair;
const sockets: TLSSocket[] = [];

const echo = {
  call: {
    path: '/sluice.test.Echo/Call',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;

function secretYaml(name: string, pem: PemPair): string {
  const indent = (text: string) => text.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
  return `apiVersion: sluice/v1
kind: Secret
metadata: {name: ${name}}
type: tls
stringData:
  tls.crt: |
${indent(pem.cert)}
  tls.key: |
${indent(pem.key)}
`;
}

function configYaml(grpcPort: number): string {
  return [
    secretYaml('shop-cert', shop),
    secretYaml('api-cert', api),
    `apiVersion: sluice/v1
kind: Listener
metadata: {name: web-tls}
spec:
  port: ${httpsPort}
  protocol: HTTPS
  tls:
    certificateRefs: [{name: shop-cert}, {name: api-cert}]
    minVersion: TLSv1.2
---
apiVersion: sluice/v1
kind: Listener
metadata: {name: grpc-h2c}
spec: {port: ${h2cPort}, protocol: HTTP, h2c: true}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: web}
spec:
  endpoints: [{address: 127.0.0.1, port: ${web.port}}]
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: echo}
spec:
  http2: true
  endpoints: [{address: 127.0.0.1, port: ${grpcPort}}]
---
apiVersion: sluice/v1
kind: Route
metadata: {name: web}
spec:
  parentRefs: [{name: web-tls}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /sluice.test.Echo/}}]
      backendRefs: [{name: echo}]
    - backendRefs: [{name: web}]
---
apiVersion: sluice/v1
kind: Route
metadata: {name: grpc}
spec:
  parentRefs: [{name: grpc-h2c}]
  rules:
    - backendRefs: [{name: echo}]
`,
  ].join('---\n');
}

async function apply(yaml: string): Promise<number> {
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: yaml });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = JSON.parse(result.stdout) as { items?: { metadata: { resourceVersion: string } }[]; metadata?: { resourceVersion: string } };
  const objects = out.items ?? [out as { metadata: { resourceVersion: string } }];
  return Math.max(...objects.map((o) => Number(o.metadata.resourceVersion)));
}

async function inSync(rev: number): Promise<void> {
  await watchUntil<{ metadata: { name: string }; status?: { connected?: boolean; appliedRevision?: number } }>(
    controller.url,
    'agents',
    (a) => a.metadata.name === AGENT && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= rev,
  );
}

async function handshake(servername: string, options: ConnectionOptions = {}): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port: httpsPort, servername, rejectUnauthorized: false, ...options });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** One keep-alive GET on an open TLS socket, which stays open: the body (the backend answers with its name). */
async function getOver(socket: TLSSocket, host: string): Promise<string> {
  socket.write(`GET /hello HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, end));
      const body = text.slice(end + 4);
      let done: string | undefined;
      if (length !== null && body.length >= Number(length[1])) done = body.slice(0, Number(length[1]));
      else if (length === null && body.endsWith('\r\n0\r\n\r\n')) done = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      if (done === undefined) return;
      socket.off('data', onData);
      resolve(done);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function unary(client: grpc.Client, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(echo.call.path, echo.call.requestSerialize, echo.call.responseDeserialize, Buffer.from(text), (err, value) => (err ? reject(err) : resolve(String(value))));
  });
}

beforeAll(async () => {
  dir = await tempDir();
  [shop, api] = await Promise.all([selfSignedCertificate('shop.example.com'), selfSignedCertificate('api.example.com')]);
  web = await startBackend('web');
  grpcServer = new grpc.Server();
  grpcServer.addService(echo, {
    call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      if (text === 'missing') callback({ code: grpc.status.NOT_FOUND, details: 'no such thing: missing' });
      else callback(null, Buffer.from(`echo ${text}`));
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  [httpsPort, h2cPort] = await Promise.all([freePort(), freePort()]);
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: AGENT, listenAddress: '127.0.0.1' });
  await agent.ready();
  await inSync(await apply(configYaml(grpcPort)));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await agent?.stop();
  await controller?.stop();
  await web?.[Symbol.asyncDispose]();
  await new Promise<void>((resolve) => (grpcServer ? grpcServer.tryShutdown(() => resolve()) : resolve()));
  await dir?.[Symbol.asyncDispose]();
});

describe('TLS termination, HTTP/2 and gRPC through an agent', () => {
  it('picks the certificate by SNI and proxies HTTPS with x-forwarded-proto https', async () => {
    expect((await handshake('api.example.com')).getPeerCertificate().subject.CN).toBe('api.example.com');
    const socket = await handshake('shop.example.com', { ALPNProtocols: ['http/1.1'] });
    expect(socket.getPeerCertificate().subject.CN).toBe('shop.example.com');
    expect(await getOver(socket, 'shop.example.com')).toBe('web\n');
    expect(web.last?.headers['x-forwarded-proto']).toBe('https');
  });

  it('serves an HTTP/2 client over TLS', async () => {
    const session = h2connect(`https://127.0.0.1:${httpsPort}`, { ca: shop.cert, servername: 'shop.example.com' });
    try {
      const stream = session.request({ ':path': '/h2', ':authority': 'shop.example.com' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      const [headers] = await Promise.all([
        new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve)),
        new Promise<void>((resolve) => stream.once('end', () => resolve())),
      ]);
      expect(headers[':status']).toBe(200);
      expect(body).toBe('web\n');
      expect(web.last?.url).toBe('/h2');
      expect(web.last?.headers.host).toBe('shop.example.com');
    } finally {
      session.close();
    }
  });

  it('proxies gRPC unary calls with their status, over TLS and over h2c', async () => {
    const tlsClient = new grpc.Client(`127.0.0.1:${httpsPort}`, grpc.credentials.createSsl(Buffer.from(shop.cert)), { 'grpc.ssl_target_name_override': 'shop.example.com' });
    const h2cClient = new grpc.Client(`127.0.0.1:${h2cPort}`, grpc.credentials.createInsecure());
    try {
      for (const client of [tlsClient, h2cClient]) {
        expect(await unary(client, 'hi')).toBe('echo hi');
        await expect(unary(client, 'missing')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no such thing: missing' });
      }
    } finally {
      tlsClient.close();
      h2cClient.close();
    }
  });

  it('never shows a private key: /config_dump, sluicectl get and describe; apply and diff stay quiet', async () => {
    const keyBody = (pem: PemPair) => pem.key.split('\n')[1] as string;
    const dump = await (await fetch(`${agent.adminUrl}/config_dump`)).text();
    expect(dump).toContain('[redacted]');
    for (const pem of [shop, api]) {
      expect(dump).not.toContain(keyBody(pem));
      expect(dump).not.toContain(JSON.stringify(pem.key).slice(1, 40));
    }
    const get = await runSluicectl(['get', 'secret', 'shop-cert', '-o', 'yaml'], { server: controller.url });
    expect(get.code).toBe(0);
    expect(get.stdout).toContain('tls.key: "[redacted]"');
    expect(get.stdout).not.toContain(Buffer.from(shop.key).toString('base64').slice(0, 40));
    const describe = await runSluicectl(['describe', 'secret', 'shop-cert'], { server: controller.url });
    expect(describe.stdout).toContain('tls.key:  [redacted]');
    // Nor do the logs of the controller and agent that carried them.
    for (const pem of [shop, api]) {
      expect(controller.process.output()).not.toContain(keyBody(pem));
      expect(agent.process.output()).not.toContain(keyBody(pem));
    }

    const again = await runSluicectl(['apply', '-f', '-'], { server: controller.url, input: secretYaml('shop-cert', shop) });
    expect(again.stdout).toBe('secret/shop-cert unchanged\n');
    const diff = await runSluicectl(['diff', '-f', '-'], { server: controller.url, input: secretYaml('shop-cert', shop) });
    expect(diff.stdout).toBe('');
    expect(diff.code).toBe(0);
  });

  it('serves a renewed certificate on new handshakes while an open connection keeps its own', async () => {
    const old = await handshake('shop.example.com', { ALPNProtocols: ['http/1.1'] });
    const oldFingerprint = old.getPeerCertificate().fingerprint256;
    const renewed = await selfSignedCertificate('shop.example.com');
    await inSync(await apply(secretYaml('shop-cert', renewed)));
    const fresh = await handshake('shop.example.com');
    expect(fresh.getPeerCertificate().raw.equals(new X509Certificate(renewed.cert).raw)).toBe(true);
    expect(await getOver(old, 'shop.example.com')).toBe('web\n');
    expect(old.getPeerCertificate().fingerprint256).toBe(oldFingerprint);
  });
});
