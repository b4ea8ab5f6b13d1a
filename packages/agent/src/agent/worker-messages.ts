import { Resource, ResourceError, type EndpointTraffic, type ResourceKey } from '@sluice/proto';
import type { MetricsJSON } from '../metrics/registry.js';
import type { DataPlaneUpdate } from './data-plane-port.js';

// IPC between the agent's primary process and its data-plane workers (node:cluster). Messages
// are JSON: resources travel as proto3 JSON, which round-trips every field.

export type ToWorker =
  | { type: 'apply'; id: number; resources: unknown[]; removed: ResourceKey[] }
  | { type: 'close' }
  /** A scrape of the primary's /metrics: answer with this worker's registries. */
  | { type: 'metrics'; id: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'applied'; id: number; errors: unknown[]; listeners: [string, { address: string; port: number }][] }
  | { type: 'failed'; id: number; error: string }
  /** Traffic deltas since the worker's previous 'traffic' message (plain EndpointTraffic objects). */
  | { type: 'traffic'; entries: EndpointTraffic[] }
  /** Answer to a 'metrics' request: the worker's registries as getMetricsAsJSON() gives them. */
  | { type: 'metrics'; id: number; metrics: MetricsJSON[] };

/** What the primary tells a worker at fork time (environment variable SLUICE_AGENT_WORKER). */
export interface WorkerConfig {
  listenAddress: string | undefined;
  logLevel: string;
}

export const WORKER_CONFIG_ENV = 'SLUICE_AGENT_WORKER';

export function applyMessage(id: number, update: DataPlaneUpdate): ToWorker {
  return { type: 'apply', id, resources: update.resources.map((r) => Resource.toJSON(r)), removed: update.removed };
}

export function updateOf(message: Extract<ToWorker, { type: 'apply' }>): DataPlaneUpdate {
  return { resources: message.resources.map((r) => Resource.fromJSON(r)), removed: message.removed };
}

export function errorsOf(message: Extract<FromWorker, { type: 'applied' }>): ResourceError[] {
  return message.errors.map((e) => ResourceError.fromJSON(e));
}

export function isFromWorker(message: unknown): message is FromWorker {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string';
}

export function isToWorker(message: unknown): message is ToWorker {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string';
}
