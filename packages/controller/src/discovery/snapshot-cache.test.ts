import { describe, expect, it } from 'vitest';
import { validateResource, type Resource } from '@sluice/api';
import { HealthStatus, ResourceType } from '@sluice/proto';
import { checkConsistency, endpointId, resourceKey, snapshotFor, translate, type DataPlaneResource, type Translation } from '@sluice/translator';
import { silentLogger } from '../logger.js';
import type { ResourceSnapshot } from '../resources/resource-cache.js';
import { Watchable } from '../watchable.js';
import { SnapshotCache } from './snapshot-cache.js';

function object(body: unknown): Resource {
  const result = validateResource(body);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

const upstream = (port = 9001) =>
  object({ apiVersion: 'sluice/v1', kind: 'Upstream', metadata: { name: 'api' }, spec: { endpoints: [{ address: '127.0.0.1', port }] } });
const listener = (selector?: Record<string, string>) =>
  object({
    apiVersion: 'sluice/v1',
    kind: 'Listener',
    metadata: { name: 'web' },
    spec: { port: 8080, protocol: 'HTTP', ...(selector ? { agentSelector: { matchLabels: selector } } : {}) },
  });
const route = object({
  apiVersion: 'sluice/v1',
  kind: 'Route',
  metadata: { name: 'shop' },
  spec: { parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'api' }] }] },
});
const agent = (name: string) => object({ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name }, spec: {}, status: { connected: true } });

function snapshot(revision: number, objects: Resource[]): ResourceSnapshot {
  return { revision, objects: new Map(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o])) };
}

/** The real translator, counting calls, failing or reporting inconsistency on demand. */
function translator() {
  const t = {
    calls: 0,
    fail: false,
    inconsistent: false,
    translate(resources: readonly Resource[], options: { revision: number }): Translation {
      t.calls++;
      if (t.fail) throw new Error('boom');
      return translate(resources, options);
    },
    snapshotFor,
    checkConsistency(resources: Parameters<typeof checkConsistency>[0]): string[] {
      return t.inconsistent ? ['listener/default/web references route-table default/web, which is missing'] : checkConsistency(resources);
    },
  };
  return t;
}

function cache(t: ReturnType<typeof translator>) {
  const source = new Watchable<ResourceSnapshot>();
  return { source, cache: new SnapshotCache<DataPlaneResource, Translation>(source, t, silentLogger()) };
}

