import type { EndpointTraffic, Resource, ResourceError } from '@sluice/proto';
import type { ClusterStats, DataPlaneOptions, DataPlaneUpdate } from '../data-plane/data-plane.js';
import type { MetricsJSON } from '../metrics/registry.js';

export type { ClusterStats, DataPlaneOptions, DataPlaneUpdate };

/**
 * What the agent needs of a data plane: the in-process DataPlane (data-plane/data-plane.ts)
 * and the worker pool (one DataPlane per worker process) both fit, so the discovery client,
 * cache and admin server do not care which one runs.
 */
export interface DataPlanePort {
  /** Applies what it can; a rejected resource keeps its previous version. */
  apply(update: DataPlaneUpdate): Promise<ResourceError[]>;
  /** The applied set. */
  resources(): Resource[];
  close(): Promise<void>;
}

/** A data plane that binds listeners (the real one, in process or in a worker). */
export interface ListeningDataPlane extends DataPlanePort {
  listeners(): Map<string, { address: string; port: number }>;
  /** Per cluster: breaker counters and outlier ejections. Absent with workers (each counts on its own). */
  clusterStats?(): Map<string, ClusterStats>;
  /** Per-endpoint traffic since the last call, at most `max` endpoints (data-plane/endpoint-stats.ts). */
  drainTraffic?(max: number): { traffic: EndpointTraffic[]; omitted: number };
  /** Data-plane metrics (metrics/registry.ts): one part per process; workers add their process metrics. */
  collectMetrics?(): Promise<MetricsJSON[]>;
}
