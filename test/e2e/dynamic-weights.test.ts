import { describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, tempDir, watchUntil, webToUpstream } from '@sluice/testing';

// The feedback loop with real processes: two agents report what they see, the controller
// merges it and turns a slowed backend's weight down, then back up once it is fast again.

interface UpstreamObject {
  metadata: { name: string };
  status?: { endpoints?: { port: number; weight?: number; effectiveWeight?: number }[] };
}

describe('dynamic weights', () => {
  it('a backend slowed mid-run loses weight and share, and regains them when fast again', async () => {
    await using dir = await tempDir();
    const delays = new Map<string, number>();
    const backends = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) =>
        startBackend(name, (req, res) => {
          req.resume();
          const answer = () => {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end(`${name}\n`);
          };
          const delay = delays.get(name) ?? 0;
          if (delay > 0) setTimeout(answer, delay);
          else answer();
        }),
      ),
    );
    try {
      const port = await freePort();
      await using controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, extraArgs: ['--report-interval', '200ms'] });
      const hosts = ['127.0.0.1', '127.0.0.2'];
      await using agent1 = await AgentProcess.start({ controller: controller.grpcAddress, id: 'dw-1', listenAddress: hosts[0], workers: 1 });
      await using agent2 = await AgentProcess.start({ controller: controller.grpcAddress, id: 'dw-2', listenAddress: hosts[1], workers: 1 });
      const applied = await runSluicectl(['apply', '-f', '-'], {
        server: controller.url,
        input: webToUpstream({
          port,
          endpoints: backends.map((b) => ({ port: b.port, weight: 100 })),
          upstream: '  loadBalancing: {policy: WeightedRoundRobin}\n  dynamicWeights: {enabled: true, interval: 1s, minFactor: 0.1, maxFactor: 2}',
        }),
      });
      expect(applied.code).toBe(0);
      await Promise.all([agent1.ready(), agent2.ready()]);

      // Steady load through both agents for the whole test; `share` counts since the last reset.
      let share = new Map<string, number>();
      let failures = 0;
      let stop = false;
      const loops = hosts.flatMap((host) =>
        [0, 1].map(async () => {
          for (let i = 0; i < 100_000 && !stop; i++) {
            try {
              const response = await fetch(`http://${host}:${port}/`);
              const body = (await response.text()).trim();
              if (response.status === 200) share.set(body, (share.get(body) ?? 0) + 1);
              else failures++;
            } catch {
              failures++;
            }
          }
        }),
      );
      const slowPort = backends[3]!.port;
      const weightOfSlow = (u: UpstreamObject) => u.status?.endpoints?.find((e) => e.port === slowPort)?.effectiveWeight;
      const fraction = (name: string) => (share.get(name) ?? 0) / [...share.values()].reduce((a, b) => a + b, 0);

      // Stats flow: every endpoint gets an effective weight.
      await watchUntil<UpstreamObject>(controller.url, 'namespaces/default/upstreams', (u) => (u.status?.endpoints ?? []).every((e) => e.effectiveWeight !== undefined) && (u.status?.endpoints ?? []).length === 4, 30_000);

      delays.set('d', 50);
      await watchUntil<UpstreamObject>(controller.url, 'namespaces/default/upstreams', (u) => (weightOfSlow(u) ?? 100) < 60, 30_000);
      share = new Map();
      while ([...share.values()].reduce((a, b) => a + b, 0) < 400) await new Promise((r) => setImmediate(r));
      const slowShare = fraction('d');
      expect(slowShare).toBeLessThan(0.2);

      delays.set('d', 0);
      await watchUntil<UpstreamObject>(controller.url, 'namespaces/default/upstreams', (u) => (weightOfSlow(u) ?? 0) >= 90, 60_000);
      share = new Map();
      while ([...share.values()].reduce((a, b) => a + b, 0) < 400) await new Promise((r) => setImmediate(r));
      expect(fraction('d')).toBeGreaterThan(slowShare);
      expect(fraction('d')).toBeGreaterThan(0.18);

      stop = true;
      await Promise.all(loops);
      expect(failures).toBe(0);
      const described = await runSluicectl(['describe', 'upstream', 'shop'], { server: controller.url });
      expect(described.stdout).toMatch(/EFFECTIVE/);
    } finally {
      await Promise.all(backends.map((b) => b[Symbol.asyncDispose]()));
    }
  });
});
