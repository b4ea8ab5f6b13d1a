import { ConsistentHash_Algorithm, type ConsistentHash, type HashKey } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { cookieValue, queryValue } from './hash.js';
import { parseLoadBalancing, createBalancer } from './registry.js';
import { ctx, FakeEnv, fakes, lb, P, pickId, type Fake } from './test-support.js';

const ALGORITHMS = [
  ['ring hash', ConsistentHash_Algorithm.ALGORITHM_RING_HASH],
  ['maglev', ConsistentHash_Algorithm.ALGORITHM_MAGLEV],
] as const;

function chLb(algorithm: ConsistentHash_Algorithm, over: Partial<ConsistentHash> = {}, key: HashKey['key'] = { $case: 'header', value: 'x-user' }) {
  return lb(P.LOAD_BALANCING_POLICY_CONSISTENT_HASH, { consistentHash: { key: { key }, algorithm, boundedLoadPercent: 0, tableSize: 0, ...over } });
}

const byHeader = (user: string) => ctx<Fake>({ request: { headers: { 'x-user': user } } });
const names = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`e${i}`, 1]));

describe.each(ALGORITHMS)('consistent hash (%s)', (_name, algorithm) => {
  it('maps the same key to the same endpoint, every time and in every new table', () => {
    const a = createBalancer(chLb(algorithm), fakes(names(5)), { env: new FakeEnv(1) });
    const b = createBalancer(chLb(algorithm), fakes(names(5)), { env: new FakeEnv(2) });
    for (let k = 0; k < 500; k++) {
      const first = pickId(a, byHeader(`user-${k}`));
      for (let i = 0; i < 3; i++) expect(pickId(a, byHeader(`user-${k}`))).toBe(first);
      expect(pickId(b, byHeader(`user-${k}`))).toBe(first);
    }
  });

  it.each([3, 5, 10])('moves only about 1/N of the keys when one of %i endpoints goes', (n) => {
    const all = fakes(names(n));
    const before = createBalancer(chLb(algorithm), all);
    const after = createBalancer(chLb(algorithm), all.filter((e) => e.id !== 'e1'));
    const keys = 20_000;
    let moved = 0;
    let onRemoved = 0;
    for (let k = 0; k < keys; k++) {
      const was = pickId(before, byHeader(`k${k}`));
      if (was === 'e1') onRemoved++;
      if (pickId(after, byHeader(`k${k}`)) !== was) moved++;
    }
    // Every key that was on the removed endpoint must move; few others may.
    expect(moved / keys).toBeLessThan(1 / n + 0.02 + (algorithm === ConsistentHash_Algorithm.ALGORITHM_MAGLEV ? 0.02 : 0));
    expect(moved).toBeGreaterThanOrEqual(onRemoved);
  });

  it('spreads keys by weight, and never to weight 0', () => {
    const weights = { a: 1, b: 2, c: 5, z: 0 };
    const balancer = createBalancer(chLb(algorithm), fakes(weights));
    const counts = new Map<string, number>();
    const keys = 40_000;
    for (let k = 0; k < keys; k++) {
      const id = pickId(balancer, byHeader(`u${k}`));
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(counts.has('z')).toBe(false);
    // A ring of 160 points per unit of weight is coarser than a 65537-slot Maglev table.
    const tolerance = algorithm === ConsistentHash_Algorithm.ALGORITHM_MAGLEV ? 0.02 : 0.06;
    for (const [id, w] of Object.entries(weights)) if (w > 0) expect(Math.abs((counts.get(id) ?? 0) / keys - w / 8), id).toBeLessThan(tolerance);
  });

  it('caps any endpoint at the bounded-load factor x its share of the requests in flight', () => {
    const endpoints = fakes(names(4));
    const factor = 1.25;
    const balancer = createBalancer(chLb(algorithm, { boundedLoadPercent: 125 }), endpoints, { env: new FakeEnv(8) });
    const byId = new Map(endpoints.map((e) => [e.id, e]));
    const inFlight = new Map(endpoints.map((e) => [e.id, 0]));
    // A hot key: all requests carry it; none finishes. Without the bound all 200 land on one.
    for (let i = 1; i <= 200; i++) {
      const id = pickId(balancer, byHeader(i % 10 === 0 ? `cold-${i}` : 'hot'));
      balancer.onStart(byId.get(id)!);
      inFlight.set(id, inFlight.get(id)! + 1);
      for (const [, c] of inFlight) expect(c).toBeLessThanOrEqual(Math.ceil((factor * i) / 4));
    }
  });

  it('picks a weighted random endpoint when the request lacks the key', () => {
    const balancer = createBalancer(chLb(algorithm), fakes(names(4)), { env: new FakeEnv(4) });
    const seen = new Set(Array.from({ length: 200 }, () => pickId(balancer, ctx({ request: { headers: {} } }))));
    expect(seen.size).toBe(4);
  });

  it('walks on to another endpoint for a retry', () => {
    const endpoints = fakes(names(3));
    const balancer = createBalancer(chLb(algorithm), endpoints);
    for (let k = 0; k < 100; k++) {
      const first = pickId(balancer, byHeader(`r${k}`));
      const exclude = new Set(endpoints.filter((e) => e.id === first));
      expect(pickId(balancer, { ...byHeader(`r${k}`), exclude })).not.toBe(first);
    }
  });
});

describe('hash keys', () => {
  const request = { headers: { cookie: 'a=1; session=abc; b=2', 'x-user': 'u' }, url: '/p?x=1&user=j%C3%B6rg&y' };
  it.each<[string, HashKey['key'], boolean]>([
    ['source ip', { $case: 'sourceIp', value: true }, true],
    ['cookie', { $case: 'cookie', value: 'session' }, true],
    ['query parameter', { $case: 'queryParameter', value: 'user' }, true],
    ['missing cookie', { $case: 'cookie', value: 'nope' }, false],
  ])('%s: the same value always lands on the same endpoint', (_what, key, present) => {
    const balancer = createBalancer(chLb(ConsistentHash_Algorithm.ALGORITHM_RING_HASH, {}, key), fakes(names(8)), { env: new FakeEnv(6) });
    const picks = new Set(Array.from({ length: 50 }, () => pickId(balancer, ctx({ clientAddress: '10.0.0.7', request }))));
    expect(picks.size === 1).toBe(present);
  });

  it('reads cookies and query parameters', () => {
    expect(cookieValue('a=1; session=abc', 'session')).toBe('abc');
    expect(cookieValue('a=1', 'session')).toBeUndefined();
    expect(queryValue('/p?x=1&user=j%C3%B6rg&y', 'user')).toBe('jörg');
    expect(queryValue('/p?x=1&y', 'y')).toBe('');
    expect(queryValue('/p', 'y')).toBeUndefined();
  });
});

describe('IP hash', () => {
  it('pins each client address to one endpoint and spreads addresses evenly', () => {
    const balancer = createBalancer(lb(P.LOAD_BALANCING_POLICY_IP_HASH), fakes(names(4)), { env: new FakeEnv(2) });
    const counts = new Map<string, number>();
    for (let i = 0; i < 8_000; i++) {
      const clientAddress = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const id = pickId(balancer, ctx({ clientAddress }));
      expect(pickId(balancer, ctx({ clientAddress }))).toBe(id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const c of counts.values()) expect(Math.abs(c / 8_000 - 0.25)).toBeLessThan(0.03);
  });
});

describe('consistent hash options', () => {
  it.each<[string, ReturnType<typeof lb>, RegExp]>([
    ['no options', lb(P.LOAD_BALANCING_POLICY_CONSISTENT_HASH), /^load_balancing\.consistent_hash: required/],
    ['no key', chLb(ConsistentHash_Algorithm.ALGORITHM_RING_HASH, { key: undefined }), /^load_balancing\.consistent_hash\.key: /],
    ['Maglev size not prime', chLb(ConsistentHash_Algorithm.ALGORITHM_MAGLEV, { tableSize: 65536 }), /^load_balancing\.consistent_hash\.table_size: must be a prime/],
    ['bounded load under 1', chLb(ConsistentHash_Algorithm.ALGORITHM_MAGLEV, { boundedLoadPercent: 90 }), /^load_balancing\.consistent_hash\.bounded_load_percent/],
    ['options on another policy', { ...chLb(ConsistentHash_Algorithm.ALGORITHM_MAGLEV), policy: P.LOAD_BALANCING_POLICY_RANDOM }, /^load_balancing\.consistent_hash: must not be set/],
    ['choice count 1', lb(P.LOAD_BALANCING_POLICY_LEAST_CONNECTIONS, { choiceCount: 1 }), /^load_balancing\.choice_count/],
    ['panic over 100', lb(P.LOAD_BALANCING_POLICY_RANDOM, { panicThresholdPercent: 101 }), /^load_balancing\.panic_threshold_percent/],
  ])('rejects %s with a field path', (_what, config, error) => {
    const parsed = parseLoadBalancing(config);
    expect(parsed.ok ? 'ok' : parsed.error).toMatch(error);
  });
});
