import { describe, expect, it } from 'vitest';
import { assignHealthChecks, targetKey, type Prober, type ProbeTarget } from './assignment.js';

function targets(cluster: string, n: number): ProbeTarget[] {
  return Array.from({ length: n }, (_, i) => ({ cluster, endpointId: `ep${i}` }));
}

function probers(n: number, clusters: string[] = ['ns/a'], prefix = 'agent'): Prober[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, clusters: new Set(clusters) }));
}

function probes(assignment: ReturnType<typeof assignHealthChecks>): number {
  let total = 0;
  for (const clusters of assignment.byAgent.values()) for (const ids of clusters.values()) total += ids.length;
  return total;
}

describe('assignHealthChecks', () => {
  it('gives each endpoint K distinct agents, and probe load does not grow with agents', () => {
    for (const agents of [2, 5, 50]) {
      const a = assignHealthChecks(targets('ns/a', 10), probers(agents));
      for (const chosen of a.byEndpoint.values()) {
        expect(chosen).toHaveLength(2);
        expect(new Set(chosen).size).toBe(2);
      }
      expect(probes(a)).toBe(20);
    }
    expect(probes(assignHealthChecks(targets('ns/a', 10), probers(5), 3))).toBe(30);
  });

  it('uses fewer agents when fewer are connected, and none when none can reach the cluster', () => {
    expect([...assignHealthChecks(targets('ns/a', 3), probers(1)).byEndpoint.values()]).toEqual([['agent-0'], ['agent-0'], ['agent-0']]);
    const none = assignHealthChecks(targets('ns/a', 3), probers(4, ['ns/other']));
    expect([...none.byEndpoint.values()]).toEqual([[], [], []]);
    expect(none.byAgent.size).toBe(0);
  });

  it('only assigns agents whose snapshot holds the cluster', () => {
    const mixed = [...probers(3, ['ns/a'], 'a'), ...probers(3, ['ns/b'], 'b')];
    const a = assignHealthChecks([...targets('ns/a', 20), ...targets('ns/b', 20)], mixed);
    for (const [key, chosen] of a.byEndpoint) {
      const prefix = key.startsWith('ns/a ') ? 'a-' : 'b-';
      for (const agent of chosen) expect(agent.startsWith(prefix)).toBe(true);
    }
  });

  it('spreads the load evenly', () => {
    const a = assignHealthChecks(targets('ns/a', 2000), probers(10));
    const fair = (2000 * 2) / 10;
    for (const clusters of a.byAgent.values()) {
      const n = clusters.get('ns/a')!.length;
      expect(n).toBeGreaterThan(fair * 0.8);
      expect(n).toBeLessThan(fair * 1.2);
    }
  });

  it('moves only the endpoints the joining agent wins (about K/N) when an agent joins', () => {
    const t = targets('ns/a', 2000);
    const before = assignHealthChecks(t, probers(10));
    const after = assignHealthChecks(t, [...probers(10), { id: 'newcomer', clusters: new Set(['ns/a']) }]);
    let moved = 0;
    for (const [key, chosen] of after.byEndpoint) {
      const old = before.byEndpoint.get(key)!;
      if (chosen.includes('newcomer')) {
        moved++;
        // The newcomer took one slot; the other agent kept its own.
        expect(chosen.filter((a) => old.includes(a))).toHaveLength(1);
      } else {
        expect(chosen).toEqual(old);
      }
    }
    expect(moved / t.length).toBeGreaterThan(0.1);
    expect(moved / t.length).toBeLessThan(0.28); // K/N = 2/11 = 0.18
  });

  it('moves only the endpoints the leaving agent held when an agent leaves', () => {
    const t = targets('ns/a', 2000);
    const all = probers(10);
    const before = assignHealthChecks(t, all);
    const after = assignHealthChecks(t, all.filter((p) => p.id !== 'agent-3'));
    for (const [key, chosen] of after.byEndpoint) {
      const old = before.byEndpoint.get(key)!;
      if (old.includes('agent-3')) {
        expect(chosen.filter((a) => old.includes(a))).toEqual(old.filter((a) => a !== 'agent-3'));
      } else {
        expect(chosen).toEqual(old);
      }
    }
  });

  it('is deterministic and independent of input order', () => {
    const t = targets('ns/a', 50);
    const p = probers(7);
    const a = assignHealthChecks(t, p);
    const b = assignHealthChecks([...t].reverse(), [...p].reverse());
    for (const [key, chosen] of a.byEndpoint) expect(b.byEndpoint.get(key)).toEqual(chosen);
    expect(a.byEndpoint.get(targetKey('ns/a', 'ep0'))).toEqual(b.byEndpoint.get(targetKey('ns/a', 'ep0')));
  });
});
