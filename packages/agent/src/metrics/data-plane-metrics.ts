import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { clientAddress } from '../data-plane/http-proxy.js';
import { formatHostPort } from '../host-port.js';
import { AccessLog } from './access-log.js';
import { BucketHistogram } from './histogram.js';
import { isValidRequestId, requestIdSource } from './request-id.js';

/** What a request's route is known by: the compiled route (router.ts) as far as metrics care. */
export interface RouteIdentity {
  /** The match's own name: `<namespace>/<route>/rule/<i>/match/<j>`. */
  readonly name: string;
  /** The Route object it came from. */
  readonly source?: { readonly namespace: string; readonly name: string } | undefined;
}

export interface EndpointAddress {
  readonly address: string;
  readonly port: number;
}

export const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** nginx's "client closed request": the client left before a response started. */
export const CLIENT_CLOSED = 499;

/** Requests per route and upstream, by code class (index = status / 100 - 1). */
export class RouteCounts {
  readonly byUpstream = new Map<string, Float64Array>();
  constructor(readonly route: string) {}

  add(upstream: string, status: number): void {
    let counts = this.byUpstream.get(upstream);
    if (counts === undefined) this.byUpstream.set(upstream, (counts = new Float64Array(5)));
    const cls = Math.min(4, Math.max(0, Math.floor(status / 100) - 1));
    counts[cls] = (counts[cls] as number) + 1;
  }
}

/** The Route's `namespace/name` (a label per Route, not per rule), or the match name. */
function routeLabel(route: RouteIdentity): string {
  return route.source !== undefined && route.source.name !== '' ? `${route.source.namespace}/${route.source.name}` : route.name;
}

/**
 * One HTTP listener's request metrics and access-log switch. It outlives config versions
 * (counters must not reset on a push); `accessLog` is set on every version.
 */
export class ListenerStats {
  readonly duration = new BucketHistogram();
  /** By route label, across versions. */
  readonly routes = new Map<string, RouteCounts>();
  /** Compiled route -> its counts, so a request costs no label work (old versions drop out). */
  private readonly compiled = new WeakMap<RouteIdentity, RouteCounts>();
  /** Set per config version: undefined = access log off (the default). */
  accessLog: AccessLog | undefined;

  constructor(
    readonly name: string,
    readonly plane: DataPlaneMetrics,
  ) {}

  countsFor(route: RouteIdentity | undefined): RouteCounts {
    if (route === undefined) return this.countsByLabel('');
    let counts = this.compiled.get(route);
    if (counts === undefined) this.compiled.set(route, (counts = this.countsByLabel(routeLabel(route))));
    return counts;
  }

  private countsByLabel(label: string): RouteCounts {
    let counts = this.routes.get(label);
    if (counts === undefined) this.routes.set(label, (counts = new RouteCounts(label)));
    return counts;
  }

  /**
   * Starts a request's record: keeps a valid client x-request-id or makes one, returns it on
   * the response, and counts and logs the request when its response closes.
   */
  start(req: IncomingMessage, res: ServerResponse): RequestRecord {
    const given = req.headers['x-request-id'];
    let id: string;
    if (isValidRequestId(given)) id = given;
    else {
      id = this.plane.nextRequestId();
      // What the proxy forwards upstream (http-proxy.ts reads it from here).
      req.headers['x-request-id'] = id;
    }
    res.setHeader('x-request-id', id);
    const record = new RequestRecord(this, req, res, id);
    // 'close' comes once per response; on() spares once()'s wrapper allocation.
    res.on('close', record.finish);
    return record;
  }
}

/** What one request did, filled in along the request path and recorded once when it ends. */
export class RequestRecord {
  route: RouteIdentity | undefined = undefined;
  upstream = '';
  /** The endpoint of the last try that got response headers. */
  endpoint: EndpointAddress | undefined = undefined;
  /** Last try's time to response headers, ms; -1 = no try got headers. */
  upstreamMs = -1;
  retries = 0;
  private readonly startedAt = performance.now();
  private readonly socket: Socket;
  private readonly bytesAtStart: number;

  constructor(
    private readonly stats: ListenerStats,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly requestId: string,
  ) {
    this.socket = req.socket;
    this.bytesAtStart = this.socket.bytesWritten || 0;
  }

