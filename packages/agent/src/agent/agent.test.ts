// The agent wired in process (admin port, readiness, cache dir) with a socket-free data plane
// and a scripted controller on loopback. The built binary is covered by agent-process.test.ts.
import { writeFile } from 'node:fs/promises';
import { DiscoveryResponse, ResourceType } from '@sluice/proto';
import { freePort, tempDir } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentOptions } from '../options.js';
import { startAgent, type RunningAgent } from './agent.js';
import { captureLogger } from './test-support/capture-logger.js';
import { fakeController, until, type Call } from './test-support/fake-controller.js';
import { MemoryDataPlane } from './test-support/memory-data-plane.js';
import { cluster, listener } from './test-support/resources.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function options(controllers: string[], extra: Partial<AgentOptions> = {}): AgentOptions {
  return {
    controllers,
    id: 'edge-1',
    labels: { zone: 'a' },
    admin: { host: '127.0.0.1', port: 0 },
    cacheDir: undefined,
    workers: 1,
    listenAddress: undefined,
    logLevel: 'debug',
    ...extra,
  };
}

async function start(opts: AgentOptions, dataPlane = new MemoryDataPlane()) {
  const { logger, entries } = captureLogger();
  const agent: RunningAgent = await startAgent(opts, logger, { createDataPlane: () => dataPlane, timing: { initialBackoffMs: 20, maxBackoffMs: 50 } });
  cleanups.push(() => agent.close());
  const get = async (path: string) => {
    const res = await fetch(`${agent.adminUrl}${path}`);
    return { status: res.status, text: await res.text() };
  };
  return { agent, entries, dataPlane, get };
}

async function deadAddress(): Promise<string> {
  return `127.0.0.1:${await freePort()}`;
}

