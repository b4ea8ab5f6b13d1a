import { describe, expect, it } from 'vitest';
import { KINDS } from './kinds.js';
import { openApiDocument } from './openapi.js';

type Schema = { description?: string; properties?: Record<string, Schema>; items?: Schema; default?: unknown; enum?: unknown[]; additionalProperties?: unknown };

const doc = openApiDocument() as { openapi: string; info: unknown; paths: unknown; components: { schemas: Record<string, Schema> } };
const schemas = doc.components.schemas;

/** Follows a dotted path like `spec.healthCheck.interval` through properties and array items. */
function at(kind: string, path: string): Schema | undefined {
  let node: Schema | undefined = schemas[kind];
  for (const part of path.split('.')) {
    while (node?.items) node = node.items;
    node = node?.properties?.[part];
  }
  return node;
}

describe('openApiDocument', () => {
  it('is an OpenAPI 3.0.3 document with one schema per kind', () => {
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.info).toEqual({ title: 'Sluice', version: 'v1' });
    expect(doc.paths).toEqual({});
    expect(Object.keys(schemas).sort()).toEqual(KINDS.map((k) => k.kind).sort());
    for (const k of KINDS) expect(schemas[k.kind]?.description, k.kind).toMatch(new RegExp(`^An? ${k.kind} `));
  });

  it('describes every property of every kind, down to the leaves', () => {
    const missing: string[] = [];
    const walk = (node: Schema, path: string): void => {
      for (const [k, child] of Object.entries(node.properties ?? {})) {
        if (!child.description) missing.push(`${path}.${k}`);
        walk(child, `${path}.${k}`);
      }
      if (node.items) walk(node.items, `${path}[]`);
    };
    for (const [kind, s] of Object.entries(schemas)) walk(s, kind);
    expect(missing).toEqual([]);
  });

  it('carries operator-facing descriptions, defaults and enums for nested fields', () => {
    expect(at('Upstream', 'spec.healthCheck')?.description).toMatch(/exactly one of http or tcp/i);
    expect(at('Upstream', 'spec.healthCheck.interval')).toMatchObject({ default: '5s', description: expect.stringContaining('Default: 5s') });
    expect(at('Upstream', 'spec.loadBalancing.policy')?.enum).toContain('ConsistentHash');
    expect(at('Route', 'spec.rules.backendRefs.weight')).toMatchObject({ default: 1 });
    expect(at('Route', 'spec.rules.matches.path.type')?.enum).toEqual(['Exact', 'PathPrefix', 'RegularExpression']);
    expect(at('Listener', 'metadata.namespace')?.default).toBe('default');
    expect(at('Secret', 'stringData')?.description).toMatch(/base64/);
    expect(at('Upstream', 'status.endpoints.health')?.enum).toEqual(['Healthy', 'Unhealthy', 'Unknown']);
    expect(at('Upstream', 'spec.endpoints.prot')).toBeUndefined();
  });

  it('forbids unknown fields like validation does', () => {
    expect(at('Upstream', 'spec')?.additionalProperties).toBe(false);
  });
});
