import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatFieldError } from './errors.js';
import { formatPath, specOf, validateResource, type Resource } from './validate.js';
import { parseYamlDocuments, toYaml } from './yaml.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SHARED_API = join(REPO, '../shared/api');

function sharedExamples(): { file: string; line: number; object: unknown }[] {
  const files = readdirSync(SHARED_API).filter((f) => f.endsWith('.yaml'));
  return files.flatMap((file) => {
    const r = parseYamlDocuments(readFileSync(join(SHARED_API, file), 'utf8'), file);
    if (!r.ok) throw new Error(r.error);
    return r.docs.map((d) => ({ file, line: d.line, object: d.object }));
  });
}

function valid(input: unknown): Resource {
  const r = validateResource(input);
  if (!r.ok) throw new Error(r.errors.map(formatFieldError).join('\n'));
  return r.value;
}

function errorsOf(input: unknown): string[] {
  const r = validateResource(input);
  if (r.ok) throw new Error('expected validation to fail');
  return r.errors.map(formatFieldError);
}

const route = (spec: unknown) => ({ apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'shop' }, spec });

describe('shared API examples', () => {
  const examples = sharedExamples();

  it('finds the examples of every user-writable kind', () => {
    const kinds = new Set(examples.map((e) => (e.object as { kind: string }).kind));
    expect([...kinds].sort()).toEqual(['Listener', 'Route', 'Secret', 'TCPRoute', 'UDPRoute', 'Upstream']);
  });

  it.each(examples.map((e) => [`${e.file}:${e.line}`, e.object]))('%s validates', (_where, object) => {
    valid(object);
  });

  it.each(examples.map((e) => [`${e.file}:${e.line}`, e.object]))('%s round-trips through toYaml unchanged (get -o yaml re-applies)', (_where, object) => {
    const first = valid(object);
    const reparsed = parseYamlDocuments(toYaml(first));
    if (!reparsed.ok) throw new Error(reparsed.error);
    const second = valid(reparsed.docs[0]?.object);
    expect(second).toEqual(first);
    expect(specOf(second)).toEqual(specOf(first));
  });
});

