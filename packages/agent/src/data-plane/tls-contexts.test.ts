import { selfSignedCertificate } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import { CertificateStore, certificateNames, listenerTlsView, SniTable } from './tls-contexts.js';

const secret = (pem: { cert: string; key: string }) => ({ sources: [], certificateChain: pem.cert, privateKey: pem.key });

describe('certificate names and SNI selection', () => {
  it('reads SAN DNS names, and the CN only when there are none', async () => {
    const [san, cnOnly] = await Promise.all([selfSignedCertificate('ignored.example.com', ['A.example.com', '*.b.example.com']), selfSignedCertificate('Legacy.example.com', [])]);
    expect(certificateNames(san.cert)).toEqual(['a.example.com', '*.b.example.com']);
    expect(certificateNames(cnOnly.cert)).toEqual(['legacy.example.com']);
  });

  it('prefers exact names, then one-label wildcards, then the first certificate; earlier certificates win a shared name', async () => {
    const store = new CertificateStore();
    const [first, second, wild] = await Promise.all([
      selfSignedCertificate('first', ['shared.example.com', 'first.example.com']),
      selfSignedCertificate('second', ['shared.example.com', 'x.apps.example.com']),
      selfSignedCertificate('wild', ['*.apps.example.com']),
    ]);
    const table = new SniTable([store.certificate('first', 'v1', secret(first)), store.certificate('second', 'v1', secret(second)), store.certificate('wild', 'v1', secret(wild))]);
    expect(table.select('shared.example.com').secret).toBe('first');
    expect(table.select('x.apps.example.com.').secret).toBe('second');
    expect(table.select('Y.APPS.example.com').secret).toBe('wild');
    expect(table.select('z.y.apps.example.com').secret).toBe('first');
    expect(table.select('').secret).toBe('first');
  });

  it('builds a context once per Secret version and keys the default context by it', async () => {
    const store = new CertificateStore();
    const [a, b] = await Promise.all([selfSignedCertificate('a.example.com'), selfSignedCertificate('a.example.com')]);
    const v1 = store.certificate('default/a', 'v1', secret(a));
    expect(store.certificate('default/a', 'v1', secret(b))).toBe(v1);
    const v2 = store.certificate('default/a', 'v2', secret(b));
    expect(v2).not.toBe(v1);
    const settings = { minVersion: '', maxVersion: '', alpnProtocols: [] };
    expect(listenerTlsView([v1], settings).key).not.toBe(listenerTlsView([v2], settings).key);
    expect(listenerTlsView([v2], settings)).toMatchObject({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', alpn: ['h2', 'http/1.1'] });
    expect(() => store.certificate('default/ca', 'v1', { ...secret(a), privateKey: '' })).toThrow(/no private key/);
    store.retain(new Set());
    expect(store.last('default/a')).toBeUndefined();
  });
});
