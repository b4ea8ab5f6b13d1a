import { describe, expect, it } from 'vitest';
import { kindInfo } from '@sluice/api';
import { age, humanDuration } from './age.js';
import { columnsFor, conditionTypesIn, formatSelector } from './columns.js';
import { formatNames } from './name.js';
import { formatTable, TableWriter } from './table.js';
import { asListIfMany, formatYaml } from './yaml.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const opts = { wide: false, allNamespaces: false, conditions: [] as string[], now: () => NOW, age };

const upstream = {
  apiVersion: 'sluice/v1',
  kind: 'Upstream',
  metadata: { name: 'shop-v1', namespace: 'default', creationTimestamp: '2026-01-01T11:55:00Z', labels: { app: 'shop' } },
  spec: {
    endpoints: [
      { address: '127.0.0.1', port: 9001 },
      { address: '127.0.0.1', port: 9002 },
      { address: '::1', port: 9003 },
      { address: '10.0.0.1', port: 9004 },
    ],
    loadBalancing: { policy: 'WeightedRoundRobin' },
    healthCheck: { http: { path: '/healthz' }, interval: '5s' },
    dynamicWeights: { enabled: true },
  },
  status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Ok', message: '' }] },
};

describe('humanDuration (kubectl AGE)', () => {
  it.each([
    [0, '0s'],
    [119_000, '119s'],
    [120_000, '2m'],
    [150_000, '2m30s'],
    [3_600_000 * 2, '120m'],
    [3_600_000 * 5 + 60_000 * 7, '5h7m'],
    [3_600_000 * 30, '30h'],
    [86_400_000 * 3 + 3_600_000 * 4, '3d4h'],
    [86_400_000 * 100, '100d'],
    [86_400_000 * 365 * 3, '3y'],
    [-5000, '<invalid>'],
  ])('%d ms -> %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it('is <unknown> without a timestamp', () => {
    expect(age(undefined, NOW)).toBe('<unknown>');
  });
});

describe('table', () => {
  it('aligns columns with 3 spaces and no trailing blanks', () => {
    const out = formatTable(columnsFor(kindInfo('Upstream')!, opts), [upstream]);
    expect(out).toBe(
      'NAME      ENDPOINTS                                              POLICY               AGE\n' +
        'shop-v1   127.0.0.1:9001,127.0.0.1:9002,[::1]:9003 + 1 more...   WeightedRoundRobin   5m\n',
    );
  });

  it('adds NAMESPACE first with -A, wide columns, and READY from conditions', () => {
    const cols = columnsFor(kindInfo('Upstream')!, { ...opts, wide: true, allNamespaces: true, conditions: conditionTypesIn([upstream]) });
    expect(cols.map((c) => c.header)).toEqual(['NAMESPACE', 'NAME', 'ENDPOINTS', 'POLICY', 'READY', 'AGE', 'HEALTH-CHECK', 'DYNAMIC-WEIGHTS']);
    expect(cols.map((c) => c.value(upstream))).toEqual([
      'default',
      'shop-v1',
      '127.0.0.1:9001,127.0.0.1:9002,[::1]:9003 + 1 more...',
      'WeightedRoundRobin',
      'True',
      '5m',
      'http /healthz every 5s',
      'on',
    ]);
  });

  it('has kind-specific columns for every kind', () => {
    const headers = (kind: string, wide = false) => columnsFor(kindInfo(kind)!, { ...opts, wide }).map((c) => c.header);
    expect(headers('Listener', true)).toEqual(['NAME', 'PORT', 'PROTOCOL', 'AGE', 'AGENT-SELECTOR']);
    expect(headers('Route', true)).toEqual(['NAME', 'HOSTNAMES', 'LISTENERS', 'AGE', 'RULES', 'BACKENDS']);
    expect(headers('TCPRoute')).toEqual(['NAME', 'LISTENERS', 'BACKENDS', 'AGE']);
    expect(headers('TCPRoute', true)).toEqual(['NAME', 'LISTENERS', 'BACKENDS', 'AGE', 'HOSTNAMES']);
    expect(headers('UDPRoute')).toEqual(['NAME', 'LISTENERS', 'BACKENDS', 'AGE']);
    expect(headers('Secret')).toEqual(['NAME', 'TYPE', 'DATA', 'AGE']);
    expect(headers('Agent', true)).toEqual(['NAME', 'CONNECTED', 'VERSION', 'REVISION', 'LAG', 'AGE', 'LABELS']);
  });

  it('renders routes and agents', () => {
    const route = {
      kind: 'Route',
      metadata: { name: 'shop' },
      spec: {
        parentRefs: [{ name: 'web' }, { name: 'web-tls' }],
        hostnames: ['shop.example.com'],
        rules: [{ backendRefs: [{ name: 'shop-v1', weight: 90 }, { name: 'shop-v2', weight: 10 }] }, { backendRefs: [{ name: 'shop-v1' }] }],
      },
    };
    const cols = columnsFor(kindInfo('Route')!, { ...opts, wide: true });
    expect(cols.map((c) => c.value(route))).toEqual(['shop', 'shop.example.com', 'web,web-tls', '<unknown>', '2', 'shop-v1(90),shop-v2(10),shop-v1']);
    const agent = { kind: 'Agent', metadata: { name: 'a1' }, spec: { version: '0.1.0', labels: { pool: 'edge' } }, status: { connected: true, appliedRevision: 42, lag: 0 } };
    expect(columnsFor(kindInfo('Agent')!, { ...opts, wide: true }).map((c) => c.value(agent))).toEqual(['a1', 'True', '0.1.0', '42', '0', '<unknown>', 'pool=edge']);
  });

  it('formats label selectors like kubectl', () => {
    expect(formatSelector({ matchLabels: { pool: 'edge' }, matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }, { key: 'x', operator: 'DoesNotExist' }] })).toBe(
      'pool=edge,zone in (a,b),!x',
    );
    expect(formatSelector(undefined)).toBe('<none>');
  });

  it('keeps widths when streaming rows (get -w)', () => {
    let out = '';
    const w = new TableWriter([{ header: 'NAME', value: (o) => String(o['n']) }, { header: 'X', value: () => 'x' }], (t) => (out += t));
    w.print([{ n: 'long-name' }]);
    w.print([{ n: 'a' }]);
    expect(out).toBe('NAME        X\nlong-name   x\na           x\n');
  });
});

describe('yaml and name printers', () => {
  it('prints one object as itself and several as a List', () => {
    expect(asListIfMany([upstream], true)).toBe(upstream);
    expect(asListIfMany([upstream], false)).toMatchObject({ kind: 'List', items: [upstream] });
    expect(formatYaml(asListIfMany([], false))).toContain('kind: List');
  });

  it('-o name prints kind/name', () => {
    expect(formatNames([upstream, { kind: 'TCPRoute', metadata: { name: 'db' } }])).toBe('upstream/shop-v1\ntcproute/db\n');
  });
});
