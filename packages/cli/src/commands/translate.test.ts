// sluicectl translate runs offline: these tests spawn the built CLI with no controller at all.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runSluicectl } from '@sluice/testing';
import { parseAgentLabels } from './translate.js';

/** The shared API examples (/work/shared/api), as copied into the translator's golden cases. */
const EXAMPLES = join(repoRoot, 'packages/translator/testdata/examples.in.yaml');
const SHARED_API = '/work/shared/api';
// No controller and no config: the command must not need either.
const env = { SLUICE_SERVER: 'http://127.0.0.1:1', SLUICE_CONFIG: '/nonexistent/sluice-config' };

const names = (stdout: string): string[] => (JSON.parse(stdout) as { resources: { type: string; name: string }[] }).resources.map((r) => `${r.type} ${r.name}`);

describe('sluicectl translate', () => {
  it('prints the snapshot of an agent without labels, and says what its selectors left out', async () => {
    const r = await runSluicectl(['translate', '-f', EXAMPLES, '-o', 'json'], { env });
    expect(r.stderr).toBe('note: 1 of 5 listeners left out by their agentSelector (agent labels: none): default/web; use --labels k=v,... to pick agents\n');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { revision: number; version: string; problems: unknown[] };
    expect(doc.revision).toBe(0);
    expect(doc.version).toMatch(/^[0-9a-f]{16}$/);
    expect(doc.problems).toEqual([]);
    expect(names(r.stdout)).toEqual([
      'RESOURCE_TYPE_SECRET default/shop-cert',
      'RESOURCE_TYPE_CLUSTER default/resolvers',
      'RESOURCE_TYPE_CLUSTER default/shop-v1',
      'RESOURCE_TYPE_CLUSTER default/shop-v2',
      'RESOURCE_TYPE_ENDPOINTS default/resolvers',
      'RESOURCE_TYPE_ENDPOINTS default/shop-v1',
      'RESOURCE_TYPE_ENDPOINTS default/shop-v2',
      'RESOURCE_TYPE_ROUTE_TABLE default/edge',
      'RESOURCE_TYPE_ROUTE_TABLE default/web-tls',
      'RESOURCE_TYPE_LISTENER default/db',
      'RESOURCE_TYPE_LISTENER default/dns',
      'RESOURCE_TYPE_LISTENER default/edge',
      'RESOURCE_TYPE_LISTENER default/web-tls',
    ]);
  });

  it('selects listeners by --labels and prints YAML by default', async () => {
    const r = await runSluicectl(['translate', '-f', '-', '--labels', 'pool=edge,zone=b'], { env, input: readFileSync(EXAMPLES, 'utf8') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^revision: 0\nversion: [0-9a-f]{16}\nresources:\n/);
    expect(r.stdout).toContain('  - type: RESOURCE_TYPE_LISTENER\n    name: default/web\n');
    expect(r.stdout).toContain('name: default/shop/rule/0/match/0');
    expect(r.stdout).toMatch(/problems: \[\]\n$/);
  });

  it.skipIf(!existsSync(SHARED_API))('translates the shared examples directory', async () => {
    const r = await runSluicectl(['translate', '-f', SHARED_API, '--labels', 'pool=edge', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    expect(names(r.stdout)).toEqual(expect.arrayContaining(['RESOURCE_TYPE_LISTENER default/web', 'RESOURCE_TYPE_ROUTE_TABLE default/web', 'RESOURCE_TYPE_CLUSTER default/shop-v1']));
  });

  it('reports translation problems in the output', async () => {
    const input = 'apiVersion: sluice/v1\nkind: Route\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: nope}]\n  rules: [{backendRefs: [{name: x}]}]\n';
    const r = await runSluicectl(['translate', '-f', '-', '-o', 'json'], { env, input });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      resources: [],
      problems: [{ source: { kind: 'Route', namespace: 'default', name: 'r' }, message: 'spec.parentRefs[0]: Listener default/nope not found' }],
    });
  });

  it('rejects invalid objects the way apply does, with file, document and line', async () => {
    const input = 'apiVersion: sluice/v1\nkind: Upstream\nmetadata: {name: x}\nspec:\n  endpoints:\n    - {address: 10.0.0.1, port: 0}\n';
    const r = await runSluicectl(['translate', '-f', '-'], { env, input });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: stdin (document 1, line 6): upstream/x: spec.endpoints[0].port: must be >= 1\n');
  });

  it('needs -f', async () => {
    const r = await runSluicectl(['translate'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: must specify -f FILE, a directory or - (stdin)');
  });
});

describe('parseAgentLabels', () => {
  it('reads k=v pairs', () => {
    expect(parseAgentLabels(undefined)).toEqual({});
    expect(parseAgentLabels('pool=edge, zone=b')).toEqual({ pool: 'edge', zone: 'b' });
    expect(parseAgentLabels('empty=')).toEqual({ empty: '' });
  });

  it('refuses anything else', () => {
    expect(() => parseAgentLabels('pool')).toThrow('invalid --labels "pool"');
    expect(() => parseAgentLabels('=edge')).toThrow('expected key=value');
  });
});
