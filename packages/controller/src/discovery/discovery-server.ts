import { status as Status, type Server, type ServerDuplexStream } from '@grpc/grpc-js';
import { API_VERSION, validateResource } from '@sluice/api';
import { protocolVersionToNumber, ProtocolVersion, type DiscoveryRequest, type Node } from '@sluice/proto';
import type { Logger } from '../logger.js';
import { typeLabel, type ControllerMetrics } from '../metrics/controller-metrics.js';
import { AgentSession, type AgentNack } from './agent-session.js';
import type { SnapshotSource } from './snapshot-cache.js';
import { DISCOVERY_SERVICE, type IncomingRequest, type OutgoingResponse } from './wire.js';

/** What one stream knows about its agent, reported whenever it may have changed. */
export interface AgentReport {
  readonly id: string;
  /** Identifies the stream: a report from a replaced stream must not undo a newer one. */
  readonly stream: number;
  readonly node: Node;
  readonly connected: boolean;
  readonly appliedRevision: number | undefined;
  readonly lag: number | undefined;
  readonly nacks: readonly AgentNack[];
}

/** Where the server sends agent reports (the agent registry); it dedupes and throttles. */
export interface AgentTracker {
  report(report: AgentReport): void;
}

export const PROTOCOL_VERSION = protocolVersionToNumber(ProtocolVersion.PROTOCOL_VERSION_V1);

export interface Refusal {
  code: Status;
  message: string;
}

type Call = ServerDuplexStream<IncomingRequest, OutgoingResponse>;

interface AgentStream {
  readonly id: string;
  readonly number: number;
  readonly node: Node;
  readonly session: AgentSession;
  readonly call: Call;
  readonly abort: AbortController;
}

/**
 * The DiscoveryService (docs/discovery-protocol.md): one stream per agent, delta responses
 * from the snapshot source, one in flight, ACK/NACK per resource. The protocol state lives in
 * AgentSession; this class checks the handshake, keeps one stream per agent id, writes what
 * the session says to send and reports each agent's state to the tracker.
 */
export class DiscoveryServer {
  private readonly streams = new Map<string, AgentStream>();
  private counter = 0;
  /** When each snapshot version was first offered (convergence = that -> an agent's ACK). */
  private readonly offeredAt = new Map<string, number>();

  constructor(
    private readonly source: SnapshotSource,
    private readonly tracker: AgentTracker | undefined,
    private readonly logger: Logger,
    private readonly metrics?: Pick<ControllerMetrics, 'configPushes' | 'configPushBytes' | 'convergence' | 'nacks'>,
  ) {}

  /** Adds the service to a gRPC server (pass to `listenGrpc`). */
  register(server: Server): void {
    server.addService(DISCOVERY_SERVICE, { stream: (call: Call) => this.handle(call) });
  }

  /** Number of open, accepted streams. */
  get size(): number {
    return this.streams.size;
  }

  /** Ends every stream (shutdown); agents reconnect elsewhere. */
  close(): void {
    for (const stream of [...this.streams.values()]) end(stream.call, { code: Status.UNAVAILABLE, message: 'controller shutting down' });
  }

  private handle(call: Call): void {
    let stream: AgentStream | undefined;
    let finished = false;
    const abort = new AbortController();
    const finish = () => {
      if (finished) return;
      finished = true;
      abort.abort();
      if (stream) this.release(stream);
    };
    call.on('data', (incoming: IncomingRequest) => {
      if (finished) return;
      if (stream) {
        this.answer(stream, incoming.request);
        return;
      }
      const refusal = checkHandshake(incoming);
      if (refusal) {
        this.logger.warn('agent refused', { peer: call.getPeer(), id: incoming.request.node?.id, reason: refusal.message });
        end(call, refusal);
        finish();
        return;
      }
      stream = this.accept(call, incoming.request, abort);
    });
    call.on('end', () => {
      // The agent half-closed: finish our side too (unless we already ended it).
      if (!finished) call.end();
      finish();
    });
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
  }

  private accept(call: Call, request: DiscoveryRequest, abort: AbortController): AgentStream {
    const node = request.node!;
    const stream: AgentStream = { id: node.id, number: ++this.counter, node, session: new AgentSession(request.held), call, abort };
    const older = this.streams.get(node.id);
    this.streams.set(node.id, stream);
    if (older) {
      this.logger.info('agent reconnected; replacing its older stream', { id: node.id, peer: call.getPeer() });
      end(older.call, { code: Status.ABORTED, message: 'replaced by a newer stream from the same agent' });
      older.abort.abort();
    } else {
      this.logger.info('agent connected', { id: node.id, peer: call.getPeer(), version: node.version, held: request.held.length });
    }
    this.report(stream, true);
    void this.follow(stream);
    return stream;
  }

  /** Offers every new translation's group snapshot to the session (coalesced by the Watchable). */
  private async follow(stream: AgentStream): Promise<void> {
    for await (const _ of this.source.translations.subscribe(stream.abort.signal)) {
      const snapshot = this.source.snapshotFor(stream.node.labels);
      if (!snapshot || stream.abort.signal.aborted) continue;
      this.noteOffered(snapshot.version);
      this.send(stream, stream.session.offer(snapshot));
      this.report(stream, true);
    }
  }

