import { SessionPersistence_Type, type SessionPersistence } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { compileSessionAffinity } from './session-persistence.js';
import { clusterResource } from './test-support/resources.js';
import { validateResource } from './validate.js';

const endpoints = Array.from({ length: 10 }, (_, i) => ({ id: `ep${i}`, weight: 1 }));
const config = (type: SessionPersistence_Type, over: Partial<SessionPersistence> = {}): SessionPersistence => ({ type, cookieName: '', headerName: '', ttlMs: 0, ...over });
const all = () => true;

describe('session persistence', () => {
  it('Cookie: pins to the named eligible endpoint; re-issues the cookie only for another one', () => {
    const a = compileSessionAffinity(config(SessionPersistence_Type.TYPE_COOKIE, { cookieName: 'sticky', ttlMs: 3_600_000 }), endpoints)!;
    const pinned = a.find({ cookie: 'sticky=ep3' }, '', all);
    expect(pinned).toEqual({ endpoint: endpoints[3], cookieId: 'ep3' });
    expect(a.setCookie(endpoints[3]!, pinned.cookieId)).toBeUndefined();
    expect(a.setCookie(endpoints[5]!, pinned.cookieId)).toBe('sticky=ep5; Path=/; HttpOnly; Max-Age=3600');
    expect(a.find({ cookie: 'sticky=ep3' }, '', (e) => e.id !== 'ep3').endpoint).toBeUndefined();
    expect(a.find({ cookie: 'sticky=unknown' }, '', all)).toEqual({ endpoint: undefined, cookieId: 'unknown' });
    expect(a.find({}, '', all)).toEqual({ endpoint: undefined, cookieId: '' });
    const session = compileSessionAffinity(config(SessionPersistence_Type.TYPE_COOKIE, { cookieName: 's' }), endpoints)!;
    expect(session.setCookie(endpoints[0]!, '')).toBe('s=ep0; Path=/; HttpOnly');
  });

  it('Header: a value keeps its endpoint; only the keys of an endpoint that leaves move', () => {
    const a = compileSessionAffinity(config(SessionPersistence_Type.TYPE_HEADER, { headerName: 'X-Session' }), endpoints)!;
    const keys = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const before = keys.map((k) => a.find({ 'x-session': k }, '', all).endpoint!.id);
    expect(keys.map((k) => a.find({ 'x-session': k }, '', all).endpoint!.id)).toEqual(before);
    const counts = new Map<string, number>();
    for (const id of before) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const e of endpoints) expect(counts.get(e.id)).toBeGreaterThan(60); // ~100 each
    const after = keys.map((k) => a.find({ 'x-session': k }, '', (e) => e.id !== 'ep4').endpoint!.id);
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== 'ep4') expect(after[i]).toBe(before[i]);
      else expect(after[i]).not.toBe('ep4');
    }
    expect(a.find({}, '', all).endpoint).toBeUndefined();
  });

  it('SourceIP: the client address picks the endpoint, with weights honoured', () => {
    const weighted = [
      { id: 'heavy', weight: 3 },
      { id: 'light', weight: 1 },
    ];
    const a = compileSessionAffinity(config(SessionPersistence_Type.TYPE_SOURCE_IP), weighted)!;
    let heavy = 0;
    for (let i = 0; i < 4000; i++) {
      const ip = `10.${(i >> 8) & 255}.${i & 255}.7`;
      const e = a.find({}, ip, all).endpoint!;
      expect(a.find({}, ip, all).endpoint).toBe(e);
      if (e.id === 'heavy') heavy++;
    }
    expect(heavy / 4000).toBeGreaterThan(0.7);
    expect(heavy / 4000).toBeLessThan(0.8);
  });

  it('none when unset', () => {
    expect(compileSessionAffinity(undefined, endpoints)).toBeUndefined();
    expect(compileSessionAffinity(config(SessionPersistence_Type.TYPE_UNSPECIFIED), endpoints)).toBeUndefined();
  });

  it('is checked again at the agent: a cookie or header name must be a token', () => {
    const check = (sp: SessionPersistence) => validateResource(clusterResource('default/a', undefined, { sessionPersistence: sp }))?.message;
    expect(check(config(SessionPersistence_Type.TYPE_COOKIE, { cookieName: 'sticky' }))).toBeUndefined();
    expect(check(config(SessionPersistence_Type.TYPE_COOKIE))).toMatch(/^session_persistence\.cookie_name: /);
    expect(check(config(SessionPersistence_Type.TYPE_COOKIE, { cookieName: 'a;b' }))).toMatch(/^session_persistence\.cookie_name: /);
    expect(check(config(SessionPersistence_Type.TYPE_HEADER, { headerName: 'x session' }))).toMatch(/^session_persistence\.header_name: /);
    expect(check(config(SessionPersistence_Type.UNRECOGNIZED))).toBe('session_persistence.type: unknown value');
    expect(check(config(SessionPersistence_Type.TYPE_SOURCE_IP))).toBeUndefined();
  });
});
