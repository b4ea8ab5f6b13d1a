import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kindInfo, type Condition } from '@sluice/api';
import { tempDir, type TempDir } from '@sluice/testing';
import { checkConsistency, snapshotFor, translate } from '@sluice/translator';
import { SnapshotCache } from '../discovery/snapshot-cache.js';
import { silentLogger } from '../logger.js';
import { ResourceCache } from '../resources/resource-cache.js';
import { ResourceService } from '../resources/resource-service.js';
import type { Runner } from '../runner.js';
import { EmbeddedStore, type Store } from '../store/index.js';
import { withConditions } from './conditions.js';
import { ProgrammedStatus } from './programmed-status.js';
import { ReferenceStatus } from './reference-status.js';

const AGENT = kindInfo('Agent')!;
let dir: TempDir;
let store: Store;
let resources: ResourceService;
let abort: AbortController;
let runners: Runner[];

beforeEach(async () => {
  dir = await tempDir();
  store = await EmbeddedStore.open({ dataDir: dir.path });
  resources = new ResourceService(store, { prefix: '' });
  const logger = silentLogger();
  const cache = new ResourceCache(store, resources.keys.all(), logger);
  const snapshots = new SnapshotCache(cache.snapshots, { translate, snapshotFor, checkConsistency }, logger);
  // ReferenceStatus too: both runners write conditions on the same objects.
  runners = [cache, snapshots, new ProgrammedStatus(snapshots.outputs, resources, logger), new ReferenceStatus(cache, resources, logger)];
  abort = new AbortController();
  for (const r of runners) await r.start(abort.signal);
});

afterEach(async () => {
  abort.abort();
  await Promise.all(runners.map((r) => r.close()));
  await store.close();
  await dir[Symbol.asyncDispose]();
});

const objects = [
  { apiVersion: 'sluice/v1', kind: 'Upstream', metadata: { name: 'api' }, spec: { endpoints: [{ address: '127.0.0.1', port: 9001 }] } },
  { apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'web' }, spec: { port: 8080, protocol: 'HTTP' } },
  { apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'shop' }, spec: { parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'api' }] }] } },
  { apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'stray' }, spec: { parentRefs: [{ name: 'nowhere' }], rules: [{ backendRefs: [{ name: 'api' }] }] } },
];

async function agent(name: string, connected: boolean, nacks: { kind: string; name: string; version: string; message: string }[] = []) {
  await resources.upsertInternal(AGENT, undefined, name, () => ({
    metadata: { name },
    spec: {},
    status: { connected, controller: 'test', ...(nacks.length > 0 ? { nacks } : {}) },
  }));
}

async function conditions(kind: string, name: string): Promise<Condition[]> {
  const object = (await resources.get(kindInfo(kind)!, 'default', name)) as { status?: { conditions?: Condition[] } };
  return object.status?.conditions ?? [];
}

async function programmed(kind: string, name: string, check: (c: Condition | undefined) => boolean): Promise<Condition | undefined> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const c = (await conditions(kind, name)).find((x) => x.type === 'Programmed');
    if (check(c)) return c;
    if (Date.now() > deadline) throw new Error(`${kind} ${name}: Programmed is ${JSON.stringify(c)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('ProgrammedStatus', () => {
  it('marks what reaches the data plane Programmed, and NACKed objects Rejected by N/M agents', async () => {
    await resources.apply(objects);
    await agent('a1', true);
    await agent('a2', true);
    await agent('gone', false, [{ kind: 'Route', name: 'default/shop', version: 'x', message: 'ignored: not connected' }]);

    expect(await programmed('Route', 'shop', (c) => c?.message === 'Applied by 2 agents')).toMatchObject({ status: 'True', reason: 'Programmed' });
    await programmed('Listener', 'web', (c) => c?.status === 'True');
    await programmed('Upstream', 'api', (c) => c?.status === 'True');

    await agent('a2', true, [{ kind: 'Route', name: 'default/shop', version: 'abc', message: 'invalid regex "("' }]);
    const rejected = await programmed('Route', 'shop', (c) => c?.status === 'False');
    expect(rejected).toMatchObject({ reason: 'Rejected', message: 'Rejected by 1/2 agents: invalid regex "("' });
    // Other runners' conditions are kept.
    expect((await conditions('Route', 'shop')).map((c) => c.type)).toEqual(['Accepted', 'Programmed', 'ResolvedRefs']);
    // A route attached to nothing reaches no agent: no Programmed condition.
    expect((await conditions('Route', 'stray')).some((c) => c.type === 'Programmed')).toBe(false);

    await agent('a2', true);
    await programmed('Route', 'shop', (c) => c?.status === 'True' && c.message === 'Applied by 2 agents');
  });
});

describe('withConditions', () => {
  const object = {
    apiVersion: 'sluice/v1',
    kind: 'Route',
    metadata: { name: 'r', namespace: 'default', generation: 3 },
    spec: {},
    status: { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', lastTransitionTime: '2020-01-01T00:00:00Z' }] },
  } as never;
  const now = new Date('2024-05-05T10:00:00.123Z');

  it('adds owned conditions, keeps the others, and reports no change as undefined', () => {
    const wanted = [{ type: 'Programmed', status: 'True', reason: 'Programmed', message: 'Applied by 1 agent' }] as const;
    const status = withConditions(object, new Set(['Programmed']), wanted, now)!;
    expect(status.conditions).toEqual([
      { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', lastTransitionTime: '2020-01-01T00:00:00Z' },
      { ...wanted[0], observedGeneration: 3, lastTransitionTime: '2024-05-05T10:00:00Z' },
    ]);
    const again = withConditions({ ...(object as object), status } as never, new Set(['Programmed']), wanted, new Date());
    expect(again).toBeUndefined();
    // An owned type no longer wanted is removed.
    expect(withConditions({ ...(object as object), status } as never, new Set(['Programmed']), [], now)!.conditions).toHaveLength(1);
  });
});
