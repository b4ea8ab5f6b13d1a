import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import { CacheDir, decode, encode } from './cache-dir.js';
import { captureLogger } from './test-support/capture-logger.js';
import { cluster, listener } from './test-support/resources.js';

describe('CacheDir', () => {
  it('round-trips the applied resources, revision and snapshot version', async () => {
    await using dir = await tempDir();
    const { logger } = captureLogger();
    const cache = new CacheDir(join(dir.path, 'nested', 'cache'), logger);
    await cache.prepare();
    expect(await cache.load()).toBeUndefined();
    const config = { revision: 42, snapshotVersion: 'abc', resources: [cluster('default/api', 'c1'), listener('default/web', 'l1', 8443)] };
    await cache.save(config);
    expect(await new CacheDir(cache.dir, logger).load()).toEqual(config);
  });

  it('replaces the file atomically, leaves no temp file and keeps it private', async () => {
    await using dir = await tempDir();
    const cache = new CacheDir(dir.path, captureLogger().logger);
    await cache.save({ revision: 1, snapshotVersion: 'a', resources: [listener('default/web')] });
    await cache.save({ revision: 2, snapshotVersion: 'b', resources: [] });
    expect(await readdir(dir.path)).toEqual(['config.json']);
    expect((await stat(cache.file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(cache.file, 'utf8'))).toMatchObject({ revision: 2, resources: [] });
  });

  it('coalesces a burst of saves to the newest configuration', async () => {
    await using dir = await tempDir();
    const { logger, entries } = captureLogger();
    const cache = new CacheDir(dir.path, logger);
    const saves = [1, 2, 3, 4].map((revision) => cache.save({ revision, snapshotVersion: '', resources: [] }));
    await Promise.all(saves);
    expect((await cache.load())?.revision).toBe(4);
    expect(entries.filter((e) => e.message === 'config cache written').length).toBeLessThan(4);
  });

  it.each([
    ['not JSON', '{"format":', /JSON/],
    ['another format', JSON.stringify({ format: 'other', revision: 1, snapshotVersion: '', resources: [] }), /format is "other"/],
    ['a resource without a body', `{"format":"sluice.agent.config-cache/v1","revision":1,"snapshotVersion":"","resources":[{"name":"x","version":"1"}]}`, /resources\[0\] lacks/],
  ])('warns and starts empty on a corrupt cache: %s', async (_case, text, reason) => {
    await using dir = await tempDir();
    const { logger, entries } = captureLogger();
    const cache = new CacheDir(dir.path, logger);
    await writeFile(cache.file, text);
    expect(await cache.load()).toBeUndefined();
    expect(entries).toMatchObject([{ level: 'warn', message: 'config cache is corrupt; starting empty', file: cache.file, error: expect.stringMatching(reason) }]);
  });

  it('logs a failed write and does not reject', async () => {
    await using dir = await tempDir();
    const { logger, entries } = captureLogger();
    await writeFile(join(dir.path, 'file'), '');
    const cache = new CacheDir(join(dir.path, 'file'), logger); // a file where the directory should be
    await cache.save({ revision: 1, snapshotVersion: '', resources: [] });
    expect(entries).toMatchObject([{ level: 'warn', message: 'cannot write the config cache' }]);
  });

  it('encodes resources as proto3 JSON', () => {
    const text = encode({ revision: 3, snapshotVersion: 's', resources: [listener('default/web', 'v1', 80)] });
    expect(JSON.parse(text)).toEqual({
      format: 'sluice.agent.config-cache/v1',
      revision: 3,
      snapshotVersion: 's',
      resources: [{ name: 'default/web', version: 'v1', listener: { port: 80 } }],
    });
    expect(decode(text).resources[0]).toEqual(listener('default/web', 'v1', 80));
  });
});
