import { describe, expect, it } from 'vitest';
import { formatDescribe } from './describe.js';

describe('formatDescribe', () => {
  it('prints metadata, spec as YAML and conditions verbatim', () => {
    const out = formatDescribe({
      apiVersion: 'sluice/v1',
      kind: 'Route',
      metadata: { name: 'shop', namespace: 'default', labels: { app: 'shop', tier: 'web' }, uid: 'u-1', generation: 2, resourceVersion: '17', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { hostnames: ['shop.example.com'] },
      status: {
        conditions: [{ type: 'Accepted', status: 'False', reason: 'Rejected', message: 'Rejected by 1/3 agents: bad regex "("' }],
        observedGeneration: 2,
      },
    });
    expect(out).toBe(`Name:         shop
Namespace:    default
Labels:       app=shop
              tier=web
Annotations:  <none>
API Version:  sluice/v1
Kind:         Route
Metadata:
  Creation Timestamp:  2026-01-01T00:00:00Z
  Generation:          2
  Resource Version:    17
  UID:                 u-1
Spec:
  hostnames:
    - shop.example.com
Status:
  Conditions:
    Type      Status  Reason    Message
    ----      ------  ------    -------
    Accepted  False   Rejected  Rejected by 1/3 agents: bad regex "("
  observedGeneration: 2
`);
  });

  it('prints Upstream endpoint health as a table', () => {
    const out = formatDescribe({
      apiVersion: 'sluice/v1',
      kind: 'Upstream',
      metadata: { name: 'shop', namespace: 'default' },
      spec: { endpoints: [{ address: '10.0.0.1', port: 80 }] },
      status: {
        endpoints: [
          { address: '10.0.0.1', port: 80, health: 'Healthy', since: '2026-01-01T00:00:00Z' },
          { address: '10.0.0.22', port: 8080, health: 'Unhealthy', since: '2026-01-01T00:05:00Z' },
        ],
      },
    });
    expect(out).toContain(`Status:
  Conditions:  <none>
  Endpoints:
    ADDRESS    PORT  WEIGHT  EFFECTIVE  HEALTH     P50  P99  ERRORS  AGENTS  SINCE
    -------    ----  ------  ---------  ------     ---  ---  ------  ------  -----
    10.0.0.1   80    1       -          Healthy    -    -    -       -       2026-01-01T00:00:00Z
    10.0.0.22  8080  1       -          Unhealthy  -    -    -       -       2026-01-01T00:05:00Z
`);
  });

  it('prints configured and effective weights, latency, errors and agents per endpoint', () => {
    const out = formatDescribe({
      apiVersion: 'sluice/v1',
      kind: 'Upstream',
      metadata: { name: 'shop', namespace: 'default' },
      spec: { endpoints: [{ address: '10.0.0.1', port: 80, weight: 2 }, { address: '10.0.0.2', port: 80 }, { address: '10.0.0.3', port: 80 }] },
      status: {
        endpoints: [
          { address: '10.0.0.1', port: 80, health: 'Healthy', since: '2026-01-01T00:00:00Z', weight: 2, effectiveWeight: 2.4, latency: { ewmaMs: 5.2, p50Ms: 4.8, p99Ms: 12.3 }, errorRate: 0, requests: 1200, agents: 2 },
          { address: '10.0.0.2', port: 80, health: 'Healthy', since: '2026-01-01T00:00:00Z', weight: 1, effectiveWeight: 0.1, latency: { ewmaMs: 55, p50Ms: 54.9, p99Ms: 140.4 }, errorRate: 0.0123, requests: 80, agents: 2 },
        ],
      },
    });
    expect(out).toContain(`  Endpoints:
    ADDRESS   PORT  WEIGHT  EFFECTIVE  HEALTH   P50     P99     ERRORS  AGENTS  SINCE
    -------   ----  ------  ---------  ------   ---     ---     ------  ------  -----
    10.0.0.1  80    2       2.4        Healthy  4.8ms   12.3ms  0%      2       2026-01-01T00:00:00Z
    10.0.0.2  80    1       0.1        Healthy  54.9ms  140ms   1.2%    2       2026-01-01T00:00:00Z
    10.0.0.3  80    1       -          Unknown  -       -       -       -       -
`);
  });

  it('never prints secret values', () => {
    const out = formatDescribe({ kind: 'Secret', metadata: { name: 's' }, type: 'tls', data: { 'tls.key': Buffer.from('secret-key').toString('base64') } });
    expect(out).toContain('tls.key:  10 bytes');
    expect(out).not.toContain('secret-key');
    expect(out).not.toContain(Buffer.from('secret-key').toString('base64'));
  });

  it('shows a value the controller redacted as redacted, not as a size', () => {
    const out = formatDescribe({ kind: 'Secret', metadata: { name: 's' }, type: 'tls', data: { 'tls.crt': Buffer.from('cert').toString('base64'), 'tls.key': '[redacted]' } });
    expect(out).toContain('tls.crt:  4 bytes');
    expect(out).toContain('tls.key:  [redacted]');
  });
});
