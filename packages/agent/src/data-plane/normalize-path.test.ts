import { describe, expect, it } from 'vitest';
import { normalizePath } from './normalize-path.js';

describe('normalizePath', () => {
  it.each([
    ['/', '/'],
    ['/api/items', '/api/items'],
    ['/api/items/', '/api/items/'],
    ['/a.b/c..d/.well-known', '/a.b/c..d/.well-known'],
    // dot segments (RFC 3986 §5.2.4)
    ['/api/../admin', '/admin'],
    ['/api/./admin', '/api/admin'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a/..', '/'],
    ['/.', '/'],
    // merged slashes
    ['//admin', '/admin'],
    ['/api//items///x', '/api/items/x'],
    ['/api/items//', '/api/items/'],
    // unreserved escapes decoded, "." included, before dot segments are removed
    ['/api/%2e%2e/admin', '/admin'],
    ['/api/%2E%2E/admin', '/admin'],
    ['/api/.%2e/admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/a%2Db%5Fc%7Ed', '/a-b_c~d'],
    // other escapes kept (hex upper-cased); an encoded slash is not a separator
    ['/api%2F..%2Fadmin', '/api%2F..%2Fadmin'],
    ['/a%2fb', '/a%2Fb'],
    ['/a/%2e%2e%2fb', '/a/..%2Fb'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
  ])('%s -> %s', (path, normalized) => {
    expect(normalizePath(path)).toBe(normalized);
  });

  it.each([
    ['/..', 'escapes the root'],
    ['/../etc/passwd', 'escapes the root'],
    ['/a/../..', 'escapes the root'],
    ['/%2e%2e/etc', 'escapes the root (encoded)'],
    ['//..//..', 'escapes the root (merged slashes)'],
    ['/a%zz', 'invalid escape'],
    ['/a%2', 'truncated escape'],
    ['/a%', 'truncated escape'],
    ['/a%00b', 'encoded NUL'],
    ['/a\0b', 'NUL'],
    ['*', 'not a path'],
  ])('refuses %s (%s)', (path) => {
    expect(normalizePath(path)).toBeUndefined();
  });

  it('returns the same string when there is nothing to do', () => {
    const path = '/api/v1/items/42';
    expect(normalizePath(path)).toBe(path);
  });
});
