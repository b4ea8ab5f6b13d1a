import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentProcess,
  ControllerProcess,
  createTestPki,
  freePort,
  runSluicectl,
  startBackend,
  startEtcd,
  tempDir,
  watchUntil,
  webToUpstream,
  type AgentOptions,
  type TempDir,
  type TestPki,
} from '@sluice/testing';

interface AgentObject {
  metadata: { name: string };
  status?: { connected?: boolean };
}

// The config stream carries Secrets (TLS keys): with --grpc-tls-ca the controller serves it
// only to agents whose client certificate its CA signed, over TLS.
describe('mTLS between agents and controller', () => {
  let dir: TempDir;
  let pki: TestPki;
  let stranger: TestPki;
  let controller: ControllerProcess;

  beforeAll(async () => {
    dir = await tempDir();
    pki = await createTestPki(dir.path, 'sluice');
    stranger = await createTestPki(dir.path, 'stranger');
    controller = await ControllerProcess.start({
      store: 'embedded',
      dataDir: `${dir.path}/data`,
      grpcTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert },
    });
  });

  afterAll(async () => {
    await controller?.stop();
    await dir?.[Symbol.asyncDispose]();
  });

  it('an agent with a client certificate from the CA receives configuration and serves a route', async () => {
    await using backend = await startBackend('trusted');
    const proxyPort = await freePort();
    const applied = await runSluicectl(['apply', '-f', '-'], {
      server: controller.url,
      input: webToUpstream({ port: proxyPort, endpoints: [{ port: backend.port }], name: 'trusted' }),
    });
    expect(applied.code).toBe(0);
    await using agent = await AgentProcess.start({
      controller: controller.grpcAddress,
      id: 'trusted',
      tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key },
    });
    await agent.ready();
    expect(agent.process.stdoutLines.some((l) => l.includes('"agent started"') && l.includes('"tls":"tls+client-cert"'))).toBe(true);
    const response = await fetch(`http://127.0.0.1:${proxyPort}/`);
    expect((await response.text()).trim()).toBe('trusted');
    await watchUntil<AgentObject>(controller.url, 'agents', (a) => a.metadata.name === 'trusted' && a.status?.connected === true);
    // The report stream uses the same credentials: it opens too.
    await agent.process.waitForLine((l) => l.includes('"report stream open"'));
  });

  const refused: [string, () => AgentOptions['tls'], RegExp][] = [
    ['without a client certificate', () => ({ ca: pki.ca.cert }), /requires a client certificate/],
    ['with a client certificate from another CA', () => ({ ca: pki.ca.cert, cert: stranger.client.cert, key: stranger.client.key }), /does not trust this agent's client certificate/],
    ['that does not trust the controller certificate', () => ({ ca: stranger.ca.cert, cert: pki.client.cert, key: pki.client.key }), /TLS handshake failed: .*certificate/],
  ];

  it.each(refused)('an agent %s never receives configuration and logs why', async (_, tls, reason) => {
    const id = `refused-${Math.random().toString(36).slice(2, 8)}`;
    await using agent = await AgentProcess.start({ controller: controller.grpcAddress, id, tls: tls() });
    const line = await agent.process.waitForLine((l) => l.includes('"cannot connect to the controller"'));
    expect((JSON.parse(line) as { error: string }).error).toMatch(reason);
    expect(agent.process.stdoutLines.some((l) => l.includes('"configuration applied"'))).toBe(false);
    const ready = await fetch(`${agent.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    const list = await fetch(`${controller.url}/apis/sluice/v1/agents`);
    const agents = ((await list.json()) as { items: AgentObject[] }).items;
    expect(agents.find((a) => a.metadata.name === id)).toBeUndefined();
  });

  it('--tls-server-name checks the certificate for one name whatever address is dialled', async () => {
    // Dialled at 127.0.0.2, which the certificate does not list (as a leader advertised by pod IP).
    await using other = await ControllerProcess.start({
      store: 'embedded',
      dataDir: `${dir.path}/data-2`,
      grpcAddr: '127.0.0.2:0',
      grpcTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert },
    });
    const client = { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key };
    await using mismatch = await AgentProcess.start({ controller: other.grpcAddress, id: 'by-address', tls: client });
    const line = await mismatch.process.waitForLine((l) => l.includes('"cannot connect to the controller"'));
    expect((JSON.parse(line) as { error: string }).error).toMatch(/do not include the dialled host: list it, or give --tls-server-name/);
    await using named = await AgentProcess.start({ controller: other.grpcAddress, id: 'by-name', tls: client, extraArgs: ['--tls-server-name', 'localhost'] });
    await named.ready();
    await watchUntil<AgentObject>(other.url, 'agents', (a) => a.metadata.name === 'by-name' && a.status?.connected === true);
  });

  it('an agent without TLS flags cannot talk to a TLS controller', async () => {
    await using agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'plaintext' });
    await agent.process.waitForLine((l) => l.includes('"no controller answers'));
    const list = await fetch(`${controller.url}/apis/sluice/v1/agents`);
    const agents = ((await list.json()) as { items: AgentObject[] }).items;
    expect(agents.find((a) => a.metadata.name === 'plaintext')).toBeUndefined();
  });
});

describe('admin API over HTTPS', () => {
  // Three sluicectl runs of a few seconds each on a loaded machine.
  it('sluicectl reaches it when it trusts the CA (NODE_EXTRA_CA_CERTS), and refuses it otherwise', { timeout: 60_000 }, async () => {
    await using dir = await tempDir();
    const pki = await createTestPki(dir.path);
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: `${dir.path}/data`, adminTls: pki.server });
    expect(controller.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const trusted = await runSluicectl(['get', 'agents'], { server: controller.url, env: { NODE_EXTRA_CA_CERTS: pki.ca.cert } });
    expect(trusted.stderr).not.toMatch(/error/);
    expect(trusted.code).toBe(0);
    const untrusted = await runSluicectl(['get', 'agents'], { server: controller.url, env: { NODE_EXTRA_CA_CERTS: '' } });
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(/cannot reach the Sluice controller at https:.*(CERT|SIGNATURE|certificate)/);
    const plain = await runSluicectl(['get', 'agents'], { server: controller.url.replace('https:', 'http:'), env: { NODE_EXTRA_CA_CERTS: pki.ca.cert } });
    expect(plain.code).not.toBe(0);
  });
});

describe('mTLS with controller replicas', () => {
  // Controllers bound on 127.0.0.2, an address the certificate does not list, as a leader
  // advertised by pod IP: agents check every channel for the Service-like name instead.
  it('a follower sends the report stream to the leader, over the same credentials', { timeout: 90_000 }, async () => {
    await using dir = await tempDir();
    const pki = await createTestPki(dir.path);
    await using etcd = await startEtcd();
    const replica = (id: string) =>
      ControllerProcess.start({
        store: 'etcd',
        etcdEndpoints: etcd.endpoint,
        grpcAddr: '127.0.0.2:0',
        grpcTls: { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert },
        extraArgs: ['--leader-lease-ttl', '2s', '--id', id],
      });
    await using a = await replica('a');
    await using b = await replica('b');
    const leader = await Promise.race([
      a.process.waitForLine((l) => l.includes('"became leader"')).then(() => a),
      b.process.waitForLine((l) => l.includes('"became leader"')).then(() => b),
    ]);
    const follower = leader === a ? b : a;
    await using agent = await AgentProcess.start({
      controller: follower.grpcAddress,
      id: 'redirected',
      tls: { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key },
      extraArgs: ['--tls-server-name', 'localhost'],
    });
    await agent.ready();
    const redirected = await agent.process.waitForLine((l) => l.includes('"report stream redirected to the leader"'));
    expect(JSON.parse(redirected)).toMatchObject({ from: follower.grpcAddress, to: leader.grpcAddress });
    await agent.process.waitForLine((l) => l.includes('"report stream open"') && l.includes(`"address":"${leader.grpcAddress}"`));
    expect(agent.process.stdoutLines.some((l) => l.includes('"cannot connect to the controller"'))).toBe(false);
  });
});
