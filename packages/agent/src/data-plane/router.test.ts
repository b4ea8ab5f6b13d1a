import type { IncomingHttpHeaders } from 'node:http';
import { MatchType, type RouteMatch } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { CompiledRoute, CompiledRouteTable, LazyQuery, normalizeHost } from './router.js';
import { route, vhost } from './test-support/resources.js';

const table = new CompiledRouteTable({
  virtualHosts: [
    vhost(['shop.example.com', 'Shop.Other.com'], [], 'exact'),
    vhost(['*.example.com'], [], 'wild'),
    vhost(['*.api.example.com'], [], 'wild-longer'),
    vhost(['*'], [], 'any'),
  ],
});

describe('virtual host lookup', () => {
  it.each([
    ['shop.example.com', 'exact'],
    ['SHOP.EXAMPLE.COM:8443', 'exact'],
    ['shop.other.com', 'exact'],
    ['shop.example.com.', 'exact'],
    ['a.example.com', 'wild'],
    ['a.b.example.com', 'wild'],
    ['v1.api.example.com', 'wild-longer'],
    ['example.com', 'any'],
    ['elsewhere.test', 'any'],
    [undefined, 'any'],
    ['[::1]:80', 'any'],
  ])('%s -> %s', (host, name) => {
    expect(table.findVirtualHost(host)?.name).toBe(name);
  });

  it('answers undefined without a catch-all', () => {
    const t = new CompiledRouteTable({ virtualHosts: [vhost(['a.test'], [])] });
    expect(t.findVirtualHost('b.test')).toBeUndefined();
  });

  it('normalizes hosts', () => {
    expect(normalizeHost('[::1]:8080')).toBe('[::1]');
    expect(normalizeHost('A.B:1')).toBe('a.b');
    expect(normalizeHost('a.b')).toBe('a.b');
  });
});

function matches(match: Partial<RouteMatch>, path: string, opts: { method?: string; headers?: IncomingHttpHeaders; query?: string } = {}): boolean {
  const r = new CompiledRoute(route('ns/r/rule/0/match/0', 'ns/c', {}, match));
  return r.matches(opts.method ?? 'GET', path, opts.headers ?? {}, new LazyQuery(opts.query ?? ''));
}

const prefix = (value: string) => ({ path: { type: MatchType.MATCH_TYPE_PATH_PREFIX, value } });
const exact = (value: string) => ({ path: { type: MatchType.MATCH_TYPE_EXACT, value } });
const regex = (value: string) => ({ path: { type: MatchType.MATCH_TYPE_REGULAR_EXPRESSION, value } });

describe('route matching', () => {
  it.each([
    [prefix('/api'), '/api', true],
    [prefix('/api'), '/api/', true],
    [prefix('/api'), '/api/x/y', true],
    [prefix('/api'), '/apix', false],
    [prefix('/api/'), '/api', true],
    [prefix('/api/'), '/apix', false],
    [prefix('/'), '/anything', true],
    [exact('/a'), '/a', true],
    [exact('/a'), '/a/', false],
    [regex('/v[0-9]+/.*'), '/v2/items', true],
    [regex('/v[0-9]+'), '/v2/items', false], // full match, not search
    [regex('/v[0-9]+'), '/x/v2', false],
  ])('path %o on %s -> %s', (match, path, expected) => {
    expect(matches(match, path)).toBe(expected);
  });

  it('matches method, headers (case-insensitive names, exact or regex) and query parameters', () => {
    expect(matches({ method: 'POST' }, '/', { method: 'POST' })).toBe(true);
    expect(matches({ method: 'POST' }, '/', { method: 'GET' })).toBe(false);
    const header = (type: MatchType, value: string) => ({ headers: [{ name: 'X-Canary', type, value }] });
    expect(matches(header(MatchType.MATCH_TYPE_EXACT, 'yes'), '/', { headers: { 'x-canary': 'yes' } })).toBe(true);
    expect(matches(header(MatchType.MATCH_TYPE_EXACT, 'yes'), '/', { headers: { 'x-canary': 'yes!' } })).toBe(false);
    expect(matches(header(MatchType.MATCH_TYPE_EXACT, 'yes'), '/', { headers: {} })).toBe(false);
    expect(matches(header(MatchType.MATCH_TYPE_REGULAR_EXPRESSION, 'y.s'), '/', { headers: { 'x-canary': 'yes' } })).toBe(true);
    expect(matches(header(MatchType.MATCH_TYPE_REGULAR_EXPRESSION, 'y'), '/', { headers: { 'x-canary': 'yes' } })).toBe(false);
    const query = { queryParams: [{ name: 'v', type: MatchType.MATCH_TYPE_EXACT, value: '2' }] };
    expect(matches(query, '/', { query: 'a=1&v=2' })).toBe(true);
    expect(matches(query, '/', { query: 'v=3' })).toBe(false);
    expect(matches(query, '/', { query: '' })).toBe(false);
  });

  it('takes the first matching route in order (the translator sorts by precedence)', () => {
    const t = new CompiledRouteTable({
      virtualHosts: [
        vhost(['*'], [
          route('ns/r/rule/0/match/0', 'ns/a', {}, exact('/api/v1')),
          route('ns/r/rule/1/match/0', 'ns/b', {}, prefix('/api')),
          route('ns/r/rule/2/match/0', 'ns/c', {}, prefix('/')),
        ]),
      ],
    });
    const vh = t.findVirtualHost('x')!;
    const name = (path: string) => vh.match('GET', path, {}, new LazyQuery(''))?.name;
    expect(name('/api/v1')).toBe('ns/r/rule/0/match/0');
    expect(name('/api/v1/x')).toBe('ns/r/rule/1/match/0');
    expect(name('/other')).toBe('ns/r/rule/2/match/0');
  });

  it('parses the query once, and only for routes that need it', () => {
    const q = new LazyQuery('a=1');
    expect(q.params()).toBe(q.params());
  });
});