describe('validateResource: reporting', () => {
  it('reports exactly the five mistakes of a Route, each with its path', () => {
    const r = validateResource(
      route({
        parentRefs: [{ name: 'web' }],
        rules: [
          {
            matches: [{ path: { type: 'Prefix', value: '/api' } }], // 1: bad enum
            filters: [{ type: 'URLRewrite', requestHeaderModifier: { remove: ['x'] } }], // 2+3: missing urlRewrite, foreign config
            backendRefs: [{ name: 'a', weight: 1 }, { name: 'b', weight: -5 }], // 4: negative weight
            timeouts: { request: '5x' }, // 5: bad duration
          },
        ],
      }),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      { field: 'spec.rules[0].matches[0].path.type', message: 'must be one of: Exact, PathPrefix, RegularExpression' },
      { field: 'spec.rules[0].filters[0].urlRewrite', message: 'Required value: type URLRewrite needs urlRewrite' },
      { field: 'spec.rules[0].filters[0].requestHeaderModifier', message: 'must not be set when type is URLRewrite' },
      { field: 'spec.rules[0].backendRefs[1].weight', message: 'must be >= 0' },
      { field: 'spec.rules[0].timeouts.request', message: 'invalid duration "5x": use a number and a unit, like 100ms, 5s or 1m30s' },
    ]);
  });

  it('reports an unknown nested field with its full path', () => {
    const errors = errorsOf({
      apiVersion: 'sluice/v1',
      kind: 'Upstream',
      metadata: { name: 'u', bogus: 1 },
      spec: { endpoints: [{ address: '10.0.0.1', port: 80 }, { address: '10.0.0.2', prot: 80 }], loadBalancing: { policy: 'Random', extra: true } },
    });
    expect(errors).toEqual([
      'metadata.bogus: unknown field "bogus"',
      'spec.endpoints[1].port: Required value',
      'spec.endpoints[1].prot: unknown field "prot"',
      'spec.loadBalancing.extra: unknown field "extra"',
    ]);
  });

  it('names what was given and what is expected for apiVersion and kind, without throwing', () => {
    expect(errorsOf({ apiVersion: 'v1', kind: 'Route', metadata: { name: 'x' }, spec: {} })[0]).toBe(
      'apiVersion: unsupported apiVersion "v1": must be "sluice/v1"',
    );
    expect(errorsOf({ apiVersion: 'sluice/v1', kind: 'Pod', metadata: { name: 'x' } })).toEqual([
      'kind: unknown kind "Pod": must be one of: Listener, Route, TCPRoute, UDPRoute, Upstream, Secret, Agent',
    ]);
    expect(errorsOf({ kind: 'upstreams' })).toEqual([
      'apiVersion: Required value: must be "sluice/v1"',
      'kind: unknown kind "upstreams" (did you mean "Upstream"?): must be one of: Listener, Route, TCPRoute, UDPRoute, Upstream, Secret, Agent',
    ]);
    expect(errorsOf({ apiVersion: 'sluice/v1' })).toEqual(['kind: Required value: must be one of: Listener, Route, TCPRoute, UDPRoute, Upstream, Secret, Agent']);
    for (const bad of [null, 'x', 42, [], undefined]) {
      expect(validateResource(bad).ok).toBe(false);
    }
  });

  it('still validates the body when only the apiVersion is wrong', () => {
    const errors = errorsOf({ apiVersion: 'sluice/v0', kind: 'Listener', metadata: { name: 'l' }, spec: { port: 0, protocol: 'HTTP' } });
    expect(errors).toEqual(['apiVersion: unsupported apiVersion "sluice/v0": must be "sluice/v1"', 'spec.port: must be >= 1']);
  });

  it('distinguishes a missing value from a wrong type', () => {
    expect(errorsOf({ apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'l' }, spec: { protocol: 7 } })).toEqual([
      'spec.port: Required value',
      'spec.protocol: must be one of: HTTP, HTTPS, TCP, UDP, TLS',
    ]);
    expect(errorsOf({ apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'l' }, spec: { port: '80', protocol: 'HTTP' } })).toEqual([
      'spec.port: must be a number',
    ]);
    expect(errorsOf({ apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 7 } })).toEqual([
      'metadata.name: must be a string',
      'spec: Required value',
    ]);
  });

  it('checks metadata: DNS-1123 names and namespaces, label rules', () => {
    const errors = errorsOf({
      apiVersion: 'sluice/v1',
      kind: 'Upstream',
      metadata: { name: 'Shop_V1', namespace: 'Prod', labels: { 'bad key': 'x', ok: 'not ok' } },
      spec: { endpoints: [] },
    });
    expect(errors).toHaveLength(4);
    expect(errors[0]).toMatch(/^metadata\.name: invalid name "Shop_V1": must be lowercase letters, digits, '-' and '\.'/);
    expect(errors[0]).toContain('253');
    expect(errors[1]).toMatch(/^metadata\.namespace: invalid namespace "Prod"/);
    expect(errors[2]).toMatch(/^metadata\.labels\[bad key\]: invalid key "bad key"/);
    expect(errors[3]).toMatch(/^metadata\.labels\.ok: invalid label value "not ok"/);
  });

  it('never leaks zod wording or JSON pointers, whatever the input (fuzz)', () => {
    const examples = sharedExamples().map((e) => e.object);
    const junk: unknown[] = [null, 7, -1, 1.5, 'x', '', true, [], {}, [1], { q: 1 }, 70000, '5x', '10.0.0.0/99'];
    let seed = 1;
    const rnd = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const FIELD_RE = /^(?:[A-Za-z_$][\w$]*|\[[^\]]+\])(?:\.[A-Za-z_$][\w$]*|\[[^\]]+\])*$|^$/;
    for (let i = 0; i < 400; i++) {
      const doc = structuredClone(examples[rnd(examples.length)]) as Record<string, unknown>;
      // Walk to a random node and replace one of its members with junk.
      let node: unknown = doc;
      for (let depth = rnd(6); depth > 0; depth--) {
        if (typeof node !== 'object' || node === null) break;
        const keys = Object.keys(node);
        if (keys.length === 0) break;
        const k = keys[rnd(keys.length)]!;
        const child = (node as Record<string, unknown>)[k];
        if (typeof child !== 'object' || child === null || depth === 1) {
          (node as Record<string, unknown>)[k] = junk[rnd(junk.length)];
          break;
        }
        node = child;
      }
      const r = validateResource(doc);
      if (r.ok) continue;
      for (const e of r.errors) {
        expect(e.field).toMatch(FIELD_RE);
        expect(e.message).not.toMatch(/Invalid input|expected .*, received|Unrecognized key|Invalid option|Too (small|big)/);
        expect(e.field).not.toContain('/');
      }
    }
  });
});

