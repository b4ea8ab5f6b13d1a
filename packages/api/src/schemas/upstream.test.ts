import { describe, expect, it } from 'vitest';
import { formatFieldError } from '../errors.js';
import { validateResource } from '../validate.js';
import type { Upstream } from './upstream.js';

const upstream = (spec: Record<string, unknown>) => ({ apiVersion: 'sluice/v1', kind: 'Upstream', metadata: { name: 'u' }, spec });
const ep = [{ address: '10.0.0.1', port: 80 }];
const errors = (spec: Record<string, unknown>): string[] => {
  const r = validateResource(upstream(spec));
  return r.ok ? [] : r.errors.map(formatFieldError);
};
const valid = (spec: Record<string, unknown>): Upstream['spec'] => {
  const r = validateResource(upstream(spec));
  if (!r.ok || r.value.kind !== 'Upstream') throw new Error(r.ok ? 'kind' : r.errors.map(formatFieldError).join('\n'));
  return r.value.spec;
};

describe('Upstream defaults', () => {
  it('fills policy, endpoint weight and connect timeout', () => {
    expect(valid({ endpoints: ep })).toEqual({
      endpoints: [{ address: '10.0.0.1', port: 80, weight: 1 }],
      loadBalancing: { policy: 'RoundRobin' },
      timeouts: { connect: '5s' },
    });
  });

  it('fills health check and dynamic weight settings only when present', () => {
    const spec = valid({ endpoints: ep, healthCheck: { tcp: {} }, dynamicWeights: {}, timeouts: { idle: '30s' } });
    expect(spec.healthCheck).toEqual({ tcp: {}, interval: '5s', timeout: '1s', healthyThreshold: 2, unhealthyThreshold: 3 });
    expect(spec.dynamicWeights).toEqual({ enabled: false, interval: '5s', minFactor: 0.1, maxFactor: 2 });
    expect(spec.timeouts).toEqual({ connect: '5s', idle: '30s' });
    expect(spec.healthCheck?.http).toBeUndefined();
    expect(valid({ endpoints: ep, healthCheck: { http: {} } }).healthCheck?.http).toEqual({ path: '/' });
  });
});

