import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Io } from './io.js';
import { fieldLine, parseFieldPath, readInputs, withNamespaces } from './inputs.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluicectl-inputs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function io(stdin = ''): Io {
  return {
    out: () => undefined,
    err: () => undefined,
    readStdin: () => Promise.resolve(stdin),
    env: {},
    cwd: dir,
    interrupted: new AbortController().signal,
    holdInterrupts: () => () => undefined,
  };
}

const up = (name: string) => `apiVersion: sluice/v1\nkind: Upstream\nmetadata:\n  name: ${name}\nspec:\n  endpoints: []\n`;

describe('readInputs', () => {
  it('reads a directory in name order, non-recursively unless -R', async () => {
    await writeFile(join(dir, 'b.yaml'), up('b'));
    await writeFile(join(dir, 'a.yml'), `${up('a1')}---\n${up('a2')}`);
    await writeFile(join(dir, 'c.json'), JSON.stringify({ apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'c' } }));
    await writeFile(join(dir, 'notes.txt'), 'ignored');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'd.yaml'), up('d'));
    const flat = await readInputs(['.'], { recursive: false, io: io() });
    expect(flat.map((i) => [i.source.file, i.source.document, i.source.line])).toEqual([
      ['a.yml', 1, 1],
      ['a.yml', 2, 8],
      ['b.yaml', 1, 1],
      ['c.json', 1, 1],
    ]);
    const deep = await readInputs(['.'], { recursive: true, io: io() });
    expect(deep.map((i) => i.source.file)).toContain(join('sub', 'd.yaml'));
  });

  it('reads stdin for -', async () => {
    const inputs = await readInputs(['-'], { recursive: false, io: io(up('x')) });
    expect(inputs[0]?.source.file).toBe('stdin');
  });

  it('names file, line and column of malformed YAML', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'apiVersion: sluice/v1\nkind: [Upstream\nmetadata: {}\n');
    await expect(readInputs(['bad.yaml'], { recursive: false, io: io() })).rejects.toThrow(/^bad\.yaml:\d+:\d+: /);
  });

  it('reports a missing path', async () => {
    await expect(readInputs(['nope.yaml'], { recursive: false, io: io() })).rejects.toThrow('the path "nope.yaml" does not exist');
  });
});

describe('withNamespaces', () => {
  const input = (ns?: string, kind = 'Upstream') => ({
    object: { kind, metadata: ns === undefined ? { name: 'a' } : { name: 'a', namespace: ns } },
    source: { file: 'f', document: 1, line: 1, text: '' },
  });

  it('fills in a missing namespace, leaves cluster-scoped kinds alone', () => {
    const [a, b] = withNamespaces([input(), input(undefined, 'Agent')], { namespace: 'shop', namespaceExplicit: false });
    expect(a?.object['metadata']).toEqual({ name: 'a', namespace: 'shop' });
    expect(b?.object['metadata']).toEqual({ name: 'a' });
  });

  it('refuses an object from another namespace when -n was given', () => {
    expect(() => withNamespaces([input('other')], { namespace: 'shop', namespaceExplicit: true })).toThrow(/does not match the namespace "shop"/);
    expect(withNamespaces([input('other')], { namespace: 'shop', namespaceExplicit: false })[0]?.object['metadata']).toMatchObject({ namespace: 'other' });
  });
});

describe('fieldLine', () => {
  const text = `# comment
apiVersion: sluice/v1
kind: Route
metadata:
  name: shop
spec:
  rules:
    - backendRefs:
        - name: a
        - name: b
          weight: -1
---
apiVersion: sluice/v1
kind: Upstream
metadata:
  name: u
spec:
  endpoints:
    - address: x
`;

  it('finds the line of a field path', () => {
    expect(parseFieldPath('spec.rules[0].backendRefs[1].weight')).toEqual(['spec', 'rules', 0, 'backendRefs', 1, 'weight']);
    expect(fieldLine(text, 2, 'spec.rules[0].backendRefs[1].weight')).toBe(11);
    expect(fieldLine(text, 13, 'spec.endpoints[0].port')).toBe(19);
  });

  it('falls back to the deepest existing ancestor', () => {
    expect(fieldLine(text, 2, 'spec.hostnames')).toBe(6);
  });
});
