import { generateKeyPairSync } from 'node:crypto';
import { ConsistentHash_Algorithm, LoadBalancingPolicy, MatchType, Protocol, type Listener, type ListenerTls, type Resource } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { clusterResource, endpointsResource, listenerResource, route, routeTableResource, vhost } from './test-support/resources.js';
import { parseCidr, validateResource } from './validate.js';

const table = (...routes: Parameters<typeof route>[]) => routeTableResource('default/web', [vhost(['*'], routes.map((args) => route(...args)))]);

describe('validateResource', () => {
  it('accepts the smallest valid resources', () => {
    for (const r of [listenerResource('default/web', { port: 80 }), clusterResource('default/a'), endpointsResource('default/a', [{ port: 8080 }]), table(['default/r/rule/0/match/0', 'default/a'])]) {
      expect(validateResource(r)).toBeUndefined();
    }
  });

  it('rejects a bad regular expression, naming the route and its source', () => {
    const r = table(['default/shop/rule/1/match/0', 'default/a', {}, { path: { type: MatchType.MATCH_TYPE_REGULAR_EXPRESSION, value: '/v[0-9' } }]);
    const rejection = validateResource(r);
    expect(rejection?.message).toMatch(/^virtual_hosts\[0\]\.routes\[0\] \(default\/shop\/rule\/1\/match\/0\)\.match\.path\.value: invalid regular expression "\/v\[0-9"/);
    expect(rejection?.sources).toEqual([{ kind: 'Route', namespace: 'default', name: 'shop' }]);
    const header = table(['default/shop/rule/0/match/0', 'default/a', {}, { headers: [{ name: 'x', type: MatchType.MATCH_TYPE_REGULAR_EXPRESSION, value: '(' }] }]);
    expect(validateResource(header)?.message).toContain('match.headers[0].value: invalid regular expression');
  });

  it.each([
    ['requestMirror', { cluster: 'x', percent: 1 }, 'RequestMirror'],
  ] as const)('rejects the %s filter this agent version does not implement', ($case, value, name) => {
    const filters = [{ filter: { $case, value } }] as unknown as ReturnType<typeof route>['filters'];
    const rejection = validateResource(table(['default/shop/rule/0/match/0', 'default/a', { filters }]));
    expect(rejection?.message).toContain(`filters[0]: filter ${name} is not supported by this agent version`);
    expect(rejection?.sources).toEqual([{ kind: 'Route', namespace: 'default', name: 'shop' }]);
  });

  it.each([
    ['compression', { algorithms: ['gzip', 'lzma'], minBytes: 0, contentTypes: [] }, 'algorithms[1]: unknown algorithm "lzma"'],
    ['compression', { algorithms: [], minBytes: 0, contentTypes: ['text'] }, 'content_types[0]: "text" is not a content type'],
    ['cache', { maxBytes: 0, defaultTtlMs: 1, purgeToken: '', maxEntryBytes: 0 }, 'max_bytes: must be > 0'],
    ['cache', { maxBytes: 10, defaultTtlMs: 1, purgeToken: '', maxEntryBytes: 11 }, 'max_entry_bytes: must not exceed max_bytes'],
    ['rateLimit', { requestsPerSecond: 0, burst: 1 }, 'requests_per_second: must be > 0'],
    ['rateLimit', { requestsPerSecond: 1, burst: 1, key: { key: { $case: 'header', value: 'bad header' } } }, 'key.header: "bad header" is not a header name'],
    ['rateLimit', { requestsPerSecond: 1, burst: 1, key: { key: { $case: 'cookie', value: 'c' } } }, 'key: rate limiting by cookie is not supported'],
    ['ipAccess', { allow: [], deny: [] }, 'allow: set allow, deny or both'],
    ['ipAccess', { allow: ['10.0.0.0/8'], deny: ['10.0.0.0/33'] }, 'deny[0]: "10.0.0.0/33" is not an IP address or CIDR'],
  ] as const)('rejects a bad %s filter, naming the field', ($case, value, message) => {
    const filters = [{ filter: { $case, value } }] as unknown as ReturnType<typeof route>['filters'];
    const rejection = validateResource(table(['default/shop/rule/0/match/0', 'default/a', { filters }]));
    expect(rejection?.message).toContain(`filters[0].${message}`);
  });

  it('accepts the edge filters with sensible settings, zstd included', () => {
    const filters = [
      { filter: { $case: 'compression', value: { algorithms: ['zstd', 'br', 'gzip', 'deflate'], minBytes: 0, contentTypes: ['text/*', 'application/json'] } } },
      { filter: { $case: 'cache', value: { maxBytes: 1000, defaultTtlMs: 0, purgeToken: 'x', maxEntryBytes: 0 } } },
      { filter: { $case: 'rateLimit', value: { requestsPerSecond: 5, burst: 10, key: { key: { $case: 'header', value: 'x-api-key' } } } } },
      { filter: { $case: 'ipAccess', value: { allow: ['10.0.0.0/8', '::1'], deny: [] } } },
    ] as unknown as ReturnType<typeof route>['filters'];
    expect(validateResource(table(['default/shop/rule/0/match/0', 'default/a', { filters }]))).toBeUndefined();
  });

  it('checks HTTPS listener TLS settings, naming the field', () => {
    const sources = [{ kind: 'Listener', namespace: 'default', name: 'web' }];
    const https = (tls: Partial<ListenerTls> | undefined, over: Partial<Listener> = {}) =>
      validateResource(listenerResource('default/web', { port: 443, protocol: Protocol.PROTOCOL_HTTPS, tls: tls && { certificateSecrets: ['default/cert'], minVersion: '', maxVersion: '', alpnProtocols: [], ...tls }, ...over }));
    expect(https(undefined)).toEqual({ message: 'tls: an HTTPS listener needs TLS settings (certificate_secrets)', sources });
    expect(https({})).toBeUndefined();
    expect(https({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', alpnProtocols: ['http/1.1'] })).toBeUndefined();
    expect(https({ certificateSecrets: [] })?.message).toBe('tls.certificate_secrets: an HTTPS listener needs at least one certificate Secret');
    expect(https({ minVersion: 'TLSv1.1' })?.message).toBe('tls.min_version: must be TLSv1.2 or TLSv1.3, got "TLSv1.1"');
    expect(https({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' })?.message).toBe('tls.max_version: TLSv1.2 is below min_version TLSv1.3');
    expect(https({ alpnProtocols: ['h3'] })?.message).toBe('tls.alpn_protocols[0]: must be h2 or http/1.1, got "h3"');
    expect(https({ alpnProtocols: ['h2', 'h2'] })?.message).toBe('tls.alpn_protocols[1]: "h2" is listed twice');
    expect(https({}, { h2c: true })?.message).toMatch(/^h2c: only for HTTP listeners/);
  });

  it('rejects unknown protocols, and bad ports, addresses and CIDRs', () => {
    expect(validateResource(listenerResource('default/web', { port: 5432, protocol: Protocol.PROTOCOL_TCP }))?.message).toBe('l4_route: a TCP listener needs a route');
    expect(validateResource(listenerResource('default/web', { port: 80, protocol: Protocol.PROTOCOL_UNSPECIFIED }))?.message).toMatch(/^protocol: must be set/);
    expect(validateResource(listenerResource('default/web', { port: 0 }))?.message).toBe('port: must be 1-65535, got 0');
    expect(validateResource(listenerResource('default/web', { port: 0 }), { allowEphemeralPorts: true })).toBeUndefined();
    expect(validateResource(listenerResource('default/web', { port: 70000 }))?.message).toBe('port: must be 1-65535, got 70000');
    expect(validateResource(listenerResource('default/web', { port: 80, address: 'nope' }))?.message).toContain('address');
    expect(validateResource(listenerResource('default/web', { port: 80, trustedProxies: ['10.0.0.0/33'] }))?.message).toContain('trusted_proxies[0]');
  });

  it('rejects unknown enums, bad endpoints and unsupported cluster features', () => {
    expect(validateResource(clusterResource('default/a', LoadBalancingPolicy.UNRECOGNIZED))?.message).toMatch(/^load_balancing\.policy/);
    expect(validateResource(clusterResource('default/a', LoadBalancingPolicy.LOAD_BALANCING_POLICY_UNSPECIFIED))?.message).toMatch(/^load_balancing\.policy/);
    // Each policy parses its own options: a bad one is a NACK naming the field.
    const hashed = { policy: LoadBalancingPolicy.LOAD_BALANCING_POLICY_CONSISTENT_HASH, panicThresholdPercent: 50, choiceCount: 0 };
    expect(validateResource(clusterResource('default/a', undefined, { loadBalancing: hashed }))?.message).toMatch(/^load_balancing\.consistent_hash: required/);
    const maglev = { key: { key: { $case: 'sourceIp' as const, value: true } }, algorithm: ConsistentHash_Algorithm.ALGORITHM_MAGLEV, boundedLoadPercent: 0, tableSize: 1000 };
    expect(validateResource(clusterResource('default/a', undefined, { loadBalancing: { ...hashed, consistentHash: maglev } }))?.message).toMatch(/^load_balancing\.consistent_hash\.table_size: must be a prime/);
    expect(validateResource(clusterResource('default/a', undefined, { loadBalancing: { ...hashed, consistentHash: { ...maglev, tableSize: 0 } } }))).toBeUndefined();
    expect(validateResource(clusterResource('default/a', undefined, { slowStart: { windowMs: 1000, aggression: -2 } }))?.message).toMatch(/^slow_start\.aggression/);
    const upstreamTls = (sni: string) => clusterResource('default/a', undefined, { tls: { enabled: true, sni, insecureSkipVerify: false, caSecret: 'default/ca' } });
    expect(validateResource(upstreamTls(''))).toBeUndefined();
    expect(validateResource(upstreamTls('api.internal'))).toBeUndefined();
    expect(validateResource(upstreamTls('10.0.0.1'))).toBeUndefined();
    expect(validateResource(upstreamTls('*.internal'))?.message).toBe('tls.sni: "*.internal" is not a hostname or an IP address');
    expect(validateResource(upstreamTls('a b'))?.message).toBe('tls.sni: "a b" is not a hostname or an IP address');
    const ep = endpointsResource('default/a', [{ port: 0 }]);
    expect(validateResource(ep, { clusterSource: () => ({ kind: 'Upstream', namespace: 'default', name: 'a' }) })).toEqual({
      message: 'endpoints[0].port: must be 1-65535, got 0',
      sources: [{ kind: 'Upstream', namespace: 'default', name: 'a' }],
    });
    expect(validateResource(table(['default/r/rule/0/match/0', 'default/a', { retry: { attempts: 1, on: ['sometimes'], perTryTimeoutMs: 0 } }]))?.message).toContain('retry.on[0]: unknown condition "sometimes"');
    expect(validateResource(table(['default/r/rule/0/match/0', 'default/a', {}, { path: { type: MatchType.MATCH_TYPE_UNSPECIFIED, value: '/' } }]))?.message).toContain('match.path.type');
  });

  it('checks that secrets hold a PEM certificate and key', () => {
    const secret = (certificateChain: string, privateKey: string): Resource => ({
      name: 'default/tls',
      version: 'v1',
      body: { $case: 'secret', value: { sources: [{ kind: 'Secret', namespace: 'default', name: 'tls' }], certificateChain, privateKey } },
    });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rejection = validateResource(secret('not a cert', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()));
    expect(rejection?.message).toMatch(/^certificate_chain: not a PEM certificate/);
    expect(rejection?.sources).toEqual([{ kind: 'Secret', namespace: 'default', name: 'tls' }]);
  });

  it('parses CIDRs', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(parseCidr('10.0.0.1/x')).toBeUndefined();
    expect(parseCidr('example.com')).toBeUndefined();
  });
});