describe('Upstream checks', () => {
  it('reports duplicate endpoints even next to other endpoint problems', () => {
    expect(
      errors({
        endpoints: [
          { address: '10.0.0.1', port: 80 },
          { address: 'not an address', port: 0 },
          { address: '10.0.0.1', port: 80, weight: 2_000_000 },
        ],
      }),
    ).toEqual([
      'spec.endpoints[1].address: invalid address "not an address": must be an IPv4 address, an IPv6 address or a hostname',
      'spec.endpoints[1].port: must be >= 1',
      'spec.endpoints[2].weight: must be <= 1000000',
      'spec.endpoints[2]: duplicate endpoint 10.0.0.1:80 (also endpoints[0])',
    ]);
  });

  it.each([
    [{ policy: 'ConsistentHash' }, ['spec.loadBalancing.consistentHash: Required value: policy ConsistentHash needs consistentHash.key']],
    [{ policy: 'ConsistentHash', consistentHash: {} }, ['spec.loadBalancing.consistentHash.key: Required value']],
    [{ policy: 'ConsistentHash', consistentHash: { key: {} } }, ['spec.loadBalancing.consistentHash.key: must set exactly one of sourceIP: true, header, cookie or queryParameter']],
    [{ policy: 'ConsistentHash', consistentHash: { key: { sourceIP: true, cookie: { name: 'x' } } } }, ['spec.loadBalancing.consistentHash.key: must set exactly one of sourceIP: true, header, cookie or queryParameter']],
    [{ policy: 'ConsistentHash', consistentHash: { key: { queryParameter: 'user' } } }, []],
    [{ policy: 'RoundRobin', consistentHash: { key: { sourceIP: true } } }, ['spec.loadBalancing.consistentHash: must not be set when policy is RoundRobin']],
    [{ policy: 'Fastest' }, ['spec.loadBalancing.policy: must be one of: RoundRobin, WeightedRoundRobin, IPHash, ConsistentHash, LeastConnections, WeightedLeastConnections, LeastResponseTime, Random']],
    [{ policy: 'LeastConnections', choiceCount: 2 }, []],
    [{ policy: 'Random', choiceCount: 2 }, ['spec.loadBalancing.choiceCount: must not be set when policy is Random']],
    [{ policy: 'Random', panicThresholdPercent: 0 }, []],
    [{ policy: 'Random', panicThresholdPercent: 101 }, ['spec.loadBalancing.panicThresholdPercent: must be <= 100']],
    [{ policy: 'ConsistentHash', consistentHash: { key: { sourceIP: true }, algorithm: 'Maglev', tableSize: 65537, boundedLoadFactor: 1.25 } }, []],
    [{ policy: 'ConsistentHash', consistentHash: { key: { sourceIP: true }, algorithm: 'Maglev', tableSize: 65536 } }, ['spec.loadBalancing.consistentHash.tableSize: must be a prime up to 5000011 for Maglev']],
    [{ policy: 'ConsistentHash', consistentHash: { key: { sourceIP: true }, boundedLoadFactor: 0.9 } }, ['spec.loadBalancing.consistentHash.boundedLoadFactor: must be >= 1']],
  ])('loadBalancing %j', (lb, expected) => {
    expect(errors({ endpoints: ep, loadBalancing: lb })).toEqual(expected);
  });

  it('applies the ConsistentHash algorithm default', () => {
    expect(valid({ endpoints: ep, loadBalancing: { policy: 'ConsistentHash', consistentHash: { key: { sourceIP: true } } } }).loadBalancing).toEqual({
      policy: 'ConsistentHash',
      consistentHash: { key: { sourceIP: true }, algorithm: 'RingHash' },
    });
  });

  it.each([
    [{}, ['spec.healthCheck: must set exactly one of http or tcp']],
    [{ http: {}, tcp: {} }, ['spec.healthCheck: must set exactly one of http or tcp']],
    [{ http: { path: 'healthz' } }, ['spec.healthCheck.http.path: must start with "/"']],
    [{ tcp: {}, interval: '1s', timeout: '2s' }, ['spec.healthCheck.timeout: must not be longer than interval (1s)']],
    [{ http: { expectedStatuses: [200, 700] }, healthyThreshold: 0 }, ['spec.healthCheck.http.expectedStatuses[1]: must be <= 599', 'spec.healthCheck.healthyThreshold: must be >= 1']],
  ])('healthCheck %j', (hc, expected) => {
    expect(errors({ endpoints: ep, healthCheck: hc })).toEqual(expected);
  });

  it('checks dynamic weights, session persistence, outlier detection and proxy protocol', () => {
    expect(
      errors({
        endpoints: ep,
        dynamicWeights: { minFactor: 3, maxFactor: 2 },
        sessionPersistence: { type: 'Header', cookieName: 'c' },
        outlierDetection: { maxEjectionPercent: 101, baseEjectionTime: '30' },
        proxyProtocol: { send: 'v3' },
      }),
    ).toEqual([
      'spec.outlierDetection.baseEjectionTime: invalid duration "30": use a number and a unit, like 100ms, 5s or 1m30s',
      'spec.outlierDetection.maxEjectionPercent: must be <= 100',
      'spec.sessionPersistence.cookieName: must not be set when type is Header',
      'spec.sessionPersistence.headerName: Required value: type Header needs headerName',
      'spec.dynamicWeights.minFactor: must be <= maxFactor (2)',
      'spec.proxyProtocol.send: must be one of: v1, v2',
    ]);
  });

  it('checks the dynamic weight engine knobs', () => {
    expect(errors({ endpoints: ep, dynamicWeights: { enabled: true, dampening: 0, threshold: 1.5, minRequests: -1 } })).toEqual([
      'spec.dynamicWeights.dampening: must be > 0',
      'spec.dynamicWeights.threshold: must be <= 1',
      'spec.dynamicWeights.minRequests: must be >= 0',
    ]);
    expect(errors({ endpoints: ep, dynamicWeights: { enabled: true, dampening: 1, threshold: 0, minRequests: 0 } })).toEqual([]);
  });

  it('accepts IPv6 and hostname endpoints and upstream TLS', () => {
    expect(
      errors({
        endpoints: [
          { address: '::1', port: 80 },
          { address: 'backend.internal', port: 443, labels: { zone: 'a' } },
        ],
        tls: { sni: 'backend.internal', caCertificateRefs: [{ name: 'ca' }], clientCertificateRef: { name: 'client' } },
      }),
    ).toEqual([]);
  });
});
