// Golden files (STYLE §2): testdata/<case>.in.yaml (Sluice resources, as `sluicectl apply`
// takes them) -> testdata/<case>.out.yaml (the translation as a reviewer reads it).
// An optional testdata/<case>.agents.yaml lists agent label sets (`agents: [{labels: {...}}]`)
// whose snapshots are shown; without it, one agent with no labels. Keeping the agents out of
// the .in file lets `sluicectl translate -f testdata/<case>.in.yaml` reproduce any case.
// UPDATE_GOLDEN=1 rewrites the .out files.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseYamlDocuments, toYaml } from '@sluice/api';
import type { Source } from '@sluice/proto';
import { checkConsistency, resourceKey, resourceToJSON, snapshotFor, translate, type Translation } from './index.js';
import { loadResources } from './test-support/load.js';

const TESTDATA = fileURLToPath(new URL('../testdata/', import.meta.url));
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

function loadAgents(file: string): Record<string, string>[] {
  if (!existsSync(file)) return [{}];
  const parsed = parseYamlDocuments(readFileSync(file, 'utf8'), file);
  if (!parsed.ok) throw new Error(parsed.error);
  const doc = parsed.docs[0]?.object as { agents?: { labels?: Record<string, string> }[] } | undefined;
  return (doc?.agents ?? []).map((a) => a.labels ?? {});
}

const showSource = (s: Source): string => `${s.kind} ${s.namespace}/${s.name}`;

/** The translation as YAML-ready data: what reviewers read in a diff. */
function goldenView(t: Translation, agents: readonly Record<string, string>[]): unknown {
  return {
    revision: t.revision,
    resources: [...t.resources.values()].map((r) => {
      const { type: _type, name: _name, version, ...body } = resourceToJSON(r);
      return {
        key: resourceKey(r.type, r.name),
        version,
        sources: r.sources.map(showSource),
        references: r.references.map((ref) => resourceKey(ref.type, ref.name)),
        ...body,
      };
    }),
    listeners: t.listeners,
    problems: t.problems.map((p) => ({ source: showSource(p.source), message: p.message })),
    snapshots: agents.map((labels) => {
      const s = snapshotFor(t, labels);
      return { labels, version: s.version, resources: s.resources.map((r) => resourceKey(r.type, r.name)) };
    }),
  };
}

const cases = readdirSync(TESTDATA)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length))
  .sort();

describe('golden', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  for (const name of cases) {
    it(name, () => {
      const input = loadResources(readFileSync(`${TESTDATA}${name}.in.yaml`, 'utf8'), `${name}.in.yaml`);
      const agents = loadAgents(`${TESTDATA}${name}.agents.yaml`);
      const t = translate(input, { revision: 0 });

      // Whatever the input, what the translator emits is self-consistent.
      expect(checkConsistency(t.resources.values())).toEqual([]);
      for (const labels of agents) expect(checkConsistency(snapshotFor(t, labels).resources)).toEqual([]);

      const actual = toYaml(goldenView(t, agents));
      const outFile = `${TESTDATA}${name}.out.yaml`;
      if (UPDATE) writeFileSync(outFile, actual);
      if (!existsSync(outFile)) throw new Error(`${name}.out.yaml is missing: run UPDATE_GOLDEN=1 npx vitest run packages/translator`);
      expect(actual).toBe(readFileSync(outFile, 'utf8'));
    });
  }
});
