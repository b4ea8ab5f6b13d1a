import { describe, expect, it } from 'vitest';
import { diffLines, splitLines, unifiedDiff } from './diff.js';

const names = { fromName: 'a', toName: 'b' };

describe('diffLines', () => {
  it('finds a minimal script', () => {
    const ops = diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e']);
    expect(ops.map((o) => `${o.type[0]}${o.line}`)).toEqual(['ea', 'db', 'ix', 'ec', 'ed', 'ie']);
  });

  it('handles empty sides', () => {
    expect(diffLines([], ['x']).map((o) => o.type)).toEqual(['insert']);
    expect(diffLines(['x'], []).map((o) => o.type)).toEqual(['delete']);
  });
});

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', names)).toBe('');
  });

  it('prints hunks with 3 lines of context like diff -u', () => {
    const from = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].join('\n') + '\n';
    const to = from.replace('5\n', 'five\n');
    expect(unifiedDiff(from, to, names)).toBe(['--- a', '+++ b', '@@ -2,7 +2,7 @@', ' 2', ' 3', ' 4', '-5', '+five', ' 6', ' 7', ' 8', ''].join('\n'));
  });

  it('splits distant changes into separate hunks and merges close ones', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `l${i + 1}`);
    const changed = [...lines];
    changed[1] = 'X';
    changed[25] = 'Y';
    const out = unifiedDiff(lines.join('\n'), changed.join('\n'), names);
    expect(out.match(/^@@/gm)).toHaveLength(2);
    expect(out).toContain('@@ -1,5 +1,5 @@');
    expect(out).toContain('@@ -23,7 +23,7 @@');
    const close = [...lines];
    close[10] = 'X';
    close[15] = 'Y';
    expect(unifiedDiff(lines.join('\n'), close.join('\n'), names).match(/^@@/gm)).toHaveLength(1);
  });

  it('diffs a new object against an empty file (GNU ranges)', () => {
    expect(unifiedDiff('', 'a\nb\n', names)).toBe('--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n');
    expect(unifiedDiff('a\n', '', names)).toBe('--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n');
  });

  it('splitLines ignores the final newline', () => {
    expect(splitLines('a\nb\n')).toEqual(['a', 'b']);
    expect(splitLines('')).toEqual([]);
  });
});
