import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, status as Status, type Server } from '@grpc/grpc-js';
import { ProtocolVersion, ReportServiceClient, ResourceType, type AgentReport, type Directive, type HealthStatus } from '@sluice/proto';
import { closeGrpc, listenGrpc } from '../discovery/grpc-server.js';
import { Aggregator, endpointKey } from '../feedback/aggregator.js';
import type { TranslationOutput } from '../discovery/translator-port.js';
import { silentLogger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import { Watchable } from '../watchable.js';
import { HealthCoordinator, type MergedHealth } from './health-coordinator.js';
import { ReportServer } from './report-server.js';

// The report server on a real loopback socket, driven by the generated grpc-js client.
let grpc: { server: Server; address: string };
let coordinator: HealthCoordinator;
let reports: ReportServer;
const aggregator = new Aggregator();

beforeAll(async () => {
  coordinator = new HealthCoordinator(
    {
      resources: new Watchable<ResourceSnapshot>(),
      snapshots: {
        translations: new Watchable<TranslationOutput>(),
        snapshotFor: () => ({ revision: 1, version: 'v', resources: [{ type: ResourceType.RESOURCE_TYPE_CLUSTER, name: 'default/shop', version: 'c', encoded: new Uint8Array(), sources: [] }] }),
      },
      health: new Watchable<ReadonlyMap<string, HealthStatus>>(new Map()),
      merged: new Watchable<MergedHealth>(),
      logger: silentLogger(),
    },
    { reportIntervalMs: 250 },
  );
  reports = new ReportServer(coordinator, silentLogger(), aggregator);
  grpc = await listenGrpc('127.0.0.1', 0, (server) => reports.register(server));
});

afterAll(async () => {
  reports.close();
  await closeGrpc(grpc.server);
});

const node = (id: string, protocolVersion = ProtocolVersion.PROTOCOL_VERSION_V1) => ({ id, labels: {}, version: '0.1.0', capabilities: [], protocolVersion });

/** Opens a report stream, sends `first`, resolves with the first directive or the error status. */
function open(first: AgentReport): { next: Promise<{ directive?: Directive; code?: number; details?: string }>; close(): void } {
  const client = new ReportServiceClient(grpc.address, credentials.createInsecure());
  const call = client.report();
  const next = new Promise<{ directive?: Directive; code?: number; details?: string }>((resolve) => {
    call.on('data', (directive: Directive) => resolve({ directive }));
    call.on('error', (error: { code: number; details: string }) => resolve({ code: error.code, details: error.details }));
  });
  call.write(first);
  return {
    next,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** Opens a report stream and collects every directive; `until` waits for one matching. */
function openAll(first: AgentReport) {
  const client = new ReportServiceClient(grpc.address, credentials.createInsecure());
  const call = client.report();
  const directives: Directive[] = [];
  let wake = () => {};
  call.on('data', (directive: Directive) => {
    directives.push(directive);
    wake();
  });
  call.on('error', () => {});
  call.write(first);
  return {
    directives,
    send: (report: AgentReport) => call.write(report),
    async until(test: (d: Directive) => boolean): Promise<Directive> {
      for (;;) {
        const found = directives.find(test);
        if (found) return found;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

async function eventually(test: () => boolean): Promise<void> {
  while (!test()) await new Promise((resolve) => setTimeout(resolve, 5));
}

const empty = { sentAtUnixMs: 1, health: [], healthOmitted: 0, traffic: [], trafficOmitted: 0 };
const traffic = (requests: number) => [{ cluster: 'default/shop', endpointId: 'e9', requests, errors5xx: 0, connectFailures: 0, timeouts: 0, resets: 0, latencyEwmaMs: 5, latencyBuckets: [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0], inFlight: 0 }];

describe('ReportServer routing (reports go to the leader)', () => {
  it('as a follower redirects a new stream to the leader, neither assigning nor aggregating', async () => {
    reports.setRoute({ leading: false, reportTo: 'leader.example:9081' });
    try {
      const s = openAll({ ...empty, node: node('r1'), traffic: traffic(4) });
      const directive = await s.until((d) => d.reportTo !== '');
      expect(directive).toEqual({ reportIntervalMs: 1000, reportTo: 'leader.example:9081', healthChecks: [] });
      expect(coordinator.size).toBe(0);
      s.send({ ...empty, traffic: traffic(4) });
      expect(aggregator.snapshot(Date.now()).get(endpointKey('default/shop', 'e9'))).toBeUndefined();
      s.close();
    } finally {
      reports.setRoute({ leading: true, reportTo: '' });
    }
  });

  it('while the leader is unknown keeps the stream with an empty report_to, then redirects it once known', async () => {
    reports.setRoute({ leading: false, reportTo: '' });
    try {
      const s = openAll({ ...empty, node: node('r2') });
      expect(await s.until(() => true)).toEqual({ reportIntervalMs: 1000, reportTo: '', healthChecks: [] });
      reports.setRoute({ leading: false, reportTo: 'b.example:9081' });
      expect((await s.until((d) => d.reportTo !== '')).reportTo).toBe('b.example:9081');
      s.close();
    } finally {
      reports.setRoute({ leading: true, reportTo: '' });
    }
  });

  it('attaches the streams it holds when it becomes leader, and redirects them when it loses leadership', async () => {
    reports.setRoute({ leading: false, reportTo: 'a.example:9081' });
    const s = openAll({ ...empty, node: node('r3') });
    await s.until((d) => d.reportTo === 'a.example:9081');
    reports.setRoute({ leading: true, reportTo: '' });
    // The coordinator's directive: report here.
    await s.until((d) => d.reportTo === '' && d.reportIntervalMs === 250);
    expect(coordinator.size).toBe(1);
    s.send({ ...empty, traffic: traffic(3) });
    await eventually(() => aggregator.snapshot(Date.now()).get(endpointKey('default/shop', 'e9'))?.requests === 3);
    reports.setRoute({ leading: false, reportTo: 'c.example:9081' });
    await s.until((d) => d.reportTo === 'c.example:9081');
    expect(coordinator.size).toBe(0);
    // Its stats leave with it: the new leader counts them.
    expect(aggregator.snapshot(Date.now()).get(endpointKey('default/shop', 'e9'))).toBeUndefined();
    s.close();
    reports.setRoute({ leading: true, reportTo: '' });
  });
});

describe('ReportServer', () => {
  it('answers a report stream with a directive and forgets the agent when it leaves', async () => {
    const s = open({ node: node('a1'), sentAtUnixMs: 1, health: [], healthOmitted: 0, traffic: [], trafficOmitted: 0 });
    const { directive } = await s.next;
    expect(directive).toEqual({ reportIntervalMs: 250, reportTo: '', healthChecks: [] });
    expect(coordinator.size).toBe(1);
    s.close();
    await new Promise<void>((resolve) => {
      const check = () => (coordinator.size === 0 ? resolve() : setImmediate(check));
      check();
    });
  });

  it('feeds the traffic stats to the aggregator, which forgets the agent when its stream ends', async () => {
    const traffic = [{ cluster: 'default/shop', endpointId: 'e1', requests: 4, errors5xx: 1, connectFailures: 0, timeouts: 0, resets: 0, latencyEwmaMs: 12, latencyBuckets: [0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0], inFlight: 2 }];
    const s = open({ node: node('a3'), sentAtUnixMs: 1, health: [], healthOmitted: 0, traffic, trafficOmitted: 0 });
    expect((await s.next).directive).toBeDefined();
    expect(aggregator.snapshot(Date.now()).get(endpointKey('default/shop', 'e1'))).toMatchObject({ requests: 4, errors: 1, errorRate: 0.25, latencyMs: 12, inFlight: 2, agents: 1 });
    s.close();
    await new Promise<void>((resolve) => {
      const check = () => (aggregator.agentCount === 0 ? resolve() : setImmediate(check));
      check();
    });
    expect(aggregator.snapshot(Date.now()).size).toBe(0);
  });

  it('refuses a stream without a node, or with a bad id or protocol version, as discovery does', async () => {
    const none = open({ sentAtUnixMs: 1, health: [], healthOmitted: 0, traffic: [], trafficOmitted: 0 });
    expect(await none.next).toMatchObject({ code: Status.INVALID_ARGUMENT });
    none.close();
    const bad = open({ node: node('Not_Valid'), sentAtUnixMs: 1, health: [], healthOmitted: 0, traffic: [], trafficOmitted: 0 });
    expect(await bad.next).toMatchObject({ code: Status.INVALID_ARGUMENT, details: expect.stringContaining('node.id') as unknown });
    bad.close();
    const old = open({ node: node('a2', ProtocolVersion.PROTOCOL_VERSION_UNSPECIFIED), sentAtUnixMs: 1, health: [], healthOmitted: 0, traffic: [], trafficOmitted: 0 });
    expect(await old.next).toMatchObject({ code: Status.FAILED_PRECONDITION, details: expect.stringContaining('upgrade the agent') as unknown });
    old.close();
  });
});
