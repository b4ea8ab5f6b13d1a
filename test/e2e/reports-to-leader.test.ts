import { describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, startEtcd, watchUntil } from '@sluice/testing';

// Two controller replicas, two agents each connected to a different one: both agents' report
// streams go to the leader (a follower redirects them), so the leader's aggregator hears the
// whole fleet. When the leader is killed, the survivor leads and hears the agents left.

interface UpstreamObject {
  metadata: { name: string };
  status?: { endpoints?: { port: number; requests?: number; agents?: number }[] };
}

const ttlArgs = ['--leader-lease-ttl', '2s', '--report-interval', '200ms'];

describe('reports go to the leader', () => {
  it("the leader counts agents connected to either replica; after it is killed, the survivor counts the agents left", async () => {
    await using etcd = await startEtcd();
    await using backend = await startBackend('only');
    const port = await freePort();
    await using a = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: [...ttlArgs, '--id', 'a'] });
    await using b = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: [...ttlArgs, '--id', 'b'] });
    const leaderFirst = await Promise.race([
      a.process.waitForLine((l) => l.includes('"became leader"')).then(() => a),
      b.process.waitForLine((l) => l.includes('"became leader"')).then(() => b),
    ]);
    const [leader, follower] = leaderFirst === a ? [a, b] : [b, a];

    const hosts = ['127.0.0.1', '127.0.0.2'] as const;
    await using onLeader = await AgentProcess.start({ controller: leader.grpcAddress, id: 'on-leader', listenAddress: hosts[0], workers: 1 });
    await using onFollower = await AgentProcess.start({ controller: follower.grpcAddress, id: 'on-follower', listenAddress: hosts[1], workers: 1 });
    const applied = await runSluicectl(['apply', '-f', '-'], {
      server: follower.url,
      input: `apiVersion: sluice/v1
kind: Listener
metadata: {name: web}
spec: {port: ${port}, protocol: HTTP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: shop}
spec:
  dynamicWeights: {enabled: true, interval: 1s}
  endpoints: [{address: 127.0.0.1, port: ${backend.port}}]
---
apiVersion: sluice/v1
kind: Route
metadata: {name: shop}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: shop}]}]
`,
    });
    expect(applied.code, applied.stderr).toBe(0);
    await Promise.all([onLeader.ready(), onFollower.ready()]);

    // The follower's agent was sent to the leader's advertised address.
    const redirected = await onFollower.process.waitForLine((l) => l.includes('"report stream redirected to the leader"'));
    expect(JSON.parse(redirected)).toMatchObject({ from: follower.grpcAddress, to: leader.grpcAddress });

    // Steady traffic through both agents for the whole test.
    let stop = false;
    let served = 0;
    const loops = hosts.map(async (host) => {
      while (!stop) {
        try {
          const response = await fetch(`http://${host}:${port}/`);
          await response.text();
          if (response.status === 200) served++;
        } catch {
          // the agent may be between configurations; the assertions are on the status
        }
        await new Promise((r) => setImmediate(r));
      }
    });
    try {
      const endpoint = (u: UpstreamObject) => (u.metadata.name === 'shop' ? u.status?.endpoints?.find((e) => e.port === backend.port) : undefined);
      // The leader's aggregator hears both agents, though only one is connected to it.
      const both = await watchUntil<UpstreamObject>(follower.url, 'namespaces/default/upstreams', (u) => endpoint(u)?.agents === 2, 30_000);
      const requestsBefore = endpoint(both)?.requests ?? 0;
      expect(requestsBefore).toBeGreaterThan(0);

      const before = new Set(onFollower.process.stdoutLines);
      await leader.process.stop('SIGKILL');
      await follower.process.waitForLine((l) => l.includes('"became leader"'), 20_000);
      // The agent of the survivor reports to it now (its stream came back here); the new
      // leader's own aggregator counts it alone: the killed replica's agent reaches nobody.
      await onFollower.process.waitForLine((l) => !before.has(l) && l.includes('"report stream open"') && l.includes(follower.grpcAddress), 20_000);
      const after = await watchUntil<UpstreamObject>(follower.url, 'namespaces/default/upstreams', (u) => endpoint(u)?.agents === 1 && (endpoint(u)?.requests ?? 0) > 0, 30_000);
      expect(endpoint(after)?.agents).toBe(1);
      expect(served).toBeGreaterThan(0);
    } finally {
      stop = true;
      await Promise.all(loops);
    }
  }, 90_000);
});
