import { ResourceError } from '@sluice/proto';
import { MAX_TRAFFIC_PER_REPORT, WORKER_TRAFFIC_INTERVAL_MS } from '../data-plane/endpoint-stats.js';
import type { Logger } from '../logger.js';
import { processRegistry } from '../metrics/registry.js';
import type { DataPlaneOptions, ListeningDataPlane } from './data-plane-port.js';
import { isToWorker, updateOf, type FromWorker, type WorkerConfig } from './worker-messages.js';

/**
 * The worker side of --workers: one DataPlane driven over IPC by the primary, which alone
 * talks to the controller. Signals from the terminal or the service manager reach the whole
 * process group; the primary decides when a worker drains, so workers ignore them and leave
 * when told to (or when the primary is gone).
 */
export function runWorker(config: WorkerConfig, logger: Logger, createDataPlane: (options: DataPlaneOptions) => ListeningDataPlane): void {
  const send = (message: FromWorker) => {
    if (process.connected) process.send?.(message);
  };
  const dataPlane = createDataPlane({ listenAddress: config.listenAddress, logger });
  let queue: Promise<void> = Promise.resolve();
  let closing = false;
  const close = (reason: string) => {
    if (closing) return;
    closing = true;
    logger.debug('worker closing', { reason });
    queue = queue
      .then(() => dataPlane.close())
      .catch((error: unknown) => logger.error('worker close failed', { error: error instanceof Error ? error.message : String(error) }))
      .then(() => process.exit(0));
  };

  // The data plane's counts and this process's own (CPU, memory, event loop): the primary sums them.
  const processMetrics = processRegistry();
  const collectMetrics = async () => [...((await dataPlane.collectMetrics?.()) ?? []), await processMetrics.getMetricsAsJSON()];

  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => close('primary gone'));
  process.on('message', (message: unknown) => {
    if (!isToWorker(message)) return;
    switch (message.type) {
      case 'apply':
        queue = queue.then(async () => {
          if (closing) return;
          try {
            const errors = await dataPlane.apply(updateOf(message));
            send({ type: 'applied', id: message.id, errors: errors.map((e) => ResourceError.toJSON(e)), listeners: [...dataPlane.listeners()] });
          } catch (error) {
            send({ type: 'failed', id: message.id, error: error instanceof Error ? error.message : String(error) });
          }
        });
        return;
      case 'close':
        close('asked by the primary');
        return;
      case 'metrics':
        void collectMetrics().then(
          (metrics) => send({ type: 'metrics', id: message.id, metrics }),
          (error: unknown) => {
            logger.warn('worker metrics failed', { error: error instanceof Error ? error.message : String(error) });
            send({ type: 'metrics', id: message.id, metrics: [] });
          },
        );
        return;
    }
  });
  // Traffic stats reach the controller through the primary's report: send the deltas up.
  const traffic = setInterval(() => {
    const entries = dataPlane.drainTraffic?.(MAX_TRAFFIC_PER_REPORT).traffic ?? [];
    if (entries.length > 0) send({ type: 'traffic', entries });
  }, WORKER_TRAFFIC_INTERVAL_MS);
  traffic.unref();
  send({ type: 'ready' });
}
