import { isDeepStrictEqual } from 'node:util';
import { kindInfo, type KindInfo, type Resource } from '@sluice/api';
import type { AgentReport, AgentTracker } from '../discovery/discovery-server.js';
import type { Logger } from '../logger.js';
import type { ResourceService } from '../resources/resource-service.js';
import type { Runner } from '../runner.js';

const AGENT: KindInfo = kindInfo('Agent')!;

interface Entry {
  report: AgentReport;
  /** The last written body, without lastSeen: a report that changes nothing else is no write. */
  written: Record<string, unknown> | undefined;
  lastWrite: number;
  timer: NodeJS.Timeout | undefined;
  writing: Promise<void> | undefined;
}

export interface AgentRegistryOptions {
  /** At most one write per agent per this many milliseconds (default 1000). */
  minIntervalMs?: number;
  now?: () => Date;
}

/**
 * Keeps one `Agent` object per agent (docs/discovery-protocol.md, "Controller side"), written
 * on connect, when its applied revision, lag or NACKs change, and on disconnect. Reports
 * coalesce: at most one write per agent per second, carrying the latest state, and none when
 * nothing but `lastSeen` would change. `controller` is this replica's id, so a replica never
 * marks disconnected an agent that another replica now serves.
 */
export class AgentRegistry implements Runner, AgentTracker {
  readonly name = 'agent-registry';
  private readonly entries = new Map<string, Entry>();
  private readonly minIntervalMs: number;
  private readonly now: () => Date;
  private closing = false;
  private startup: Promise<void> | undefined;

  constructor(
    private readonly resources: ResourceService,
    readonly controllerId: string,
    private readonly logger: Logger,
    options: AgentRegistryOptions = {},
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 1000;
    this.now = options.now ?? (() => new Date());
  }

  /** Marks disconnected the agents an earlier run of this replica (same id) left connected. */
  start(_signal: AbortSignal): Promise<void> {
    this.startup = this.releaseStale().catch((error: unknown) => {
      this.logger.warn('could not mark stale agents disconnected', { error: String(error) });
    });
    return Promise.resolve();
  }

  /** Writes what is pending now, without waiting for the interval. */
  async close(): Promise<void> {
    this.closing = true;
    await this.startup;
    // A write in progress may leave a newer report to write: a few rounds settle it.
    for (let round = 0; round < 5; round++) {
      const pending = [...this.entries.values()].filter((e) => e.timer !== undefined || e.writing !== undefined);
      if (pending.length === 0) return;
      for (const entry of pending) {
        if (!entry.timer) continue;
        clearTimeout(entry.timer);
        entry.timer = undefined;
        void this.flush(entry);
      }
      await Promise.all(pending.map((e) => e.writing ?? Promise.resolve()));
    }
  }

  report(report: AgentReport): void {
    const entry = this.entries.get(report.id);
    if (!entry) {
      const fresh: Entry = { report, written: undefined, lastWrite: 0, timer: undefined, writing: undefined };
      this.entries.set(report.id, fresh);
      this.schedule(fresh);
      return;
    }
    if (report.stream < entry.report.stream) return; // from a stream that was replaced
    entry.report = report;
    this.schedule(entry);
  }

  private schedule(entry: Entry): void {
    if (entry.timer || entry.writing) return; // the pending write will take the latest report
    if (isDeepStrictEqual(desiredBody(entry.report, this.controllerId), entry.written)) return;
    const wait = this.closing ? 0 : Math.max(0, entry.lastWrite + this.minIntervalMs - Date.now());
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      void this.flush(entry);
    }, wait);
  }

  private flush(entry: Entry): Promise<void> {
    const report = entry.report;
    const body = desiredBody(report, this.controllerId);
    entry.lastWrite = Date.now();
    entry.writing = this.write(report, body)
      .then(() => {
        entry.written = body;
      })
      .catch((error: unknown) => {
        this.logger.warn('agent status write failed; retrying', { id: report.id, error: String(error) });
      })
      .finally(() => {
        entry.writing = undefined;
        if (this.entries.get(report.id) !== entry) return;
        if (!entry.report.connected && entry.report === report && isDeepStrictEqual(entry.written, body)) {
          this.entries.delete(report.id); // gone and recorded: forget it
          return;
        }
        this.schedule(entry);
      });
    return entry.writing;
  }

  private async write(report: AgentReport, body: Record<string, unknown>): Promise<void> {
    const lastSeen = this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const result = await this.resources.upsertInternal(AGENT, undefined, report.id, (current) => {
      const status = statusOf(current);
      // Another replica serves it now: its record wins over our disconnect.
      if (!report.connected && status.controller !== undefined && status.controller !== this.controllerId && status.connected === true) {
        return undefined;
      }
      const conditions = Array.isArray(status.conditions) && status.conditions.length > 0 ? { conditions: status.conditions } : {};
      return { ...body, status: { ...(body.status as object), lastSeen, ...conditions } };
    });
    if (result === 'created' || result === 'updated') {
      this.logger.debug('agent status written', { id: report.id, connected: report.connected, result });
    }
  }

  private async releaseStale(): Promise<void> {
    const { items } = await this.resources.list(AGENT, undefined);
    for (const agent of items) {
      const status = statusOf(agent);
      if (status.connected !== true || status.controller !== this.controllerId || this.entries.has(agent.metadata.name)) continue;
      await this.resources.upsertInternal(AGENT, undefined, agent.metadata.name, (current) => {
        const now = statusOf(current);
        if (!current || now.connected !== true || now.controller !== this.controllerId || this.entries.has(agent.metadata.name)) return undefined;
        const { resourceVersion: _rv, ...metadata } = current.metadata;
        return { ...current, metadata, status: { ...now, connected: false } };
      });
    }
  }
}

function statusOf(object: Resource | undefined): Record<string, unknown> {
  const status = (object as { status?: unknown } | undefined)?.status;
  return typeof status === 'object' && status !== null ? (status as Record<string, unknown>) : {};
}

/** The Agent object for a report, minus `lastSeen` (set at write time). */
export function desiredBody(report: AgentReport, controllerId: string): Record<string, unknown> {
  const { node } = report;
  const labels = Object.keys(node.labels).length > 0 ? node.labels : undefined;
  return {
    metadata: { name: report.id, ...(labels ? { labels } : {}) },
    spec: {
      ...(labels ? { labels } : {}),
      ...(node.version !== '' ? { version: node.version } : {}),
      ...(node.capabilities.length > 0 ? { capabilities: [...node.capabilities].sort() } : {}),
    },
    status: {
      connected: report.connected,
      controller: controllerId,
      ...(report.appliedRevision !== undefined ? { appliedRevision: report.appliedRevision } : {}),
      ...(report.lag !== undefined ? { lag: report.lag } : {}),
      ...(report.nacks.length > 0 ? { nacks: report.nacks.map((n) => ({ ...n })) } : {}),
    },
  };
}