describe('validateResource: defaults', () => {
  it('defaults the namespace of namespaced kinds and drops it for Agent', () => {
    expect(valid(route({ parentRefs: [{ name: 'web' }], rules: [{}] })).metadata.namespace).toBe('default');
    const agent = valid({ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name: 'a1', namespace: 'x' } });
    expect(agent.metadata).toEqual({ name: 'a1' });
  });

  it('applies Route defaults: matches, path type, weight', () => {
    const r = valid(
      route({
        parentRefs: [{ name: 'web' }],
        rules: [{ backendRefs: [{ name: 'a' }] }, { matches: [{ path: { value: '/x' } }, { method: 'GET' }], backendRefs: [{ name: 'b', weight: 0 }] }],
      }),
    );
    if (r.kind !== 'Route') throw new Error('kind');
    expect(r.spec.rules[0]).toEqual({ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'a', weight: 1 }] });
    expect(r.spec.rules[1]?.matches).toEqual([{ path: { type: 'PathPrefix', value: '/x' } }, { method: 'GET' }]);
    expect(r.spec.rules[1]?.backendRefs?.[0]?.weight).toBe(0);
  });

  it('keeps server-managed metadata and passes status through unchanged', () => {
    const status = { conditions: [{ type: 'Accepted', status: 'True', reason: 'Ok', message: '', lastTransitionTime: 't' }], anything: { x: [1] } };
    const meta = { name: 'shop', namespace: 'prod', uid: 'u-1', resourceVersion: '42', generation: 3, creationTimestamp: '2026-01-01T00:00:00Z' };
    const r = valid({ ...route({ parentRefs: [{ name: 'web' }], rules: [{}] }), metadata: meta, status });
    expect(r.metadata).toEqual(meta);
    expect(r.status).toEqual(status);
    expect(errorsOf({ ...route({ parentRefs: [{ name: 'web' }], rules: [{}] }), status: 'ok' })).toEqual(['status: must be an object']);
  });

  it('does not share default objects between results', () => {
    const a = valid(route({ parentRefs: [{ name: 'web' }], rules: [{}] }));
    const b = valid(route({ parentRefs: [{ name: 'web' }], rules: [{}] }));
    if (a.kind !== 'Route' || b.kind !== 'Route') throw new Error('kind');
    expect(a.spec.rules[0]?.matches).not.toBe(b.spec.rules[0]?.matches);
  });

  it('does not mutate its input', () => {
    const input = route({ parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'a' }] }] });
    const copy = structuredClone(input);
    valid(input);
    expect(input).toEqual(copy);
  });
});

describe('specOf', () => {
  it('is the spec for most kinds and {type, data} for Secret', () => {
    const r = valid(route({ parentRefs: [{ name: 'web' }], rules: [{}] }));
    expect(specOf(r)).toBe((r as { spec: unknown }).spec);
    const s = valid({ apiVersion: 'sluice/v1', kind: 'Secret', metadata: { name: 's' }, stringData: { a: 'b' } });
    expect(specOf(s)).toEqual({ type: 'opaque', data: { a: 'Yg==' } });
  });

  it('ignores metadata and status, so re-applying `get -o yaml` output is "unchanged"', () => {
    const applied = valid(route({ parentRefs: [{ name: 'web' }], rules: [{}] }));
    const fromServer = valid({ ...applied, metadata: { ...applied.metadata, resourceVersion: '9', generation: 2 }, status: { conditions: [] } });
    expect(specOf(fromServer)).toEqual(specOf(applied));
  });
});

describe('formatPath', () => {
  it.each([
    [['spec', 'rules', 0, 'backendRefs', 1, 'weight'], 'spec.rules[0].backendRefs[1].weight'],
    [['data', 'tls.crt'], 'data[tls.crt]'],
    [['metadata', 'labels', 'app.kubernetes.io/name'], 'metadata.labels[app.kubernetes.io/name]'],
    [[], ''],
  ])('%j -> %s', (path, text) => {
    expect(formatPath(path)).toBe(text);
  });
});
