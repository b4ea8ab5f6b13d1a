import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, tempDir, watchUntil, type Backend, type TempDir } from '@sluice/testing';

// Active health checks with real processes: one controller, five agents (127.0.0.2..6, one
// worker each), ten backends. Each endpoint must be probed by 2 agents, not by all 5, and a
// backend that dies must become Unhealthy in Upstream.status and leave every agent's rotation.

const AGENTS = 5;
const BACKENDS = 10;
const INTERVAL = '200ms';

let dir: TempDir;
let controller: ControllerProcess;
let agents: AgentProcess[];
let backends: Backend[];
let proxyPort: number;

/** Health probes per backend (by index) per agent id, counted by the backends themselves. */
const probes: Map<string, number>[] = [];
let totalProbes = 0;
let probeWaiters: { target: number; resolve: () => void }[] = [];

/** Resolves once the backends have answered `n` more probes (no clock involved). */
function moreProbes(n: number): Promise<void> {
  const target = totalProbes + n;
  return new Promise((resolve) => probeWaiters.push({ target, resolve }));
}

function handler(index: number, name: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url === '/healthz') {
      const agent = /\(agent ([^)]+)\)/.exec(req.headers['user-agent'] ?? '')?.[1] ?? 'unknown';
      probes[index]!.set(agent, (probes[index]!.get(agent) ?? 0) + 1);
      totalProbes++;
      const ready = probeWaiters.filter((w) => totalProbes >= w.target);
      probeWaiters = probeWaiters.filter((w) => totalProbes < w.target);
      for (const w of ready) w.resolve();
      res.writeHead(200).end('ok\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name}\n`);
  };
}

function config(): string {
  const endpoints = backends.map((b) => `    - {address: 127.0.0.1, port: ${b.port}}`).join('\n');
  return `apiVersion: sluice/v1
kind: Listener
metadata: {name: web}
spec: {port: ${proxyPort}, protocol: HTTP}
---
apiVersion: sluice/v1
kind: Upstream
metadata: {name: shop}
spec:
  healthCheck: {http: {path: /healthz}, interval: ${INTERVAL}, timeout: 150ms, healthyThreshold: 1, unhealthyThreshold: 2}
  endpoints:
${endpoints}
---
apiVersion: sluice/v1
kind: Route
metadata: {name: shop}
spec:
  parentRefs: [{name: web}]
  rules:
    - backendRefs: [{name: shop}]
`;
}

interface UpstreamObject {
  status?: { endpoints?: { address: string; port: number; health: string; since?: string }[] };
}

function snapshotCounts(): Map<string, number>[] {
  return probes.map((m) => new Map(m));
}

beforeAll(async () => {
  dir = await tempDir();
  for (let i = 0; i < BACKENDS; i++) probes.push(new Map());
  backends = await Promise.all(Array.from({ length: BACKENDS }, (_, i) => startBackend(`b${i}`, handler(i, `b${i}`))));
  proxyPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, extraArgs: ['--report-interval', INTERVAL] });
  agents = await Promise.all(
    Array.from({ length: AGENTS }, (_, i) =>
      AgentProcess.start({ controller: controller.grpcAddress, id: `agent-${i + 1}`, listenAddress: `127.0.0.${i + 2}`, workers: 1 }),
    ),
  );
  const applied = await runSluicectl(['apply', '-f', '-'], { server: controller.url, input: config() });
  expect(applied.code).toBe(0);
  await Promise.all(agents.map((a) => a.ready()));
});

afterAll(async () => {
  await Promise.all((agents ?? []).map((a) => a.stop()));
  await controller?.stop();
  await Promise.all((backends ?? []).map((b) => b[Symbol.asyncDispose]()));
  await dir?.[Symbol.asyncDispose]();
});

