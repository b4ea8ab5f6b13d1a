import { credentials, status, type ChannelCredentials, type ChannelOptions, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { DiscoveryServiceClient, ResourceError, type DiscoveryRequest, type DiscoveryResponse, type Node } from '@sluice/proto';
import type { Logger } from '../logger.js';
import { Backoff, jitter } from './backoff.js';
import type { DataPlanePort, DataPlaneUpdate } from './data-plane-port.js';
import { keyOf } from '../data-plane/resource-keys.js';
import type { AgentTls } from '../tls-files.js';

/** How a stream ended: a gRPC status code and the peer's message. */
export interface StreamStatus {
  code: number;
  details: string;
}

export interface StreamHandlers {
  response(response: DiscoveryResponse): void;
  /** Called once, when the stream is over for any reason. */
  closed(status: StreamStatus): void;
}

export interface DiscoveryStream {
  send(request: DiscoveryRequest): void;
  cancel(): void;
}

/** Opens one `DiscoveryService.Stream`; swapped for a fake in unit tests of the state machine. */
export type OpenStream = (address: string, handlers: StreamHandlers) => DiscoveryStream;

export interface ControllerConnection {
  /** True once the controller answered on the current stream. */
  connected: boolean;
  /** The controller serving this agent (or being tried). */
  address: string | undefined;
  /** Why the last stream ended, for /readyz and /config_dump. */
  lastError: string | undefined;
}

export interface AppliedEvent {
  address: string;
  revision: number;
  snapshotVersion: string;
  update: DataPlaneUpdate;
  errors: ResourceError[];
}

export interface DiscoveryClientOptions {
  controllers: string[];
  node: Node;
  dataPlane: Pick<DataPlanePort, 'apply' | 'resources'>;
  logger: Logger;
  openStream?: OpenStream;
  /** Called after each response is applied and answered (cache write, readiness, NACK list). */
  onApplied?: (event: AppliedEvent) => void | Promise<void>;
  onConnection?: (connection: ControllerConnection) => void;
  /** Finds why a controller cannot be reached, beyond what gRPC says (e.g. a TLS refusal); logged once per outage. */
  diagnose?: (address: string) => Promise<string | undefined>;
  timing?: Partial<DiscoveryTiming>;
  random?: () => number;
}

export interface DiscoveryTiming {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Retry delay after the controller refused this agent: an operator has to act first. */
  refusedRetryMs: number;
}

const DEFAULT_TIMING: DiscoveryTiming = { initialBackoffMs: 250, maxBackoffMs: 5_000, refusedRetryMs: 30_000 };

/**
 * Stream endings that retrying soon won't fix, with what to log: a refusal of this agent
 * (protocol doc, "Stream" 2), or ABORTED, a newer stream with this agent's id replaced ours.
 * Our own reconnects never see the latter (we have dropped the old stream by then), so it means
 * another process runs with the same --id; retrying at once would make the two flap.
 */
const SLOW_RETRY = new Map<number, string>([
  [status.FAILED_PRECONDITION, 'controller refused this agent'],
  [status.INVALID_ARGUMENT, 'controller refused this agent'],
  [status.ABORTED, 'controller replaced this stream: is another agent running with the same --id?'],
]);

interface Attempt {
  address: string;
  stream: DiscoveryStream | undefined;
  answered: boolean;
}

/**
 * The agent side of docs/discovery-protocol.md: one stream at a time, opened with the node
 * and what the data plane holds; every response applied, then ACKed or NACKed with its nonce.
 * A stream that ends is replaced, on the next --controller address, after a jittered
 * exponential backoff. The data plane keeps serving whatever it applied meanwhile.
 */
export class DiscoveryClient {
  private readonly openStream: OpenStream;
  private readonly timing: DiscoveryTiming;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private next = 0;
  private current: Attempt | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** Responses are applied one at a time, and a new stream starts only after the last apply. */
  private chain: Promise<void> = Promise.resolve();
  private connection: ControllerConnection = { connected: false, address: undefined, lastError: undefined };
  /** So a controller that stays down is reported once, not on every attempt. */
  private unreachableLogged = false;
  /** `diagnose` runs once per outage, on its first failed connect. */
  private diagnosed = false;

  constructor(private readonly options: DiscoveryClientOptions) {
    if (options.controllers.length === 0) throw new Error('DiscoveryClient needs at least one controller address');
    this.openStream = options.openStream ?? openGrpcStream;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff({ initialMs: this.timing.initialBackoffMs, maxMs: this.timing.maxBackoffMs, jitter: 0.5 }, this.random);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Ends the stream and stops reconnecting; resolves once an apply in progress is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const attempt = this.current;
    this.current = undefined;
    attempt?.stream?.cancel();
    this.setConnection({ connected: false, address: undefined, lastError: this.connection.lastError });
    await this.chain;
  }

  status(): ControllerConnection {
    return { ...this.connection };
  }

  private connect(): void {
    if (this.stopped) return;
    const address = this.options.controllers[this.next % this.options.controllers.length]!;
    this.next += 1;
    const attempt: Attempt = { address, stream: undefined, answered: false };
    this.current = attempt;
    this.setConnection({ connected: false, address, lastError: this.connection.lastError });
    this.options.logger.debug('opening discovery stream', { address });
    attempt.stream = this.openStream(address, {
      response: (response) => {
        if (attempt !== this.current) return;
        this.chain = this.chain.then(() => this.handle(attempt, response));
      },
      closed: (streamStatus) => this.closed(attempt, streamStatus),
    });
    // The stream may have failed synchronously (a fake, or a bad address).
    if (attempt !== this.current) return;
    const held = this.options.dataPlane.resources().map((r) => ({ key: keyOf(r), version: r.version }));
    attempt.stream.send({ node: this.options.node, held, responseNonce: '', errors: [] });
  }

  private async handle(attempt: Attempt, response: DiscoveryResponse): Promise<void> {
    const { logger } = this.options;
    if (!attempt.answered && attempt === this.current) {
      attempt.answered = true;
      this.backoff.reset();
      this.unreachableLogged = false;
      this.diagnosed = false;
      this.setConnection({ connected: true, address: attempt.address, lastError: undefined });
      logger.info('connected to controller', { address: attempt.address });
    }
    const update: DataPlaneUpdate = { resources: response.resources, removed: response.removed };
    let errors: ResourceError[];
    try {
      errors = await this.options.dataPlane.apply(update);
    } catch (error) {
      // A data-plane bug must not take the stream down: reject the whole response instead.
      const message = `agent failed to apply: ${error instanceof Error ? error.message : String(error)}`;
      logger.error('data plane apply failed', { error: message });
      errors = response.resources.map((r) => ResourceError.fromPartial({ key: keyOf(r), version: r.version, message, sources: [] }));
    }
    if (attempt === this.current) attempt.stream?.send({ held: [], responseNonce: response.nonce, errors });
    logger.info('configuration applied', {
      address: attempt.address,
      revision: response.revision,
      snapshotVersion: response.snapshotVersion,
      resources: response.resources.length,
      removed: response.removed.length,
      rejected: errors.length,
    });
    for (const error of errors) {
      logger.warn('resource rejected', { type: error.key?.type, name: error.key?.name, version: error.version, error: error.message });
    }
    try {
      await this.options.onApplied?.({ address: attempt.address, revision: response.revision, snapshotVersion: response.snapshotVersion, update, errors });
    } catch (error) {
      logger.error('after-apply hook failed', { error: error instanceof Error ? error.message : String(error) });
    }
  }

  private closed(attempt: Attempt, streamStatus: StreamStatus): void {
    if (attempt !== this.current) return;
    this.current = undefined;
    const { logger } = this.options;
    const codeName = status[streamStatus.code] ?? String(streamStatus.code);
    const lastError = `${codeName}: ${streamStatus.details}`;
    this.setConnection({ connected: false, address: undefined, lastError });
    let delay: number;
    const slow = SLOW_RETRY.get(streamStatus.code);
    if (slow !== undefined) {
      delay = jitter(this.timing.refusedRetryMs, 0.5, this.random);
      logger.error(slow, { address: attempt.address, id: this.options.node.id, code: codeName, error: streamStatus.details, retryInMs: delay });
    } else {
      delay = this.backoff.next();
      const fields = { address: attempt.address, code: codeName, error: streamStatus.details, retryInMs: delay };
      if (attempt.answered) logger.warn('discovery stream ended; serving the last applied configuration', fields);
      else if (!this.unreachableLogged) logger.warn('no controller answers; serving the last applied configuration', fields);
      else logger.debug('controller unreachable', fields);
      this.unreachableLogged = true;
      if (!attempt.answered && !this.diagnosed && this.options.diagnose) {
        this.diagnosed = true;
        void this.options.diagnose(attempt.address).then((reason) => {
          if (reason !== undefined) logger.error('cannot connect to the controller', { address: attempt.address, error: reason });
        });
      }
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.chain.then(() => this.connect());
    }, delay);
  }

  private setConnection(connection: ControllerConnection): void {
    this.connection = connection;
    this.options.onConnection?.({ ...connection });
  }
}

