/**
 * Which agents actively health-check which endpoints (docs/health-checking.md): each endpoint
 * is probed by `perEndpoint` agents (fewer when fewer can reach it), chosen by rendezvous
 * (highest-random-weight) hashing of (endpoint, agent) over the agents whose snapshot holds
 * the endpoint's cluster. Pure. The probes per interval are `perEndpoint` x endpoints whatever
 * the number of agents, and when an agent comes or goes only the endpoints it wins or held
 * move (about perEndpoint/N of them), since every other pair keeps its score.
 */

export const DEFAULT_PROBERS_PER_ENDPOINT = 2;

/** One endpoint to probe: its cluster (`<ns>/<upstream>`) and Endpoint.id. */
export interface ProbeTarget {
  readonly cluster: string;
  readonly endpointId: string;
}

/** A connected agent and the clusters its snapshot holds (the ones it can reach). */
export interface Prober {
  readonly id: string;
  readonly clusters: ReadonlySet<string>;
}

export interface Assignment {
  /** Per agent, per cluster, the endpoint ids it probes (sorted). Agents with none are absent. */
  readonly byAgent: ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;
  /** Per endpoint (`targetKey`), the agents probing it, best score first. */
  readonly byEndpoint: ReadonlyMap<string, readonly string[]>;
}

/** `<cluster> <endpoint id>`: one endpoint of one cluster. */
export function targetKey(cluster: string, endpointId: string): string {
  return `${cluster} ${endpointId}`;
}

export function assignHealthChecks(targets: readonly ProbeTarget[], probers: readonly Prober[], perEndpoint = DEFAULT_PROBERS_PER_ENDPOINT): Assignment {
  const byCluster = new Map<string, Prober[]>();
  for (const p of probers) {
    for (const cluster of p.clusters) {
      const list = byCluster.get(cluster);
      if (list) list.push(p);
      else byCluster.set(cluster, [p]);
    }
  }
  const byAgent = new Map<string, Map<string, string[]>>();
  const byEndpoint = new Map<string, string[]>();
  for (const t of targets) {
    const key = targetKey(t.cluster, t.endpointId);
    const chosen = topScores(key, byCluster.get(t.cluster) ?? [], perEndpoint);
    byEndpoint.set(key, chosen);
    for (const agent of chosen) {
      let clusters = byAgent.get(agent);
      if (!clusters) byAgent.set(agent, (clusters = new Map<string, string[]>()));
      const ids = clusters.get(t.cluster);
      if (ids) ids.push(t.endpointId);
      else clusters.set(t.cluster, [t.endpointId]);
    }
  }
  for (const clusters of byAgent.values()) for (const ids of clusters.values()) ids.sort();
  return { byAgent, byEndpoint };
}

/** The `k` agents with the highest score for `key` (ties broken by id), best first. */
function topScores(key: string, candidates: readonly Prober[], k: number): string[] {
  return candidates
    .map((p) => ({ id: p.id, score: rendezvousScore(key, p.id) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, Math.max(0, k))
    .map((s) => s.id);
}

/**
 * A well-mixed 53-bit hash of (target, agent) (cyrb53): independent scores per pair are what
 * makes rendezvous hashing spread evenly and move little. Not cryptographic; it need not be.
 */
export function rendezvousScore(key: string, agentId: string): number {
  const text = `${key}\u0000${agentId}`;
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
