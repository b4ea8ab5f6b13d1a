import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate, tempDir, type PemPair, type TempDir } from '@sluice/testing';
import { silentLogger } from '../logger.js';
import { ResourceService } from '../resources/resource-service.js';
import { EmbeddedStore, type Store } from '../store/index.js';
import { REDACTED } from './redact.js';
import { createAdminApp, listenAdmin } from './server.js';

// Secret values through the admin API: redacted on every read path, the marker refused on
// writes, and an apply of the real values still idempotent.
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

  it('refuses the marker on writes, naming the field, and keeps apply of real values idempotent', async () => {
    await call('POST', '/apply', { kind: 'List', items: [secret('roundtrip')] });
    const got = (await call('GET', '/namespaces/default/secrets/roundtrip')).body!;
    const put = await call('PUT', '/namespaces/default/secrets/roundtrip', got);
    expect(put.status).toBe(422);
    expect(put.body?.details?.causes).toMatchObject([{ field: 'data.tls.key' }]);
    const patch = await call('PATCH', '/namespaces/default/secrets/roundtrip', { data: { 'tls.key': REDACTED } }, 'application/merge-patch+json');
    expect(patch.status).toBe(422);
    const apply = await call('POST', '/apply', { kind: 'List', items: [got] });
    expect(apply.status).toBe(422);
    expect(apply.body?.details?.causes).toMatchObject([{ field: 'items[0].data.tls.key' }]);

    // The user's own file, applied again: unchanged, and the stored key is intact.
    const again = await call('POST', '/apply', { kind: 'List', items: [secret('roundtrip')] });
    expect(again.body?.items).toMatchObject([{ action: 'unchanged', object: { data: { 'tls.key': REDACTED } } }]);
    const stored = await store.list('');
    expect(stored.items.some((kv) => kv.value.includes(Buffer.from(pem.key).toString('base64')))).toBe(true);
  });
});
