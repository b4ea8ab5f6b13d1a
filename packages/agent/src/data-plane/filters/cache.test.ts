import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import CachePolicy from 'http-cache-semantics';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { edgeFilter, edgeProxy } from '../test-support/edge-proxy.js';
import { CacheStore, type CacheEntry } from './cache.js';

function entry(bytes: number, vary: [string, string][] = []): CacheEntry {
  const policy = new CachePolicy({ url: '/', method: 'GET', headers: {} }, { status: 200, headers: { 'cache-control': 'max-age=60' } });
  return { policy, status: 200, headers: {}, body: Buffer.alloc(bytes), vary, size: bytes };
}

describe('CacheStore', () => {
  it('evicts the least recently used entries to stay within its bytes', () => {
    const store = new CacheStore(300);
    store.put('a', entry(100));
    store.put('b', entry(100));
    store.put('c', entry(100));
    store.get('a');
    store.put('d', entry(100));
    expect(store.get('b')).toBeUndefined();
    expect(store.get('a')).toHaveLength(1);
    expect(store.bytes).toBe(300);
    store.put('huge', entry(301));
    expect(store.get('huge')).toBeUndefined();
    store.resize(100);
    expect(store.bytes).toBeLessThanOrEqual(100);
  });

  it('keeps one entry per Vary value set under a key', () => {
    const store = new CacheStore(1000);
    store.put('k', entry(10, [['accept-language', 'en']]));
    store.put('k', entry(10, [['accept-language', 'de']]));
    store.put('k', entry(20, [['accept-language', 'en']]));
    expect(store.get('k')?.map((e) => e.vary[0]?.[1])).toEqual(['de', 'en']);
    expect(store.bytes).toBe(30);
  });
});

