import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from './server.js';
import { startAdminApi, type AdminApi } from './test-support/admin-api.js';

// The admin API over a real embedded store on a real socket (port 0).
let api: AdminApi;
let base: string;

beforeAll(async () => {
  api = await startAdminApi();
  base = api.base;
});

afterAll(() => api[Symbol.asyncDispose]());

const call: AdminApi['call'] = (...args) => api.call(...args);

const upstream = (name: string, port = 9001, labels?: Record<string, string>) => ({
  apiVersion: 'sluice/v1',
  kind: 'Upstream',
  metadata: { name, ...(labels ? { labels } : {}) },
  spec: { endpoints: [{ address: '127.0.0.1', port }] },
});

describe('admin API', () => {
  it('creates, reads, lists and deletes with server-managed metadata', async () => {
    const created = await call('POST', '/namespaces/default/upstreams', upstream('crud'));
    expect(created.status).toBe(201);
    expect(created.body!.metadata).toMatchObject({ name: 'crud', namespace: 'default', generation: 1 });
    expect(created.body!.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(created.body!.metadata.resourceVersion)).toBeGreaterThan(0);
    expect(created.body!.spec.loadBalancing.policy).toBe('RoundRobin'); // default applied on write

    const got = await call('GET', '/namespaces/default/upstreams/crud');
    expect(got.body).toEqual(created.body);

    const list = await call('GET', '/namespaces/default/upstreams');
    expect(list.body!.kind).toBe('UpstreamList');
    expect(list.body!.items.map((i: any) => i.metadata.name)).toContain('crud');

    const again = await call('POST', '/namespaces/default/upstreams', upstream('crud'));
    expect(again.status).toBe(409);
    expect(again.body!.reason).toBe('AlreadyExists');

    const deleted = await call('DELETE', '/namespaces/default/upstreams/crud');
    expect(deleted.status).toBe(200);
    expect((await call('GET', '/namespaces/default/upstreams/crud')).status).toBe(404);
  });

  it('rejects a stale resourceVersion with 409 and bumps generation only on spec changes', async () => {
    const created = (await call('POST', '/namespaces/default/upstreams', upstream('cas'))).body!;
    const labelsOnly = await call('PUT', '/namespaces/default/upstreams/cas', {
      ...upstream('cas', 9001, { team: 'a' }),
      metadata: { name: 'cas', labels: { team: 'a' }, resourceVersion: created.metadata.resourceVersion },
    });
    expect(labelsOnly.status).toBe(200);
    expect(labelsOnly.body!.metadata.generation).toBe(1);

    const stale = await call('PUT', '/namespaces/default/upstreams/cas', {
      ...upstream('cas', 9002),
      metadata: { name: 'cas', resourceVersion: created.metadata.resourceVersion },
    });
    expect(stale.status).toBe(409);
    expect(stale.body!.reason).toBe('Conflict');

    const patched = await call('PATCH', '/namespaces/default/upstreams/cas', { spec: { endpoints: [{ address: '127.0.0.1', port: 9005 }] } }, 'application/merge-patch+json');
    expect(patched.status).toBe(200);
    expect(patched.body!.metadata.generation).toBe(2);
    expect(patched.body!.metadata.uid).toBe(created.metadata.uid);
    expect(patched.body!.spec.endpoints[0].port).toBe(9005);
  });

  it('lists every invalid field in one 422 Status and writes nothing', async () => {
    const bad = await call('POST', '/namespaces/default/upstreams', {
      ...upstream('bad'),
      spec: { endpoints: [{ address: '127.0.0.1', port: 70000, weight: -1 }], bogus: 1 },
    });
    expect(bad.status).toBe(422);
    expect(bad.body!.kind).toBe('Status');
    const fields = bad.body!.details.causes.map((c: any) => c.field);
    expect(fields).toEqual(expect.arrayContaining(['spec.endpoints[0].port', 'spec.endpoints[0].weight', 'spec.bogus']));
    expect((await call('GET', '/namespaces/default/upstreams/bad')).status).toBe(404);
  });

  it('dryRun=All validates and answers without writing', async () => {
    const dry = await call('POST', '/namespaces/default/upstreams?dryRun=All', upstream('dry'));
    expect(dry.status).toBe(201);
    expect(dry.body!.metadata.name).toBe('dry');
    expect((await call('GET', '/namespaces/default/upstreams/dry')).status).toBe(404);
  });

  it('applies all or nothing: a bad 5th object means none of the first 4 is written', async () => {
    const items = [upstream('a1'), upstream('a2'), upstream('a3'), upstream('a4'), { ...upstream('a5'), spec: { endpoints: 'nope' } }];
    const rejected = await call('POST', '/apply', { apiVersion: 'sluice/v1', kind: 'List', items });
    expect(rejected.status).toBe(422);
    expect(rejected.body!.details.causes[0].field).toBe('items[4].spec.endpoints');
    for (const name of ['a1', 'a2', 'a3', 'a4']) {
      expect((await call('GET', `/namespaces/default/upstreams/${name}`)).status).toBe(404);
    }

    const good = items.slice(0, 4);
    const first = await call('POST', '/apply', { kind: 'List', items: good });
    expect(first.body!.items.map((i: any) => i.action)).toEqual(['created', 'created', 'created', 'created']);
    const second = await call('POST', '/apply', { kind: 'List', items: good });
    expect(second.body!.items.map((i: any) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    const changed = await call('POST', '/apply', { kind: 'List', items: [upstream('a1', 9009), good[1]] });
    expect(changed.body!.items.map((i: any) => i.action)).toEqual(['configured', 'unchanged']);
  });

  it('filters lists by label selector', async () => {
    await call('POST', '/apply', { kind: 'List', items: [upstream('l1', 1, { app: 'shop' }), upstream('l2', 1, { app: 'blog' })] });
    const shop = await call('GET', `/upstreams?labelSelector=${encodeURIComponent('app=shop')}`);
    expect(shop.body!.items.map((i: any) => i.metadata.name)).toEqual(['l1']);
    const notShop = await call('GET', `/upstreams?labelSelector=${encodeURIComponent('app,app!=shop')}`);
    expect(notShop.body!.items.map((i: any) => i.metadata.name)).toEqual(['l2']);
    const bad = await call('GET', `/upstreams?labelSelector=${encodeURIComponent('app in (')}`);
    expect(bad.status).toBe(400);
  });

  it('streams watch events and resumes from a resourceVersion', async () => {
    const first = (await call('POST', '/namespaces/w/upstreams', upstream('w1'))).body!;
    const abort = new AbortController();
    const response = await fetch(`${base}/namespaces/w/upstreams?watch=true&resourceVersion=${first.metadata.resourceVersion}`, {
      signal: abort.signal,
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    await call('POST', '/namespaces/w/upstreams', upstream('w2'));
    await call('DELETE', '/namespaces/w/upstreams/w1');
    let buffer = '';
    while (buffer.split('\n').length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
    }
    abort.abort();
    const events = buffer.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: any });
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED w2', 'DELETED w1']);
  });

  it('rejects unknown kinds, read-only kinds, oversized and malformed bodies with Status errors', async () => {
    expect((await call('GET', '/namespaces/default/gizmos')).body!.reason).toBe('NotFound');
    const agent = await call('DELETE', '/agents/a');
    expect(agent.status).toBe(405);
    const malformed = await call('POST', '/namespaces/default/upstreams', '{"kind": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body!.message).toMatch(/malformed JSON/);
    const huge = await call('POST', '/namespaces/default/upstreams', JSON.stringify({ pad: 'x'.repeat(MAX_BODY_BYTES) }));
    expect(huge.status).toBe(413);
    const jsonPatch = await call('PATCH', '/namespaces/default/upstreams/a1', [], 'application/json-patch+json');
    expect(jsonPatch.status).toBe(415);
  });
});