describe('SnapshotCache', () => {
  it('publishes a translation and serves group snapshots per label set', () => {
    const t = translator();
    const { cache: c } = cache(t);
    expect(c.snapshotFor({})).toBeUndefined();
    c.update(snapshot(3, [upstream(), listener({ pool: 'edge' }), route]));
    expect(c.translations.value?.revision).toBe(3);
    const edge = c.snapshotFor({ pool: 'edge', zone: 'a' });
    expect(edge?.resources.map((r) => r.type)).toEqual([
      'RESOURCE_TYPE_CLUSTER',
      'RESOURCE_TYPE_ENDPOINTS',
      'RESOURCE_TYPE_ROUTE_TABLE',
      'RESOURCE_TYPE_LISTENER',
    ]);
    expect(c.snapshotFor({ zone: 'a', pool: 'edge' })).toBe(edge); // same label set, same object
    expect(c.snapshotFor({ pool: 'other' })?.resources).toEqual([]);
    // Each resource is encoded once: every group shares the translation's bytes.
    expect(edge?.resources[0]?.encoded).toBe(c.translation?.resources.values().next().value?.encoded);
  });

  it('does not translate again when only Agent objects changed', () => {
    const t = translator();
    const { cache: c } = cache(t);
    const objects = [upstream(), listener(), route];
    c.update(snapshot(3, objects));
    c.update(snapshot(4, [...objects, agent('a1')]));
    c.update(snapshot(5, [...objects, agent('a1'), agent('a2')]));
    expect(t.calls).toBe(1);
    expect(c.translations.value?.revision).toBe(3);
    expect(c.outputs.value?.snapshot.revision).toBe(5);
    expect(c.outputs.value?.translation?.revision).toBe(3);
  });

  it('keeps the last good translation when translating fails', () => {
    const t = translator();
    const { cache: c } = cache(t);
    c.update(snapshot(3, [upstream(), listener(), route]));
    const good = c.snapshotFor({});
    t.fail = true;
    c.update(snapshot(4, [upstream(9002), listener(), route]));
    expect(c.translations.value?.revision).toBe(3);
    expect(c.snapshotFor({})).toBe(good);
    expect(c.outputs.value).toMatchObject({ snapshot: { revision: 4 }, translation: { revision: 3 } });
    t.fail = false;
    c.update(snapshot(5, [upstream(9002), listener(), route]));
    expect(c.translations.value?.revision).toBe(5);
    expect(c.snapshotFor({})).not.toBe(good);
  });

  it('keeps the last good translation when the result is inconsistent', () => {
    const t = translator();
    const { cache: c } = cache(t);
    c.update(snapshot(3, [upstream(), listener(), route]));
    const good = c.snapshotFor({});
    t.inconsistent = true;
    c.update(snapshot(4, [upstream(9002), listener(), route]));
    expect(c.translations.value?.revision).toBe(3);
    expect(c.snapshotFor({})).toBe(good);
    // A new label set matching the same listeners gets the same, already checked, snapshot.
    expect(c.snapshotFor({ pool: 'new' })).toBe(good);
  });

  it('runs as a runner over the resource snapshots', async () => {
    const t = translator();
    const { source, cache: c } = cache(t);
    const abort = new AbortController();
    await c.start(abort.signal);
    source.publish(snapshot(7, [upstream(), listener(), route]));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(c.translations.value?.revision).toBe(7);
    abort.abort();
    await c.close();
  });
});

describe('SnapshotCache with a health input', () => {
  it('re-translates the last snapshot when merged health changes; only the endpoints version moves', async () => {
    const source = new Watchable<ResourceSnapshot>();
    const health = new Watchable<ReadonlyMap<string, HealthStatus>>(new Map());
    const c = new SnapshotCache<DataPlaneResource, Translation>(source, translator(), silentLogger(), health);
    const abort = new AbortController();
    await c.start(abort.signal);
    const seen = c.translations.subscribe(abort.signal);
    source.publish(snapshot(1, [upstream(), listener(), route]));
    const first = (await seen.next()).value as Translation;
    health.publish(new Map([[endpointId('default/api', '127.0.0.1', 9001), HealthStatus.HEALTH_STATUS_UNHEALTHY]]));
    const second = (await seen.next()).value as Translation;
    const changed = [...second.resources].filter(([key, r]) => first.resources.get(key)?.version !== r.version).map(([key]) => key);
    expect(changed).toEqual([resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/api')]);
    expect(second.revision).toBe(1);
    abort.abort();
    await c.close();
  });
});

describe('SnapshotCache with a weights input', () => {
  it('re-translates the last snapshot when dynamic weights change; only the endpoints version moves', async () => {
    const source = new Watchable<ResourceSnapshot>();
    const weights = new Watchable<ReadonlyMap<string, number>>(new Map());
    const c = new SnapshotCache<DataPlaneResource, Translation>(source, translator(), silentLogger(), undefined, weights);
    const abort = new AbortController();
    await c.start(abort.signal);
    const seen = c.translations.subscribe(abort.signal);
    source.publish(snapshot(1, [upstream(), listener(), route]));
    const first = (await seen.next()).value as Translation;
    weights.publish(new Map([[endpointId('default/api', '127.0.0.1', 9001), 37]]));
    const second = (await seen.next()).value as Translation;
    const changed = [...second.resources].filter(([key, r]) => first.resources.get(key)?.version !== r.version).map(([key]) => key);
    expect(changed).toEqual([resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/api')]);
    abort.abort();
    await c.close();
  });
});
