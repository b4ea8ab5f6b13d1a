import { describe, expect, it } from 'vitest';
import { formatFieldError } from '../errors.js';
import { validateResource } from '../validate.js';

const listener = (spec: Record<string, unknown>) => ({ apiVersion: 'sluice/v1', kind: 'Listener', metadata: { name: 'l' }, spec });
const errors = (spec: Record<string, unknown>): string[] => {
  const r = validateResource(listener(spec));
  return r.ok ? [] : r.errors.map(formatFieldError);
};
const tls = { certificateRefs: [{ name: 'cert' }] };

describe('Listener', () => {
  it('defaults agentSelector to {} (every agent) and tls.mode to Terminate', () => {
    const r = validateResource(listener({ port: 443, protocol: 'HTTPS', tls }));
    expect(r.ok && r.value.kind === 'Listener' && r.value.spec).toEqual({ port: 443, protocol: 'HTTPS', agentSelector: {}, tls: { mode: 'Terminate', ...tls } });
  });

  it.each([
    [{ port: 443, protocol: 'HTTPS' }, ['spec.tls: Required value: protocol HTTPS needs tls']],
    [{ port: 443, protocol: 'TLS' }, ['spec.tls: Required value: protocol TLS needs tls']],
    [{ port: 443, protocol: 'TLS', tls: { mode: 'Passthrough' } }, []],
    [{ port: 443, protocol: 'TLS', tls: { mode: 'Passthrough', ...tls } }, ['spec.tls.certificateRefs: must not be set when mode is Passthrough: the agent does not decrypt']],
    [{ port: 443, protocol: 'HTTPS', tls: { mode: 'Passthrough' } }, ['spec.tls.mode: Passthrough needs protocol TLS: HTTPS always terminates']],
    [{ port: 443, protocol: 'HTTPS', tls: {} }, ['spec.tls.certificateRefs: Required value: mode Terminate needs at least one certificate']],
    [{ port: 80, protocol: 'HTTP', tls }, ['spec.tls: must not be set when protocol is HTTP (use protocol HTTPS)']],
    [{ port: 443, protocol: 'HTTPS', tls: { ...tls, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' } }, ['spec.tls.minVersion: must not be higher than maxVersion (TLSv1.2)']],
    [{ port: 443, protocol: 'HTTPS', tls: { ...tls, minVersion: 'TLSv1.1' } }, ['spec.tls.minVersion: must be one of: TLSv1.2, TLSv1.3']],
  ])('TLS rules %j', (spec, expected) => {
    expect(errors(spec)).toEqual(expected);
  });

  it('rejects HTTP-only fields on TCP and UDP listeners', () => {
    expect(errors({ port: 5432, protocol: 'TCP', trustedProxies: ['10.0.0.0/8'], limits: { maxConnections: 5, maxRequestHeaders: 10, idleTimeout: '1m' } })).toEqual([
      'spec.trustedProxies: must not be set when protocol is TCP: X-Forwarded-For is HTTP only',
      'spec.limits.maxRequestHeaders: must not be set when protocol is TCP: HTTP only',
    ]);
    expect(errors({ port: 53, protocol: 'UDP', proxyProtocol: { accept: true }, limits: { requestBodyTimeout: '1s' } })).toEqual([
      'spec.limits.requestBodyTimeout: must not be set when protocol is UDP: HTTP only',
      'spec.proxyProtocol: must not be set when protocol is UDP',
    ]);
  });

  it('takes h2c on HTTP listeners only, and an access log on any', () => {
    expect(errors({ port: 80, protocol: 'HTTP', h2c: true, accessLog: { enabled: true } })).toEqual([]);
    expect(errors({ port: 443, protocol: 'HTTPS', tls, h2c: true })).toEqual(['spec.h2c: must not be set when protocol is HTTPS: HTTPS offers h2 through tls.alpnProtocols']);
    expect(errors({ port: 5432, protocol: 'TCP', h2c: true, accessLog: {} })).toEqual(['spec.accessLog.enabled: Required value', 'spec.h2c: must not be set when protocol is TCP']);
  });

  it('reports cross-field problems together with unrelated field problems', () => {
    expect(errors({ port: 70000, protocol: 'HTTPS', trustedProxies: ['10.0.0.0/33', '::1'] })).toEqual([
      'spec.port: must be <= 65535',
      'spec.trustedProxies[0]: invalid CIDR "10.0.0.0/33"',
      'spec.tls: Required value: protocol HTTPS needs tls',
    ]);
  });

  it('checks the agentSelector shape', () => {
    expect(
      errors({
        port: 80,
        protocol: 'HTTP',
        agentSelector: {
          matchLabels: { pool: 'edge' },
          matchExpressions: [
            { key: 'zone', operator: 'In' },
            { key: 'gpu', operator: 'Exists', values: ['x'] },
            { key: 'a', operator: 'Gt', values: ['1'] },
          ],
        },
      }),
    ).toEqual([
      'spec.agentSelector.matchExpressions[0].values: must list at least one value for operator In',
      'spec.agentSelector.matchExpressions[1].values: must be empty for operator Exists',
      'spec.agentSelector.matchExpressions[2].operator: must be one of: In, NotIn, Exists, DoesNotExist',
    ]);
  });

  it('checks limits and durations', () => {
    expect(errors({ port: 80, protocol: 'HTTP', limits: { maxConnections: 0, idleTimeout: '60' } })).toEqual([
      'spec.limits.maxConnections: must be >= 1',
      'spec.limits.idleTimeout: invalid duration "60": use a number and a unit, like 100ms, 5s or 1m30s',
    ]);
  });
});
