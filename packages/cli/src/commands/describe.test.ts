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

  it('never prints secret values', () => {
    const out = formatDescribe({ kind: 'Secret', metadata: { name: 's' }, type: 'tls', data: { 'tls.key': Buffer.from('secret-key').toString('base64') } });
    expect(out).toContain('tls.key:  10 bytes');
    expect(out).not.toContain('secret-key');
    expect(out).not.toContain(Buffer.from('secret-key').toString('base64'));
  });
});
