import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '@grpc/grpc-js';
import { ResourceType } from '@sluice/proto';
import { DiscoveryServer } from '../discovery/discovery-server.js';
import { closeGrpc, listenGrpc } from '../discovery/grpc-server.js';
import { TestAgent } from '../discovery/test-agent.js';
import { FakeSnapshotSource, served } from '../discovery/test-support.js';
import { silentLogger } from '../logger.js';
import { ControllerMetrics } from './controller-metrics.js';

const { RESOURCE_TYPE_CLUSTER: CLUSTER, RESOURCE_TYPE_ROUTE_TABLE: ROUTE_TABLE, RESOURCE_TYPE_LISTENER: LISTENER } = ResourceType;
const cluster = served(CLUSTER, 'default/api', 'c1');
const table = served(ROUTE_TABLE, 'default/web', 'r1');
const listener = served(LISTENER, 'default/web', 'l1');

let grpc: { server: Server; address: string };
let source: FakeSnapshotSource;
let discovery: DiscoveryServer;
let metrics: ControllerMetrics;

beforeAll(async () => {
  metrics = new ControllerMetrics();
  source = new FakeSnapshotSource();
  discovery = new DiscoveryServer(source, undefined, silentLogger(), metrics);
  metrics.setSources({ connectedAgents: () => discovery.size, isLeader: () => true });
  grpc = await listenGrpc('127.0.0.1', 0, (server) => discovery.register(server));
});

afterAll(async () => {
  discovery.close();
  await closeGrpc(grpc.server);
});

/** A sample's value; `series` picks a histogram's `_count` or `_sum`. */
async function sample(name: string, labels: Record<string, string> = {}, series?: '_count' | '_sum'): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const wanted = series === undefined ? undefined : `${name}${series}`;
  return metric?.values.find((v) => (v as { metricName?: string }).metricName === wanted && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('discovery metrics', () => {
  it('counts pushes and bytes by type, NACKs, ACK convergence and connected agents', async () => {
    source.set(5, [cluster, table, listener]);
    const agent = TestAgent.connect(grpc.address, { id: 'metrics-1', labels: {} }, []);
    try {
      const first = await agent.next();
      expect(await sample('sluice_controller_connected_agents')).toBe(1);
      expect(await sample('sluice_controller_is_leader')).toBe(1);
      expect(await sample('sluice_controller_config_pushes_total', { type: 'cluster' })).toBe(1);
      expect(await sample('sluice_controller_config_pushes_total', { type: 'route_table' })).toBe(1);
      expect(await sample('sluice_controller_config_push_bytes_total', { type: 'listener' })).toBe(listener.encoded.length);
      expect(await sample('sluice_controller_config_pushes_total', { type: 'secret' })).toBe(0);

      agent.nack(first, [{ key: { type: ROUTE_TABLE, name: 'default/web' }, version: table.version, message: 'bad' }]);
      const changed = served(LISTENER, 'default/web', 'l2');
      source.set(6, [cluster, table, changed]);
      const second = await agent.next();
      expect(await sample('sluice_controller_nacks_total', { type: 'route_table' })).toBe(1);
      agent.ack(second);
      await expect.poll(() => sample('sluice_controller_config_convergence_seconds', {}, '_count')).toBe(1);
      expect(await sample('sluice_controller_config_convergence_seconds', {}, '_sum')).toBeGreaterThan(0);
    } finally {
      agent.close();
    }
    await expect.poll(() => sample('sluice_controller_connected_agents')).toBe(0);
  });

  it('serves the text exposition with the metric names of the contract', async () => {
    const text = await metrics.metrics();
    for (const name of [
      'sluice_controller_connected_agents',
      'sluice_controller_config_pushes_total',
      'sluice_controller_config_push_bytes_total',
      'sluice_controller_config_convergence_seconds',
      'sluice_controller_nacks_total',
      'sluice_controller_weight_updates_total',
      'sluice_controller_store_operation_duration_seconds',
      'sluice_controller_store_errors_total',
      'sluice_controller_is_leader',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });
});
