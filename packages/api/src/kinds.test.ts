import { describe, expect, it } from 'vitest';
import { KINDS, kindInfo, resolveKind } from './kinds.js';

describe('resolveKind', () => {
  it.each([
    ['Upstream', 'Upstream'],
    ['upstream', 'Upstream'],
    ['upstreams', 'Upstream'],
    ['us', 'Upstream'],
    ['US', 'Upstream'],
    ['li', 'Listener'],
    ['routes', 'Route'],
    ['rt', 'Route'],
    ['tcproute', 'TCPRoute'],
    ['tr', 'TCPRoute'],
    ['udproutes', 'UDPRoute'],
    ['ur', 'UDPRoute'],
    ['sec', 'Secret'],
    ['secrets', 'Secret'],
    ['ag', 'Agent'],
    ['Agents', 'Agent'],
  ])('%s -> %s', (name, kind) => {
    expect(resolveKind(name)?.kind).toBe(kind);
  });

  it.each(['', 'pods', 'upstreamz', 'u'])('does not resolve %j', (name) => {
    expect(resolveKind(name)).toBeUndefined();
  });

  it('has no ambiguous names across kinds', () => {
    const names = KINDS.flatMap((k) => [k.singular, k.plural, ...k.shortNames]);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('kindInfo', () => {
  it('accepts only the exact kind name', () => {
    expect(kindInfo('Upstream')?.plural).toBe('upstreams');
    expect(kindInfo('upstream')).toBeUndefined();
    expect(kindInfo('us')).toBeUndefined();
  });

  it('marks Agent cluster-scoped and read-only, the rest namespaced and writable', () => {
    for (const k of KINDS) {
      const isAgent = k.kind === 'Agent';
      expect(k.namespaced).toBe(!isAgent);
      expect(k.userWritable).toBe(!isAgent);
      expect(k.listKind).toBe(`${k.kind}List`);
    }
  });
});
