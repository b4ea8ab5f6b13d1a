import { describe, expect, it } from 'vitest';
import { isDns1123Label, isDns1123Subdomain, isHeaderName, isHostname, isPort, parseCidr } from './net.js';

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', 4, 8],
    ['0.0.0.0/0', 4, 0],
    ['127.0.0.1', 4, 32],
    ['fd00::/8', 6, 8],
    ['::1', 6, 128],
    ['2001:db8::/128', 6, 128],
  ])('%s', (text, family, prefix) => {
    expect(parseCidr(text)).toMatchObject({ family, prefixLength: prefix });
  });

  it.each(['10.0.0.0/33', '10.0.0/8', '10.0.0.0/', '10.0.0.0/-1', 'fd00::/129', 'example.com/8', '', '10.0.0.0/8/8', '10.0.0.0/1e1'])(
    'rejects %j',
    (text) => {
      expect(parseCidr(text)).toBeUndefined();
    },
  );
});

describe('hostnames and names', () => {
  it('accepts RFC 1123 hostnames, wildcards only when asked', () => {
    expect(isHostname('shop.example.com')).toBe(true);
    expect(isHostname('Shop-1.Example.com')).toBe(true);
    expect(isHostname('localhost')).toBe(true);
    expect(isHostname('*.example.com')).toBe(false);
    expect(isHostname('*.example.com', { wildcard: true })).toBe(true);
    expect(isHostname('a.*.example.com', { wildcard: true })).toBe(false);
    expect(isHostname('-a.com')).toBe(false);
    expect(isHostname('a_b.com')).toBe(false);
    expect(isHostname(`${'a'.repeat(64)}.com`)).toBe(false);
    expect(isHostname('10.0.0.1')).toBe(false);
  });

  it('DNS-1123 labels and subdomains are lowercase', () => {
    expect(isDns1123Label('default')).toBe(true);
    expect(isDns1123Label('a.b')).toBe(false);
    expect(isDns1123Label('Default')).toBe(false);
    expect(isDns1123Label('a'.repeat(64))).toBe(false);
    expect(isDns1123Subdomain('shop-v1.prod')).toBe(true);
    expect(isDns1123Subdomain('shop_v1')).toBe(false);
    expect(isDns1123Subdomain('shop.')).toBe(false);
    expect(isDns1123Subdomain('a'.repeat(254))).toBe(false);
  });

  it('header names are HTTP tokens', () => {
    expect(isHeaderName('x-api-key')).toBe(true);
    expect(isHeaderName('X_Weird!')).toBe(true);
    expect(isHeaderName('x y')).toBe(false);
    expect(isHeaderName('x:y')).toBe(false);
    expect(isHeaderName('')).toBe(false);
  });

  it('ports are integers 1..65535', () => {
    expect([0, 1, 65535, 65536, 1.5].map(isPort)).toEqual([false, true, true, false, false]);
  });
});
