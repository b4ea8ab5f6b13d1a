import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { hostname } from 'node:os';
import type { HealthStatus } from '@sluice/proto';
import { checkConsistency, snapshotFor, translate } from '@sluice/translator';
import { createAdminApp, listenAdmin } from './admin/server.js';
import { AgentRegistry } from './agents/agent-registry.js';
import { DiscoveryServer } from './discovery/discovery-server.js';
import { closeGrpc, listenGrpc, serverCredentials } from './discovery/grpc-server.js';
import { SnapshotCache } from './discovery/snapshot-cache.js';
import { Aggregator } from './feedback/aggregator.js';
import { EndpointStatusWriter } from './feedback/weight-runner.js';
import { DEFAULT_REPORT_INTERVAL_MS, HealthCoordinator, type MergedHealth } from './health/health-coordinator.js';
import { ReportServer, type ReportRoute } from './health/report-server.js';
import { LeaderOnly, createLeaderElector } from './leader/index.js';
import type { Logger } from './logger.js';
import { ControllerMetrics } from './metrics/controller-metrics.js';
import { instrumentStore } from './metrics/instrumented-store.js';
import type { ControllerOptions } from './options.js';
import { ResourceCache } from './resources/resource-cache.js';
import { ResourceService } from './resources/resource-service.js';
import type { Runner } from './runner.js';
import { ProgrammedStatus } from './status/programmed-status.js';
import { ReferenceStatus } from './status/reference-status.js';
import { openStore, type Store } from './store/index.js';
import { VERSION } from './version.js';
import { Watchable } from './watchable.js';

export interface RunningController {
  adminUrl: string;
  /** `host:port` of the agent discovery gRPC server. */
  grpcAddress: string;
  /**
   * The fleet's merged traffic stats per endpoint (feedback/aggregator.ts), fed by every
   * agent's report stream: read `aggregator.snapshot(Date.now())` once per interval.
   */
  readonly aggregator: Aggregator;
  /** True while this replica is the leader (always, with the embedded store). */
  leadership: Watchable<boolean>;
  close(): Promise<void>;
}

/**
 * Wires the controller's stages (STYLE §1): store -> resource cache -> snapshot cache ->
 * discovery server -> agents, the agent registry writing Agent objects, the status runners,
 * and the admin API over the resource service. Holds no logic of its own.
 */
