import { status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { ReportServiceClient, type AgentReport, type Directive, type EndpointHealth, type EndpointTraffic, type Node } from '@sluice/proto';
import type { Logger } from '../logger.js';
import { Backoff } from './backoff.js';
import { channelCredentials, type ControllerChannel } from './discovery-client.js';

/** At most this many health results per report; more go in turns (report size stays bounded). */
export const MAX_HEALTH_RESULTS_PER_REPORT = 4096;
/** Report interval until the controller's first directive says otherwise. */
export const DEFAULT_REPORT_INTERVAL_MS = 1000;
/** At most this many EndpointTraffic entries per report; the others wait for the next one. */
export const MAX_TRAFFIC_PER_REPORT = 4096;

export interface ReportStreamHandlers {
  directive(directive: Directive): void;
  /** Called once, when the stream is over for any reason. */
  closed(code: number, details: string): void;
}

export interface ReportStream {
  send(report: AgentReport): void;
  cancel(): void;
}

export type OpenReportStream = (address: string, handlers: ReportStreamHandlers) => ReportStream;

/** What the report client needs of the health checker. */
export interface HealthSource {
  assign(assignments: Directive['healthChecks']): void;
  /** Drop every assignment: nobody hears the results while the stream is down. */
  stop(): void;
  results(): EndpointHealth[];
}

/** What the report client needs of the data plane: traffic deltas since the last call. */
export interface TrafficSource {
  /** At most `max` endpoints, the busiest first; the others keep their counts for the next call. */
  drainTraffic(max: number): { traffic: EndpointTraffic[]; omitted: number };
}

export interface ReportClientOptions {
  controllers: string[];
  node: Node;
  health: HealthSource;
  /** Absent: reports carry no traffic stats. */
  traffic?: TrafficSource;
  logger: Logger;
  openStream?: OpenReportStream;
  timing?: { initialBackoffMs: number; maxBackoffMs: number };
  random?: () => number;
  now?: () => number;
}

/**
 * The agent side of ReportService.Report (docs/discovery-protocol.md, "Report stream"): opens
 * the stream with the node, applies each Directive (report interval, health-check assignments)
 * and sends a report every interval. A follower answers with report_to (the leader's
 * address): the client then reports there, back to its own --controller list if that fails.
 * Independent of the discovery stream: when it cannot
 * report it drops its assignments (the controller hands them to agents that can) and retries
 * with jittered backoff on the next --controller; proxying never waits for it.
 */
export class ReportClient {
  private readonly openStream: OpenReportStream;
  private readonly backoff: Backoff;
  private readonly now: () => number;
  private stream: ReportStream | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private intervalMs = DEFAULT_REPORT_INTERVAL_MS;
  private next = 0;
  /** Where the next report's health results start, when they do not all fit. */
  private offset = 0;
  private stopped = true;
  private answered = false;
  private failuresLogged = false;
  /** Where the controller sent us (Directive.report_to): the leader, tried before the list. */
  private redirect: string | undefined;
  /** Redirects followed since the last directive that kept us: after two, they wait a backoff. */
  private hops = 0;

  constructor(private readonly options: ReportClientOptions) {
    if (options.controllers.length === 0) throw new Error('ReportClient needs at least one controller address');
    this.openStream = options.openStream ?? openGrpcReportStream;
    const timing = options.timing ?? { initialBackoffMs: 250, maxBackoffMs: 5_000 };
    this.backoff = new Backoff({ initialMs: timing.initialBackoffMs, maxMs: timing.maxBackoffMs, jitter: 0.5 }, options.random);
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.ticker);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.options.health.stop();
  }

  /**
   * The report to send now (exported for tests): at most MAX_HEALTH_RESULTS_PER_REPORT health
   * results and MAX_TRAFFIC_PER_REPORT traffic entries (the traffic since the previous report).
   */
  buildReport(first: boolean): AgentReport {
    const all = this.options.health.results();
    let health = all;
    if (all.length > MAX_HEALTH_RESULTS_PER_REPORT) {
      const start = this.offset % all.length;
      health = [...all.slice(start), ...all.slice(0, start)].slice(0, MAX_HEALTH_RESULTS_PER_REPORT);
      this.offset = start + MAX_HEALTH_RESULTS_PER_REPORT;
    }
    const { traffic, omitted } = this.options.traffic?.drainTraffic(MAX_TRAFFIC_PER_REPORT) ?? { traffic: [], omitted: 0 };
    return {
      ...(first ? { node: this.options.node } : {}),
      sentAtUnixMs: this.now(),
      health,
      healthOmitted: all.length - health.length,
      traffic,
      trafficOmitted: omitted,
    };
  }

  private connect(): void {
    if (this.stopped) return;
    let address = this.redirect;
    if (address === undefined) {
      address = this.options.controllers[this.next % this.options.controllers.length]!;
      this.next += 1;
    }
    const target = address;
    this.answered = false;
    let stream: ReportStream | undefined = undefined;
    let closed = false;
    stream = this.openStream(address, {
      directive: (directive) => {
        if (closed || this.stream !== stream) return;
        if (directive.reportTo !== '' && directive.reportTo !== target) {
          closed = true;
          this.redirectTo(directive.reportTo, target, stream);
          return;
        }
        this.apply(directive, target);
      },
      closed: (code, details) => {
        if (closed) return;
        closed = true;
        if (this.stream === stream || this.stream === undefined) this.closed(target, code, details);
      },
    });
    if (closed) return;
    this.stream = stream;
    // Counts gathered while no stream was up would land in one interval of the controller's
    // window as a burst: drop them, the first report of a stream carries none.
    this.options.traffic?.drainTraffic(Number.MAX_SAFE_INTEGER);
    stream.send(this.buildReport(true));
    this.schedule(DEFAULT_REPORT_INTERVAL_MS);
  }

  /**
   * A follower answered: reports go to the leader at `to`. Drops this stream (and the
   * assignments: the follower gave none) and opens one there; the first two hops in a row go
   * at once, later ones wait a backoff (a stale leader address could bounce us around).
   */
  private redirectTo(to: string, from: string, stream: ReportStream | undefined): void {
    this.stream = undefined;
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.options.health.stop();
    stream?.cancel();
    this.redirect = to;
    this.options.logger.info('report stream redirected to the leader', { from, to });
    if (this.stopped) return;
    const delay = this.hops < 2 ? 0 : this.backoff.next();
    this.hops += 1;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect(), delay);
  }

  /** Where the report stream goes now (tests): the leader it was sent to, or undefined. */
  get redirectedTo(): string | undefined {
    return this.redirect;
  }

  private apply(directive: Directive, address: string): void {
    this.hops = 0;
    if (!this.answered) {
      this.answered = true;
      this.failuresLogged = false;
      this.backoff.reset();
      this.options.logger.info('report stream open', { address });
    }
    this.options.health.assign(directive.healthChecks);
    const interval = directive.reportIntervalMs || DEFAULT_REPORT_INTERVAL_MS;
    if (interval !== this.intervalMs || this.ticker === undefined) this.schedule(interval);
    this.options.logger.debug('directive', { reportIntervalMs: interval, clusters: directive.healthChecks.length });
  }

  private schedule(intervalMs: number): void {
    this.intervalMs = intervalMs;
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.stream?.send(this.buildReport(false)), intervalMs);
  }

  private closed(address: string, code: number, details: string): void {
    this.stream = undefined;
    // The leader we were sent to is gone (or unreachable): back to the controllers we know.
    if (address === this.redirect) this.redirect = undefined;
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.options.health.stop();
    if (this.stopped) return;
    const delay = this.backoff.next();
    const fields = { address, code: status[code] ?? String(code), error: details, retryInMs: delay };
    // Reporting is best effort: traffic does not depend on it, so say it once, not every retry.
    if (!this.failuresLogged) this.options.logger.warn('report stream down; health checks paused, proxying continues', fields);
    else this.options.logger.debug('report stream down', fields);
    this.failuresLogged = true;
    this.retry = setTimeout(() => this.connect(), delay);
  }
}

/** A `ReportService.Report` stream over a fresh channel (`channelCredentials`), closed with the stream. */
export function openGrpcReportStream(address: string, handlers: ReportStreamHandlers, channel: ControllerChannel = channelCredentials(undefined)): ReportStream {
  const client = new ReportServiceClient(address, channel.credentials, channel.options);
  const call = client.report();
  let done = false;
  const finish = (code: number, details: string) => {
    if (done) return;
    done = true;
    client.close();
    handlers.closed(code, details);
  };
  call.on('data', (directive: Directive) => {
    if (!done) handlers.directive(directive);
  });
  call.on('error', (error: ServiceError) => finish(error.code, error.details));
  call.on('status', (result: StatusObject) => finish(result.code, result.details || 'stream ended by the controller'));
  return {
    send: (report) => {
      if (!done) call.write(report);
    },
    cancel: () => {
      call.cancel();
      finish(status.CANCELLED, 'cancelled by the agent');
    },
  };
}
