import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Resource } from '@sluice/api';
import { Cluster, HealthStatus, Resource as WireResource, ResourceType } from '@sluice/proto';
import { endpointId, resourceKey, translate, type Translation } from './index.js';
import { loadResources } from './test-support/load.js';

const TESTDATA = fileURLToPath(new URL('../testdata/', import.meta.url));

function load(name: string): Resource[] {
  return loadResources(readFileSync(`${TESTDATA}${name}.in.yaml`, 'utf8'), name);
}

/** Deterministic Fisher-Yates (a tiny LCG): the test shuffles, the translator must not care. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function fingerprint(t: Translation) {
  return {
    resources: [...t.resources.entries()].map(([key, r]) => ({ key, version: r.version, bytes: Buffer.from(r.encoded).toString('hex'), sources: r.sources, references: r.references })),
    listeners: t.listeners,
    problems: t.problems,
  };
}

const ALL_CASES = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length));

const upstream = (name: string, endpoints: string) => `apiVersion: sluice/v1
kind: Upstream
metadata: {name: ${name}}
spec:
  endpoints: ${endpoints}
`;

describe('translate', () => {
  it.each(ALL_CASES)('gives identical bytes and versions for shuffled input: %s', (name) => {
    const input = load(name);
    const expected = fingerprint(translate(input, { revision: 7 }));
    for (const seed of [1, 2, 3, 42]) {
      expect(fingerprint(translate(shuffled(input, seed), { revision: 7 }))).toEqual(expected);
    }
  });

  it('versions a resource by the sha256 of its body encoding and encodes the wire resource once', () => {
    const t = translate(load('examples'), { revision: 3 });
    const r = t.resources.get(resourceKey(ResourceType.RESOURCE_TYPE_CLUSTER, 'default/shop-v1'))!;
    expect(r.resource.body?.$case).toBe('cluster');
    const body = r.resource.body?.$case === 'cluster' ? r.resource.body.value : Cluster.fromPartial({});
    const digest = createHash('sha256').update(Cluster.encode(body).finish()).digest('hex');
    expect(r.version).toBe(digest.slice(0, 16));
    expect(r.resource.version).toBe(r.version);
    expect(r.resource.name).toBe('default/shop-v1');
    expect(WireResource.decode(r.encoded)).toEqual(r.resource);
  });

  it('keys every resource by resourceKey(type, name) and iterates in make-before-break order', () => {
    const t = translate(load('examples'), { revision: 0 });
    for (const [key, r] of t.resources) expect(key).toBe(resourceKey(r.type, r.name));
    expect(t.revision).toBe(0);
    const types = [...t.resources.values()].map((r) => r.type);
    expect(types[0]).toBe(ResourceType.RESOURCE_TYPE_SECRET);
    expect(types.at(-1)).toBe(ResourceType.RESOURCE_TYPE_LISTENER);
  });

  it('does not change the endpoints version when endpoints are reordered', () => {
    const a = translate(loadResources(upstream('u', '[{address: 10.0.0.1, port: 80}, {address: 10.0.0.2, port: 80, labels: {b: "1", a: "2"}}]')), { revision: 1 });
    const b = translate(loadResources(upstream('u', '[{address: 10.0.0.2, port: 80, labels: {a: "2", b: "1"}}, {address: 10.0.0.1, port: 80}]')), { revision: 1 });
    const key = resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/u');
    expect(Buffer.from(a.resources.get(key)!.encoded)).toEqual(Buffer.from(b.resources.get(key)!.encoded));
  });

  it('gives endpoints opaque ids that are stable and differ between upstreams', () => {
    const t = translate(loadResources(`${upstream('a', '[{address: 10.0.0.1, port: 80}]')}---\n${upstream('b', '[{address: 10.0.0.1, port: 80}]')}`), { revision: 1 });
    const ids = ['default/a', 'default/b'].map((n) => {
      const body = t.resources.get(resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, n))!.resource.body;
      return body?.$case === 'endpoints' ? body.value.endpoints[0]?.id : undefined;
    });
    expect(ids).toEqual([endpointId('default/a', '10.0.0.1', 80), endpointId('default/b', '10.0.0.1', 80)]);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(ids[0]).not.toContain('10.0.0.1');
  });

  it('takes dynamic weights by endpoint id, touching only the endpoints version', () => {
    const input = loadResources(upstream('u', '[{address: 10.0.0.1, port: 80, weight: 10}, {address: 10.0.0.2, port: 80, weight: 10}]'));
    const plain = translate(input, { revision: 1 });
    const id = endpointId('default/u', '10.0.0.2', 80);
    const weighted = translate(input, { revision: 2, weights: new Map([[id, 3]]) });
    const ek = resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/u');
    const ck = resourceKey(ResourceType.RESOURCE_TYPE_CLUSTER, 'default/u');
    const body = weighted.resources.get(ek)!.resource.body;
    expect(body?.$case === 'endpoints' ? body.value.endpoints.map((e) => e.weight) : []).toEqual([10, 3]);
    expect(weighted.resources.get(ek)!.version).not.toBe(plain.resources.get(ek)!.version);
    expect(weighted.resources.get(ck)!.version).toBe(plain.resources.get(ck)!.version);
  });

  it('takes merged health by endpoint id, touching only the endpoints version', () => {
    const input = loadResources(upstream('u', '[{address: 10.0.0.1, port: 80}, {address: 10.0.0.2, port: 80}]'));
    const plain = translate(input, { revision: 1 });
    const id = endpointId('default/u', '10.0.0.2', 80);
    const checked = translate(input, { revision: 2, health: new Map([[id, HealthStatus.HEALTH_STATUS_UNHEALTHY]]) });
    const ek = resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/u');
    const ck = resourceKey(ResourceType.RESOURCE_TYPE_CLUSTER, 'default/u');
    const body = checked.resources.get(ek)!.resource.body;
    expect(body?.$case === 'endpoints' ? body.value.endpoints.map((e) => e.health) : []).toEqual([HealthStatus.HEALTH_STATUS_UNSPECIFIED, HealthStatus.HEALTH_STATUS_UNHEALTHY]);
    expect(checked.resources.get(ek)!.version).not.toBe(plain.resources.get(ek)!.version);
    expect(checked.resources.get(ck)!.version).toBe(plain.resources.get(ck)!.version);
  });

  it('emits an empty route table for an HTTP listener no Route attaches to', () => {
    const t = translate(loadResources('apiVersion: sluice/v1\nkind: Listener\nmetadata: {name: web}\nspec: {port: 80, protocol: HTTP}\n'), { revision: 1 });
    const table = t.resources.get(resourceKey(ResourceType.RESOURCE_TYPE_ROUTE_TABLE, 'default/web'))!;
    expect(table.resource.body).toEqual({ $case: 'routeTable', value: { virtualHosts: [] } });
    expect(t.listeners).toEqual([{ name: 'default/web', agentSelector: {} }]);
  });

  it('reports an object given twice and uses the first', () => {
    const a = upstream('u', '[{address: 10.0.0.1, port: 80}]');
    const t = translate(loadResources(`${a}---\n${upstream('u', '[{address: 10.0.0.9, port: 80}]')}`), { revision: 1 });
    expect(t.problems).toEqual([{ source: { kind: 'Upstream', namespace: 'default', name: 'u' }, message: 'Upstream default/u is given more than once: only the first is used' }]);
    expect(t.resources.get(resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/u'))!.version).toBe(
      translate(loadResources(a), { revision: 1 }).resources.get(resourceKey(ResourceType.RESOURCE_TYPE_ENDPOINTS, 'default/u'))!.version,
    );
  });

  it('ignores Agent objects', () => {
    const t = translate(loadResources('apiVersion: sluice/v1\nkind: Agent\nmetadata: {name: a1}\n'), { revision: 1 });
    expect(t.resources.size).toBe(0);
    expect(t.problems).toEqual([]);
  });
});
