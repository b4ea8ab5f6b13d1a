import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { ResourceError, type EndpointTraffic, type Resource } from '@sluice/proto';
import type { Logger } from '../logger.js';
import type { MetricsJSON } from '../metrics/registry.js';
import { AppliedSet, mergeErrors, rollbackFor } from './applied-set.js';
import type { DataPlaneUpdate, ListeningDataPlane } from './data-plane-port.js';
import { TrafficSum } from '../data-plane/endpoint-stats.js';
import { keyOf } from '../data-plane/resource-keys.js';
import { applyMessage, errorsOf, isFromWorker, WORKER_CONFIG_ENV, type ToWorker, type WorkerConfig } from './worker-messages.js';

/** One data-plane worker process as the pool sees it; a fake in unit tests. */
export interface WorkerHandle {
  readonly id: number;
  readonly pid: number | undefined;
  send(message: ToWorker): void;
  onMessage(listener: (message: unknown) => void): void;
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(signal?: NodeJS.Signals): void;
}

export interface WorkerPoolOptions {
  count: number;
  fork: () => WorkerHandle;
  logger: Logger;
  /** How long a closing worker may drain before it is killed. */
  closeTimeoutMs?: number;
}

interface Pending {
  update: DataPlaneUpdate;
  resolve: (errors: ResourceError[] | undefined) => void;
}

interface Slot {
  index: number;
  /** Metrics requests waiting for this worker's answer. */
  metrics: Map<number, (parts: MetricsJSON[] | undefined) => void>;
  worker: WorkerHandle | undefined;
  ready: boolean;
  startedAt: number;
  quickExits: number;
  pending: Map<number, Pending>;
  exited: Promise<void>;
}

/** A worker that dies within this long of its start counts as crash-looping: wait longer. */
const QUICK_EXIT_MS = 10_000;

/**
 * `--workers N` (N > 1): N data-plane processes behind one DataPlanePort. Every update goes to
 * every worker; a resource rejected by any worker is rejected (and the workers that took it go
 * back to its previous version), so the controller sees one agent. A worker that dies is
 * restarted and fed the whole applied set. Listening sockets are shared through node:cluster.
 */
export class WorkerPool implements ListeningDataPlane {
  private readonly slots: Slot[];
  private readonly applied = new AppliedSet();
  private chain: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private started = false;
  private closing = false;
  private latestListeners = new Map<string, { address: string; port: number }>();
  /** The workers' traffic deltas, summed until the report client drains them. */
  private readonly traffic = new TrafficSum();

  constructor(private readonly options: WorkerPoolOptions) {
    this.slots = Array.from({ length: options.count }, (_, index) => ({
      index,
      metrics: new Map(),
      worker: undefined,
      ready: false,
      startedAt: 0,
      quickExits: 0,
      pending: new Map(),
      exited: Promise.resolve(),
    }));
  }