describe('active health checks', () => {
  it('marks every endpoint Healthy in Upstream.status', async () => {
    const u = await watchUntil<UpstreamObject>(
      controller.url,
      'namespaces/default/upstreams',
      (o) => o.status?.endpoints?.length === BACKENDS && o.status.endpoints.every((e) => e.health === 'Healthy'),
    );
    expect(u.status?.endpoints?.map((e) => e.port).sort()).toEqual(backends.map((b) => b.port).sort());
  });

  it('probes each endpoint from 2 agents, not 5: about 2 x 10 probes per interval', async () => {
    // Let assignments settle (agents connected at different moments), then measure.
    await moreProbes(2 * BACKENDS * 3);
    const before = snapshotCounts();
    await moreProbes(2 * BACKENDS * 8);
    const after = snapshotCounts();
    const pairs: number[] = [];
    const probers = new Set<string>();
    let total = 0;
    for (let i = 0; i < BACKENDS; i++) {
      const agentsOfBackend: string[] = [];
      for (const [agent, n] of after[i]!) {
        const delta = n - (before[i]!.get(agent) ?? 0);
        total += delta;
        // A probe or two can straddle a reassignment; a prober probes every interval.
        if (delta >= 3) {
          agentsOfBackend.push(agent);
          pairs.push(delta);
        }
      }
      expect(agentsOfBackend, `probers of backend ${i}`).toHaveLength(2);
      for (const a of agentsOfBackend) probers.add(a);
    }
    // Intervals elapsed, measured by the probers' own counts (median probes per prober).
    pairs.sort((a, b) => a - b);
    const intervals = pairs[Math.floor(pairs.length / 2)]!;
    const perInterval = total / intervals;
    expect(perInterval).toBeGreaterThanOrEqual(1.5 * BACKENDS);
    expect(perInterval).toBeLessThanOrEqual(2.5 * BACKENDS);
    // The work is spread over the fleet, not piled on two agents.
    expect(probers.size).toBeGreaterThanOrEqual(3);
  });

  it('marks a killed backend Unhealthy and every agent stops sending it traffic', async () => {
    const dead = backends[3]!;
    const applied = agents.map((a) => countLines(a, '"configuration applied"'));
    await dead.kill();
    const u = await watchUntil<UpstreamObject>(controller.url, 'namespaces/default/upstreams', (o) =>
      (o.status?.endpoints ?? []).some((e) => e.port === dead.port && e.health === 'Unhealthy'),
    );
    const others = u.status!.endpoints!.filter((e) => e.port !== dead.port);
    expect(others.every((e) => e.health === 'Healthy')).toBe(true);

    for (const [i, agent] of agents.entries()) {
      // Each agent applies the Endpoints change that carries the verdict (one or more updates later).
      await untilAgentSees(agent, applied[i]!, dead.port);
      for (let r = 0; r < 20; r++) {
        const response = await fetch(`http://127.0.0.${i + 2}:${proxyPort}/`);
        expect(response.status).toBe(200);
        expect((await response.text()).trim()).not.toBe(dead.name);
      }
    }
    const described = await runSluicectl(['describe', 'upstream', 'shop'], { server: controller.url });
    // ADDRESS PORT WEIGHT EFFECTIVE HEALTH ...
    expect(described.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1\\s+${dead.port}\\s+\\S+\\s+\\S+\\s+Unhealthy`));
  });
});

function countLines(agent: AgentProcess, text: string): number {
  return [...agent.process.stdoutLines, ...agent.process.stderrLines].filter((l) => l.includes(text)).length;
}

/** Waits for each further "configuration applied" line until /config_dump shows the endpoint unhealthy. */
async function untilAgentSees(agent: AgentProcess, seenBefore: number, port: number): Promise<void> {
  for (let next = seenBefore + 1; ; next++) {
    let n = 0;
    await agent.process.waitForLine((l) => l.includes('"configuration applied"') && ++n === next);
    const dump = (await (await fetch(`${agent.adminUrl}/config_dump`)).json()) as { resources: { endpoints?: { endpoints?: { port: number; health?: string }[] } }[] };
    const endpoint = dump.resources.flatMap((r) => r.endpoints?.endpoints ?? []).find((e) => e.port === port);
    if (endpoint?.health === 'HEALTH_STATUS_UNHEALTHY') return;
  }
}
