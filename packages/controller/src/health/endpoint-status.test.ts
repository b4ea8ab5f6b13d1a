import { describe, expect, it } from 'vitest';
import type { Upstream } from '@sluice/api';
import { endpointId } from '@sluice/translator';
import { targetKey } from './assignment.js';
import { desiredStatus } from './endpoint-status.js';
import type { MergedHealth } from './health-coordinator.js';

const T1 = new Date('2026-01-01T00:00:00Z');
const T2 = new Date('2026-01-01T00:01:00Z');

function upstream(status?: Record<string, unknown>, healthCheck = true): Upstream {
  return {
    apiVersion: 'sluice/v1',
    kind: 'Upstream',
    metadata: { name: 'shop', namespace: 'default', resourceVersion: '3' },
    spec: {
      endpoints: [
        { address: '10.0.0.2', port: 80, weight: 1 },
        { address: '10.0.0.1', port: 80, weight: 1 },
      ],
      ...(healthCheck ? { healthCheck: { interval: '1s', timeout: '1s', healthyThreshold: 1, unhealthyThreshold: 1, tcp: {} } } : {}),
    },
    ...(status ? { status } : {}),
  } as unknown as Upstream;
}

function merged(health: Record<string, 'Healthy' | 'Unhealthy'>): MergedHealth {
  const endpoints = new Map(
    Object.entries(health).map(([address, h]) => {
      const id = endpointId('default/shop', address, 80);
      return [targetKey('default/shop', id), { cluster: 'default/shop', endpointId: id, address, port: 80, health: h, reporters: 2 }];
    }),
  );
  return { snapshot: { revision: 1, objects: new Map() }, endpoints };
}

describe('desiredStatus', () => {
  it('lists every endpoint sorted, Unknown without a verdict, keeping conditions', () => {
    const conditions = [{ type: 'Programmed', status: 'True' }];
    expect(desiredStatus(upstream({ conditions }), merged({ '10.0.0.2': 'Unhealthy' }), T1)).toEqual({
      conditions,
      endpoints: [
        { address: '10.0.0.1', port: 80, health: 'Unknown', since: '2026-01-01T00:00:00Z' },
        { address: '10.0.0.2', port: 80, health: 'Unhealthy', since: '2026-01-01T00:00:00Z' },
      ],
    });
  });

  it('moves since only for endpoints whose health changed, and writes nothing when none did', () => {
    const first = desiredStatus(upstream(), merged({ '10.0.0.1': 'Healthy', '10.0.0.2': 'Healthy' }), T1)!;
    expect(desiredStatus(upstream(first), merged({ '10.0.0.1': 'Healthy', '10.0.0.2': 'Healthy' }), T2)).toBeUndefined();
    expect(desiredStatus(upstream(first), merged({ '10.0.0.1': 'Healthy', '10.0.0.2': 'Unhealthy' }), T2)).toEqual({
      endpoints: [
        { address: '10.0.0.1', port: 80, health: 'Healthy', since: '2026-01-01T00:00:00Z' },
        { address: '10.0.0.2', port: 80, health: 'Unhealthy', since: '2026-01-01T00:01:00Z' },
      ],
    });
  });

  it('removes endpoints from the status of an Upstream without a health check', () => {
    const first = desiredStatus(upstream(), merged({}), T1)!;
    expect(desiredStatus(upstream(first, false), merged({}), T2)).toEqual({});
    expect(desiredStatus(upstream(undefined, false), merged({}), T2)).toBeUndefined();
  });
});
