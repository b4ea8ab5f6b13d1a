import { describe, expect, it } from 'vitest';
import { ControllerProcess, runSluicectl, startEtcd, watchUntil } from '@sluice/testing';

interface Route {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
}

interface Leader {
  id: string;
  leader: boolean;
  leaderId: string;
}

const ttlArgs = ['--leader-lease-ttl', '2s'];

async function leaderOf(controller: ControllerProcess): Promise<Leader> {
  const response = await fetch(`${controller.url}/leader`);
  return (await response.json()) as Leader;
}

function route(name: string): string {
  return `apiVersion: sluice/v1
kind: Listener
metadata: {name: web}
spec: {port: 18080, protocol: HTTP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: ${name}}
spec:
  endpoints: [{address: 127.0.0.1, port: 9}]
---
apiVersion: sluice/v1
kind: Route
metadata: {name: ${name}}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: ${name}}]}]
`;
}

function resolved(name: string) {
  return (r: Route) => r.metadata.name === name && (r.status?.conditions ?? []).some((c) => c.type === 'ResolvedRefs' && c.status === 'True');
}

// Two controller replicas on one etcd: one leads and writes status; when it is killed (no
// resign: its lease has to expire), the other takes over and status keeps being written.
describe('leader election', () => {
  it('exactly one replica leads; SIGKILL the leader and the other takes over', async () => {
    await using etcd = await startEtcd();
    await using a = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: [...ttlArgs, '--id', 'ctl-a'] });
    await using b = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: [...ttlArgs, '--id', 'ctl-b'] });

    const firstLine = await Promise.race([
      a.process.waitForLine((l) => l.includes('"became leader"')).then(() => a),
      b.process.waitForLine((l) => l.includes('"became leader"')).then(() => b),
    ]);
    const [leader, follower] = firstLine === a ? [a, b] : [b, a];
    const [leaderState, followerState] = [await leaderOf(leader), await leaderOf(follower)];
    expect(leaderState.leader).toBe(true);
    expect(followerState.leader).toBe(false);
    expect(follower.process.stdoutLines.some((l) => l.includes('"became leader"'))).toBe(false);

    // Status is written (by the leader) for an object applied through either replica.
    const applied = await runSluicectl(['apply', '-f', '-'], { server: follower.url, input: route('before') });
    expect(applied.code, applied.stderr).toBe(0);
    await watchUntil<Route>(follower.url, 'namespaces/default/routes', resolved('before'));

    await leader.process.stop('SIGKILL');
    await follower.process.waitForLine((l) => l.includes('"became leader"'), 20_000);
    expect((await leaderOf(follower)).leader).toBe(true);

    const again = await runSluicectl(['apply', '-f', '-'], { server: follower.url, input: route('after') });
    expect(again.code, again.stderr).toBe(0);
    await watchUntil<Route>(follower.url, 'namespaces/default/routes', resolved('after'));
  });
});
