import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, ControllerProcess, freePort, runSluicectl, startBackend, startEtcd, tempDir, watchUntil, webToUpstream, type Backend, type TempDir } from '@sluice/testing';

// Metrics and logs with real processes: one controller (embedded store: always the leader),
// an agent with one process and an agent with --workers 2 (its /metrics aggregates both
// workers), one backend, the Listener's access log on. Every metric of docs/observability.md
// must be present, with values that follow from the traffic sent.

let dir: TempDir;
let controller: ControllerProcess;
let backend: Backend;
let single: AgentProcess;
let workers: AgentProcess;
let proxyPort: number;
let revision: number;
/** Requests sent to each agent, by host. */
const sent = new Map<string, number>();

const HOSTS = { single: '127.0.0.1', workers: '127.0.0.2' } as const;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, enough of it for assertions. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const text = await response.text();
  return { text, samples: parse(text) };
}

function pick(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return pick(samples, name, labels).reduce((total, s) => total + s.value, 0);
}

async function get(host: string, headers: Record<string, string> = {}): Promise<Response> {
  sent.set(host, (sent.get(host) ?? 0) + 1);
  const response = await fetch(`http://${host}:${proxyPort}/`, { headers });
  await response.arrayBuffer();
  return response;
}

beforeAll(async () => {
  dir = await tempDir();
  backend = await startBackend('a');
  proxyPort = await freePort();
  controller = await ControllerProcess.start({ store: 'embedded', dataDir: dir.path });
  [single, workers] = await Promise.all([
    AgentProcess.start({ controller: controller.grpcAddress, id: 'metrics-single', listenAddress: HOSTS.single }),
    AgentProcess.start({ controller: controller.grpcAddress, id: 'metrics-workers', listenAddress: HOSTS.workers, workers: 2 }),
  ]);
  const yaml = webToUpstream({ port: proxyPort, endpoints: [{ port: backend.port }] }).replace(
    `spec: {port: ${proxyPort}, protocol: HTTP}`,
    `spec: {port: ${proxyPort}, protocol: HTTP, accessLog: {enabled: true}}`,
  );
  const result = await runSluicectl(['apply', '-f', '-', '-o', 'json'], { server: controller.url, input: yaml });
  expect(result.stderr).toBe('');
  const out = JSON.parse(result.stdout) as { items: { metadata: { resourceVersion: string } }[] };
  revision = Math.max(...out.items.map((o) => Number(o.metadata.resourceVersion)));
  for (const id of ['metrics-single', 'metrics-workers']) {
    await watchUntil<{ metadata: { name: string }; status?: { connected?: boolean; appliedRevision?: number } }>(
      controller.url,
      'agents',
      (a) => a.metadata.name === id && a.status?.connected === true && (a.status.appliedRevision ?? 0) >= revision,
    );
  }
  // Traffic: 20 requests per agent (5 with a request id of their own, one with a traceparent).
  for (const host of Object.values(HOSTS)) {
    for (let i = 0; i < 20; i++) {
      const headers: Record<string, string> = i < 5 ? { 'x-request-id': `e2e-${host}-${i}` } : {};
      if (i === 5) headers.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      expect((await get(host, headers)).status).toBe(200);
    }
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([single?.stop(), workers?.stop()]);
  await controller?.stop();
  await backend?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

describe('controller /metrics', () => {
  it('has every controller metric, with values that follow from two agents and one apply', async () => {
    const { text, samples } = await scrape(controller.url);
    expect(sum(samples, 'sluice_controller_connected_agents')).toBe(2);
    expect(sum(samples, 'sluice_controller_is_leader')).toBe(1);
    for (const type of ['cluster', 'endpoints', 'route_table', 'listener']) {
      expect(sum(samples, 'sluice_controller_config_pushes_total', { type })).toBeGreaterThanOrEqual(2);
      expect(sum(samples, 'sluice_controller_config_push_bytes_total', { type })).toBeGreaterThan(0);
    }
    expect(sum(samples, 'sluice_controller_config_convergence_seconds_count')).toBeGreaterThan(0);
    expect(sum(samples, 'sluice_controller_config_convergence_seconds_bucket', { le: '+Inf' })).toBe(sum(samples, 'sluice_controller_config_convergence_seconds_count'));
    expect(pick(samples, 'sluice_controller_nacks_total', { type: 'listener' })).toHaveLength(1);
    expect(pick(samples, 'sluice_controller_weight_updates_total')).toHaveLength(1);
    // The apply was one transaction; the resource cache listed the store at start.
    expect(sum(samples, 'sluice_controller_store_operation_duration_seconds_count', { operation: 'txn' }) + sum(samples, 'sluice_controller_store_operation_duration_seconds_count', { operation: 'put' })).toBeGreaterThan(0);
    expect(sum(samples, 'sluice_controller_store_operation_duration_seconds_count', { operation: 'list' })).toBeGreaterThan(0);
    expect(pick(samples, 'sluice_controller_store_errors_total', { operation: 'watch' })).toHaveLength(1);
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });
});

describe('controller /metrics with etcd and two replicas', () => {
  it('exactly one replica reports is_leader 1; lease and store calls are timed', async () => {
    await using etcd = await startEtcd();
    const args = ['--leader-lease-ttl', '2s'];
    await using a = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: [...args, '--id', 'metrics-a'] });
    await using b = await ControllerProcess.start({ store: 'etcd', etcdEndpoints: etcd.endpoint, extraArgs: [...args, '--id', 'metrics-b'] });
    await Promise.race([a, b].map((c) => c.process.waitForLine((l) => l.includes('"became leader"'))));
    const [sa, sb] = await Promise.all([scrape(a.url), scrape(b.url)]);
    expect([sum(sa.samples, 'sluice_controller_is_leader'), sum(sb.samples, 'sluice_controller_is_leader')].sort()).toEqual([0, 1]);
    // The leader got its lease through the store (a follower may not have campaigned yet).
    const leader = sum(sa.samples, 'sluice_controller_is_leader') === 1 ? sa : sb;
    expect(sum(leader.samples, 'sluice_controller_store_operation_duration_seconds_count', { operation: 'lease' })).toBeGreaterThan(0);
    for (const { samples } of [sa, sb]) {
      expect(sum(samples, 'sluice_controller_store_operation_duration_seconds_count', { operation: 'list' })).toBeGreaterThan(0);
      expect(sum(samples, 'sluice_controller_connected_agents')).toBe(0);
    }
  });
});

describe.each([
  ['one process', () => single, HOSTS.single],
  ['--workers 2', () => workers, HOSTS.workers],
])('agent /metrics (%s)', (_name, agent, host) => {
  it('counts every request sent, times them, and shows endpoints, connections, revision and rejections', async () => {
    // Metrics count a request when its response closes: poll for the last ones.
    await expect.poll(async () => sum((await scrape(agent().adminUrl)).samples, 'sluice_agent_requests_total'), { timeout: 5_000 }).toBe(sent.get(host));
    const open: Socket = connect(proxyPort, host);
    try {
      await new Promise<void>((resolve, reject) => open.once('connect', resolve).once('error', reject));
      await expect.poll(async () => sum((await scrape(agent().adminUrl)).samples, 'sluice_agent_active_connections'), { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
    } finally {
      open.destroy();
    }
    const { text, samples } = await scrape(agent().adminUrl);
    const requests = pick(samples, 'sluice_agent_requests_total', { route: 'default/shop', upstream: 'default/shop', code_class: '2xx' });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.value).toBe(sent.get(host));
    const listener = requests[0]!.labels.listener!;
    expect(listener).toMatch(/web/);
    expect(sum(samples, 'sluice_agent_request_duration_seconds_count', { listener })).toBe(sent.get(host));
    expect(sum(samples, 'sluice_agent_request_duration_seconds_bucket', { listener, le: '+Inf' })).toBe(sent.get(host));
    expect(sum(samples, 'sluice_agent_upstream_request_duration_seconds_count', { upstream: 'default/shop' })).toBe(sent.get(host));
    const endpoint = `127.0.0.1:${backend.port}`;
    expect(sum(samples, 'sluice_agent_endpoint_healthy', { upstream: 'default/shop', endpoint })).toBe(1);
    expect(sum(samples, 'sluice_agent_endpoint_weight', { upstream: 'default/shop', endpoint })).toBeGreaterThan(0);
    expect(sum(samples, 'sluice_agent_config_revision')).toBeGreaterThanOrEqual(revision);
    expect(sum(samples, 'sluice_agent_rejected_resources')).toBe(0);
    expect(pick(samples, 'sluice_agent_rejected_resources', { type: 'listener' })).toHaveLength(1);
    expect(pick(samples, 'sluice_agent_access_log_dropped_total')).toEqual([expect.objectContaining({ value: 0 })]);
    for (const name of ['sluice_agent_l4_connections_total', 'sluice_agent_l4_bytes_total', 'process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('writes an access-log line per request, with the request id sent upstream and returned', async () => {
    const id = `e2e-${host}-3`;
    const line = await agent().process.waitForLine((l) => l.includes(`"request_id":"${id}"`), 5_000);
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(entry).toMatchObject({ request_id: id, route: expect.stringContaining('default/shop') as unknown, upstream: 'default/shop', endpoint: `127.0.0.1:${backend.port}`, method: 'GET', path: '/', status: 200, protocol: 'HTTP/1.1', retries: 0 });
    expect(entry.client_address).toBe('127.0.0.1');
    expect(typeof entry.duration_ms).toBe('number');
    const lines = agent().process.stdoutLines.filter((l) => l.startsWith('{"time"') && l.includes('"request_id"'));
    expect(lines.length).toBe(sent.get(host));

    const response = await get(host, { 'x-request-id': 'e2e-echo', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=opaque' });
    expect(response.headers.get('x-request-id')).toBe('e2e-echo');
    expect(backend.last?.headers['x-request-id']).toBe('e2e-echo');
    expect(backend.last?.headers.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(backend.last?.headers.tracestate).toBe('vendor=opaque');
    const generated = await get(host);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(backend.last?.headers['x-request-id']).toBe(generated.headers.get('x-request-id'));
  });
});
