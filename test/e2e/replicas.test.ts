import { describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, startEtcd, webToUpstream } from '@sluice/testing';

// Two controller replicas on one etcd build byte-identical snapshots from the same store
// revision, so an agent that loses its replica resumes on the other without a resend.
describe('controller replicas', () => {
  it('an agent moves to another replica and is sent nothing it already holds', async () => {
    await using etcd = await startEtcd();
    await using backend = await startBackend('only');
    const proxyPort = await freePort();
    await using first = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: ['--id', 'replica-a'] });
    await using second = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: ['--id', 'replica-b'] });
    await using agent = await AgentProcess.start({ controller: `${first.grpcAddress},${second.grpcAddress}`, id: 'roamer', workers: 1 });

    const applied = await runSluicectl(['apply', '-f', '-'], {
      server: first.url,
      input: webToUpstream({ port: proxyPort, endpoints: [{ port: backend.port }], name: 'only' }),
    });
    expect(applied.code).toBe(0);
    // Wait until the agent applied the listener from whichever replica it picked.
    const firstApply = await agent.process.waitForLine((l) => l.includes('"configuration applied"') && !l.includes('"resources":0'));
    const servedBy = (JSON.parse(firstApply) as { address: string }).address;
    const [serving, other] = servedBy === first.grpcAddress ? [first, second] : [second, first];
    const response = await fetch(`http://127.0.0.1:${proxyPort}/`);
    expect((await response.text()).trim()).toBe('only');

    const before = new Set(agent.process.stdoutLines);
    await serving.stop();
    const line = await agent.process.waitForLine(
      (l) => !before.has(l) && l.includes('"configuration applied"') && l.includes(other.grpcAddress),
      30_000,
    );
    expect(JSON.parse(line)).toMatchObject({ resources: 0, removed: 0, rejected: 0 });
    const again = await fetch(`http://127.0.0.1:${proxyPort}/`);
    expect((await again.text()).trim()).toBe('only');
  });
});
