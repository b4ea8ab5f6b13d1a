import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { status as Status, type Server } from '@grpc/grpc-js';
import { DiscoveryResponse, Resource, ResourceType } from '@sluice/proto';
import { silentLogger } from '../logger.js';
import { DiscoveryServer, type AgentReport } from './discovery-server.js';
import { closeGrpc, listenGrpc } from './grpc-server.js';
import { TestAgent } from './test-agent.js';
import { FakeSnapshotSource, served } from './test-support.js';
import { encodeResponse } from './wire.js';

const { RESOURCE_TYPE_CLUSTER: CLUSTER, RESOURCE_TYPE_ENDPOINTS: ENDPOINTS, RESOURCE_TYPE_ROUTE_TABLE: ROUTE_TABLE, RESOURCE_TYPE_LISTENER: LISTENER } = ResourceType;

const cluster = served(CLUSTER, 'default/api', 'c1', { kind: 'Upstream', namespace: 'default', name: 'api' });
const endpoints = served(ENDPOINTS, 'default/api', 'e1');
const table = served(ROUTE_TABLE, 'default/web', 'r1', { kind: 'Route', namespace: 'default', name: 'shop' });
const listener = served(LISTENER, 'default/web', 'l1', { kind: 'Listener', namespace: 'default', name: 'web' });
const base = [cluster, endpoints, table, listener];

// The discovery server on a real loopback socket, driven by a grpc-js test agent.
let grpc: { server: Server; address: string };
let source: FakeSnapshotSource;
let discovery: DiscoveryServer;
const reports: AgentReport[] = [];
const agents: TestAgent[] = [];

beforeAll(async () => {
  source = new FakeSnapshotSource();
  discovery = new DiscoveryServer(source, { report: (r) => reports.push(r) }, silentLogger());
  grpc = await listenGrpc('127.0.0.1', 0, (server) => discovery.register(server));
});

afterEach(() => {
  for (const agent of agents.splice(0)) agent.close();
});

afterAll(async () => {
  discovery.close();
  await closeGrpc(grpc.server);
});

function connect(id: string, held: typeof base = [], labels: Record<string, string> = {}): TestAgent {
  const agent = TestAgent.connect(grpc.address, { id, labels }, held.map((r) => ({ key: { type: r.type, name: r.name }, version: r.version })));
  agents.push(agent);
  return agent;
}

const keys = (r: DiscoveryResponse) => r.resources.map((x) => `${x.body?.$case} ${x.name}@${x.version}`);
const keyOf = (r: typeof cluster) => `${r.type === CLUSTER ? 'cluster' : r.type === ENDPOINTS ? 'endpoints' : r.type === ROUTE_TABLE ? 'routeTable' : 'listener'} ${r.name}@${r.version}`;

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('response encoding', () => {
  it('is byte-identical to encoding the decoded resources', () => {
    const out = { nonce: 'n1', revision: 42, snapshotVersion: 'abc', resources: base, removed: [{ type: LISTENER, name: 'default/old' }] };
    const expected = DiscoveryResponse.encode({ ...out, resources: base.map((r) => Resource.decode(r.encoded)) }).finish();
    expect(encodeResponse(out).equals(Buffer.from(expected))).toBe(true);
  });
});

