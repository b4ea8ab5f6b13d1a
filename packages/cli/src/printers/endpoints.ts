import { asArray, asRecord, asString, isRecord, metadata, type ApiObject } from '../object.js';

/** One endpoint of an Upstream: its spec entry joined with its status entry (if any). */
export interface EndpointRow {
  namespace: string;
  upstream: string;
  address: string;
  port: number;
  weight: number;
  /** Undefined: dynamic weights off (the configured weight applies). */
  effectiveWeight: number | undefined;
  health: string;
  since: string | undefined;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  errorRate: number | undefined;
  requests: number | undefined;
  agents: number | undefined;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Every endpoint of an Upstream: those of the spec (so endpoints without any status yet are
 * listed too, with unknown figures), in status order when there is one.
 */
export function endpointRows(obj: ApiObject): EndpointRow[] {
  const meta = metadata(obj);
  const namespace = asString(meta['namespace']) ?? 'default';
  const upstream = asString(meta['name']) ?? '';
  const spec = asArray(asRecord(obj['spec'])['endpoints']).filter(isRecord);
  const status = asArray(asRecord(obj['status'])['endpoints']).filter(isRecord);
  const rows: EndpointRow[] = [];
  const seen = new Set<string>();
  const push = (e: Record<string, unknown>, s: Record<string, unknown> | undefined): void => {
    const address = asString(e['address']) ?? '';
    const port = num(e['port']) ?? 0;
    const key = `${address}:${port}`;
    if (seen.has(key)) return;
    seen.add(key);
    const latency = asRecord(s?.['latency']);
    rows.push({
      namespace,
      upstream,
      address,
      port,
      weight: num(s?.['weight']) ?? num(e['weight']) ?? 1,
      effectiveWeight: num(s?.['effectiveWeight']),
      health: asString(s?.['health']) ?? 'Unknown',
      since: asString(s?.['since']),
      p50Ms: num(latency['p50Ms']),
      p99Ms: num(latency['p99Ms']),
      errorRate: num(s?.['errorRate']),
      requests: num(s?.['requests']),
      agents: num(s?.['agents']),
    });
  };
  const specOf = (s: Record<string, unknown>) => spec.find((e) => e['address'] === s['address'] && e['port'] === s['port']);
  for (const s of status) push(specOf(s) ?? s, s);
  for (const e of spec) push(e, undefined);
  return rows;
}

export const UNKNOWN = '-';

export function formatMs(v: number | undefined): string {
  if (v === undefined) return UNKNOWN;
  return v >= 100 ? `${Math.round(v)}ms` : `${Math.round(v * 10) / 10}ms`;
}

export function formatRate(v: number | undefined): string {
  if (v === undefined) return UNKNOWN;
  return `${Math.round(v * 1000) / 10}%`;
}

export function formatCount(v: number | undefined): string {
  return v === undefined ? UNKNOWN : String(v);
}

/** kubectl top order: highest p99 first; endpoints without data last; then by name. */
export function byP99Desc(a: EndpointRow, b: EndpointRow): number {
  const pa = a.p99Ms ?? -1;
  const pb = b.p99Ms ?? -1;
  if (pa !== pb) return pb - pa;
  const ka = `${a.namespace}/${a.upstream}/${a.address}:${String(a.port).padStart(5, '0')}`;
  const kb = `${b.namespace}/${b.upstream}/${b.address}:${String(b.port).padStart(5, '0')}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Rows as columns padded to the widest cell plus 3 spaces (kubectl's tabwriter). */
export function alignRows(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3))).join('').trimEnd()).join('\n') + (rows.length > 0 ? '\n' : '');
}
