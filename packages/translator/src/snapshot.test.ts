import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ResourceType } from '@sluice/proto';
import { checkConsistency, RESOURCE_ORDER, resourceKey, snapshotFor, translate, type DataPlaneResource } from './index.js';
import { loadResources } from './test-support/load.js';

const TESTDATA = fileURLToPath(new URL('../testdata/', import.meta.url));
const load = (name: string) => loadResources(readFileSync(`${TESTDATA}${name}.in.yaml`, 'utf8'), name);
const keys = (rs: readonly DataPlaneResource[]) => rs.map((r) => resourceKey(r.type, r.name));

describe('snapshotFor', () => {
  const t = translate(load('agent-selectors'), { revision: 5 });

  it('returns one shared object for agents that match the same listeners', () => {
    const edge = snapshotFor(t, { pool: 'edge' });
    expect(snapshotFor(t, { pool: 'edge', zone: 'a' })).toBe(edge);
    expect(snapshotFor(t, { zone: 'b', pool: 'edge' })).toBe(edge);
    expect(snapshotFor(t, { pool: 'internal' })).not.toBe(edge);
    // "front" lost its port to "public", so tier=front matches what an unlabelled agent does.
    expect(snapshotFor(t, { tier: 'front' })).toBe(snapshotFor(t, {}));
    expect(edge.revision).toBe(5);
  });

  it('memoizes per translation', () => {
    const again = translate(load('agent-selectors'), { revision: 6 });
    const a = snapshotFor(t, { pool: 'edge' });
    const b = snapshotFor(again, { pool: 'edge' });
    expect(b).not.toBe(a);
    // Same content, same version, whatever the revision.
    expect(b.version).toBe(a.version);
    expect(b.revision).toBe(6);
  });

  it('holds the matched listeners and exactly what they reference, transitively', () => {
    expect(keys(snapshotFor(t, { pool: 'internal' }).resources)).toEqual([
      'cluster/default/internal-app',
      'cluster/default/resolvers',
      'endpoints/default/internal-app',
      'endpoints/default/resolvers',
      'route-table/default/health',
      'route-table/default/internal',
      'listener/default/dns',
      'listener/default/health',
      'listener/default/internal',
    ]);
  });

  it('sends only the Secrets its listeners use', () => {
    const tls = translate(load('tls-listener'), { revision: 1 });
    const secrets = snapshotFor(tls, {}).resources.filter((r) => r.type === ResourceType.RESOURCE_TYPE_SECRET);
    expect(keys(secrets)).toEqual(['secret/shop/internal-ca', 'secret/shop/shop-cert']);
    expect([...tls.resources.keys()]).not.toContain('secret/shop/unused-cert');
  });

  it('orders resources make-before-break, then by name', () => {
    expect(RESOURCE_ORDER).toEqual([
      ResourceType.RESOURCE_TYPE_SECRET,
      ResourceType.RESOURCE_TYPE_CLUSTER,
      ResourceType.RESOURCE_TYPE_ENDPOINTS,
      ResourceType.RESOURCE_TYPE_ROUTE_TABLE,
      ResourceType.RESOURCE_TYPE_LISTENER,
    ]);
    const s = snapshotFor(translate(load('examples'), { revision: 1 }), { pool: 'edge' });
    const rank = s.resources.map((r) => RESOURCE_ORDER.indexOf(r.type));
    expect(rank).toEqual([...rank].sort((a, b) => a - b));
    for (const type of RESOURCE_ORDER) {
      const names = s.resources.filter((r) => r.type === type).map((r) => r.name);
      expect(names).toEqual([...names].sort());
    }
    // Everything a resource references comes before it, except a cluster's endpoints, which
    // follow it as EDS follows CDS in Envoy (the agent holds a cluster until they arrive).
    const seen = new Set<string>();
    for (const r of s.resources) {
      for (const ref of r.references) {
        if (ref.type !== ResourceType.RESOURCE_TYPE_ENDPOINTS) expect(seen.has(resourceKey(ref.type, ref.name))).toBe(true);
      }
      seen.add(resourceKey(r.type, r.name));
    }
  });

  it('gives an agent no listener matches an empty snapshot', () => {
    const onlyEdge = translate(
      loadResources('apiVersion: sluice/v1\nkind: Listener\nmetadata: {name: web}\nspec: {port: 80, protocol: HTTP, agentSelector: {matchLabels: {pool: edge}}}\n'),
      { revision: 1 },
    );
    const s = snapshotFor(onlyEdge, {});
    expect(s.resources).toEqual([]);
    expect(s.version).toMatch(/^[0-9a-f]{16}$/);
    expect(snapshotFor(onlyEdge, { pool: 'edge' }).version).not.toBe(s.version);
  });
});

describe('checkConsistency', () => {
  const all = [...translate(load('examples'), { revision: 1 }).resources.values()];

  it('accepts a complete set', () => {
    expect(checkConsistency(all)).toEqual([]);
  });

  it('catches a dangling reference', () => {
    const withoutCluster = all.filter((r) => resourceKey(r.type, r.name) !== 'cluster/default/shop-v2');
    expect(checkConsistency(withoutCluster)).toEqual([
      'route-table/default/web references cluster default/shop-v2, which is missing',
      'route-table/default/web-tls references cluster default/shop-v2, which is missing',
      'listener/default/db references cluster default/shop-v2, which is missing',
    ]);
  });

  it('catches a missing secret and a missing route table', () => {
    const withoutListenerDeps = all.filter((r) => !['secret/default/shop-cert', 'route-table/default/web-tls'].includes(resourceKey(r.type, r.name)));
    expect(checkConsistency(withoutListenerDeps)).toEqual([
      'listener/default/web-tls references secret default/shop-cert, which is missing',
      'listener/default/web-tls references route-table default/web-tls, which is missing',
    ]);
  });
});
