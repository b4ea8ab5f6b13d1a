import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceType } from '@sluice/proto';
import { tempDir, type TempDir } from '@sluice/testing';
import { hostname } from 'node:os';
import { advertiseAddress, startController, type RunningController } from './controller.js';
import { TestAgent } from './discovery/test-agent.js';
import { silentLogger } from './logger.js';

// The whole config flow in one process: admin API -> store -> resource cache -> translator ->
// snapshot cache -> discovery stream -> a test agent; and back: ACK/NACK -> Agent object ->
// Programmed condition.
let dir: TempDir;
let controller: RunningController;

beforeAll(async () => {
  dir = await tempDir();
  controller = await startController(
    {
      store: 'embedded',
      dataDir: dir.path,
      etcdEndpoints: [],
      etcdPrefix: '/sluice',
      admin: { host: '127.0.0.1', port: 0 },
      grpc: { host: '127.0.0.1', port: 0 },
      logLevel: 'error',
      id: 'ctl-test',
    },
    silentLogger(),
  );
});

afterAll(async () => {
  await controller.close();
  await dir[Symbol.asyncDispose]();
});

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${controller.adminUrl}/apis/sluice/v1${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return text ? JSON.parse(text) : undefined;
}

async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in time: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const programmed = (o: any) => o?.status?.conditions?.find((c: any) => c.type === 'Programmed');

describe('advertiseAddress', () => {
  it('is the bound address, or the hostname with its port when bound to every interface', () => {
    expect(advertiseAddress('127.0.0.1:9081')).toBe('127.0.0.1:9081');
    expect(advertiseAddress('[::1]:9081')).toBe('[::1]:9081');
    expect(advertiseAddress('0.0.0.0:9081')).toBe(`${hostname()}:9081`);
    expect(advertiseAddress('[::]:9081')).toBe(`${hostname()}:9081`);
  });
});

describe('controller', () => {
  it('streams the configuration to an agent and reports its ACKs and NACKs', async () => {
    await api('POST', '/apply', [
      { apiVersion: 'sluice/v1', kind: 'Upstream', metadata: { name: 'api' }, spec: { endpoints: [{ address: '127.0.0.1', port: 9001 }] } },
      { apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'web' }, spec: { port: 8080, protocol: 'HTTP', agentSelector: { matchLabels: { pool: 'edge' } } } },
      { apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'shop' }, spec: { parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'api' }] }] } },
    ]);

    const agent = TestAgent.connect(controller.grpcAddress, { id: 'edge-1', labels: { pool: 'edge' }, version: '0.1.0' });
    try {
      const first = await agent.next();
      expect(first.resources.map((r) => `${r.body?.$case} ${r.name}`)).toEqual([
        'cluster default/api',
        'endpoints default/api',
        'routeTable default/web',
        'listener default/web',
      ]);
      agent.ack(first);
      const registered = await until(() => api('GET', '/agents/edge-1'), (a) => a?.status?.appliedRevision === first.revision);
      expect(registered).toMatchObject({
        kind: 'Agent',
        spec: { labels: { pool: 'edge' }, version: '0.1.0' },
        status: { connected: true, controller: 'ctl-test', lag: 0 },
      });
      await until(() => api('GET', '/namespaces/default/routes/shop'), (r) => programmed(r)?.message === 'Applied by 1 agent');

      // A change the agent rejects: reported on the Route it came from.
      await api('PATCH', '/namespaces/default/routes/shop', { spec: { hostnames: ['shop.example.com'] } });
      const change = await agent.next();
      expect(change.resources.map((r) => r.body?.$case)).toEqual(['routeTable']);
      agent.nack(change, [
        {
          key: { type: ResourceType.RESOURCE_TYPE_ROUTE_TABLE, name: 'default/web' },
          version: change.resources[0]!.version,
          message: 'no such host',
          sources: [{ kind: 'Route', namespace: 'default', name: 'shop' }],
        },
      ]);
      const route = await until(() => api('GET', '/namespaces/default/routes/shop'), (r) => programmed(r)?.status === 'False');
      expect(programmed(route)).toMatchObject({ reason: 'Rejected', message: 'Rejected by 1/1 agents: no such host' });
      const nacked = await api('GET', '/agents/edge-1');
      expect(nacked.status.nacks).toEqual([{ kind: 'Route', name: 'default/shop', version: change.resources[0]!.version, message: 'no such host' }]);
      // Agents stay read-only through the API.
      const deleted = await fetch(`${controller.adminUrl}/apis/sluice/v1/agents/edge-1`, { method: 'DELETE' });
      expect(deleted.status).toBe(405);
    } finally {
      agent.close();
    }
    const gone = await until(() => api('GET', '/agents/edge-1'), (a) => a?.status?.connected === false);
    expect(gone.status.lastSeen).toBeDefined();
  });
});
