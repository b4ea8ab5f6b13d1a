import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kindInfo } from '@sluice/api';
import { Node, ProtocolVersion } from '@sluice/proto';
import { tempDir, type TempDir } from '@sluice/testing';
import type { AgentReport } from '../discovery/discovery-server.js';
import { silentLogger } from '../logger.js';
import { ResourceService } from '../resources/resource-service.js';
import { EmbeddedStore, type Store } from '../store/index.js';
import { AgentRegistry } from './agent-registry.js';

const AGENT = kindInfo('Agent')!;
let dir: TempDir;
let store: Store;
let resources: ResourceService;
const abort = new AbortController();

beforeEach(async () => {
  dir = await tempDir();
  store = await EmbeddedStore.open({ dataDir: dir.path });
  resources = new ResourceService(store, { prefix: '' });
});

afterEach(async () => {
  await store.close();
  await dir[Symbol.asyncDispose]();
});

const node = Node.fromPartial({ id: 'edge-1', labels: { pool: 'edge' }, version: '0.1.0', capabilities: ['workers', 'http1'], protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1 });

function report(over: Partial<AgentReport> = {}): AgentReport {
  return { id: 'edge-1', stream: 1, node, connected: true, appliedRevision: undefined, lag: undefined, nacks: [], ...over };
}

async function registry(id = 'ctl-a', minIntervalMs = 100) {
  const r = new AgentRegistry(resources, id, silentLogger(), { minIntervalMs });
  await r.start(abort.signal);
  return r;
}

async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in time: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const agent = () => resources.get(AGENT, undefined, 'edge-1').catch(() => undefined) as Promise<Record<string, any> | undefined>;

describe('AgentRegistry', () => {
  it('creates the Agent object on connect, with the node and this controller', async () => {
    const r = await registry();
    r.report(report());
    const object = await until(agent, (a) => a !== undefined);
    expect(object).toMatchObject({
      kind: 'Agent',
      metadata: { name: 'edge-1', labels: { pool: 'edge' }, generation: 1 },
      spec: { labels: { pool: 'edge' }, version: '0.1.0', capabilities: ['http1', 'workers'] },
      status: { connected: true, controller: 'ctl-a' },
    });
    expect(object!.status.lastSeen).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    await r.close();
  });

  it('writes at most once per interval, with the latest state, and skips reports that change nothing', async () => {
    const r = await registry('ctl-a', 300);
    r.report(report());
    await until(agent, (a) => a !== undefined);
    const { revision: before } = await store.list('');
    for (let i = 1; i <= 5; i++) r.report(report({ appliedRevision: i, lag: 5 - i }));
    const written = await until(agent, (a) => a?.status.appliedRevision === 5);
    expect(written!.status.lag).toBe(0);
    const { revision: after } = await store.list('');
    expect(after - before).toBe(1); // five reports, one write
    r.report(report({ appliedRevision: 5, lag: 0 })); // nothing new
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await store.list('')).revision).toBe(after);
    await r.close();
  });

  it('records NACKs and clears them', async () => {
    const r = await registry();
    const nack = { kind: 'Route', name: 'default/shop', version: 'abc', message: 'invalid regex' };
    r.report(report({ appliedRevision: 3, lag: 0, nacks: [nack] }));
    expect((await until(agent, (a) => a !== undefined))!.status.nacks).toEqual([nack]);
    r.report(report({ appliedRevision: 4, lag: 0 }));
    const cleared = await until(agent, (a) => a?.status.appliedRevision === 4);
    expect(cleared!.status.nacks).toBeUndefined();
    await r.close();
  });

  it('marks the agent disconnected, unless another replica serves it now', async () => {
    const a = await registry('ctl-a');
    a.report(report());
    await until(agent, (x) => x !== undefined);
    a.report(report({ connected: false }));
    await until(agent, (x) => x?.status.connected === false);

    const b = await registry('ctl-b');
    b.report(report({ stream: 7 }));
    await until(agent, (x) => x?.status.controller === 'ctl-b' && x.status.connected === true);
    a.report(report({ stream: 2 }));
    a.report(report({ stream: 2, connected: false }));
    await a.close(); // writes what is pending now
    const after = await agent();
    expect(after!.status).toMatchObject({ connected: true, controller: 'ctl-b' });
    await b.close();
  });

  it('on start, marks disconnected the agents an earlier run of the same id left connected', async () => {
    const first = await registry('ctl-a');
    first.report(report());
    await until(agent, (x) => x?.status.connected === true);
    await first.close(); // a crash: no disconnect was reported

    const second = await registry('ctl-a');
    await until(agent, (x) => x?.status.connected === false);
    await second.close();
  });

  it('stays read-only through the API while the controller can write it', async () => {
    const r = await registry();
    r.report(report());
    await until(agent, (x) => x !== undefined);
    await expect(resources.replace(AGENT, undefined, 'edge-1', { metadata: { name: 'edge-1' } })).rejects.toMatchObject({ code: 'method-not-allowed' });
    await expect(resources.apply([{ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name: 'x' } }])).rejects.toMatchObject({ code: 'invalid' });
    await r.close();
  });
});
