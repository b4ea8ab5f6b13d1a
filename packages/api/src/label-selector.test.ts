import { describe, expect, it } from 'vitest';
import { matchLabelSelector, matchLabels, parseLabelSelector, type LabelSelector } from './label-selector.js';

function parse(text: string): LabelSelector {
  const r = parseLabelSelector(text);
  if (!r.ok) throw new Error(r.error);
  return r.selector;
}

describe('parseLabelSelector', () => {
  it.each([
    ['app=shop', [{ key: 'app', operator: 'In', values: ['shop'] }]],
    ['app==shop', [{ key: 'app', operator: 'In', values: ['shop'] }]],
    ['app!=shop', [{ key: 'app', operator: 'NotIn', values: ['shop'] }]],
    ['tier in (web, api)', [{ key: 'tier', operator: 'In', values: ['web', 'api'] }]],
    ['tier notin (db)', [{ key: 'tier', operator: 'NotIn', values: ['db'] }]],
    ['canary', [{ key: 'canary', operator: 'Exists', values: [] }]],
    ['!canary', [{ key: 'canary', operator: 'DoesNotExist', values: [] }]],
    ['app.kubernetes.io/name=shop', [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['shop'] }]],
    ['app=', [{ key: 'app', operator: 'In', values: [''] }]],
    [
      'app=shop, tier in (web,api),!canary',
      [
        { key: 'app', operator: 'In', values: ['shop'] },
        { key: 'tier', operator: 'In', values: ['web', 'api'] },
        { key: 'canary', operator: 'DoesNotExist', values: [] },
      ],
    ],
    ['', []],
    ['  ', []],
  ])('%j', (text, requirements) => {
    expect(parse(text).requirements).toEqual(requirements);
  });

  it.each(['app=shop,', ',app', 'tier in web', 'tier in ()', 'tier in (a', 'a=b=c', 'app=sh op', 'in (a)', '-app=x', 'app=-x', 'a)b'])(
    'rejects %j with a message naming the selector',
    (text) => {
      const r = parseLabelSelector(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatch(/^invalid label selector/);
    },
  );
});

describe('matchLabels', () => {
  const labels = { app: 'shop', tier: 'web', zone: 'b' };
  it.each([
    ['', true],
    ['app=shop', true],
    ['app=cart', false],
    ['app!=cart', true],
    ['app!=shop', false],
    ['missing!=x', true], // Kubernetes: a missing label satisfies !=
    ['tier in (web,api)', true],
    ['tier in (api)', false],
    ['tier notin (api)', true],
    ['missing notin (api)', true],
    ['missing in (api)', false],
    ['zone', true],
    ['missing', false],
    ['!missing', true],
    ['!zone', false],
    ['app=shop,tier=web', true],
    ['app=shop,tier=api', false],
  ])('%j -> %s', (text, expected) => {
    expect(matchLabels(parse(text), labels)).toBe(expected);
  });

  it('treats undefined labels as no labels', () => {
    expect(matchLabels(parse('!app'), undefined)).toBe(true);
    expect(matchLabels(parse('app'), undefined)).toBe(false);
  });
});

describe('matchLabelSelector (object form)', () => {
  const labels = { pool: 'edge', region: 'eu' };
  it.each([
    [undefined, true],
    [{}, true],
    [{ matchLabels: { pool: 'edge' } }, true],
    [{ matchLabels: { pool: 'edge', region: 'us' } }, false],
    [{ matchExpressions: [{ key: 'region', operator: 'In', values: ['eu', 'us'] }] }, true],
    [{ matchExpressions: [{ key: 'region', operator: 'NotIn', values: ['eu'] }] }, false],
    [{ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }, true],
    [{ matchExpressions: [{ key: 'pool', operator: 'Exists' }] }, true],
    [{ matchLabels: { pool: 'edge' }, matchExpressions: [{ key: 'region', operator: 'Exists' }] }, true],
    [{ matchExpressions: [{ key: 'pool', operator: 'Gt', values: ['1'] }] }, false],
  ])('%j -> %s', (sel, expected) => {
    expect(matchLabelSelector(sel, labels)).toBe(expected);
  });

  it('agrees with the string form on random selectors and label sets', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const keys = ['a', 'b', 'c'];
    const values = ['x', 'y'];
    const ops = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
    for (let i = 0; i < 500; i++) {
      const labels: Record<string, string> = {};
      for (const k of keys) if (rnd(2)) labels[k] = values[rnd(2)]!;
      const reqs = Array.from({ length: rnd(3) + 1 }, () => {
        const operator = ops[rnd(4)]!;
        const vs = operator === 'In' || operator === 'NotIn' ? [values[rnd(2)]!] : [];
        return { key: keys[rnd(3)]!, operator, values: vs };
      });
      const text = reqs
        .map((r) => (r.operator === 'Exists' ? r.key : r.operator === 'DoesNotExist' ? `!${r.key}` : `${r.key} ${r.operator.toLowerCase()} (${r.values.join(',')})`))
        .join(',');
      expect(matchLabelSelector({ matchExpressions: reqs }, labels)).toBe(matchLabels(parse(text), labels));
    }
  });
});
