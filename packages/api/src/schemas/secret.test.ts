import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatFieldError } from '../errors.js';
import { validateResource } from '../validate.js';
import { parseYamlDocuments } from '../yaml.js';

const example = (() => {
  const path = fileURLToPath(new URL('../../../../../shared/api/secret.yaml', import.meta.url));
  const r = parseYamlDocuments(readFileSync(path, 'utf8'));
  if (!r.ok) throw new Error(r.error);
  return r.docs[0]?.object as { stringData: Record<string, string> };
})();
const CRT = example.stringData['tls.crt']!;
const KEY = example.stringData['tls.key']!;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

const secret = (body: Record<string, unknown>) => ({ apiVersion: 'sluice/v1', kind: 'Secret', metadata: { name: 's' }, ...body });
const errors = (body: Record<string, unknown>): string[] => {
  const r = validateResource(secret(body));
  return r.ok ? [] : r.errors.map(formatFieldError);
};

describe('Secret', () => {
  it('folds stringData into data, base64-encoded, over existing keys, and drops stringData', () => {
    const r = validateResource(secret({ data: { a: b64('old'), keep: b64('k') }, stringData: { a: 'new', b: 'plain text' } }));
    expect(r.ok && r.value).toEqual({
      apiVersion: 'sluice/v1',
      kind: 'Secret',
      metadata: { name: 's', namespace: 'default' },
      type: 'opaque',
      data: { a: b64('new'), keep: b64('k'), b: b64('plain text') },
    });
  });

  it('accepts a tls Secret given as stringData or as data', () => {
    expect(errors({ type: 'tls', stringData: { 'tls.crt': CRT, 'tls.key': KEY } })).toEqual([]);
    expect(errors({ type: 'tls', data: { 'tls.crt': b64(CRT), 'tls.key': b64(KEY) } })).toEqual([]);
    expect(errors({ type: 'tls', data: { 'tls.crt': b64(CRT) }, stringData: { 'tls.key': KEY } })).toEqual([]);
  });

  it('requires tls.crt and tls.key for type tls', () => {
    expect(errors({ type: 'tls' })).toEqual([
      'data[tls.crt]: Required value: type tls needs tls.crt in data or stringData',
      'data[tls.key]: Required value: type tls needs tls.key in data or stringData',
    ]);
  });

  it('checks that the PEM parses and the key matches the certificate', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(errors({ type: 'tls', stringData: { 'tls.crt': CRT, 'tls.key': other } })).toEqual(['stringData[tls.key]: does not match the certificate in tls.crt']);
    expect(errors({ type: 'tls', stringData: { 'tls.crt': 'hello', 'tls.key': 'world' } })).toEqual([
      'stringData[tls.crt]: must be a PEM certificate (-----BEGIN CERTIFICATE-----)',
      'stringData[tls.key]: must be a PEM private key (-----BEGIN PRIVATE KEY-----)',
    ]);
    const broken = CRT.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA');
    expect(errors({ type: 'tls', stringData: { 'tls.crt': broken, 'tls.key': KEY } })[0]).toMatch(/^stringData\[tls\.crt\]: PEM block 1 is not a valid certificate/);
    expect(errors({ type: 'tls', stringData: { 'tls.crt': KEY, 'tls.key': KEY } })[0]).toBe('stringData[tls.crt]: PEM block 1 is a PRIVATE KEY, expected a CERTIFICATE');
  });

  it('checks data keys and base64, and reports metadata problems in the same pass', () => {
    expect(validateResource({ ...secret({ type: 'tls', data: { 'bad key': 'x', ok: '!!' } }), metadata: { name: 'S' } }).ok).toBe(false);
    expect(errors({ data: { 'bad key': b64('x'), ok: '!!' }, spec: {} })).toEqual([
      `data[bad key]: invalid key "bad key": must be letters, digits, '-', '_' or '.', at most 253 characters`,
      'data.ok: must be base64 (use stringData for plain text)',
      'spec: unknown field "spec"',
    ]);
    const r = validateResource({ ...secret({ type: 'tls' }), metadata: { name: 'Bad' } });
    expect(r.ok ? [] : r.errors.map((e) => e.field)).toEqual(['metadata.name', 'data[tls.crt]', 'data[tls.key]']);
  });

  it('rejects unknown secret types', () => {
    expect(errors({ type: 'kubernetes.io/tls' })).toEqual(['type: must be one of: tls, opaque']);
  });
});
