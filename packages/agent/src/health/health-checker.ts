import { type EndpointHealth, type HealthCheck, type HealthCheckAssignment, type Resource, type UpstreamTls } from '@sluice/proto';
import type { Logger } from '../logger.js';
import { probe as realProbe, type ProbeOutcome, type ProbeSpec } from './probe.js';

/** Spread of each wait between probes of one endpoint: ±10 % (so probes do not fall in step). */
export const PROBE_JITTER = 0.1;
/** last_error is cut to this many bytes (report size bound). */
export const MAX_ERROR_BYTES = 256;

interface Target {
  readonly key: string;
  readonly cluster: string;
  readonly endpointId: string;
  readonly spec: ProbeSpec;
  /** Identity of what is probed and how: a change restarts the target's state. */
  readonly identity: string;
  healthy: boolean | undefined;
  successes: number;
  failures: number;
  lastError: string;
  observedAt: number;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

export interface HealthCheckerOptions {
  logger: Logger;
  /** Sent as User-Agent on HTTP probes. */
  userAgent: string;
  probe?: (spec: ProbeSpec) => Promise<ProbeOutcome>;
  random?: () => number;
  now?: () => number;
  /** Called after each probe that changed a verdict (tests; reports are periodic anyway). */
  onVerdict?: (result: EndpointHealth) => void;
}

/**
 * Active health checks of the endpoints the controller assigned to this agent (Directive), each
 * probed per its cluster's HealthCheck: every `interval_ms` ±10 %, the first probe at a random
 * point of the first interval. The first completed probe sets the verdict; after that it flips
 * to unhealthy after `unhealthy_threshold` failures in a row and back after `healthy_threshold`
 * successes in a row. Endpoints not assigned are never probed. Verdicts go up in reports; this
 * agent routes by the controller's merged health (Endpoint.health), like every other agent.
 */
export class HealthChecker {
  private assignments: readonly HealthCheckAssignment[] = [];
  private resources: readonly Resource[] = [];
  private readonly targets = new Map<string, Target>();
  private readonly probe: (spec: ProbeSpec) => Promise<ProbeOutcome>;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly options: HealthCheckerOptions) {
    this.probe = options.probe ?? realProbe;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  /** New assignments from the controller. */
  assign(assignments: readonly HealthCheckAssignment[]): void {
    this.assignments = assignments;
    this.sync();
  }

  /** New applied configuration (cluster health checks, endpoint addresses). */
  configure(resources: readonly Resource[]): void {
    this.resources = resources;
    this.sync();
  }

  /** Number of endpoints being probed. */
  get size(): number {
    return this.targets.size;
  }

  /** Verdicts of every probed endpoint that has completed a probe, sorted by cluster then id. */
  results(): EndpointHealth[] {
    const out: EndpointHealth[] = [];
    for (const t of this.targets.values()) if (t.healthy !== undefined) out.push(resultOf(t, t.healthy));
    return out.sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : a.endpointId < b.endpointId ? -1 : a.endpointId > b.endpointId ? 1 : 0));
  }

  /** Stops every probe (assignments are dropped, e.g. the report stream is down). */
  stop(): void {
    this.assignments = [];
    this.sync();
  }

  private sync(): void {
    const wanted = this.wanted();
    for (const [key, t] of this.targets) {
      const w = wanted.get(key);
      if (w && w.identity === t.identity) {
        wanted.delete(key);
        continue;
      }
      this.stopTarget(t);
      this.targets.delete(key);
    }
    for (const t of wanted.values()) {
      this.targets.set(t.key, t);
      this.schedule(t, this.random() * intervalOf(t.spec.check));
    }
  }

  private wanted(): Map<string, Target> {
    const clusters = new Map<string, { check: HealthCheck | undefined; tls: UpstreamTls | undefined; http2: boolean }>();
    const endpoints = new Map<string, Map<string, { address: string; port: number }>>();
    const secrets = new Map<string, { pem: string; version: string }>();
    for (const r of this.resources) {
      if (r.body?.$case === 'secret') secrets.set(r.name, { pem: r.body.value.certificateChain, version: r.version });
      else if (r.body?.$case === 'cluster') clusters.set(r.name, { check: r.body.value.healthCheck, tls: r.body.value.tls, http2: r.body.value.http2 });
      else if (r.body?.$case === 'endpoints') endpoints.set(r.name, new Map(r.body.value.endpoints.map((e) => [e.id, { address: e.address, port: e.port }])));
    }
    const out = new Map<string, Target>();
    for (const a of this.assignments) {
      const cluster = clusters.get(a.cluster);
      const eps = endpoints.get(a.cluster);
      // Not (yet) in this agent's configuration: it will be once the discovery stream catches up.
      if (!cluster?.check || !eps) continue;
      for (const id of a.endpointIds) {
        const e = eps.get(id);
        if (!e) continue;
        const key = `${a.cluster} ${id}`;
        const ca = cluster.tls?.enabled === true && cluster.tls.caSecret !== '' ? secrets.get(cluster.tls.caSecret) : undefined;
        const spec: ProbeSpec = { address: e.address, port: e.port, check: cluster.check, tls: cluster.tls, ca: ca?.pem, userAgent: this.options.userAgent, http2: cluster.http2 };
        out.set(key, {
          key,
          cluster: a.cluster,
          endpointId: id,
          spec,
          identity: JSON.stringify([e.address, e.port, cluster.check, cluster.tls ?? null, ca?.version ?? null, cluster.http2]),
          healthy: undefined,
          successes: 0,
          failures: 0,
          lastError: '',
          observedAt: 0,
          timer: undefined,
          stopped: false,
        });
      }
    }
    return out;
  }

  private schedule(t: Target, delayMs: number): void {
    if (t.stopped) return;
    t.timer = setTimeout(() => void this.run(t), Math.max(0, Math.round(delayMs)));
  }

  private async run(t: Target): Promise<void> {
    t.timer = undefined;
    if (t.stopped) return;
    let outcome: ProbeOutcome;
    try {
      outcome = await this.probe(t.spec);
    } catch (error) {
      outcome = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    if (t.stopped) return;
    this.record(t, outcome);
    const interval = intervalOf(t.spec.check);
    this.schedule(t, interval * (1 + PROBE_JITTER * (2 * this.random() - 1)));
  }

  private record(t: Target, outcome: ProbeOutcome): void {
    const before = t.healthy;
    t.observedAt = this.now();
    if (outcome.ok) {
      t.successes++;
      t.failures = 0;
      t.lastError = '';
      if (t.healthy === undefined || (!t.healthy && t.successes >= Math.max(1, t.spec.check.healthyThreshold))) t.healthy = true;
    } else {
      t.failures++;
      t.successes = 0;
      t.lastError = truncate(outcome.error, MAX_ERROR_BYTES);
      if (t.healthy === undefined || (t.healthy && t.failures >= Math.max(1, t.spec.check.unhealthyThreshold))) t.healthy = false;
    }
    if (before !== t.healthy) {
      this.options.logger.debug('health-check verdict', { cluster: t.cluster, endpoint: `${t.spec.address}:${t.spec.port}`, healthy: t.healthy, error: t.lastError });
      this.options.onVerdict?.(resultOf(t, t.healthy));
    }
  }

  private stopTarget(t: Target): void {
    t.stopped = true;
    clearTimeout(t.timer);
    t.timer = undefined;
  }
}

function resultOf(t: Target, healthy: boolean): EndpointHealth {
  return {
    cluster: t.cluster,
    endpointId: t.endpointId,
    healthy,
    consecutiveSuccesses: t.successes,
    consecutiveFailures: t.failures,
    lastError: t.lastError,
    observedAtUnixMs: t.observedAt,
  };
}

function intervalOf(check: HealthCheck): number {
  return check.intervalMs || 5000;
}

/** Cut to at most `bytes` UTF-8 bytes without splitting a character. */
export function truncate(text: string, bytes: number): string {
  if (Buffer.byteLength(text) <= bytes) return text;
  let out = text.slice(0, bytes);
  while (Buffer.byteLength(out) > bytes) out = out.slice(0, -1);
  return out;
}

