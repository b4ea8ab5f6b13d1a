// Entry of a data-plane worker process (node:cluster exec, see worker-pool.ts).
import cluster from 'node:cluster';
import { createLogger } from '../logger.js';
import { createDataPlane } from './data-plane-factory.js';
import { runWorker } from './worker.js';
import { WORKER_CONFIG_ENV, type WorkerConfig } from './worker-messages.js';

const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? '{}') as WorkerConfig;
const logger = createLogger({ level: config.logLevel, component: 'agent', fields: { worker: cluster.worker?.id } });
runWorker(config, logger, createDataPlane);
