import { DataPlane } from '../data-plane/data-plane.js';
import type { DataPlaneOptions, ListeningDataPlane } from './data-plane-port.js';

/** The one place the agent names the concrete data plane (in process or in a worker). */
export function createDataPlane(options: DataPlaneOptions): ListeningDataPlane {
  return new DataPlane(options);
}
