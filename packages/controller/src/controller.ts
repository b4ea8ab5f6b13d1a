import type { Server } from 'node:http';
import { createAdminApp, listenAdmin } from './admin/server.js';
import { closeGrpc, listenGrpc } from './discovery/grpc-server.js';
import type { Logger } from './logger.js';
import type { ControllerOptions } from './options.js';
import { ResourceCache } from './resources/resource-cache.js';
import { ResourceService } from './resources/resource-service.js';
import type { Runner } from './runner.js';
import { ReferenceStatus } from './status/reference-status.js';
import { openStore, type Store } from './store/index.js';
import { VERSION } from './version.js';

export interface RunningController {
  adminUrl: string;
  close(): Promise<void>;
}

/**
 * Wires the controller's stages (STYLE §1): store -> resource cache -> status runners, and
 * the admin API over the resource service. Holds no logic of its own.
 */
export async function startController(options: ControllerOptions, logger: Logger): Promise<RunningController> {
  const store: Store = await openStore(
    options.store === 'embedded'
      ? { kind: 'embedded', dataDir: options.dataDir }
      : { kind: 'etcd', endpoints: options.etcdEndpoints, prefix: options.etcdPrefix },
  );
  const prefix = options.store === 'embedded' ? '' : options.etcdPrefix;
  const resources = new ResourceService(store, { prefix });
  const cache = new ResourceCache(store, resources.keys.all(), logger);
  const runners: Runner[] = [cache, new ReferenceStatus(cache, resources, logger)];

  const abort = new AbortController();
  for (const runner of runners) await runner.start(abort.signal);

  let server: Server;
  try {
    const listening = await listenAdmin(createAdminApp({ resources, logger }), options.admin.host, options.admin.port);
    server = listening.server;
    logger.info('admin API listening', { address: listening.url });
    const grpc = await listenGrpc(options.grpc.host, options.grpc.port, () => undefined);
    logger.info('gRPC discovery listening', { address: grpc.address });
    logger.info('controller started', { version: VERSION, store: store.description });
    return {
      adminUrl: listening.url,
      async close() {
        abort.abort();
        await closeGrpc(grpc.server);
        // Watches are long-lived responses: end them, or close() would wait for clients.
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all(runners.map((r) => r.close()));
        await store.close();
      },
    };
  } catch (error) {
    abort.abort();
    await Promise.all(runners.map((r) => r.close()));
    await store.close();
    throw error;
  }
}