/** HTTP/2 keepalive so a dead controller is noticed (protocol doc, "Stream" 8). Both streams use it. */
export const CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // The client's own backoff decides when to retry; keep the channel from adding minutes.
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

/** What every channel to a controller is made with. */
export interface ControllerChannel {
  credentials: ChannelCredentials;
  options: ChannelOptions;
}

const PLAINTEXT: ControllerChannel = { credentials: credentials.createInsecure(), options: CHANNEL_OPTIONS };

/**
 * Credentials and options for every channel to a controller, both streams and redirects alike:
 * plaintext without --tls-* flags; else TLS verifying the controller with --tls-ca (or the
 * system's roots) against --tls-server-name (or the dialled host), and showing --tls-cert when
 * the controller asks for a client certificate.
 */
export function channelCredentials(tls: AgentTls | undefined): ControllerChannel {
  if (tls === undefined) return PLAINTEXT;
  return {
    credentials: credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null),
    // Leaders are advertised by pod IP, which no certificate can list in advance: one name for all.
    options: tls.serverName === undefined ? CHANNEL_OPTIONS : { ...CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': tls.serverName },
  };
}

/** A `DiscoveryService.Stream` over a fresh channel, closed with the stream. */
export function openGrpcStream(address: string, handlers: StreamHandlers, channel: ControllerChannel = PLAINTEXT): DiscoveryStream {
  const client = new DiscoveryServiceClient(address, channel.credentials, channel.options);
  const call = client.stream();
  let done = false;
  const finish = (result: StreamStatus) => {
    if (done) return;
    done = true;
    client.close();
    handlers.closed(result);
  };
  call.on('data', (response: DiscoveryResponse) => {
    if (!done) handlers.response(response);
  });
  call.on('error', (error: ServiceError) => finish({ code: error.code, details: error.details }));
  call.on('status', (result: StatusObject) => finish({ code: result.code, details: result.details || 'stream ended by the controller' }));
  return {
    send: (request) => {
      if (!done) call.write(request);
    },
    cancel: () => {
      call.cancel();
      finish({ code: status.CANCELLED, details: 'cancelled by the agent' });
    },
  };
}