  private answer(stream: AgentStream, request: DiscoveryRequest): void {
    const answered = stream.session.inFlightVersion;
    const result = stream.session.answer(request);
    if (!result.ignored && this.metrics) {
      const offered = answered === undefined ? undefined : this.offeredAt.get(answered);
      // A NACK is an answer, not convergence: the agent keeps its previous version.
      if (offered !== undefined && request.errors.length === 0) this.metrics.convergence.observe((performance.now() - offered) / 1000);
      for (const e of request.errors) if (e.key) this.metrics.nacks.inc({ type: typeLabel(e.key.type) });
    }
    if (result.ignored) this.logger.debug('agent request ignored', { id: stream.id, reason: result.ignored });
    else this.logger.debug('agent answered', { id: stream.id, nonce: request.responseNonce, rejected: request.errors.length });
    if (result.unknownErrors.length > 0) {
      this.logger.warn('agent rejected resources that were not in the response', { id: stream.id, errors: result.unknownErrors });
    }
    if (request.errors.length > 0 && !result.ignored) {
      this.logger.warn('agent rejected configuration', {
        id: stream.id,
        errors: request.errors.map((e) => `${e.key?.type} ${e.key?.name}@${e.version}: ${e.message}`),
      });
    }
    this.send(stream, result.response);
    this.report(stream, true);
  }

  private send(stream: AgentStream, response: OutgoingResponse | undefined): void {
    if (!response) return;
    this.logger.debug('sending response', {
      id: stream.id,
      nonce: response.nonce,
      revision: response.revision,
      resources: response.resources.length,
      removed: response.removed.length,
    });
    stream.call.write(response);
    if (this.metrics) {
      for (const r of response.resources) {
        const type = typeLabel(r.type);
        this.metrics.configPushes.inc({ type });
        this.metrics.configPushBytes.inc({ type }, r.encoded.length);
      }
    }
  }

  private noteOffered(version: string): void {
    if (!this.metrics || this.offeredAt.has(version)) return;
    this.offeredAt.set(version, performance.now());
    // Bounded: agents converge within a few versions; older ones only age out of the map.
    if (this.offeredAt.size > 256) this.offeredAt.delete(this.offeredAt.keys().next().value as string);
  }

  private release(stream: AgentStream): void {
    if (this.streams.get(stream.id) !== stream) return; // replaced: the newer stream owns the agent
    this.streams.delete(stream.id);
    this.logger.info('agent disconnected', { id: stream.id });
    this.report(stream, false);
  }

  private report(stream: AgentStream, connected: boolean): void {
    this.tracker?.report({
      id: stream.id,
      stream: stream.number,
      node: stream.node,
      connected,
      appliedRevision: stream.session.appliedRevision,
      lag: stream.session.lag,
      nacks: stream.session.nacks(),
    });
  }
}

/** Why the first request of a stream is refused, or undefined when the agent may proceed. */
export function checkHandshake(incoming: IncomingRequest): Refusal | undefined {
  return checkNode(incoming.request.node, incoming.protocolVersion);
}

/**
 * Why an agent's node is refused (wrong protocol version, invalid id or labels), or undefined:
 * the same rules for the discovery and the report stream. `theirs` is the raw protocol number.
 */
export function checkNode(node: Node | undefined, theirs: number): Refusal | undefined {
  if (!node) {
    return { code: Status.INVALID_ARGUMENT, message: 'the first request must carry the node (agent id, labels, version, protocol version)' };
  }
  if (theirs !== PROTOCOL_VERSION) {
    const upgrade = theirs > PROTOCOL_VERSION ? 'upgrade the controller' : 'upgrade the agent';
    const speaks = theirs === 0 ? 'sent no protocol version' : `speaks protocol version ${theirs}`;
    return { code: Status.FAILED_PRECONDITION, message: `agent ${speaks}; this controller speaks ${PROTOCOL_VERSION}: ${upgrade}` };
  }
  const result = validateResource({
    apiVersion: API_VERSION,
    kind: 'Agent',
    metadata: { name: node.id, labels: node.labels },
    spec: { labels: node.labels, version: node.version, capabilities: node.capabilities },
  });
  if (!result.ok) {
    const problems = new Set(result.errors.map((e) => `${nodeField(e.field)}: ${e.message}`));
    return { code: Status.INVALID_ARGUMENT, message: `invalid agent node: ${[...problems].join('; ')}` };
  }
  return undefined;
}

/** The Agent object's field paths in the agent's terms (`metadata.name` is `node.id`). */
function nodeField(field: string): string {
  if (field === 'metadata.name') return 'node.id';
  return field.replace(/^(metadata|spec)\.labels/, 'node.labels').replace(/^spec\./, 'node.');
}

function end(call: Call, refusal: Refusal): void {
  if (call.cancelled || call.destroyed) return;
  // grpc-js ends a server stream with this status when it sees an 'error' event.
  call.emit('error', { code: refusal.code, details: refusal.message, message: refusal.message });
}
