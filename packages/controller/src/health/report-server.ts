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
  private readonly calls = new Map<string, Call>();

  constructor(
    private readonly coordinator: HealthCoordinator,
    private readonly logger: Logger,
    private readonly aggregator?: Aggregator,
    private readonly now: () => number = Date.now,
  ) {}

  register(server: Server): void {
    server.addService(REPORT_SERVICE, { report: (call: Call) => this.handle(call) });
  }

  close(): void {
    for (const call of [...this.calls.values()]) end(call, { code: Status.UNAVAILABLE, message: 'controller shutting down' });
  }

  private handle(call: Call): void {
    let session: ReturnType<HealthCoordinator['connect']> | undefined;
    let id: string | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      session?.disconnect();
      if (id !== undefined && this.calls.get(id) === call) {
        this.calls.delete(id);
        // A stream replaced by a newer one of the same agent leaves the agent's data alone.
        this.aggregator?.forget(id);
      }
    };
    call.on('data', (incoming: IncomingReport) => {
      if (finished) return;
      if (session) {
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
      id = node.id;
      const older = this.calls.get(id);
      this.calls.set(id, call);
      if (older) end(older, { code: Status.ABORTED, message: 'replaced by a newer report stream from the same agent' });
      this.logger.debug('report stream opened', { id, peer: call.getPeer() });
      session = this.coordinator.connect(id, node.labels, {
        send: (directive) => {
          if (!finished && !call.cancelled && !call.destroyed) call.write(directive);
        },
      });
      session.report(incoming.report);
      this.aggregator?.add(id, incoming.report, this.now());
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
