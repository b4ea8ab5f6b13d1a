// Kind-specific table columns for `get` (kubectl's printer columns). Values come from
// untrusted JSON, so every accessor tolerates missing or oddly typed fields.
import type { KindInfo } from '@sluice/api';
import { asArray, asRecord, asString, dig, isRecord, stringMap } from '../object.js';

export interface Column {
  header: string;
  value(obj: Record<string, unknown>): string;
}

const NONE = '<none>';

function joinOr(values: string[], empty = NONE): string {
  return values.length === 0 ? empty : values.join(',');
}

function scalar(v: unknown, empty = NONE): string {
  if (v === undefined || v === null || v === '') return empty;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Names from a list of references (`parentRefs`, `backendRefs`), in order, without repeats. */
function refNames(refs: unknown): string[] {
  const names: string[] = [];
  for (const r of asArray(refs)) {
    const name = asString(dig(r, 'name'));
    if (name !== undefined && !names.includes(name)) names.push(name);
  }
  return names;
}

/** kubectl's label selector rendering: `a=b,c in (d,e),!f`. */
export function formatSelector(selector: unknown): string {
  if (!isRecord(selector)) return NONE;
  const parts = Object.entries(stringMap(selector['matchLabels'])).map(([k, v]) => `${k}=${v}`);
  for (const e of asArray(selector['matchExpressions'])) {
    const key = asString(dig(e, 'key')) ?? '';
    const op = asString(dig(e, 'operator')) ?? '';
    const values = asArray(dig(e, 'values')).map((v) => scalar(v, ''));
    switch (op) {
      case 'In':
        parts.push(`${key} in (${values.join(',')})`);
        break;
      case 'NotIn':
        parts.push(`${key} notin (${values.join(',')})`);
        break;
      case 'Exists':
        parts.push(key);
        break;
      case 'DoesNotExist':
        parts.push(`!${key}`);
        break;
      default:
        parts.push(`${key} ${op} (${values.join(',')})`);
    }
  }
  return joinOr(parts);
}

export function formatLabels(labels: unknown): string {
  return joinOr(Object.entries(stringMap(labels)).map(([k, v]) => `${k}=${v}`));
}

/** `127.0.0.1:9001,127.0.0.1:9002 + 1 more...` like kubectl's endpoints column. */
function endpoints(obj: Record<string, unknown>): string {
  const list = asArray(dig(obj, 'spec', 'endpoints')).map((e) => {
    const address = scalar(dig(e, 'address'), '?');
    const port = dig(e, 'port');
    return port === undefined ? address : `${address.includes(':') ? `[${address}]` : address}:${scalar(port)}`;
  });
  if (list.length === 0) return NONE;
  const shown = list.slice(0, 3).join(',');
  return list.length > 3 ? `${shown} + ${list.length - 3} more...` : shown;
}

function healthCheck(obj: Record<string, unknown>): string {
  const hc = dig(obj, 'spec', 'healthCheck');
  if (!isRecord(hc)) return NONE;
  const kind = isRecord(hc['http']) ? `http ${scalar(dig(hc, 'http', 'path'), '/')}` : isRecord(hc['tcp']) ? 'tcp' : isRecord(hc['grpc']) ? 'grpc' : 'on';
  const interval = asString(hc['interval']);
  return interval === undefined ? kind : `${kind} every ${interval}`;
}

function dynamicWeights(obj: Record<string, unknown>): string {
  const dw = dig(obj, 'spec', 'dynamicWeights');
  if (!isRecord(dw)) return 'off';
  return dw['enabled'] === true ? 'on' : 'off';
}

function backends(obj: Record<string, unknown>): string {
  const names: string[] = [];
  for (const rule of asArray(dig(obj, 'spec', 'rules'))) {
    const refs = asArray(dig(rule, 'backendRefs'));
    for (const ref of refs) {
      const name = asString(dig(ref, 'name'));
      if (name === undefined) continue;
      // Weights only matter (and are only shown) when a rule splits traffic.
      const weight = dig(ref, 'weight');
      const label = refs.length > 1 && typeof weight === 'number' ? `${name}(${weight})` : name;
      if (!names.includes(label)) names.push(label);
    }
  }
  return joinOr(names);
}

function dataCount(obj: Record<string, unknown>): string {
  const keys = new Set([...Object.keys(asRecord(obj['data'])), ...Object.keys(asRecord(obj['stringData']))]);
  return String(keys.size);
}

function first(obj: Record<string, unknown>, paths: string[][]): unknown {
  for (const p of paths) {
    const v = dig(obj, ...p);
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

function agentConnected(obj: Record<string, unknown>): string {
  const v = first(obj, [['status', 'connected']]);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  const cond = conditionStatus(obj, 'Connected');
  return cond ?? scalar(v, 'Unknown');
}

export function conditionOf(obj: unknown, type: string): Record<string, unknown> | undefined {
  return asArray(dig(obj, 'status', 'conditions')).filter(isRecord).find((c) => c['type'] === type);
}

function conditionStatus(obj: unknown, type: string): string | undefined {
  const c = conditionOf(obj, type);
  return c === undefined ? undefined : scalar(c['status'], 'Unknown');
}

interface KindColumns {
  normal: Column[];
  wide: Column[];
}

const col = (header: string, value: (obj: Record<string, unknown>) => string): Column => ({ header, value });

const ROUTE_REFS = [
  col('LISTENERS', (o) => joinOr(refNames(dig(o, 'spec', 'parentRefs')))),
  col('BACKENDS', (o) => joinOr(refNames(dig(o, 'spec', 'backendRefs')))),
];

const KIND_COLUMNS: Record<string, KindColumns> = {
  Listener: {
    normal: [col('PORT', (o) => scalar(dig(o, 'spec', 'port'))), col('PROTOCOL', (o) => scalar(dig(o, 'spec', 'protocol')))],
    wide: [col('AGENT-SELECTOR', (o) => formatSelector(dig(o, 'spec', 'agentSelector')))],
  },
  Route: {
    normal: [
      col('HOSTNAMES', (o) => joinOr(asArray(dig(o, 'spec', 'hostnames')).map((h) => scalar(h)), '*')),
      col('LISTENERS', (o) => joinOr(refNames(dig(o, 'spec', 'parentRefs')))),
    ],
    wide: [col('RULES', (o) => String(asArray(dig(o, 'spec', 'rules')).length)), col('BACKENDS', backends)],
  },
  // HOSTNAMES: the SNI names a TLS passthrough route takes.
  TCPRoute: { normal: ROUTE_REFS, wide: [col('HOSTNAMES', (o) => joinOr(asArray(dig(o, 'spec', 'hostnames')).map((h) => scalar(h)), '*'))] },
  UDPRoute: { normal: ROUTE_REFS, wide: [] },
  Upstream: {
    normal: [col('ENDPOINTS', endpoints), col('POLICY', (o) => scalar(dig(o, 'spec', 'loadBalancing', 'policy'), 'RoundRobin'))],
    wide: [col('HEALTH-CHECK', healthCheck), col('DYNAMIC-WEIGHTS', dynamicWeights)],
  },
  Secret: {
    normal: [col('TYPE', (o) => scalar(first(o, [['type'], ['spec', 'type']]))), col('DATA', dataCount)],
    wide: [],
  },
  Agent: {
    normal: [
      col('CONNECTED', agentConnected),
      col('VERSION', (o) => scalar(first(o, [['spec', 'version'], ['status', 'version']]))),
      col('REVISION', (o) => scalar(first(o, [['status', 'appliedRevision'], ['status', 'revision'], ['status', 'appliedResourceVersion']]))),
      col('LAG', (o) => scalar(first(o, [['status', 'lag'], ['status', 'revisionLag']]))),
    ],
    wide: [col('LABELS', (o) => formatLabels(first(o, [['spec', 'labels'], ['metadata', 'labels']])))],
  },
};

/** Condition types shown as columns when objects carry them (`READY`, `ACCEPTED`). */
export const CONDITION_COLUMNS = ['Ready', 'Accepted'] as const;

export interface ColumnOptions {
  wide: boolean;
  allNamespaces: boolean;
  /** Condition types to show; decided from the objects at hand (see conditionTypesIn). */
  conditions: readonly string[];
  now: () => number;
  age: (timestamp: unknown, now: number) => string;
}

export function conditionTypesIn(objects: readonly unknown[]): string[] {
  return CONDITION_COLUMNS.filter((type) => objects.some((o) => conditionOf(o, type) !== undefined));
}

export function columnsFor(info: KindInfo, options: ColumnOptions): Column[] {
  const kindCols = KIND_COLUMNS[info.kind] ?? { normal: [], wide: [] };
  const cols: Column[] = [];
  if (options.allNamespaces && info.namespaced) cols.push(col('NAMESPACE', (o) => scalar(dig(o, 'metadata', 'namespace'))));
  cols.push(col('NAME', (o) => scalar(dig(o, 'metadata', 'name'))));
  cols.push(...kindCols.normal);
  for (const type of options.conditions) {
    cols.push(col(type.toUpperCase(), (o) => conditionStatus(o, type) ?? 'Unknown'));
  }
  cols.push(col('AGE', (o) => options.age(dig(o, 'metadata', 'creationTimestamp'), options.now())));
  if (options.wide) cols.push(...kindCols.wide);
  return cols;
}
