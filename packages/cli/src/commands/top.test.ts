import { describe, expect, it } from 'vitest';
import { formatTopEndpoints } from './top.js';

const upstream = (namespace: string, name: string, spec: Record<string, unknown>[], status?: Record<string, unknown>[]) => ({
  apiVersion: 'sluice/v1',
  kind: 'Upstream',
  metadata: { name, namespace },
  spec: { endpoints: spec },
  ...(status ? { status: { endpoints: status } } : {}),
});

const objects = [
  upstream(
    'shop',
    'web',
    [{ address: '10.0.0.1', port: 80 }, { address: '10.0.0.2', port: 80 }],
    [
      { address: '10.0.0.1', port: 80, health: 'Healthy', weight: 1, effectiveWeight: 1.2, latency: { ewmaMs: 5, p50Ms: 4.5, p99Ms: 9 }, errorRate: 0, requests: 900, agents: 2 },
      { address: '10.0.0.2', port: 80, health: 'Healthy', weight: 1, effectiveWeight: 0.1, latency: { ewmaMs: 55, p50Ms: 54, p99Ms: 120 }, errorRate: 0.05, requests: 90, agents: 2 },
    ],
  ),
  upstream('edge', 'api', [{ address: 'api.internal', port: 8443, weight: 3 }]),
];

describe('formatTopEndpoints', () => {
  it('lists every endpoint sorted by p99, highest first; unknown figures last as -', () => {
    expect(formatTopEndpoints(objects, true)).toBe(`NAMESPACE   UPSTREAM   ENDPOINT            WEIGHT   P50     P99     ERRORS   REQUESTS
shop        web        10.0.0.2:80         0.1      54ms    120ms   5%       90
shop        web        10.0.0.1:80         1.2      4.5ms   9ms     0%       900
edge        api        api.internal:8443   3        -       -       -        -
`);
  });

  it('leaves the namespace column out for one namespace', () => {
    expect(formatTopEndpoints(objects.slice(1), false)).toBe(`UPSTREAM   ENDPOINT            WEIGHT   P50   P99   ERRORS   REQUESTS
api        api.internal:8443   3        -     -     -        -
`);
  });
});
