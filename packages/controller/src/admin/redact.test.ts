import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate, tempDir, type PemPair, type TempDir } from '@sluice/testing';
import { silentLogger } from '../logger.js';
import { ResourceService } from '../resources/resource-service.js';
import { EmbeddedStore, type Store } from '../store/index.js';
import { REDACTED } from './redact.js';
import { createAdminApp, listenAdmin } from './server.js';

// Secret values through the admin API: redacted on every read path; in a write the marker
// keeps the stored value, or is refused when there is none; apply stays idempotent.
let dir: TempDir;
let store: Store;
let server: Server;
let base: string;
let pem: PemPair;

beforeAll(async () => {
  dir = await tempDir();
  store = await EmbeddedStore.open({ dataDir: dir.path });
  const resources = new ResourceService(store, { prefix: '' });
  const listening = await listenAdmin(createAdminApp({ resources, logger: silentLogger() }), '127.0.0.1', 0);
  server = listening.server;
  base = `${listening.url}/apis/sluice/v1`;
  pem = await selfSignedCertificate('shop.example.com');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await dir[Symbol.asyncDispose]();
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json') {
  const response = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': contentType }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, text, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}

const secret = (name: string) => ({
  apiVersion: 'sluice/v1',
  kind: 'Secret',
  metadata: { name, namespace: 'default' },
  type: 'tls',
  stringData: { 'tls.crt': pem.cert, 'tls.key': pem.key },
});

describe('Secret redaction', () => {
  it('shows the certificate but never the key on get, list, watch and write responses', async () => {
    const created = await call('POST', '/namespaces/default/secrets', secret('shop'));
    expect(created.status).toBe(201);
    const keyBase64 = Buffer.from(pem.key).toString('base64');
    for (const response of [created, await call('GET', '/namespaces/default/secrets/shop'), await call('GET', '/namespaces/default/secrets'), await call('GET', '/secrets')]) {
      expect(response.text).not.toContain(keyBase64);
      expect(response.text).toContain(Buffer.from(pem.cert).toString('base64'));
      expect(response.text).toContain(REDACTED);
    }
    expect((await call('GET', '/namespaces/default/secrets/shop')).body?.data).toEqual({ 'tls.crt': Buffer.from(pem.cert).toString('base64'), 'tls.key': REDACTED });

    const abort = new AbortController();
    const watch = await fetch(`${base}/namespaces/default/secrets?watch=true`, { signal: abort.signal });
    const reader = watch.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    expect(first).toContain('"ADDED"');
    expect(first).not.toContain(keyBase64);
    expect(first).toContain(REDACTED);
  });

  it('keeps the stored value where a write carries the marker back, and refuses it where there is none', async () => {
    await call('POST', '/apply', { kind: 'List', items: [secret('roundtrip')] });
    const keyBase64 = Buffer.from(pem.key).toString('base64');
    const storedKey = async () => {
      const { items } = await store.list('');
      return items.filter((kv) => kv.value.includes('"roundtrip"')).map((kv) => (JSON.parse(kv.value) as { data: Record<string, string> }).data['tls.key']);
    };
    const got = (await call('GET', '/namespaces/default/secrets/roundtrip')).body!;

    // get -o yaml | apply, edit (PUT) and a merge patch with the marker: nothing changes.
    const roundTrip = await call('POST', '/apply', { kind: 'List', items: [got] });
    expect(roundTrip.body?.items).toMatchObject([{ action: 'unchanged', object: { data: { 'tls.key': REDACTED } } }]);
    const put = await call('PUT', '/namespaces/default/secrets/roundtrip', { ...got, metadata: { ...got.metadata, labels: { edited: 'yes' } } });
    expect(put.status).toBe(200);
    expect(put.body?.metadata.labels).toEqual({ edited: 'yes' });
    const patch = await call('PATCH', '/namespaces/default/secrets/roundtrip', { data: { 'tls.key': REDACTED } }, 'application/merge-patch+json');
    expect(patch.status).toBe(200);
    expect(await storedKey()).toEqual([keyBase64]);

    // The user's own file again: unchanged but for the label the edit added.
    const again = await call('POST', '/apply', { kind: 'List', items: [{ ...secret('roundtrip'), metadata: { name: 'roundtrip', namespace: 'default', labels: { edited: 'yes' } } }] });
    expect(again.body?.items).toMatchObject([{ action: 'unchanged' }]);

    // No stored value to keep: a new Secret, a new key, stringData.
    const fresh = { ...got, metadata: { name: 'fresh', namespace: 'default' } };
    const created = await call('POST', '/namespaces/default/secrets', fresh);
    expect(created.status).toBe(422);
    expect(created.body?.details?.causes).toMatchObject([{ field: 'data.tls.key' }]);
    const applied = await call('POST', '/apply', { kind: 'List', items: [fresh] });
    expect(applied.status).toBe(422);
    expect(applied.body?.details?.causes).toMatchObject([{ field: 'items[0].data.tls.key' }]);
    const newKey = await call('PATCH', '/namespaces/default/secrets/roundtrip', { data: { extra: REDACTED } }, 'application/merge-patch+json');
    expect(newKey.body?.details?.causes).toMatchObject([{ field: 'data.extra' }]);
    const plain = await call('PATCH', '/namespaces/default/secrets/roundtrip', { stringData: { 'tls.key': REDACTED } }, 'application/merge-patch+json');
    expect(plain.body?.details?.causes).toMatchObject([{ field: 'stringData.tls.key' }]);
    expect(await storedKey()).toEqual([keyBase64]);
  });
});
