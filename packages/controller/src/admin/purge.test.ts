import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '@sluice/testing';
import { silentLogger } from '../logger.js';
import { ResourceService } from '../resources/resource-service.js';
import { EmbeddedStore, type Store } from '../store/index.js';
import { purgeToken } from './purge.js';
import { createAdminApp, listenAdmin } from './server.js';

// POST .../routes/{name}/purge over a real embedded store on a real socket (port 0).
let dir: TempDir;
let store: Store;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = await tempDir();
  store = await EmbeddedStore.open({ dataDir: dir.path });
  const resources = new ResourceService(store, { prefix: '' });
  const listening = await listenAdmin(createAdminApp({ resources, logger: silentLogger() }), '127.0.0.1', 0);
  server = listening.server;
  base = `${listening.url}/apis/sluice/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await dir[Symbol.asyncDispose]();
});

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

const route = {
  apiVersion: 'sluice/v1',
  kind: 'Route',
  metadata: { name: 'shop', annotations: { owner: 'team-a' } },
  spec: {
    parentRefs: [{ name: 'web' }],
    rules: [{ filters: [{ type: 'Cache', cache: { maxBytes: 1048576 } }], backendRefs: [{ name: 'shop' }] }],
  },
};

describe('route cache purge', () => {
  it('sets a fresh sluice.io/cache-purge token each time, leaving spec, generation and other annotations alone', async () => {
    const created = await call('POST', '/namespaces/default/routes', route);
    expect(created.status).toBe(201);
    const first = await call('POST', '/namespaces/default/routes/shop/purge');
    expect(first.status).toBe(200);
    const token1 = first.body!.metadata.annotations['sluice.io/cache-purge'] as string;
    expect(token1).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z-[0-9a-f]{8}$/);
    expect(first.body!.metadata.annotations.owner).toBe('team-a');
    expect(first.body!.metadata.generation).toBe(created.body!.metadata.generation);
    expect(first.body!.spec).toEqual(created.body!.spec);
    const second = await call('POST', '/namespaces/default/routes/shop/purge');
    expect(second.body!.metadata.annotations['sluice.io/cache-purge']).not.toBe(token1);
    expect(Number(second.body!.metadata.resourceVersion)).toBeGreaterThan(Number(first.body!.metadata.resourceVersion));
  });

  it('answers 404 for a route that does not exist', async () => {
    const missing = await call('POST', '/namespaces/default/routes/nope/purge');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ kind: 'Status', code: 404 });
  });

  it('makes tokens that differ within one millisecond', () => {
    const now = new Date('2026-11-26T19:00:00.000Z');
    expect(purgeToken(now)).not.toBe(purgeToken(now));
    expect(purgeToken(now).startsWith('2026-11-26T19:00:00.000Z-')).toBe(true);
  });
});