describe('Cache through the proxy', () => {
  async function get(origin: string, path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await request(`${origin}${path}`, { headers, method: method as 'GET' });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, text: body.toString(), body };
  }

  /** Answers with the Cache-Control named by the path, and a body counting the backend's requests. */
  function origin(): (req: IncomingMessage, res: ServerResponse) => void {
    let n = 0;
    return (req, res) => {
      n++;
      const url = req.url ?? '/';
      const headers: Record<string, string> = { 'content-type': 'text/plain', etag: '"e1"', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' };
      if (url.startsWith('/public')) headers['cache-control'] = 'public, max-age=60';
      if (url.startsWith('/private')) headers['cache-control'] = 'private, max-age=60';
      if (url.startsWith('/no-store')) headers['cache-control'] = 'no-store';
      if (url.startsWith('/cookie')) {
        headers['cache-control'] = 'max-age=60';
        headers['set-cookie'] = 'a=b';
      }
      if (url.startsWith('/plain')) delete headers['cache-control'];
      if (url.startsWith('/lang')) {
        headers['cache-control'] = 'max-age=60';
        headers.vary = 'Accept-Language';
      }
      if (url.startsWith('/big')) headers['cache-control'] = 'max-age=60';
      if (req.headers['if-none-match'] === '"e1"') {
        res.writeHead(304, { etag: '"e1"', 'cache-control': 'public, max-age=60' });
        res.end();
        return;
      }
      const body = url.startsWith('/big') ? `${n}:${'x'.repeat(20_000)}` : url.startsWith('/lang') ? `${n}:${req.headers['accept-language'] ?? ''}` : `${n}`;
      res.writeHead(200, headers);
      res.end(body);
    };
  }

  it('answers a fresh response from memory: MISS, then HIT with Age', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    const first = await get(proxy.origin, '/public');
    expect([first.headers['x-cache'], first.text]).toEqual(['MISS', '1']);
    const second = await get(proxy.origin, '/public');
    expect([second.headers['x-cache'], second.text, second.headers.etag]).toEqual(['HIT', '1', '"e1"']);
    expect(second.headers.age).toMatch(/^\d+$/);
    expect(second.headers.server).toBeUndefined();
    const head = await get(proxy.origin, '/public', {}, 'HEAD');
    expect([head.status, head.headers['x-cache'], head.text]).toEqual([200, 'HIT', '']);
    // Another query string is another resource.
    expect((await get(proxy.origin, '/public?x=1')).headers['x-cache']).toBe('MISS');
    expect(proxy.backend.requests).toBe(2);
  });

  it('never stores private, no-store, Set-Cookie, authorized or unlabelled responses', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    for (const path of ['/private', '/no-store', '/cookie', '/plain']) {
      await get(proxy.origin, path);
      expect({ path, cache: (await get(proxy.origin, path)).headers['x-cache'] }).toEqual({ path, cache: 'MISS' });
    }
    await get(proxy.origin, '/public-auth', { authorization: 'Bearer x' });
    expect((await get(proxy.origin, '/public-auth', { authorization: 'Bearer x' })).headers['x-cache']).toBeUndefined();
    expect(proxy.backend.requests).toBe(10);
  });

  it('stores unlabelled responses for the default TTL', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache({ defaultTtlMs: 60_000 })], origin());
    await get(proxy.origin, '/plain');
    const again = await get(proxy.origin, '/plain');
    expect([again.headers['x-cache'], again.text, again.headers['cache-control']]).toEqual(['HIT', '1', undefined]);
  });

  it('keeps one variant per Vary value', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    const en1 = await get(proxy.origin, '/lang', { 'accept-language': 'en' });
    const de1 = await get(proxy.origin, '/lang', { 'accept-language': 'de' });
    const en2 = await get(proxy.origin, '/lang', { 'accept-language': 'en' });
    const de2 = await get(proxy.origin, '/lang', { 'accept-language': 'de' });
    expect([en1.text, de1.text, en2.text, de2.text]).toEqual(['1:en', '2:de', '1:en', '2:de']);
    expect([en2.headers['x-cache'], de2.headers['x-cache']]).toEqual(['HIT', 'HIT']);
  });

  it('revalidates with the stored validators; a 304 refreshes the entry', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    await get(proxy.origin, '/public');
    const revalidated = await get(proxy.origin, '/public', { 'cache-control': 'max-age=0' });
    expect([revalidated.status, revalidated.headers['x-cache'], revalidated.text]).toEqual([200, 'REVALIDATED', '1']);
    expect(proxy.backend.last?.headers['if-none-match']).toBe('"e1"');
    expect((await get(proxy.origin, '/public')).headers['x-cache']).toBe('HIT');
    expect(proxy.backend.requests).toBe(2);
  });

  it("answers the client's own If-None-Match with a 304 from the cache", async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    await get(proxy.origin, '/public');
    const conditional = await get(proxy.origin, '/public', { 'if-none-match': 'W/"e1"' });
    expect([conditional.status, conditional.headers['x-cache'], conditional.headers.etag, conditional.text]).toEqual([304, 'HIT', '"e1"', '']);
    expect(proxy.backend.requests).toBe(1);
  });

  it('drops the stored response of a URL after a successful unsafe request to it', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    await get(proxy.origin, '/public');
    expect((await get(proxy.origin, '/public')).headers['x-cache']).toBe('HIT');
    await get(proxy.origin, '/public?other');
    const post = await get(proxy.origin, '/public', {}, 'POST');
    expect([post.status, post.headers['x-cache']]).toEqual([200, undefined]);
    expect((await get(proxy.origin, '/public')).headers['x-cache']).toBe('MISS');
    // Another URL keeps its entry.
    expect((await get(proxy.origin, '/public?other')).headers['x-cache']).toBe('HIT');
  });

  it('does not store bodies over the per-entry cap', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache({ maxBytes: 1 << 20, maxEntryBytes: 10_000 })], origin());
    await get(proxy.origin, '/big');
    expect((await get(proxy.origin, '/big')).headers['x-cache']).toBe('MISS');
  });

  it('survives new versions of the route; a new purge token starts it empty', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache()], origin());
    await get(proxy.origin, '/public');
    await proxy.reapply([edgeFilter.cache()]);
    expect((await get(proxy.origin, '/public')).headers['x-cache']).toBe('HIT');
    await proxy.reapply([edgeFilter.cache({ purgeToken: '2026-11-26T19:00:00Z' })]);
    expect((await get(proxy.origin, '/public')).headers['x-cache']).toBe('MISS');
    expect((await get(proxy.origin, '/public')).headers['x-cache']).toBe('HIT');
  });

  it('serves cached identity bodies compressed to clients that accept it', async () => {
    await using proxy = await edgeProxy([edgeFilter.cache(), edgeFilter.compression({ minBytes: 1 })], origin());
    await get(proxy.origin, '/big');
    const hit = await get(proxy.origin, '/big', { 'accept-encoding': 'gzip' });
    expect([hit.headers['x-cache'], hit.headers['content-encoding'], hit.headers.vary]).toEqual(['HIT', 'gzip', 'Accept-Encoding']);
    expect(gunzipSync(hit.body).toString()).toMatch(/^1:x+$/);
    const plain = await get(proxy.origin, '/big');
    expect([plain.headers['x-cache'], plain.headers['content-encoding']]).toEqual(['HIT', undefined]);
  });
});
