import { describe, expect, it } from 'vitest';
import { formatFieldError } from '../errors.js';
import { validateResource } from '../validate.js';

const route = (rule: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'sluice/v1',
  kind: 'Route',
  metadata: { name: 'r' },
  spec: { parentRefs: [{ name: 'web' }], rules: [rule], ...extra },
});
const errors = (rule: Record<string, unknown>, extra: Record<string, unknown> = {}): string[] => {
  const r = validateResource(route(rule, extra));
  return r.ok ? [] : r.errors.map(formatFieldError);
};

describe('Route matches', () => {
  it.each([
    [{ path: { type: 'Exact', value: 'api' } }, ['spec.rules[0].matches[0].path.value: must start with "/" for type Exact']],
    [{ path: { type: 'RegularExpression', value: '^/api/(v1|v2' } }, [expect.stringMatching(/^spec\.rules\[0\]\.matches\[0\]\.path\.value: invalid regular expression "\^\/api\/\(v1\|v2": /)]],
    [{ path: { type: 'RegularExpression', value: '^/api/v[0-9]+$' } }, []],
    [{ method: 'FETCH' }, ['spec.rules[0].matches[0].method: must be one of: GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH']],
    [{ headers: [{ name: 'x y', value: 'a' }] }, [expect.stringMatching(/^spec\.rules\[0\]\.matches\[0\]\.headers\[0\]\.name: invalid header name "x y"/)]],
    [{ queryParams: [{ name: 'v', value: '[', type: 'RegularExpression' }] }, [expect.stringMatching(/queryParams\[0\]\.value: invalid regular expression/)]],
  ])('%j', (match, expected) => {
    expect(errors({ matches: [match] })).toEqual(expected);
  });

  it('defaults header and query match types to Exact', () => {
    const r = validateResource(route({ matches: [{ headers: [{ name: 'x', value: '1' }], queryParams: [{ name: 'q', value: '2' }] }] }));
    expect(r.ok && r.value.kind === 'Route' && r.value.spec.rules[0]?.matches[0]).toEqual({
      headers: [{ name: 'x', value: '1', type: 'Exact' }],
      queryParams: [{ name: 'q', value: '2', type: 'Exact' }],
    });
  });

  it('accepts wildcard hostnames but not malformed ones', () => {
    expect(errors({}, { hostnames: ['*.example.com', 'shop.example.com'] })).toEqual([]);
    expect(errors({}, { hostnames: ['shop..example.com'] })[0]).toMatch(/^spec\.hostnames\[0\]: invalid hostname "shop\.\.example\.com"/);
  });
});

describe('Route filters', () => {
  it.each([
    ['RequestHeaderModifier', { requestHeaderModifier: { set: [{ name: 'x', value: 'y' }], add: [{ name: 'a', value: 'b' }], remove: ['z'] } }],
    ['ResponseHeaderModifier', { responseHeaderModifier: { remove: ['server'] } }],
    ['URLRewrite', { urlRewrite: { hostname: 'internal', path: { type: 'ReplaceFullPath', replaceFullPath: '/x' } } }],
    ['RequestRedirect', { requestRedirect: { scheme: 'https', statusCode: 301 } }],
    ['Compression', { compression: { algorithms: ['gzip'] } }],
    ['Cache', { cache: { maxBytes: 1024, defaultTTL: '30s' } }],
    ['RateLimit', { rateLimit: { requestsPerSecond: 0.5, key: { header: 'x-api-key' } } }],
    ['IPAccess', { ipAccess: { deny: ['10.0.0.1'] } }],
    ['RequestMirror', { requestMirror: { backendRef: { name: 'shadow' }, percent: 5 } }],
  ])('accepts a %s filter with its config', (type, config) => {
    expect(errors({ filters: [{ type, ...config }] })).toEqual([]);
  });

  it('requires the config field named by type, and no other', () => {
    expect(errors({ filters: [{ type: 'Cache' }] })).toEqual(['spec.rules[0].filters[0].cache: Required value: type Cache needs cache']);
    expect(errors({ filters: [{ type: 'Cache', cache: { maxBytes: 1 }, compression: {} }] })).toEqual([
      'spec.rules[0].filters[0].compression: must not be set when type is Cache',
    ]);
    expect(errors({ filters: [{ type: 'Gzip' }] })[0]).toMatch(/^spec\.rules\[0\]\.filters\[0\]\.type: must be one of: RequestHeaderModifier, /);
  });

  it('checks filter-specific rules', () => {
    expect(
      errors({
        filters: [
          { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replaceFullPath: '/x' } } },
          { type: 'RateLimit', rateLimit: { requestsPerSecond: 10, key: { sourceIP: true, header: 'x' } } },
          { type: 'IPAccess', ipAccess: {} },
          { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['x'] } },
          { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['y'] } },
        ],
      }),
    ).toEqual([
      'spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: Required value: type ReplacePrefixMatch needs replacePrefixMatch',
      'spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: must not be set when type is ReplacePrefixMatch',
      'spec.rules[0].filters[1].rateLimit.key: must set exactly one of sourceIP: true or header',
      'spec.rules[0].filters[2].ipAccess: must set allow, deny or both',
      'spec.rules[0].filters[4].type: RequestHeaderModifier may appear only once per rule (also at filters[3])',
    ]);
  });

  it('defaults rateLimit.key to sourceIP and redirect status to 302', () => {
    const r = validateResource(
      route({ filters: [{ type: 'RateLimit', rateLimit: { requestsPerSecond: 5 } }, { type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] }),
    );
    if (!r.ok || r.value.kind !== 'Route') throw new Error('invalid');
    expect(r.value.spec.rules[0]?.filters?.[0]?.rateLimit?.key).toEqual({ sourceIP: true });
    expect(r.value.spec.rules[0]?.filters?.[1]?.requestRedirect?.statusCode).toBe(302);
  });

  it('rejects URLRewrite together with RequestRedirect', () => {
    expect(
      errors({
        filters: [
          { type: 'RequestRedirect', requestRedirect: { hostname: 'a.example.com' } },
          { type: 'URLRewrite', urlRewrite: { hostname: 'b' } },
        ],
      }),
    ).toEqual(['spec.rules[0].filters[1].type: URLRewrite cannot be combined with RequestRedirect in one rule']);
  });
});

