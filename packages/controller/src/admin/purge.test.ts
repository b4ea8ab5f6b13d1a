import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeToken } from './purge.js';
import { startAdminApi, type AdminApi } from './test-support/admin-api.js';

// POST .../routes/{name}/purge over a real embedded store on a real socket (port 0).
let api: AdminApi;

beforeAll(async () => {
  api = await startAdminApi();
});

afterAll(() => api[Symbol.asyncDispose]());

const call: AdminApi['call'] = (...args) => api.call(...args);

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