export async function startController(options: ControllerOptions, logger: Logger): Promise<RunningController> {
  const metrics = new ControllerMetrics();
  const opened: Store = await openStore(
    options.store === 'embedded'
      ? { kind: 'embedded', dataDir: options.dataDir }
      : { kind: 'etcd', endpoints: options.etcdEndpoints, prefix: options.etcdPrefix },
  );
  const store = instrumentStore(opened, metrics);
  const prefix = options.store === 'embedded' ? '' : options.etcdPrefix;
  const resources = new ResourceService(store, { prefix });
  const cache = new ResourceCache(store, resources.keys.all(), logger);
  // Merged active health flows from the coordinator into the translation (Endpoint.health).
  const health = new Watchable<ReadonlyMap<string, HealthStatus>>(new Map());
  const merged = new Watchable<MergedHealth>();
  // Dynamic weights flow from the weight runner into the translation (Endpoint.weight).
  const weights = new Watchable<ReadonlyMap<string, number>>(new Map());
  const snapshots = new SnapshotCache(cache.snapshots, { translate, snapshotFor, checkConsistency }, logger, health, weights);
  const id = options.id ?? `${hostname()}:${process.pid}`;
  // Every replica serves agents and writes its own Agent objects; only the leader writes
  // derived status (DESIGN §6-§7) and hears reports. Gated runners start afresh on each term.
  // The elector campaigns once the gRPC address to advertise is known (after the bind).
  const advertised: { address: string } = { address: options.advertiseAddr ?? '' };
  const elector = createLeaderElector(
    store,
    {
      key: `${prefix}/leader`,
      id,
      ttlMs: options.leaderLeaseTtlMs,
      get address() {
        return advertised.address;
      },
    },
    logger,
  );
  const leadership = elector.leadership;
  const coordinator = new HealthCoordinator(
    { resources: cache.snapshots, snapshots, health, merged, logger, leadership },
    { probersPerEndpoint: options.healthProbers, reportIntervalMs: options.reportIntervalMs },
  );
  // Agents' traffic stats merged over a sliding window; the weight engine's input.
  // The window must span several reports, or slow reporting would leave it mostly empty.
  const aggregator = new Aggregator({ windowMs: Math.max(10_000, 5 * (options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS)) });
  const reports = new ReportServer(coordinator, logger, aggregator, Date.now, options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS);
  // Reports go to the leader: a follower redirects its report streams to the leader's address.
  const route = (): ReportRoute => {
    if (leadership.value === true) return { leading: true, reportTo: '' };
    const leader = elector.leader.value;
    return { leading: false, reportTo: leader && leader.id !== id ? leader.address : '' };
  };
  reports.setRoute(route());
  const agents = new AgentRegistry(resources, id, logger);
  const leaderOnly = (name: string, create: () => Runner) => new LeaderOnly(name, leadership, create, logger);
  const discovery = new DiscoveryServer(snapshots, agents, logger, metrics);
  metrics.setSources({ connectedAgents: () => discovery.size, isLeader: () => elector.isLeader() });
  const runners: Runner[] = [
    cache,
    snapshots,
    agents,
    elector,
    leaderOnly('reference-status', () => new ReferenceStatus(cache, resources, logger)),
    leaderOnly('programmed-status', () => new ProgrammedStatus(snapshots.outputs, resources, logger)),
    coordinator,
    // Not gated: every replica serves the weights in the store; only the leader runs the
    // engine and writes status (it restarts from the store's factors on each new term).
    new EndpointStatusWriter(merged, resources, logger, { stats: aggregator, weights, isLeader: elector.isLeader, weightUpdates: metrics.weightUpdates }),
  ];

  const abort = new AbortController();
  for (const runner of runners) if (runner !== elector) await runner.start(abort.signal);
  for (const watchable of [leadership, elector.leader] as Watchable<unknown>[]) {
    void (async () => {
      for await (const _ of watchable.subscribe(abort.signal)) reports.setRoute(route());
    })();
  }

  let server: Server | HttpsServer;
  try {
    const leaderState = () => ({ id, leader: elector.isLeader(), leaderId: elector.leaderId });
    const listening = await listenAdmin(createAdminApp({ resources, logger, leadership: leaderState, metrics }), options.admin.host, options.admin.port, options.adminTls);
    server = listening.server;
    logger.info('admin API listening', { address: listening.url });
    const grpc = await listenGrpc(options.grpc.host, options.grpc.port, (grpcServer) => {
      discovery.register(grpcServer);
      reports.register(grpcServer);
    }, serverCredentials(options.grpcTls));
    const tls = options.grpcTls === undefined ? 'off' : options.grpcTls.ca === undefined ? 'server' : 'mutual';
    logger.info('gRPC discovery listening', { address: grpc.address, tls });
    if (advertised.address === '') advertised.address = advertiseAddress(grpc.address);
    await elector.start(abort.signal);
    logger.info('controller started', { version: VERSION, store: store.description, id: agents.controllerId });
    return {
      adminUrl: listening.url,
      grpcAddress: grpc.address,
      aggregator,
      leadership,
      async close() {
        // Streams end first so the registry records the agents as disconnected while the
        // store is still open; then the runners stop.
        discovery.close();
        reports.close();
        await closeGrpc(grpc.server);
        abort.abort();
        // Watches are long-lived responses: end them, or close() would wait for clients.
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all(runners.map((r) => r.close()));
        await store.close();
      },
    };
  } catch (error) {
    abort.abort();
    await Promise.all(runners.map((r) => r.close()));
    await store.close();
    throw error;
  }
}

/** What to advertise for a bound `host:port`: itself, or `<hostname>:<port>` when bound to every interface. */
export function advertiseAddress(bound: string): string {
  const match = /^(.*):(\d+)$/.exec(bound);
  if (!match) return bound;
  const host = match[1]!;
  return host === '0.0.0.0' || host === '[::]' || host === '::' || host === '' ? `${hostname()}:${match[2]}` : bound;
}
