import { describe, expect, it } from 'vitest';
import { parseYamlDocuments, toYaml } from './yaml.js';

function docs(text: string) {
  const r = parseYamlDocuments(text, 'f.yaml');
  if (!r.ok) throw new Error(r.error);
  return r.docs;
}

describe('parseYamlDocuments', () => {
  it('splits documents, skips empty and comment-only ones, and reports 1-based start lines', () => {
    const text = ['# header', '---', 'kind: A', 'n: 1', '---', '# only a comment', '---', '', '---', 'kind: B', ''].join('\n');
    expect(docs(text)).toEqual([
      { index: 0, line: 3, object: { kind: 'A', n: 1 } },
      { index: 1, line: 10, object: { kind: 'B' } },
    ]);
  });

  it('expands kind: List items with their own lines', () => {
    const text = ['apiVersion: v1', 'kind: List', 'items:', '  - kind: A', '  - kind: B', '    x: 1', '---', 'kind: C'].join('\n');
    expect(docs(text).map((d) => [d.index, d.line, (d.object as { kind: string }).kind])).toEqual([
      [0, 4, 'A'],
      [1, 5, 'B'],
      [2, 8, 'C'],
    ]);
  });

  it('accepts JSON', () => {
    expect(docs('{"kind": "A", "spec": {"port": 80}}')[0]?.object).toEqual({ kind: 'A', spec: { port: 80 } });
  });

  it('keeps YAML 1.2 scalars: `on` and `yes` are strings, not booleans', () => {
    expect(docs('retry: {on: [reset]}\nflag: yes')[0]?.object).toEqual({ retry: { on: ['reset'] }, flag: 'yes' });
  });

  it('returns nothing for an empty stream', () => {
    expect(docs('')).toEqual([]);
    expect(docs('# nothing\n')).toEqual([]);
  });

  it.each([
    ['kind: A\nspec: [1,\n', /^f\.yaml:3:1: /],
    ['kind: A\n  bad: indent\n', /^f\.yaml:1:7: /],
    ['a: 1\na: 2\n', /^f\.yaml:2:1: .*unique/],
    ['kind: A\n---\nkind: "unterminated\n', /^f\.yaml:4:1: .*quote/],
    ['kind: A\n---\nkind: B\nspec:\n  - a\n  b: c\n', /^f\.yaml:6:\d+: /],
  ])('malformed YAML %j fails with file:line:col', (text, pattern) => {
    const r = parseYamlDocuments(text, 'f.yaml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(pattern);
  });

  it('rejects non-object documents, naming the document and line', () => {
    const r = parseYamlDocuments('kind: A\n---\n- a\n- b\n', 'f.yaml');
    expect(r).toEqual({ ok: false, error: 'f.yaml:3: document 2 must be an object with apiVersion and kind, found a list' });
    const s = parseYamlDocuments('just a string\n', 'f.yaml');
    expect(s.ok).toBe(false);
    if (!s.ok) expect(s.error).toMatch(/^f\.yaml:1: document 1 .*found a string/);
  });

  it('rejects non-object List items', () => {
    const r = parseYamlDocuments('kind: List\nitems:\n  - kind: A\n  - 42\n', 'f.yaml');
    expect(r).toEqual({ ok: false, error: 'f.yaml:4: items[1] of the List in document 1 must be an object, found a number' });
  });

  it('omits the source prefix when none is given', () => {
    const r = parseYamlDocuments('a: [');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/^1:\d+: /);
  });
});

describe('toYaml', () => {
  it('writes block style in insertion order without folding long lines', () => {
    const long = 'x'.repeat(300);
    const out = toYaml({ z: 1, a: { list: [1, 2], s: long }, b: 'true' });
    expect(out).toBe(`z: 1\na:\n  list:\n    - 1\n    - 2\n  s: ${long}\nb: "true"\n`);
  });

  it('writes multi-line strings (PEM) as literal blocks and round-trips', () => {
    const value = { pem: '-----BEGIN X-----\nabc\n-----END X-----\n', shared: { a: 1 } };
    const twice = { one: value.shared, two: value.shared };
    expect(toYaml(value)).toContain('pem: |');
    expect(toYaml(twice)).not.toMatch(/[&*]/); // no anchors/aliases for repeated objects
    const back = docs(toYaml({ ...value, ...twice }))[0]?.object;
    expect(back).toEqual({ ...value, ...twice });
  });
});
