// A data plane with one listener, one route (given filters) and one backend, for the edge
// filter tests: real sockets on 127.0.0.1, port 0. Dispose with `await using`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpFilter, ListenerLimits, Resource } from '@sluice/proto';
import { startBackend, type Backend } from '@sluice/testing';
import { DataPlane } from '../data-plane.js';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from './resources.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };

export interface EdgeProxy extends AsyncDisposable {
  readonly dp: DataPlane;
  readonly backend: Backend;
  /** http://127.0.0.1:PORT of the listener. */
  readonly origin: string;
  readonly port: number;
  /** Applies a new version of the route table with these filters (same route name). */
  reapply(filters: HttpFilter[]): Promise<void>;
}

export async function edgeProxy(
  filters: HttpFilter[],
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
  listener: { trustedProxies?: string[]; limits?: ListenerLimits; h2c?: boolean } = {},
): Promise<EdgeProxy> {
  const backend = await startBackend('b', handler);
  const dp = new DataPlane({ logger: silent, allowEphemeralPorts: true, drainTimeoutMs: 1_000 });
  const table = (f: HttpFilter[]): Resource => routeTableResource('default/web', [vhost(['*'], [route('default/r/rule/0/match/0', 'default/b', { filters: f })])]);
  const apply = async (resources: Resource[]) => {
    const errors = await dp.apply({ resources, removed: [] });
    if (errors.length > 0) throw new Error(errors.map((e) => e.message).join('; '));
  };
  try {
    await apply([
      clusterResource('default/b'),
      endpointsResource('default/b', [{ port: backend.port }]),
      table(filters),
      listenerResource('default/web', { trustedProxies: listener.trustedProxies ?? [], limits: listener.limits, h2c: listener.h2c ?? false }),
    ]);
  } catch (err) {
    await dp.close();
    await backend[Symbol.asyncDispose]();
    throw err;
  }
  const port = dp.listeners().get('default/web')?.port ?? 0;
  return {
    dp,
    backend,
    port,
    origin: `http://127.0.0.1:${port}`,
    reapply: (f) => apply([table(f)]),
    async [Symbol.asyncDispose]() {
      await dp.close();
      await backend[Symbol.asyncDispose]();
    },
  };
}

export const edgeFilter = {
  compression: (over: Partial<{ algorithms: string[]; minBytes: number; contentTypes: string[] }> = {}): HttpFilter => ({
    filter: { $case: 'compression', value: { algorithms: [], minBytes: 0, contentTypes: [], ...over } },
  }),
  cache: (over: Partial<{ maxBytes: number; defaultTtlMs: number; purgeToken: string; maxEntryBytes: number }> = {}): HttpFilter => ({
    filter: { $case: 'cache', value: { maxBytes: 1 << 20, defaultTtlMs: 0, purgeToken: '', maxEntryBytes: 0, ...over } },
  }),
  rateLimit: (requestsPerSecond: number, burst: number, header?: string): HttpFilter => ({
    filter: { $case: 'rateLimit', value: { requestsPerSecond, burst, key: header === undefined ? { key: { $case: 'sourceIp', value: true } } : { key: { $case: 'header', value: header } } } },
  }),
  ipAccess: (allow: string[], deny: string[]): HttpFilter => ({ filter: { $case: 'ipAccess', value: { allow, deny } } }),
};