describe('DiscoveryServer', () => {
  it('sends everything in the first response, then only what changes', async () => {
    source.set(10, base);
    const agent = connect('first');
    const first = await agent.next();
    expect(keys(first)).toEqual(base.map(keyOf));
    expect(first).toMatchObject({ revision: 10, removed: [] });
    expect(first.nonce).not.toBe('');
    agent.ack(first);
    await until(() => reports.some((r) => r.id === 'first' && r.appliedRevision === 10));

    const changed = served(ENDPOINTS, 'default/api', 'e2');
    source.set(11, [cluster, changed, table, listener]);
    const second = await agent.next();
    expect(keys(second)).toEqual([keyOf(changed)]);
    expect(second.nonce).not.toBe(first.nonce);
    agent.ack(second);

    // Only the listener's route table goes away: removal, nothing else.
    source.set(12, [cluster, changed]);
    const third = await agent.next();
    expect(third.resources).toEqual([]);
    expect(third.removed).toEqual([{ type: LISTENER, name: 'default/web' }, { type: ROUTE_TABLE, name: 'default/web' }]);
  });

  it('on resume sends only the difference, and an empty first response when nothing differs', async () => {
    source.set(20, base);
    const same = connect('resume-same', base);
    const empty = await same.next();
    expect(empty).toMatchObject({ revision: 20, resources: [], removed: [] });

    const stale = served(CLUSTER, 'default/api', 'old');
    const behind = connect('resume-behind', [stale, endpoints, table, listener, served(LISTENER, 'default/gone', 'x')]);
    const diff = await behind.next();
    expect(keys(diff)).toEqual([keyOf(cluster)]);
    expect(diff.removed).toEqual([{ type: LISTENER, name: 'default/gone' }]);
  });

  it('keeps one response in flight and coalesces changes until the ACK', async () => {
    source.set(30, base);
    const agent = connect('in-flight');
    const first = await agent.next();
    source.set(31, [served(CLUSTER, 'default/api', 'c31'), endpoints, table, listener]);
    const latest = served(CLUSTER, 'default/api', 'c32');
    source.set(32, [latest, endpoints, table, listener]);
    expect(await agent.quiet()).toBe(true);
    agent.ack(first);
    const next = await agent.next();
    expect(keys(next)).toEqual([keyOf(latest)]);
    expect(next.revision).toBe(32);
  });

  it('does not resend a NACKed version; sends it again when its version changes', async () => {
    source.set(40, base);
    const agent = connect('nacker');
    const first = await agent.next();
    agent.nack(first, [{ key: { type: ROUTE_TABLE, name: 'default/web' }, version: table.version, message: 'invalid regex "("' }]);
    await until(() => reports.some((r) => r.id === 'nacker' && r.nacks.length === 1));
    expect(reports.findLast((r) => r.id === 'nacker')!.nacks).toEqual([
      { kind: 'Route', name: 'default/shop', version: table.version, message: 'invalid regex "("' },
    ]);

    // An unrelated change: the rejected route table is not part of it.
    const c2 = served(CLUSTER, 'default/api', 'c2');
    source.set(41, [c2, endpoints, table, listener]);
    const second = await agent.next();
    expect(keys(second)).toEqual([keyOf(c2)]);
    agent.ack(second);
    // A revision that leaves the rejected version as it is sends nothing.
    source.set(42, [c2, endpoints, table, listener, served(ENDPOINTS, 'default/x', 'x')].slice(0, 4));
    expect(await agent.quiet()).toBe(true);

    const fixed = served(ROUTE_TABLE, 'default/web', 'r2', { kind: 'Route', namespace: 'default', name: 'shop' });
    source.set(43, [c2, endpoints, fixed, listener]);
    const third = await agent.next();
    expect(keys(third)).toEqual([keyOf(fixed)]);
    agent.ack(third);
    await until(() => reports.findLast((r) => r.id === 'nacker')!.appliedRevision === 43);
    expect(reports.findLast((r) => r.id === 'nacker')!.nacks).toEqual([]);
  });

  it('refuses an unsupported protocol version with FAILED_PRECONDITION and a readable message', async () => {
    const agent = TestAgent.connectSpeaking(grpc.address, 'future', 2);
    agents.push(agent);
    const status = await agent.status;
    expect(status.code).toBe(Status.FAILED_PRECONDITION);
    expect(status.details).toBe('agent speaks protocol version 2; this controller speaks 1: upgrade the controller');

    const old = TestAgent.connectSpeaking(grpc.address, 'ancient', 0);
    agents.push(old);
    expect((await old.status).details).toBe('agent sent no protocol version; this controller speaks 1: upgrade the agent');
  });

  it('refuses a bad agent id or labels with INVALID_ARGUMENT', async () => {
    const agent = connect('Not_A_Name', [], { 'bad key!': 'x' });
    const status = await agent.status;
    expect(status.code).toBe(Status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/^invalid agent node: node\.id: /);
    expect(status.details).toMatch(/node\.labels/);
  });

  it('replaces the older stream of the same agent', async () => {
    source.set(50, base);
    const older = connect('twice');
    older.ack(await older.next());
    await until(() => reports.some((r) => r.id === 'twice' && r.appliedRevision === 50));
    const newer = connect('twice', base);
    const status = await older.status;
    expect(status.code).toBe(Status.ABORTED);
    expect(status.details).toBe('replaced by a newer stream from the same agent');
    expect(await newer.next()).toMatchObject({ resources: [], removed: [] });
    // The replaced stream's end does not mark the agent disconnected.
    expect(await newer.quiet(100)).toBe(true);
    const mine = reports.filter((r) => r.id === 'twice');
    expect(mine.at(-1)!.connected).toBe(true);
    expect(mine.some((r) => !r.connected)).toBe(false);

    newer.close();
    await until(() => reports.findLast((r) => r.id === 'twice')!.connected === false);
  });
});