  /** Forks every worker; rejects if one exits before it is ready. */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.spawn(slot)));
    this.started = true;
  }

  apply(update: DataPlaneUpdate): Promise<ResourceError[]> {
    return this.enqueue(async () => {
      const answers = await this.askAll(update);
      const merged = mergeErrors(answers);
      const rollback = rollbackFor(answers, merged, this.applied);
      this.applied.record(update, merged);
      if (rollback) {
        this.options.logger.warn('workers disagreed on an update; rolling back the resources some of them rejected', {
          resources: rollback.resources.map((r) => r.name),
          removed: rollback.removed.map((k) => k.name),
        });
        await this.askAll(rollback);
      }
      return merged;
    });
  }

  resources(): Resource[] {
    return this.applied.resources();
  }

  listeners(): Map<string, { address: string; port: number }> {
    return new Map(this.latestListeners);
  }

  /** Every worker's traffic since the last call, summed per endpoint (endpoint-stats.ts, TrafficSum). */
  drainTraffic(max: number): { traffic: EndpointTraffic[]; omitted: number } {
    return this.traffic.drain(max);
  }

  /**
   * Every ready worker's metrics (its data plane's and its process's), for the primary to
   * aggregate. A worker that does not answer within `timeoutMs` (or dies) is left out.
   */
  async collectMetrics(timeoutMs = 2_000): Promise<MetricsJSON[]> {
    const answers = await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<MetricsJSON[] | undefined>((resolve) => {
            const worker = slot.worker;
            if (!worker || !slot.ready) return resolve(undefined);
            const id = this.nextId++;
            const timer = setTimeout(() => done(undefined), timeoutMs);
            const done = (parts: MetricsJSON[] | undefined) => {
              clearTimeout(timer);
              slot.metrics.delete(id);
              resolve(parts);
            };
            slot.metrics.set(id, done);
            try {
              worker.send({ type: 'metrics', id });
            } catch {
              done(undefined);
            }
          }),
      ),
    );
    return answers.flatMap((parts) => parts ?? []);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.chain;
    const timeout = this.options.closeTimeoutMs ?? 30_000;
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        if (!worker) return;
        try {
          worker.send({ type: 'close' });
        } catch {
          worker.kill('SIGKILL');
        }
        const timer = setTimeout(() => worker.kill('SIGKILL'), timeout);
        await slot.exited;
        clearTimeout(timer);
      }),
    );
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The answers of the workers that are up; a worker that dies meanwhile has no say. */
  private async askAll(update: DataPlaneUpdate): Promise<ResourceError[][]> {
    const answers = await Promise.all(this.slots.map((slot) => this.ask(slot, update)));
    return answers.filter((a): a is ResourceError[] => a !== undefined);
  }

  private ask(slot: Slot, update: DataPlaneUpdate): Promise<ResourceError[] | undefined> {
    const worker = slot.worker;
    if (!worker || !slot.ready) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      slot.pending.set(id, { update, resolve });
      try {
        worker.send(applyMessage(id, update));
      } catch {
        slot.pending.delete(id);
        resolve(undefined);
      }
    });
  }

  private spawn(slot: Slot): Promise<void> {
    const worker = this.options.fork();
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = Date.now();
    let markExited!: () => void;
    slot.exited = new Promise((resolve) => (markExited = resolve));
    return new Promise((resolve, reject) => {
      worker.onMessage((message) => {
        if (!isFromWorker(message)) return;
        switch (message.type) {
          case 'ready':
            slot.ready = true;
            this.options.logger.info('data-plane worker started', { worker: slot.index, pid: worker.pid });
            resolve();
            return;
          case 'applied': {
            const pending = slot.pending.get(message.id);
            slot.pending.delete(message.id);
            this.latestListeners = new Map(message.listeners);
            pending?.resolve(errorsOf(message));
            return;
          }
          case 'traffic':
            if (slot.worker === worker) this.traffic.add(slot.index, message.entries);
            return;
          case 'metrics':
            slot.metrics.get(message.id)?.(message.metrics);
            return;
          case 'failed': {
            const pending = slot.pending.get(message.id);
            slot.pending.delete(message.id);
            if (!pending) return;
            const text = `agent worker failed to apply: ${message.error}`;
            pending.resolve(pending.update.resources.map((r) => ResourceError.fromPartial({ key: keyOf(r), version: r.version, message: text })));
            return;
          }
        }
      });
      worker.onExit((code, signal) => {
        const wasReady = slot.ready;
        slot.ready = false;
        if (slot.worker === worker) slot.worker = undefined;
        this.traffic.dropSource(slot.index);
        for (const pending of slot.pending.values()) pending.resolve(undefined);
        slot.pending.clear();
        for (const done of [...slot.metrics.values()]) done(undefined);
        markExited();
        if (!wasReady) reject(new Error(`data-plane worker ${slot.index} exited before it was ready (code ${code}, signal ${signal})`));
        if (this.closing || !this.started) return;
        this.restartLater(slot, code, signal);
      });
    });
  }

  private restartLater(slot: Slot, code: number | null, signal: string | null): void {
    slot.quickExits = Date.now() - slot.startedAt < QUICK_EXIT_MS ? slot.quickExits + 1 : 0;
    const delay = Math.min(10_000, 100 * 2 ** slot.quickExits);
    this.options.logger.warn('data-plane worker exited; restarting it', { worker: slot.index, code, signal, restartInMs: delay });
    setTimeout(() => {
      if (this.closing) return;
      this.spawn(slot).then(
        () => this.refeed(slot),
        () => undefined, // its exit schedules the next try
      );
    }, delay).unref();
  }

  /** A restarted worker starts empty: give it everything the others serve. */
  private refeed(slot: Slot): void {
    void this.enqueue(async () => {
      const errors = await this.ask(slot, { resources: this.applied.resources(), removed: [] });
      this.options.logger.info('data-plane worker restarted', { worker: slot.index, resources: this.applied.resources().length });
      for (const error of errors ?? []) {
        this.options.logger.warn('restarted worker rejected a resource the others serve', { worker: slot.index, name: error.key?.name, type: error.key?.type, error: error.message });
      }
    });
  }
}

/** Forks a cluster worker running worker-main.js (the built file next to this one). */
export function forkClusterWorker(config: WorkerConfig): WorkerHandle {
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), args: [] });
  const worker = cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(config) });
  // Sends to a worker that just died fail asynchronously; its exit is what matters.
  worker.on('error', () => undefined);
  return {
    id: worker.id,
    pid: worker.process.pid,
    send: (message) => {
      worker.send(message);
    },
    onMessage: (listener) => {
      worker.on('message', listener);
    },
    onExit: (listener) => {
      worker.on('exit', listener);
    },
    kill: (signal) => worker.process.kill(signal),
  };
}
