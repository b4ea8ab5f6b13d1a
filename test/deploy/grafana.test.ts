// deploy/grafana/sluice.json: a well-formed dashboard whose queries use only the metric names
// and labels of the metrics contract (below, and as docs/observability.md documents it) or
// prom-client's default process metrics, and that shows every contract metric somewhere.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './k8s.js';

type Kind = 'counter' | 'gauge' | 'histogram';

/** The metrics contract between the controller, the agent and this dashboard: name -> kind and labels. */
const CONTRACT: Record<string, { kind: Kind; labels: string[] }> = {
  sluice_controller_connected_agents: { kind: 'gauge', labels: [] },
  sluice_controller_config_pushes_total: { kind: 'counter', labels: ['type'] },
  sluice_controller_config_push_bytes_total: { kind: 'counter', labels: ['type'] },
  sluice_controller_config_convergence_seconds: { kind: 'histogram', labels: [] },
  sluice_controller_nacks_total: { kind: 'counter', labels: ['type'] },
  sluice_controller_weight_updates_total: { kind: 'counter', labels: [] },
  sluice_controller_store_operation_duration_seconds: { kind: 'histogram', labels: ['operation'] },
  sluice_controller_store_errors_total: { kind: 'counter', labels: ['operation'] },
  sluice_controller_is_leader: { kind: 'gauge', labels: [] },
  sluice_agent_requests_total: { kind: 'counter', labels: ['listener', 'route', 'upstream', 'code_class'] },
  sluice_agent_request_duration_seconds: { kind: 'histogram', labels: ['listener'] },
  sluice_agent_upstream_request_duration_seconds: { kind: 'histogram', labels: ['upstream'] },
  sluice_agent_endpoint_healthy: { kind: 'gauge', labels: ['upstream', 'endpoint'] },
  sluice_agent_endpoint_weight: { kind: 'gauge', labels: ['upstream', 'endpoint'] },
  sluice_agent_active_connections: { kind: 'gauge', labels: ['listener'] },
  sluice_agent_config_revision: { kind: 'gauge', labels: [] },
  sluice_agent_rejected_resources: { kind: 'gauge', labels: ['type'] },
  sluice_agent_l4_connections_total: { kind: 'counter', labels: ['listener', 'upstream'] },
  sluice_agent_l4_bytes_total: { kind: 'counter', labels: ['listener', 'direction'] },
};

/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['instance', 'job', 'namespace', 'pod'];

/** prom-client's collectDefaultMetrics() names (prefix-free) that the dashboard may use. */
const DEFAULT_METRICS = /^(process_(cpu_seconds_total|cpu_user_seconds_total|cpu_system_seconds_total|resident_memory_bytes|virtual_memory_bytes|heap_bytes|open_fds|max_fds|start_time_seconds)|nodejs_[a-z0-9_]+)$/;

const PROMQL_WORDS = new Set([
  'sum', 'avg', 'min', 'max', 'count', 'rate', 'irate', 'increase', 'histogram_quantile', 'by', 'without', 'on', 'ignoring',
  'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'topk', 'bottomk', 'clamp_min', 'clamp_max', 'abs', 'label_values',
]);

/** The metric names of an expression: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w));
}

/** Labels an expression names: in matchers and in by/without/on/ignoring clauses. */
function labelNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const inMatchers = [...noStrings.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]!));
  const inClauses = [...noStrings.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
  return [...inMatchers, ...inClauses];
}

/** The contract metric a series name belongs to (`_bucket`, `_sum`, `_count` of a histogram). */
function contractMetric(name: string): string | undefined {
  if (CONTRACT[name] && CONTRACT[name].kind !== 'histogram') return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && CONTRACT[base]?.kind === 'histogram' ? base : undefined;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}

describe('deploy/grafana/sluice.json', () => {
  let dashboard: { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] } };
  let panels: Panel[];
  let exprs: { panel: string; expr: string }[];
  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(join(repoRoot, 'deploy/grafana/sluice.json'), 'utf8'));
    panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  });

  it('is a Grafana dashboard with a Prometheus data source variable and unique panel ids', () => {
    expect(dashboard.uid).toBe('sluice-overview');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe('${datasource}');
    }
  });

  it('queries only contract metrics and default process metrics', () => {
    expect(exprs.length).toBeGreaterThan(20);
    const unknown = exprs.flatMap(({ panel, expr }) => metricNames(expr).filter((m) => !contractMetric(m) && !DEFAULT_METRICS.test(m)).map((m) => `${panel}: ${m}`));
    expect(unknown).toEqual([]);
  });

  it('uses each histogram through _bucket/_sum/_count and each counter through rate() or increase()', () => {
    for (const { panel, expr } of exprs) {
      for (const m of metricNames(expr)) {
        if (CONTRACT[m]?.kind === 'histogram') throw new Error(`${panel}: histogram ${m} is queried without a series suffix`);
        const base = contractMetric(m);
        if (base && (CONTRACT[base]!.kind === 'counter' || m.endsWith('_bucket'))) expect(expr, panel).toMatch(new RegExp(`(rate|increase)\\(${m}\\b`));
      }
    }
  });

  it('names only labels that its metrics carry', () => {
    const problems: string[] = [];
    for (const { panel, expr } of exprs) {
      const metrics = metricNames(expr).map((m) => contractMetric(m)).filter((m): m is string => m !== undefined);
      if (metrics.length === 0) continue;
      const allowed = new Set([...TARGET_LABELS, ...metrics.flatMap((m) => CONTRACT[m]!.labels), ...(expr.includes('_bucket') ? ['le'] : [])]);
      for (const label of labelNames(expr)) if (!allowed.has(label)) problems.push(`${panel}: label ${label} is not on ${metrics.join(', ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('shows every contract metric', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr).map((m) => contractMetric(m))));
    expect(Object.keys(CONTRACT).filter((m) => !used.has(m))).toEqual([]);
  });

  it('uses the contract as docs/observability.md documents it (names, types, labels)', async () => {
    const doc = await readFile(join(repoRoot, 'docs/observability.md'), 'utf8');
    const documented = new Map(
      [...doc.matchAll(/^\| `(sluice_[a-z0-9_]+)` \| (counter|gauge|histogram) \|([^|]*)\|/gm)].map((m) => [
        m[1]!,
        { kind: m[2] as Kind, labels: [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!) },
      ]),
    );
    expect(Object.fromEntries(Object.keys(CONTRACT).map((name) => [name, documented.get(name)]))).toEqual(CONTRACT);
  });

  it('the expression checks catch a wrong name and a wrong label', () => {
    expect(metricNames('sum by (route) (rate(sluice_agent_request_total{listener=~"$listener"}[5m]))')).toEqual(['sluice_agent_request_total']);
    expect(contractMetric('sluice_agent_request_total')).toBeUndefined();
    expect(contractMetric('sluice_controller_config_convergence_seconds_bucket')).toBe('sluice_controller_config_convergence_seconds');
    expect(labelNames('sum by (le, route) (rate(x{code="5xx"}[1m]))')).toEqual(['code', 'le', 'route']);
  });
});
