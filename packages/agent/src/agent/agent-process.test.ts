// Cross-process: the built `sluice agent` binary (npx tsc -b builds it), alone and against the
// real `sluice controller`.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentProcess, ControllerProcess, freePort, ManagedProcess, sluiceBin, startBackend, tempDir } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from '../data-plane/test-support/resources.js';
import { encode } from './cache-dir.js';

async function runAgentCommand(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  await using proc = new ManagedProcess(process.execPath, [sluiceBin, 'agent', ...args]);
  const { code } = await proc.waitForExit();
  return { code, stdout: proc.stdoutLines.join('\n'), stderr: proc.stderrLines.join('\n') };
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.json();
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A cache dir holding one HTTP listener on `port` that routes everything to a backend. */
async function writeShopCache(cacheDir: string, backendPort: number, port: number): Promise<void> {
  await mkdir(cacheDir);
  const resources = [
    clusterResource('default/shop'),
    endpointsResource('default/shop', [{ port: backendPort }]),
    routeTableResource('default/web', [vhost(['*'], [route('default/shop', 'default/shop')])]),
    listenerResource('default/web', { port }),
  ];
  await writeFile(join(cacheDir, 'config.json'), encode({ revision: 3, snapshotVersion: 's3', resources }));
}

describe('sluice agent flags', () => {
  it('rejects an unknown flag with the usage, exit 1', async () => {
    const { code, stderr, stdout } = await runAgentCommand('--bogus');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error: .*--bogus/);
    expect(stderr).toContain('Usage: sluice agent');
    expect(stdout).toBe('');
  });

  it('reports every invalid flag by name', async () => {
    const { code, stderr } = await runAgentCommand('--controller', 'nowhere', '--id', 'Not_DNS', '--workers', 'many', '--listen-address', 'eth0', '--admin-addr', '1.2.3.4');
    expect(code).toBe(1);
    for (const flag of ['--controller', '--id', '--workers', '--listen-address', '--admin-addr']) expect(stderr).toContain(`${flag}: `);
  });

  it('requires --controller', async () => {
    const { code, stderr } = await runAgentCommand();
    expect(code).toBe(1);
    expect(stderr).toContain('error: --controller: required');
  });

  it('prints its help on stdout, exit 0', async () => {
    const { code, stdout } = await runAgentCommand('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('--cache-dir DIR');
  });
});

describe('sluice agent process', () => {
  it('restarts a data-plane worker that dies and keeps serving', async () => {
    await using dir = await tempDir();
    await using backend = await startBackend('shop-1');
    const port = await freePort();
    await writeShopCache(join(dir.path, 'cache'), backend.port, port);
    await using agent = await AgentProcess.start({ controller: `127.0.0.1:${await freePort()}`, id: 'phoenix', cacheDir: join(dir.path, 'cache'), workers: 2 });
    await agent.ready();
    const started = agent.process.stdoutLines.filter((l) => l.includes('"data-plane worker started"')).map((l) => JSON.parse(l) as { pid: number });
    expect(started).toHaveLength(2);
    process.kill(started[0]!.pid, 'SIGKILL');
    await agent.process.waitForLine((l) => l.includes('"data-plane worker restarted"'));
    for (let i = 0; i < 4; i++) expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('shop-1\n');
    expect(await agent.stop()).toEqual({ code: 0, signal: null });
  });

  it.each([1, 2])('serves traffic from its cache dir with no controller (--workers %i)', async (workers) => {
    await using dir = await tempDir();
    await using backend = await startBackend('shop-1');
    const port = await freePort();
    await writeShopCache(join(dir.path, 'cache'), backend.port, port);

    await using agent = await AgentProcess.start({ controller: `127.0.0.1:${await freePort()}`, id: 'cached', cacheDir: join(dir.path, 'cache'), workers });
    await agent.ready();
    const dump = await getJson(`${agent.adminUrl}/config_dump`);
    expect(dump).toMatchObject({ lastAppliedRevision: 3, configSource: 'cache', nacks: [], listeners: { 'default/web': { address: '127.0.0.1', port } } });
    expect(dump.resources.map((r: { name: string }) => r.name).sort()).toEqual(['default/shop', 'default/shop', 'default/web', 'default/web']);
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/cart`);
      expect(await res.text()).toBe('shop-1\n');
    }
    expect(backend.requests).toBe(4);
    expect(await agent.stop()).toEqual({ code: 0, signal: null });
  });

  it('serves /healthz and /readyz 503 with no controller, and exits 0 on SIGTERM', async () => {
    await using agent = await AgentProcess.start({ controller: `127.0.0.1:${await freePort()}`, id: 'lonely' });
    expect((await fetch(`${agent.adminUrl}/healthz`)).status).toBe(200);
    const readyz = await fetch(`${agent.adminUrl}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.text()).toMatch(/waiting for a controller/);
    const admin = JSON.parse(agent.process.stdoutLines.find((l) => l.includes('"agent admin listening"'))!);
    expect(Object.keys(admin)[0]).toBe('time');
    expect(await agent.stop()).toEqual({ code: 0, signal: null });
  });

  it('with --workers 2 runs worker processes, and exits 0 on SIGTERM', async () => {
    await using agent = await AgentProcess.start({ controller: `127.0.0.1:${await freePort()}`, id: 'pool', workers: 2 });
    const dump = await getJson(`${agent.adminUrl}/config_dump`);
    expect(dump.node.capabilities).toContain('workers');
    expect(await agent.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('sluice agent against the real controller', () => {
  it('becomes ready with an empty configuration', async () => {
    await using dir = await tempDir();
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
    await using agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge-1', labels: { zone: 'a' } });
    await agent.ready();
    expect((await fetch(`${agent.adminUrl}/readyz`)).status).toBe(200);
    const dump = await getJson(`${agent.adminUrl}/config_dump`);
    expect(dump).toMatchObject({ node: { id: 'edge-1', labels: { zone: 'a' }, protocolVersion: 'PROTOCOL_VERSION_V1' }, controller: { connected: true, address: controller.grpcAddress }, resources: [], nacks: [] });
  });

  it('with --workers 2 becomes ready, as one agent', async () => {
    await using dir = await tempDir();
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
    await using agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge-2', workers: 2 });
    await agent.ready();
    expect(agent.process.stdoutLines.filter((l) => l.includes('"connected to controller"'))).toHaveLength(1);
  });

  it('says so when another agent with the same id takes its stream', async () => {
    await using dir = await tempDir();
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
    await using first = await AgentProcess.start({ controller: controller.grpcAddress, id: 'twin' });
    await first.ready();
    await using second = await AgentProcess.start({ controller: controller.grpcAddress, id: 'twin' });
    await second.ready();
    const line = await first.process.waitForLine((l) => l.includes('"level":"error"'));
    expect(JSON.parse(line)).toMatchObject({ message: expect.stringContaining('same --id'), code: 'ABORTED', id: 'twin' });
  });

  it('reconnects when the controller restarts', async () => {
    await using dir = await tempDir();
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr: `127.0.0.1:${await freePort()}` });
    await using agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge-4' });
    await agent.ready();
    await controller.restart();
    await until(() => agent.process.stdoutLines.filter((l) => l.includes('"connected to controller"')).length === 2);
    expect((await getJson(`${agent.adminUrl}/config_dump`)).controller).toMatchObject({ connected: true, address: controller.grpcAddress });
  });

  it('with --cache-dir restarts and becomes ready while the controller is stopped', async () => {
    await using dir = await tempDir();
    await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: join(dir.path, 'store') });
    const cacheDir = join(dir.path, 'cache');
    await using agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge-3', cacheDir });
    await agent.ready();
    await until(() => existsSync(join(cacheDir, 'config.json')));
    await controller.stop();

    await agent.restart();
    await agent.ready();
    expect(agent.process.stdoutLines.find((l) => l.includes('"agent ready"'))).toContain('"source":"cache"');
    const dump = await getJson(`${agent.adminUrl}/config_dump`);
    expect(dump).toMatchObject({ configSource: 'cache', controller: { connected: false } });
  });
});
