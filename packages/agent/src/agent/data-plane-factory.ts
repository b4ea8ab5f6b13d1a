import type { DataPlaneOptions, ListeningDataPlane } from './data-plane-port.js';

/**
 * The one place the agent names the concrete data plane (in process or in a worker).
 * Interim: data-plane/data-plane.ts is being written; a computed specifier keeps this package
 * compiling until it lands. Replace with a static import then.
 */
export async function createDataPlane(options: DataPlaneOptions): Promise<ListeningDataPlane> {
  const specifier = '../data-plane/data-plane.js';
  const { DataPlane } = (await import(specifier)) as { DataPlane: new (options: DataPlaneOptions) => ListeningDataPlane };
  return new DataPlane(options);
}