describe('agent', () => {
  it('is healthy at once, ready after the first (empty) response, and says so once', async () => {
    let respond: (() => void) | undefined;
    const controller = await fakeController((call: Call) => {
      respond = () => call.write(DiscoveryResponse.fromPartial({ nonce: 'n1', revision: 7 }));
    });
    cleanups.push(controller.stop);
    const { agent, entries, get } = await start(options([controller.address]));

    expect(agent.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(entries.find((e) => e.message === 'agent admin listening')).toMatchObject({ address: agent.adminUrl });
    expect(await get('/healthz')).toEqual({ status: 200, text: 'ok\n' });
    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.text).toMatch(/^not ready: no configuration applied yet: waiting for a controller/);

    await until(() => respond !== undefined);
    respond!();
    await until(() => controller.requests.length === 2);
    expect(await get('/readyz')).toEqual({ status: 200, text: 'ok: configuration applied from the controller\n' });
    expect(entries.filter((e) => e.message === 'agent ready')).toMatchObject([{ source: 'controller', revision: 7 }]);
    expect(JSON.parse((await get('/config_dump')).text)).toEqual({
      node: { id: 'edge-1', labels: { zone: 'a' }, version: '0.1.0', capabilities: ['http1', 'https', 'h2', 'h2c', 'grpc', 'tcp', 'udp', 'tls-passthrough', 'proxy-protocol'], protocolVersion: 'PROTOCOL_VERSION_V1' },
      controller: { connected: true, address: controller.address, lastError: null },
      lastAppliedRevision: 7,
      lastUpdate: { resources: 0, removed: 0, rejected: 0 },
      configSource: 'controller',
      listeners: {},
      clusters: null,
      resources: [],
      nacks: [],
    });
    expect((await get('/nope')).status).toBe(404);
    expect((await fetch(`${agent.adminUrl}/readyz`, { method: 'POST' })).status).toBe(405);
  });

  it('keeps applying configuration while its report stream fails (a controller without ReportService)', async () => {
    const controller = await fakeController((c) => c.write(DiscoveryResponse.fromPartial({ nonce: 'n1', revision: 3, resources: [cluster('default/api')] })));
    cleanups.push(controller.stop);
    const { entries, dataPlane, get } = await start(options([controller.address]));
    await until(() => controller.requests.length === 2 && entries.some((e) => e.message.startsWith('report stream down')));
    expect(dataPlane.resources().map((r) => r.name)).toEqual(['default/api']);
    expect((await get('/readyz')).status).toBe(200);
    expect(entries.filter((e) => e.message.startsWith('report stream down') && e.level === 'warn')).toHaveLength(1);
  });

  it('lists current NACKs in /config_dump until the resource is accepted', async () => {
    const responses: DiscoveryResponse[] = [
      DiscoveryResponse.fromPartial({ nonce: 'n1', revision: 1, resources: [cluster('default/api'), listener('default/web', 'bad')] }),
      DiscoveryResponse.fromPartial({ nonce: 'n2', revision: 2, resources: [listener('default/web', 'good')] }),
    ];
    let call: Call | undefined;
    const controller = await fakeController((c) => {
      call = c;
      c.write(responses[0]!);
    });
    cleanups.push(controller.stop);
    const dataPlane = new MemoryDataPlane((r) => (r.version === 'bad' ? 'listener port 80: permission denied' : undefined));
    const { get } = await start(options([controller.address]), dataPlane);
    await until(() => controller.requests.length === 2);
    let dump = JSON.parse((await get('/config_dump')).text);
    expect(dump.resources.map((r: { name: string }) => r.name)).toEqual(['default/api']);
    expect(dump.nacks).toEqual([{ key: { type: 'RESOURCE_TYPE_LISTENER', name: 'default/web' }, version: 'bad', message: 'listener port 80: permission denied' }]);

    call!.write(responses[1]!);
    await until(() => controller.requests.length === 3);
    dump = JSON.parse((await get('/config_dump')).text);
    expect(dump.nacks).toEqual([]);
    expect(dump.lastAppliedRevision).toBe(2);
  });

  it('with --cache-dir, restarts from the cache without a controller and offers it as held', async () => {
    await using dir = await tempDir();
    const controller = await fakeController((c) => c.write(DiscoveryResponse.fromPartial({ nonce: 'n1', revision: 9, snapshotVersion: 's9', resources: [cluster('default/api'), listener('default/web', 'v3')] })));
    const first = await start(options([controller.address], { cacheDir: dir.path }));
    await until(() => controller.requests.length === 2);
    await first.agent.close();
    controller.stop();

    const dead = await deadAddress();
    const second = await start(options([dead], { cacheDir: dir.path }));
    expect(second.dataPlane.resources().map((r) => `${r.name}@${r.version}`)).toEqual(['default/api@v1', 'default/web@v3']);
    expect(await second.get('/readyz')).toEqual({ status: 200, text: 'ok: configuration applied from the cache\n' });
    expect(second.entries.find((e) => e.message === 'agent ready')).toMatchObject({ source: 'cache', revision: 9 });
    // The cached configuration was applied before any controller was asked.
    const readyAt = second.entries.findIndex((e) => e.message === 'agent ready');
    const firstAttempt = second.entries.findIndex((e) => e.message === 'opening discovery stream');
    expect(readyAt).toBeLessThan(firstAttempt);
    await until(() => second.entries.some((e) => e.message === 'no controller answers; serving the last applied configuration'));
    expect(JSON.parse((await second.get('/config_dump')).text).controller).toMatchObject({ connected: false });
    await second.agent.close();

    // A controller that comes back is told what the agent holds.
    const back = await fakeController((c) => c.write(DiscoveryResponse.fromPartial({ nonce: 'n2' })));
    cleanups.push(back.stop);
    await start(options([back.address], { cacheDir: dir.path }));
    await until(() => back.requests.length >= 1);
    expect(back.requests[0]!.held).toEqual([
      { key: { type: ResourceType.RESOURCE_TYPE_CLUSTER, name: 'default/api' }, version: 'v1' },
      { key: { type: ResourceType.RESOURCE_TYPE_LISTENER, name: 'default/web' }, version: 'v3' },
    ]);
  });

  it('starts empty and not ready when the cache is corrupt', async () => {
    await using dir = await tempDir();
    await writeFile(`${dir.path}/config.json`, 'garbage');
    const { entries, get, dataPlane } = await start(options([await deadAddress()], { cacheDir: dir.path }));
    expect(entries.find((e) => e.level === 'warn')).toMatchObject({ message: 'config cache is corrupt; starting empty' });
    expect(dataPlane.updates).toEqual([]);
    expect((await get('/readyz')).status).toBe(503);
  });

  it('close stops the stream, drains the data plane and closes the admin port', async () => {
    const controller = await fakeController((c) => c.write(DiscoveryResponse.fromPartial({ nonce: 'n1' })));
    cleanups.push(controller.stop);
    const { agent, dataPlane } = await start(options([controller.address]));
    await until(() => controller.requests.length === 2);
    await agent.close();
    expect(dataPlane.closed).toBe(true);
    await expect(fetch(`${agent.adminUrl}/healthz`)).rejects.toThrow();
  });

  it('fails to start on a --cache-dir it cannot create, naming the flag', async () => {
    await using dir = await tempDir();
    await writeFile(`${dir.path}/file`, '');
    await expect(start(options([await deadAddress()], { cacheDir: `${dir.path}/file/sub` }))).rejects.toThrow(/^--cache-dir: cannot create/);
  });
});