describe('Route timeouts and retries', () => {
  it('checks retry conditions, attempts and timeout order', () => {
    expect(errors({ retry: { attempts: 11, on: ['5xx', 'timeout'] }, timeouts: { request: '1s', backendRequest: '2s' } })).toEqual([
      'spec.rules[0].timeouts.backendRequest: must not be longer than request (1s)',
      'spec.rules[0].retry.attempts: must be <= 10',
      'spec.rules[0].retry.on[1]: must be one of: connect-failure, gateway-error, 5xx, reset, retriable-4xx',
    ]);
  });

  it('requires parentRefs and at least one rule', () => {
    const r = validateResource({ apiVersion: 'sluice/v1', kind: 'Route', metadata: { name: 'r' }, spec: { parentRefs: [], rules: [] } });
    expect(r.ok ? [] : r.errors.map(formatFieldError)).toEqual(['spec.parentRefs: must have at least 1 item', 'spec.rules: must have at least 1 item']);
  });
});

describe('TCPRoute and UDPRoute', () => {
  it('need parentRefs and backendRefs, and default backend weights', () => {
    const ok = validateResource({ apiVersion: 'sluice/v1', kind: 'UDPRoute', metadata: { name: 'dns' }, spec: { parentRefs: [{ name: 'dns' }], backendRefs: [{ name: 'r' }], idleTimeout: '30s' } });
    expect(ok.ok && ok.value.kind === 'UDPRoute' && ok.value.spec.backendRefs).toEqual([{ name: 'r', weight: 1 }]);
    const bad = validateResource({ apiVersion: 'sluice/v1', kind: 'TCPRoute', metadata: { name: 'db' }, spec: { parentRefs: [{ name: 'db' }], backendRefs: [], rules: [] } });
    expect(bad.ok ? [] : bad.errors.map(formatFieldError)).toEqual(['spec.backendRefs: must have at least 1 item', 'spec.rules: unknown field "rules"']);
  });

  it('take SNI hostnames on TCPRoutes (wildcards allowed), not on UDPRoutes', () => {
    const spec = { parentRefs: [{ name: 'tls' }], backendRefs: [{ name: 'b' }] };
    const ok = validateResource({ apiVersion: 'sluice/v1', kind: 'TCPRoute', metadata: { name: 'tls' }, spec: { ...spec, hostnames: ['shop.example.com', '*.api.example.com'] } });
    expect(ok.ok && ok.value.kind === 'TCPRoute' && ok.value.spec.hostnames).toEqual(['shop.example.com', '*.api.example.com']);
    const bad = validateResource({ apiVersion: 'sluice/v1', kind: 'TCPRoute', metadata: { name: 'tls' }, spec: { ...spec, hostnames: ['not a name'] } });
    expect(bad.ok ? [] : bad.errors.map(formatFieldError)).toEqual([expect.stringMatching(/^spec\.hostnames\[0\]: /)]);
    const udp = validateResource({ apiVersion: 'sluice/v1', kind: 'UDPRoute', metadata: { name: 'dns' }, spec: { ...spec, hostnames: ['a.example'] } });
    expect(udp.ok ? [] : udp.errors.map(formatFieldError)).toEqual(['spec.hostnames: unknown field "hostnames"']);
  });
});
