import { describe, expect, it } from 'vitest';
import { CompiledHeaderModifier } from './header-modifier.js';
import { CompiledRequestRedirect } from './request-redirect.js';
import { replacePrefix } from './url-rewrite.js';

describe('filters', () => {
  it.each([
    ['/api/x', '/api', '/v1', '/v1/x'],
    ['/api', '/api', '/v1', '/v1'],
    ['/api/x', '/api', '/', '/x'],
    ['/api', '/api', '/', '/'],
    ['/x', '', '/v1', '/v1/x'],
    ['/api/x', '/api', '', '/x'],
  ])('replacePrefix(%s, %s, %s) = %s', (path, prefix, replacement, expected) => {
    expect(replacePrefix(path, prefix, replacement)).toBe(expected);
  });

  it('modifies request header lists and response header objects', () => {
    const m = new CompiledHeaderModifier({ set: [{ name: 'X-Env', value: 'prod' }], add: [{ name: 'x-add', value: '2' }], remove: ['X-Debug'] });
    expect(m.applyToList(['X-ENV', 'dev', 'x-debug', '1', 'x-add', '1', 'keep', 'k'])).toEqual(['x-add', '1', 'keep', 'k', 'x-env', 'prod', 'x-add', '2']);
    const headers: Record<string, string | string[] | undefined> = { 'x-env': 'dev', 'x-debug': '1', 'x-add': '1' };
    m.applyToObject(headers);
    expect(headers).toEqual({ 'x-env': 'prod', 'x-add': ['1', '2'] });
  });

  it('builds redirect locations', () => {
    const r = (over: Partial<ConstructorParameters<typeof CompiledRequestRedirect>[0]>) =>
      new CompiledRequestRedirect({ scheme: '', hostname: '', port: 0, statusCode: 0, ...over });
    expect(r({}).statusCode).toBe(302);
    expect(r({ scheme: 'https' }).location('http', 'a.test', '8080', '/p', 'q=1', '')).toBe('https://a.test/p?q=1');
    expect(r({ hostname: 'b.test' }).location('http', 'a.test', '8080', '/p', '', '')).toBe('http://b.test:8080/p');
    expect(r({ port: 443, scheme: 'https' }).location('http', 'a.test', undefined, '/p', '', '')).toBe('https://a.test/p');
    expect(r({ path: { $case: 'replaceFullPath', value: '/new' } }).location('http', 'a.test', undefined, '/old/x', '', '/old')).toBe('http://a.test/new');
  });
});
