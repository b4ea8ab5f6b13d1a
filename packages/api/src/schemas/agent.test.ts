import { describe, expect, it } from 'vitest';
import { formatFieldError } from '../errors.js';
import { validateResource } from '../validate.js';

describe('Agent', () => {
  it('is cluster-scoped: no namespace, spec defaults to {}, status passes through', () => {
    const status = { connected: true, controller: 'c-1', appliedRevision: 12, lag: 0, nacks: [{ kind: 'Route', name: 'default/shop', message: 'bad' }] };
    const r = validateResource({ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name: 'edge-1', labels: { pool: 'edge' } }, status });
    expect(r.ok && r.value).toEqual({ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name: 'edge-1', labels: { pool: 'edge' } }, spec: {}, status });
  });

  it('checks the spec shape', () => {
    const r = validateResource({ apiVersion: 'sluice/v1', kind: 'Agent', metadata: { name: 'a' }, spec: { labels: { 'x y': 'z' }, capabilities: 'udp', os: 'linux' } });
    expect(r.ok ? [] : r.errors.map(formatFieldError)).toEqual([
      expect.stringMatching(/^spec\.labels\[x y\]: invalid key "x y"/),
      'spec.capabilities: must be a list',
      'spec.os: unknown field "os"',
    ]);
  });
});
