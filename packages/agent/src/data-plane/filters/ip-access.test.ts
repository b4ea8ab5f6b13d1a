import type { IncomingMessage } from 'node:http';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { edgeFilter, edgeProxy } from '../test-support/edge-proxy.js';
import { filterClientAddress } from './client-ip.js';
import { blockList, CompiledIpAccess } from './ip-access.js';

describe('IpAccess', () => {
  it('denies what deny lists, even inside allow', () => {
    const a = new CompiledIpAccess({ allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] });
    expect(a.allows('10.2.3.4')).toBe(true);
    expect(a.allows('10.1.3.4')).toBe(false);
    expect(a.allows('192.168.0.1')).toBe(false);
    expect(a.allows('')).toBe(false);
  });

  it('allows everything a deny-only list does not name, IPv6 included', () => {
    const a = new CompiledIpAccess({ allow: [], deny: ['2001:db8::/32', '192.0.2.7'] });
    expect(a.allows('2001:db8::1')).toBe(false);
    expect(a.allows('2001:db9::1')).toBe(true);
    expect(a.allows('192.0.2.7')).toBe(false);
    expect(a.allows('192.0.2.8')).toBe(true);
    expect(a.allows('')).toBe(true);
  });

  it('answers 403 from the proxy to a denied client; the backend never sees it', async () => {
    await using proxy = await edgeProxy([edgeFilter.ipAccess([], ['127.0.0.1'])]);
    const res = await request(`${proxy.origin}/`);
    expect(res.statusCode).toBe(403);
    expect(res.headers.server).toBe('sluice');
    await res.body.text();
    expect(proxy.backend.requests).toBe(0);
  });
});

describe('filterClientAddress', () => {
  const req = (xff?: string) => ({ headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as IncomingMessage;
  const trusted = blockList(['10.0.0.0/8']);

  it('is the peer when the peer is not trusted, whatever X-Forwarded-For says', () => {
    expect(filterClientAddress(req('1.2.3.4'), '192.0.2.1', trusted)).toBe('192.0.2.1');
    expect(filterClientAddress(req('1.2.3.4'), '10.0.0.1', undefined)).toBe('10.0.0.1');
  });

  it('walks X-Forwarded-For from the right past trusted hops', () => {
    expect(filterClientAddress(req('1.2.3.4, 10.0.0.9'), '10.0.0.1', trusted)).toBe('1.2.3.4');
    expect(filterClientAddress(req('6.6.6.6, 1.2.3.4, 10.0.0.9'), '10.0.0.1', trusted)).toBe('1.2.3.4');
    expect(filterClientAddress(req('10.0.0.8'), '10.0.0.1', trusted)).toBe('10.0.0.8');
    expect(filterClientAddress(req(), '10.0.0.1', trusted)).toBe('10.0.0.1');
  });

  it('stops at an entry that is not an address', () => {
    expect(filterClientAddress(req('1.2.3.4, garbage'), '10.0.0.1', trusted)).toBe('10.0.0.1');
    expect(filterClientAddress(req('garbage, 10.0.0.7'), '10.0.0.1', trusted)).toBe('10.0.0.7');
  });
});
