import { status as Status, type Server, type ServerDuplexStream } from '@grpc/grpc-js';
import { AgentReport, ReportServiceService, type Directive } from '@sluice/proto';
import { checkNode, type Refusal } from '../discovery/discovery-server.js';
import { rawProtocolVersion } from '../discovery/wire.js';
import type { Aggregator } from '../feedback/aggregator.js';
import type { Logger } from '../logger.js';
import type { HealthCoordinator } from './health-coordinator.js';

interface IncomingReport {
  readonly report: AgentReport;
  readonly protocolVersion: number;
}

type Call = ServerDuplexStream<IncomingReport, Directive>;

/**
 * Whether this replica hears reports. The leader does (`leading`); a follower answers every
 * report stream with a Directive whose report_to is the leader's address (`reportTo`; '' while
 * the leader is unknown: the agent stays and waits for the next directive).
 */
export interface ReportRoute {
  readonly leading: boolean;
  readonly reportTo: string;
}

interface Stream {
  readonly call: Call;
  /** Applies the route in force to this stream (attach to the coordinator, or redirect). */
  route(route: ReportRoute): void;
}

/** ReportService with a deserializer that keeps the raw protocol version (a refusal names it). */
const REPORT_SERVICE = {
  report: {
    ...ReportServiceService.report,
    requestDeserialize: (bytes: Buffer): IncomingReport => {
      const report = AgentReport.decode(bytes);
      return { report, protocolVersion: report.node ? rawProtocolVersion(bytes) : 0 };
    },
  },
} as const;

/**
 * ReportService.Report (docs/discovery-protocol.md, "Report stream"): checks the first report's
 * node like the discovery handshake, keeps one stream per agent id (a newer one replaces the
 * older with ABORTED), hands reports to the coordinator and writes its directives. Traffic
 * stats go to the aggregator (if any), which forgets the agent when its stream ends.
 */
export class ReportServer {
  private readonly calls = new Map<string, Stream>();
  private current: ReportRoute = { leading: true, reportTo: '' };

  constructor(
    private readonly coordinator: HealthCoordinator,
    private readonly logger: Logger,
    private readonly aggregator?: Aggregator,
    private readonly now: () => number = Date.now,
    /** The report interval a follower's directive carries. */
    private readonly reportIntervalMs = 1000,
  ) {}

  /**
   * Sets who hears reports (default: this replica). On a change every open stream follows: a
   * replica that stops leading detaches its streams from the coordinator and the aggregator
   * and redirects them; one that starts leading attaches the streams it holds.
   */
  setRoute(route: ReportRoute): void {
    if (route.leading === this.current.leading && route.reportTo === this.current.reportTo) return;
    this.current = route;
    if (!route.leading) this.logger.info('report streams go to the leader', { reportTo: route.reportTo || '(unknown yet)', streams: this.calls.size });
    for (const stream of [...this.calls.values()]) stream.route(route);
  }

  get route(): ReportRoute {
    return this.current;
  }

  register(server: Server): void {
    server.addService(REPORT_SERVICE, { report: (call: Call) => this.handle(call) });
  }

  close(): void {
    for (const { call } of [...this.calls.values()]) end(call, { code: Status.UNAVAILABLE, message: 'controller shutting down' });
  }

  private handle(call: Call): void {
    let session: ReturnType<HealthCoordinator['connect']> | undefined;
    let id: string | undefined;
    let stream: Stream | undefined;
    let finished = false;
    let lastRedirect: string | undefined;
    const write = (directive: Directive) => {
      if (!finished && !call.cancelled && !call.destroyed) call.write(directive);
    };
    const detach = () => {
      const open = session;
      session = undefined;
      open?.disconnect();
      if (open && id !== undefined && this.calls.get(id) === stream) this.aggregator?.forget(id);
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      session?.disconnect();
      session = undefined;
      if (id !== undefined && this.calls.get(id) === stream) {
        this.calls.delete(id);
        // A stream replaced by a newer one of the same agent leaves the agent's data alone.
        this.aggregator?.forget(id);
      }
    };
    call.on('data', (incoming: IncomingReport) => {
      if (finished) return;
      if (stream) {
        // A follower's streams are redirected: their reports are nobody's business here.
        if (!session) return;
        session.report(incoming.report);
        if (id !== undefined) this.aggregator?.add(id, incoming.report, this.now());
        return;
      }
      const node = incoming.report.node;
      const refusal = checkNode(node, incoming.protocolVersion);
      if (refusal || !node) {
        this.logger.warn('report stream refused', { peer: call.getPeer(), id: node?.id, reason: refusal?.message });
        end(call, refusal ?? { code: Status.INVALID_ARGUMENT, message: 'no node' });
        finish();
        return;
      }
      const agentId = node.id;
      id = agentId;
      stream = {
        call,
        route: (route) => {
          if (finished) return;
          if (route.leading) {
            lastRedirect = undefined;
            if (!session) session = this.coordinator.connect(agentId, node.labels, { send: write });
            return;
          }
          detach();
          if (lastRedirect === route.reportTo) return;
          lastRedirect = route.reportTo;
          if (route.reportTo !== '') this.logger.debug('report stream redirected', { id: agentId, reportTo: route.reportTo });
          write({ reportIntervalMs: this.reportIntervalMs, healthChecks: [], reportTo: route.reportTo });
        },
      };
      const older = this.calls.get(agentId);
      this.calls.set(agentId, stream);
      if (older) end(older.call, { code: Status.ABORTED, message: 'replaced by a newer report stream from the same agent' });
      this.logger.debug('report stream opened', { id: agentId, peer: call.getPeer(), leading: this.current.leading });
      stream.route(this.current);
      if (session) {
        session.report(incoming.report);
        this.aggregator?.add(agentId, incoming.report, this.now());
      }
    });
    call.on('end', () => {
      if (!finished) call.end();
      finish();
    });
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
  }
}

function end(call: Call, refusal: Refusal): void {
  if (call.cancelled || call.destroyed) return;
  call.emit('error', { code: refusal.code, details: refusal.message, message: refusal.message });
}