  /** A try got its response headers after `ms`. */
  tried(upstream: string, endpoint: EndpointAddress, ms: number): void {
    this.endpoint = endpoint;
    this.upstreamMs = ms;
    this.stats.plane.upstreamDuration(upstream).observe(ms / 1000);
  }

  readonly finish = (): void => {
    const res = this.res;
    const status = res.headersSent ? res.statusCode : CLIENT_CLOSED;
    const durationMs = performance.now() - this.startedAt;
    const stats = this.stats;
    stats.countsFor(this.route).add(this.upstream, status);
    stats.duration.observe(durationMs / 1000);
    const log = stats.accessLog;
    if (log === undefined) return;
    const req = this.req;
    const headers = req.headers;
    log.write({
      time: new Date().toISOString(),
      request_id: this.requestId,
      listener: stats.name,
      route: this.route === undefined ? '' : this.route.name,
      upstream: this.upstream,
      endpoint: this.endpoint === undefined ? '' : formatEndpoint(this.endpoint),
      client_address: clientAddress(req),
      method: req.method ?? '',
      authority: headers.host ?? (headers[':authority'] as string | undefined) ?? '',
      path: req.url ?? '',
      protocol: `HTTP/${req.httpVersion}`,
      status,
      // HTTP/2: the session's socket, which a closed stream may no longer reach.
      bytes_sent: Math.max(0, (this.socket.bytesWritten || 0) - this.bytesAtStart),
      duration_ms: round3(durationMs),
      upstream_duration_ms: this.upstreamMs < 0 ? null : round3(this.upstreamMs),
      user_agent: headers['user-agent'] ?? '',
      retries: this.retries,
    });
  };
}

/** `address:port`, `[v6]:port`. */
export function formatEndpoint(e: EndpointAddress): string {
  return formatHostPort(e.address, e.port);
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** L4 (TCP/UDP/TLS passthrough) counters for one listener. */
export class L4Stats {
  /** Connections (UDP: sessions) by upstream. */
  readonly connections = new Map<string, number>();
  bytesIn = 0;
  bytesOut = 0;
  /** Set per config version: undefined = access log off. */
  accessLog: AccessLog | undefined;
  /** `TCP`, `TLS` or `UDP`, for the access log; set per config version. */
  protocol = '';
  constructor(readonly name: string) {}

  connected(upstream: string): void {
    this.connections.set(upstream, (this.connections.get(upstream) ?? 0) + 1);
  }

  /** One access-log line for a finished connection or session (only called when the log is on). */
  log(upstream: string, endpoint: EndpointAddress | undefined, client: string, bytesReceived: number, bytesSent: number, durationMs: number): void {
    this.accessLog?.write({
      time: new Date().toISOString(),
      listener: this.name,
      protocol: this.protocol,
      upstream,
      endpoint: endpoint === undefined ? '' : formatEndpoint(endpoint),
      client_address: client,
      bytes_received: bytesReceived,
      bytes_sent: bytesSent,
      duration_ms: round3(durationMs),
    });
  }
}

/**
 * Every metric the data plane counts, in plain numbers (zero prom-client work per request);
 * data-plane-registry.ts exposes them at scrape time. One per DataPlane (per worker).
 */
export class DataPlaneMetrics {
  readonly listeners = new Map<string, ListenerStats>();
  readonly upstreams = new Map<string, BucketHistogram>();
  readonly l4 = new Map<string, L4Stats>();
  readonly nextRequestId = requestIdSource();
  private log: AccessLog | undefined;

  /** The access log shared by the listeners that enable it (stdout), created on first use. */
  accessLog(): AccessLog {
    return (this.log ??= new AccessLog());
  }

  /** Access-log lines dropped because stdout was backed up. */
  get accessLogDropped(): number {
    return this.log?.dropped ?? 0;
  }

  /** The listener's stats (resolve once per config version, not per request). */
  listener(name: string): ListenerStats {
    let stats = this.listeners.get(name);
    if (stats === undefined) this.listeners.set(name, (stats = new ListenerStats(name, this)));
    return stats;
  }

  upstreamDuration(name: string): BucketHistogram {
    let histogram = this.upstreams.get(name);
    if (histogram === undefined) this.upstreams.set(name, (histogram = new BucketHistogram()));
    return histogram;
  }

  l4Listener(name: string): L4Stats {
    let stats = this.l4.get(name);
    if (stats === undefined) this.l4.set(name, (stats = new L4Stats(name)));
    return stats;
  }
}
