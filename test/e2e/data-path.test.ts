import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentProcess,
  ControllerProcess,
  freePort,
  runSluicectl,
  startBackend,
  tempDir,
  watchUntil,
  webToUpstream,
  type Backend,
  type TempDir,
} from '@sluice/testing';

// The acceptance path with real processes on loopback: one controller, two agents
// (bound on 127.0.0.1 and 127.0.0.2, so both can serve the same listener port), three
// backends answering with their names, configuration applied with the real sluicectl.

let dir: TempDir;
let controller: ControllerProcess;
let agents: AgentProcess[];
let backends: Backend[];
let proxyPort: number;

const agentHosts = ['127.0.0.1', '127.0.0.2'];

function config(weights: [number, number, number], port = proxyPort): string {
  return webToUpstream({
    port,
    endpoints: backends.map((b, i) => ({ port: b.port, weight: weights[i] })),
    upstream: '  loadBalancing: {policy: WeightedRoundRobin}',
  });
}

/** Applies with the real sluicectl; resolves with the store revision of the write. */
async function apply(yaml: string): Promise<number> {
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: yaml });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = JSON.parse(result.stdout) as { items?: { metadata: { resourceVersion: string } }[]; metadata?: { resourceVersion: string } };
  const objects = out.items ?? [out as { metadata: { resourceVersion: string } }];
  return Math.max(...objects.map((o) => Number(o.metadata.resourceVersion)));
}

async function get(host: string, path = '/'): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${host}:${proxyPort}${path}`);
  return { status: response.status, body: (await response.text()).trim() };
}

interface AgentObject {
  metadata: { name: string };
  status?: { connected?: boolean; appliedRevision?: number; lag?: number; nacks?: unknown[] };
}

/** Resolves once the controller reports `id` in sync with a snapshot built at `rev` or later. */
async function inSync(id: string, rev: number): Promise<void> {
  await watchUntil<AgentObject>(controller.url, 'agents', (a) => a.metadata.name === id && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= rev);
}

beforeAll(async () => {
  dir = await tempDir();
  backends = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
  proxyPort = await freePort();
  const grpcPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, grpcAddr: `127.0.0.1:${grpcPort}` });
  agents = await Promise.all(
    agentHosts.map((host, i) =>
      AgentProcess.start({ controller: controller.grpcAddress, id: `agent-${i + 1}`, labels: { pool: 'edge' }, listenAddress: host }),
    ),
  );
  await Promise.all(agents.map((a) => a.ready()));
});

afterAll(async () => {
  await Promise.all((agents ?? []).map((a) => a.stop()));
  await controller?.stop();
  await Promise.all((backends ?? []).map((b) => b[Symbol.asyncDispose]()));
  await dir?.[Symbol.asyncDispose]();
});

describe('data path', () => {
  it('routes traffic through both agents to every backend', async () => {
    const rev = await apply(config([1, 1, 1]));
    await Promise.all(['agent-1', 'agent-2'].map((id) => inSync(id, rev)));
    for (const host of agentHosts) {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const { status, body } = await get(host);
        expect(status).toBe(200);
        seen.add(body);
      }
      expect([...seen].sort()).toEqual(['a', 'b', 'c']);
    }
    const agentsList = await runSluicectl(['get', 'agents'], { server: controller.url });
    expect(agentsList.stdout).toMatch(/agent-1\s+True/);
    expect(agentsList.stdout).toMatch(/agent-2\s+True/);
  });

  it('follows a weight change under steady load with zero failed requests', async () => {
    let failures = 0;
    let stop = false;
    const counts = new Map<string, number>();
    const loops = agentHosts.flatMap((host) =>
      [0, 1].map(async () => {
        for (let i = 0; i < 5000 && !stop; i++) {
          try {
            const { status, body } = await get(host);
            if (status !== 200) failures++;
            else counts.set(body, (counts.get(body) ?? 0) + 1);
          } catch {
            failures++;
          }
        }
      }),
    );
    const rev = await apply(config([1, 0, 0]));
    await Promise.all(['agent-1', 'agent-2'].map((id) => inSync(id, rev)));
    // Once both agents applied it, only "a" answers.
    for (const host of agentHosts) for (let i = 0; i < 10; i++) expect((await get(host)).body).toBe('a');
    stop = true;
    await Promise.all(loops);
    expect(failures).toBe(0);
    expect(counts.get('a')).toBeGreaterThan(0);
    const back = await apply(config([1, 1, 1]));
    await Promise.all(['agent-1', 'agent-2'].map((id) => inSync(id, back)));
  });

  it('an agent that rejects a resource keeps serving the previous version, and the NACK shows in sluicectl', async () => {
    // Occupy the new port on agent-2's address only: agent-1 moves, agent-2 must NACK.
    const newPort = await freePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(newPort, agentHosts[1], resolve));
    try {
      const rev = await apply(config([1, 1, 1], newPort));
      await inSync('agent-1', rev);
      await watchUntil<{ metadata: { name: string }; status?: { conditions?: { type: string; message: string }[] } }>(
        controller.url,
        'namespaces/default/listeners',
        (l) => l.metadata.name === 'web' && (l.status?.conditions ?? []).some((c) => c.type === 'Programmed' && c.message.startsWith('Rejected by 1/2')),
      );
      const described = (await runSluicectl(['describe', 'listener', 'web'], { server: controller.url })).stdout;
      expect(described).toMatch(/Rejected by 1\/2 agents: .*(EADDRINUSE|in use)/);
      // agent-2 still serves on the old port; agent-1 serves on the new one.
      expect((await get(agentHosts[1]!)).status).toBe(200);
      const moved = await fetch(`http://${agentHosts[0]}:${newPort}/`);
      expect(moved.status).toBe(200);
      await moved.text();
      const agentsList = await runSluicectl(['get', 'agents', 'agent-2', '-o', 'yaml'], { server: controller.url });
      expect(agentsList.stdout).toMatch(/nacks:/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      const back = await apply(config([1, 1, 1]));
      await Promise.all(['agent-1', 'agent-2'].map((id) => inSync(id, back)));
    }
  });

  it('agents keep serving while the controller is down, and resume on restart without a resend', async () => {
    await controller.stop();
    for (const host of agentHosts) expect((await get(host)).status).toBe(200);

    const before = agents.map((a) => new Set(a.process.stdoutLines));
    await controller.restart();
    // Both agents reconnect, and the first update after the restart carries nothing: the
    // controller saw from `held` that they already have everything.
    await Promise.all(
      agents.map(async (agent, i) => {
        const line = await agent.process.waitForLine((l) => !before[i]!.has(l) && l.includes('"configuration applied"'), 30_000);
        expect(JSON.parse(line), line).toMatchObject({ address: controller.grpcAddress, resources: 0, removed: 0, rejected: 0 });
      }),
    );
    for (const host of agentHosts) expect((await get(host)).status).toBe(200);
  });
});
