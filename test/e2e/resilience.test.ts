import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

// Routing around trouble with real processes: a backend that dies under load costs no
// failed idempotent request and leaves rotation once health checks see it; a client pinned
// by the affinity cookie stays put, and moves only when its endpoint dies.

let dir: TempDir;
let controller: ControllerProcess;
let agent: AgentProcess;
let backends: Backend[];
let port: number;

beforeEach(async () => {
  dir = await tempDir();
  backends = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
  port = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path, extraArgs: ['--report-interval', '200ms'] });
  agent = await AgentProcess.start({ controller: controller.grpcAddress, id: 'edge', workers: 1 });
});

afterEach(async () => {
  await agent?.stop();
  await controller?.stop();
  await Promise.all((backends ?? []).map((b) => b[Symbol.asyncDispose]()));
  await dir?.[Symbol.asyncDispose]();
});

async function apply(upstreamExtra: string, ruleExtra = ''): Promise<number> {
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], {
    server: controller.url,
    input: webToUpstream({ port, endpoints: backends.map((b) => ({ port: b.port })), upstream: upstreamExtra, rule: ruleExtra }),
  });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const out = JSON.parse(result.stdout) as { items: { metadata: { resourceVersion: string } }[] };
  return Math.max(...out.items.map((o) => Number(o.metadata.resourceVersion)));
}

async function appliedBy(revision: number): Promise<void> {
  await watchUntil<{ metadata: { name: string }; status?: { appliedRevision?: number } }>(
    controller.url,
    'agents',
    (a) => a.metadata.name === 'edge' && (a.status?.appliedRevision ?? 0) >= revision,
  );
}

interface UpstreamObject {
  metadata: { name: string };
  status?: { endpoints?: { port: number; health: string }[] };
}

describe('resilience', () => {
  it('a backend killed under steady load costs zero failed GETs and leaves rotation', async () => {
    const revision = await apply(
      `  loadBalancing: {policy: RoundRobin}
  healthCheck:
    http: {path: /healthz}
    interval: 200ms
    timeout: 150ms
    healthyThreshold: 1
    unhealthyThreshold: 2`,
      `      retry: {attempts: 2, on: [connect-failure, reset, gateway-error]}`,
    );
    await appliedBy(revision);
    await watchUntil<UpstreamObject>(controller.url, 'namespaces/default/upstreams', (u) =>
      (u.status?.endpoints ?? []).filter((e) => e.health === 'Healthy').length === 3,
    );

    let failures = 0;
    let ok = 0;
    let stop = false;
    const loops = [0, 1, 2, 3].map(async () => {
      for (let i = 0; i < 4000 && !stop; i++) {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/`);
          await response.text();
          if (response.status === 200) ok++;
          else failures++;
        } catch {
          failures++;
        }
      }
    });
    // Let traffic flow over every backend, then kill one abruptly.
    while (backends[2]!.requests < 20) await new Promise((r) => setImmediate(r));
    const dead = backends[2]!;
    await dead.kill();
    const unhealthy = await watchUntil<UpstreamObject>(controller.url, 'namespaces/default/upstreams', (u) =>
      (u.status?.endpoints ?? []).some((e) => e.port === dead.port && e.health === 'Unhealthy'),
    );
    expect(unhealthy.status!.endpoints!.filter((e) => e.health === 'Healthy')).toHaveLength(2);
    // (test/e2e/health.test.ts shows every agent then keeps traffic off it.)
    stop = true;
    await Promise.all(loops);
    expect(ok).toBeGreaterThan(0);
    expect(failures).toBe(0);
  });

  it('a cookie-pinned client stays on its endpoint for 100 requests and moves only when it dies', async () => {
    // Retrying connect failures lets the first request after the death land elsewhere
    // (NGINX's proxy_next_upstream error; HAProxy's redispatch).
    const revision = await apply(
      `  sessionPersistence: {type: Cookie, cookieName: sluice-affinity}`,
      `      retry: {attempts: 2, on: [connect-failure]}`,
    );
    await appliedBy(revision);

    const first = await fetch(`http://127.0.0.1:${port}/`);
    const pinned = (await first.text()).trim();
    const setCookie = first.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^sluice-affinity=/);
    expect(setCookie).not.toMatch(/127\.0\.0\.1|:\d{4,5}/);
    const cookie = setCookie.split(';')[0]!;

    for (let i = 0; i < 100; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie } });
      expect((await response.text()).trim()).toBe(pinned);
    }

    await backends.find((b) => b.name === pinned)!.kill();
    const moved = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie } });
    const movedTo = (await moved.text()).trim();
    expect(moved.status).toBe(200);
    expect(movedTo).not.toBe(pinned);
    const newCookie = (moved.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(newCookie).toMatch(/^sluice-affinity=/);
    expect(newCookie).not.toBe(cookie);
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: newCookie } });
      expect((await response.text()).trim()).toBe(movedTo);
    }
  });
});
