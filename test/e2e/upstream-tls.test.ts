import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, createTestPki, freePort, runSluicectl, tempDir, watchUntil, webToUpstream, type TempDir } from '@sluice/testing';

// TLS from the agent to an HTTPS backend whose certificate a private CA signed: the Upstream
// names the CA Secret and the SNI; with the wrong CA the request fails fast with a 502.

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let backend: Server;
let backendPort: number;
let proxyPort: number;
let goodCa: string;
let otherCa: string;
const servernames: string[] = [];

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
    (a) => a.metadata.name === 'tls-agent' && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= rev,
  );
}

function config(caPem: string): string {
  const indented = caPem.trim().split('\n').map((l) => `    ${l}`).join('\n');
  return `apiVersion: sluice/v1
kind: Secret
metadata: {name: backend-ca}
stringData:
  ca.crt: |
${indented}
---
${webToUpstream({
  port: proxyPort,
  name: 'secure',
  endpoints: [{ port: backendPort }],
  upstream: '  tls: {caCertificateRefs: [{name: backend-ca}], sni: localhost}',
})}`;
}

beforeAll(async () => {
  dir = await tempDir();
  const [good, other] = await Promise.all([createTestPki(dir.path, 'good'), createTestPki(dir.path, 'other')]);
  goodCa = await readFile(good.ca.cert, 'utf8');
  otherCa = await readFile(other.ca.cert, 'utf8');
  backend = createServer({ cert: await readFile(good.server.cert), key: await readFile(good.server.key) }, (req, res) => {
    servernames.push((req.socket as TLSSocket).servername || '');
    req.resume();
    res.end('secure backend\n');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendPort = (backend.address() as AddressInfo).port;
  proxyPort = await freePort();
  const grpcPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr: `127.0.0.1:${grpcPort}` });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'tls-agent', listenAddress: '127.0.0.1' });
  await agent.ready();
});

afterAll(async () => {
  await agent?.stop();
  await controller?.stop();
  backend?.closeAllConnections();
  await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  await dir?.[Symbol.asyncDispose]();
});

describe('TLS to upstreams', () => {
  it('reaches an HTTPS backend verified with the CA Secret, with the configured SNI', async () => {
    await inSync(await apply(config(goodCa)));
    const res = await fetch(`http://127.0.0.1:${proxyPort}/`, { headers: { host: 'shop.example.com' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('secure backend\n');
    expect(servernames.at(-1)).toBe('localhost');
  });

  it('fails with a 502, not a hang, when the CA does not match', async () => {
    const before = servernames.length;
    await inSync(await apply(config(otherCa)));
    const res = await fetch(`http://127.0.0.1:${proxyPort}/`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(502);
    expect(await res.text()).toBe('upstream connect error\n');
    expect(servernames.length).toBe(before);
  });
});
