import { ProtocolVersion, type Node } from '@sluice/proto';
import { AgentError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AgentOptions } from '../options.js';
import { VERSION } from '../version.js';
import { agentMetrics } from '../metrics/registry.js';
import { listenAdmin, type AdminServer } from './admin-server.js';
import { AgentStatus } from './agent-status.js';
import { CacheDir } from './cache-dir.js';
import { createDataPlane } from './data-plane-factory.js';
import type { DataPlaneOptions, ListeningDataPlane } from './data-plane-port.js';
import { channelCredentials, DiscoveryClient, openGrpcStream, type DiscoveryTiming, type OpenStream } from './discovery-client.js';
import { openGrpcReportStream, ReportClient, type OpenReportStream } from './report-client.js';
import { HealthChecker } from '../health/health-checker.js';
import { probeTls } from './tls-probe.js';
import { forkClusterWorker, WorkerPool } from './worker-pool.js';

/** What this agent's data plane serves, for the controller's Agent status (handshake capabilities). */
const DATA_PLANE_CAPABILITIES: readonly string[] = ['http1', 'https', 'h2', 'h2c', 'grpc', 'tcp', 'udp', 'tls-passthrough', 'proxy-protocol'];

export interface RunningAgent {
  adminUrl: string;
  /** Stops the discovery stream, drains the listeners and closes the admin port. */
  close(): Promise<void>;
}

/** Seams for in-process tests; production uses the defaults. */
export interface AgentDeps {
  createDataPlane?: (options: DataPlaneOptions) => ListeningDataPlane;
  openStream?: OpenStream;
  openReportStream?: OpenReportStream;
  timing?: Partial<DiscoveryTiming>;
}

/**
 * Wires the agent: data plane (in process, or one per worker), cache dir, admin port, discovery
 * client. A cached configuration is applied before any controller is asked, so the agent serves
 * without one.
 */
export async function startAgent(options: AgentOptions, logger: Logger, deps: AgentDeps = {}): Promise<RunningAgent> {
  const node: Node = {
    id: options.id,
    labels: options.labels,
    version: VERSION,
    capabilities: [...DATA_PLANE_CAPABILITIES, ...(options.workers > 1 ? ['workers'] : [])],
    protocolVersion: ProtocolVersion.PROTOCOL_VERSION_V1,
  };
  const status = new AgentStatus(node, logger);

  const cache = options.cacheDir === undefined ? undefined : new CacheDir(options.cacheDir, logger);
  try {
    await cache?.prepare();
  } catch (error) {
    throw new AgentError('bad-request', `--cache-dir: cannot create ${options.cacheDir}: ${error instanceof Error ? error.message : String(error)}`);
  }

  const dataPlane = await openDataPlane(options, logger, deps);
  let admin: AdminServer | undefined;
  let client: DiscoveryClient | undefined;
  // Active health checks of the endpoints the controller assigns, reported on their own stream.
  const checker = new HealthChecker({ logger, userAgent: `sluice-health-check/${VERSION} (agent ${node.id})` });
  // Traffic stats ride the same reports (with --workers: the sum of what the workers send up).
  const drainTraffic = dataPlane.drainTraffic?.bind(dataPlane);
  const traffic = drainTraffic === undefined ? undefined : { drainTraffic };
  // One set of credentials for every channel, so a report_to redirect is as protected as the list.
  const tls = options.tls;
  const channel = channelCredentials(tls);
  const openReportStream: OpenReportStream = deps.openReportStream ?? ((address, handlers) => openGrpcReportStream(address, handlers, channel));
  const reporter = new ReportClient({ controllers: options.controllers, node, health: checker, traffic, logger, openStream: openReportStream });
  let closing: Promise<void> | undefined;
  // Stop taking new configuration, persist the last, drain traffic; the admin port goes last
  // so /readyz says "shutting down" while listeners drain.
  const closeAll = () =>
    (closing ??= (async () => {
      reporter.stop();
      await client?.stop();
      await cache?.flush();
      await dataPlane.close();
      await admin?.close();
    })());
  try {
    const cached = await cache?.load();
    if (cached && cache) {
      const update = { resources: cached.resources, removed: [] };
      const errors = await dataPlane.apply(update);
      logger.info('configuration loaded from the cache dir', { file: cache.file, revision: cached.revision, resources: cached.resources.length, rejected: errors.length });
      status.applied('cache', cached.revision, update, errors);
      checker.configure(dataPlane.resources());
    }

    admin = await listenAdmin(options.admin.host, options.admin.port, status, dataPlane, agentMetrics(status, dataPlane)).catch((error: unknown) => {
      throw new AgentError('unavailable', `--admin-addr: cannot listen on ${options.admin.host}:${options.admin.port}: ${error instanceof Error ? error.message : String(error)}`);
    });
    logger.info('agent admin listening', { address: admin.url });

    client = new DiscoveryClient({
      controllers: options.controllers,
      node,
      dataPlane,
      logger,
      openStream: deps.openStream ?? ((address, handlers) => openGrpcStream(address, handlers, channel)),
      timing: deps.timing,
      diagnose: tls === undefined ? undefined : (address) => probeTls(address, tls),
      onConnection: (connection) => status.setConnection(connection),
      onApplied: async (event) => {
        status.applied('controller', event.revision, event.update, event.errors);
        checker.configure(dataPlane.resources());
        await cache?.save({ revision: event.revision, snapshotVersion: event.snapshotVersion, resources: dataPlane.resources() });
      },
    });
    client.start();
    reporter.start();
    logger.info('agent started', { id: node.id, version: VERSION, controllers: options.controllers, workers: options.workers, cacheDir: options.cacheDir, tls: tlsMode(options) });

    return {
      adminUrl: admin.url,
      async close() {
        status.startDraining();
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** For the start log line: how the controller streams are protected. */
function tlsMode(options: AgentOptions): 'off' | 'tls' | 'tls+client-cert' {
  if (options.tls === undefined) return 'off';
  return options.tls.cert === undefined ? 'tls' : 'tls+client-cert';
}

async function openDataPlane(options: AgentOptions, logger: Logger, deps: AgentDeps): Promise<ListeningDataPlane> {
  if (options.workers <= 1) return (deps.createDataPlane ?? createDataPlane)({ listenAddress: options.listenAddress, logger });
  const pool = new WorkerPool({ count: options.workers, fork: () => forkClusterWorker({ listenAddress: options.listenAddress, logLevel: options.logLevel }), logger });
  try {
    await pool.start();
  } catch (error) {
    await pool.close();
    throw new AgentError('internal', `cannot start ${options.workers} data-plane workers: ${error instanceof Error ? error.message : String(error)}`);
  }
  return pool;
}
