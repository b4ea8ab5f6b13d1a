import { describe, expect, it } from 'vitest';
import { formatFieldError } from './errors.js';
import { resourceReferences } from './references.js';
import { validateResource, type Resource } from './validate.js';

function valid(input: unknown): Resource {
  const r = validateResource(input);
  if (!r.ok) throw new Error(r.errors.map(formatFieldError).join('\n'));
  return r.value;
}

describe('resourceReferences', () => {
  it('lists Route references with field paths, defaulting to the own namespace', () => {
    const route = valid({
      apiVersion: 'sluice/v1',
      kind: 'Route',
      metadata: { name: 'shop', namespace: 'prod' },
      spec: {
        parentRefs: [{ name: 'web' }, { name: 'edge', namespace: 'infra' }],
        rules: [
          { backendRefs: [{ name: 'v1' }, { name: 'v2', namespace: 'canary' }] },
          { filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow' } } }], backendRefs: [{ name: 'v1' }] },
        ],
      },
    });
    expect(resourceReferences(route)).toEqual([
      { kind: 'Listener', namespace: 'prod', name: 'web', field: 'spec.parentRefs[0]' },
      { kind: 'Listener', namespace: 'infra', name: 'edge', field: 'spec.parentRefs[1]' },
      { kind: 'Upstream', namespace: 'prod', name: 'v1', field: 'spec.rules[0].backendRefs[0]' },
      { kind: 'Upstream', namespace: 'canary', name: 'v2', field: 'spec.rules[0].backendRefs[1]' },
      { kind: 'Upstream', namespace: 'prod', name: 'v1', field: 'spec.rules[1].backendRefs[0]' },
      { kind: 'Upstream', namespace: 'prod', name: 'shadow', field: 'spec.rules[1].filters[0].requestMirror.backendRef' },
    ]);
  });

  it('lists L4 route, Listener and Upstream references', () => {
    const tcp = valid({ apiVersion: 'sluice/v1', kind: 'TCPRoute', metadata: { name: 'db' }, spec: { parentRefs: [{ name: 'db' }], backendRefs: [{ name: 'pg' }] } });
    expect(resourceReferences(tcp)).toEqual([
      { kind: 'Listener', namespace: 'default', name: 'db', field: 'spec.parentRefs[0]' },
      { kind: 'Upstream', namespace: 'default', name: 'pg', field: 'spec.backendRefs[0]' },
    ]);
    const li = valid({
      apiVersion: 'sluice/v1',
      kind: 'Listener',
      metadata: { name: 'web-tls' },
      spec: { port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'a' }, { name: 'b', namespace: 'certs' }] } },
    });
    expect(resourceReferences(li)).toEqual([
      { kind: 'Secret', namespace: 'default', name: 'a', field: 'spec.tls.certificateRefs[0]' },
      { kind: 'Secret', namespace: 'certs', name: 'b', field: 'spec.tls.certificateRefs[1]' },
    ]);
    const us = valid({
      apiVersion: 'sluice/v1',
      kind: 'Upstream',
      metadata: { name: 'u' },
      spec: { endpoints: [], tls: { caCertificateRefs: [{ name: 'ca' }], clientCertificateRef: { name: 'client' } } },
    });
    expect(resourceReferences(us).map((r) => `${r.kind}/${r.name}@${r.field}`)).toEqual([
      'Secret/ca@spec.tls.caCertificateRefs[0]',
      'Secret/client@spec.tls.clientCertificateRef',
    ]);
  });

  it('has no references for Secrets, Agents and plain listeners', () => {
    expect(resourceReferences(valid({ apiVersion: 'sluice/v1', kind: 'Secret', metadata: { name: 's' } }))).toEqual([]);
    expect(resourceReferences(valid({ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name: 'a' } }))).toEqual([]);
    expect(resourceReferences(valid({ apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'l' }, spec: { port: 80, protocol: 'HTTP' } }))).toEqual([]);
  });
});
