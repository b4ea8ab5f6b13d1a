import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ManagedProcess, repoRoot, tempDir } from '@sluice/testing';
import { EmbeddedStore, prefixEnd } from './embedded-store.js';
import type { WatchBatch } from './store.js';
import { collect, expectStoreError, put, untilRevision } from './store-contract.js';

/**
 * A writer script for a plain `node` child process. It runs the BUILT store (npm test builds
 * before it runs tests), so the child executes exactly the code that ships.
 */
function writerScript(dir: string): string {
  const built = pathToFileURL(join(repoRoot, 'packages/controller/dist/store/embedded-store.js')).href;
  const script = join(dir, 'writer.mjs');
  // Opens the store and writes forever, printing each revision only once txn() resolved.
  writeFileSync(
    script,
    `import { EmbeddedStore } from ${JSON.stringify(built)};
try {
  const store = await EmbeddedStore.open({ dataDir: process.argv[2] });
  console.log('open');
  for (let i = 0; ; i++) {
    const { revision } = await store.txn([], [{ type: 'put', key: 'k/' + (i % 10), value: String(i) }]);
    console.log('committed ' + revision + ' ' + i);
  }
} catch (error) {
  console.error(error.code, error.message);
  process.exit(1);
}
`,
  );
  return script;
}

function writerProcess(script: string, dataDir: string): ManagedProcess {
  return new ManagedProcess(process.execPath, [script, dataDir]);
}

describe('EmbeddedStore', () => {
  it('describes itself by its file', async () => {
    await using dir = await tempDir();
    const store = await EmbeddedStore.open({ dataDir: dir.path });
    expect(store.kind).toBe('embedded');
    expect(store.description).toBe(`embedded store at ${dir.path}/sluice.db`);
    await store.close();
  });

  it('survives close and reopen: data, revision and watch history', async () => {
    await using dir = await tempDir();
    const first = await EmbeddedStore.open({ dataDir: dir.path });
    const r1 = await put(first, 'a', '1');
    const r2 = await put(first, 'a', '2');
    const r3 = (await first.txn([], [{ type: 'delete', key: 'a' }, { type: 'put', key: 'b', value: 'b' }])).revision;
    await first.close();

    const second = await EmbeddedStore.open({ dataDir: dir.path });
    expect(await second.revision()).toBe(r3);
    expect(await second.get('a')).toBeUndefined();
    expect(await second.get('b')).toEqual({ key: 'b', value: 'b', createRevision: r3, modRevision: r3 });
    expect(await put(second, 'c', 'c')).toBe(r3 + 1);
    const history = await collect(second, '', r1, untilRevision(r3 + 1));
    expect(history.map((b) => b.revision)).toEqual([r1, r2, r3, r3 + 1]);
    expect(history[2]!.events.map((e) => [e.type, e.kv.key, e.prevKv?.value])).toEqual([
      ['delete', 'a', '2'],
      ['put', 'b', undefined],
    ]);
    await second.close();

    // A revision is never reused, even when every key has been deleted.
    const third = await EmbeddedStore.open({ dataDir: dir.path });
    await third.txn([], [{ type: 'delete', key: 'b' }, { type: 'delete', key: 'c' }]);
    await third.close();
    const fourth = await EmbeddedStore.open({ dataDir: dir.path });
    expect(await fourth.revision()).toBe(r3 + 2);
    expect(await put(fourth, 'd', 'd')).toBe(r3 + 3);
    await fourth.close();
  });

  it('a second store on the same data dir fails clearly while the first is open', async () => {
    await using dir = await tempDir();
    const owner = await EmbeddedStore.open({ dataDir: dir.path });
    const error = await expectStoreError(EmbeddedStore.open({ dataDir: dir.path }), 'unavailable');
    expect(error.message).toContain(`data dir ${dir.path} is in use`);
    // The failed open disturbed nothing.
    expect(await put(owner, 'k', 'v')).toBe(1);
    await owner.close();
    const next = await EmbeddedStore.open({ dataDir: dir.path });
    expect((await next.get('k'))?.value).toBe('v');
    await next.close();
  });

  it('another process cannot open the data dir; a crashed owner loses no acknowledged write and leaves no lock', async () => {
    await using dir = await tempDir();
    await using code = await tempDir('sluice-store-code-');
    const script = writerScript(code.path);
    const dataDir = join(dir.path, 'data');

    await using writer = writerProcess(script, dataDir);
    const committed = (line: string) => /^committed \d+ \d+$/.test(line) && Number(line.split(' ')[1]) >= 200;
    await writer.waitForLine(committed);
    const error = await expectStoreError(EmbeddedStore.open({ dataDir }), 'unavailable');
    expect(error.message).toContain(`data dir ${dataDir} is in use`);

    await writer.stop('SIGKILL');
    const acknowledged = Math.max(...writer.stdoutLines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.split(' ')[1])));
    const store = await EmbeddedStore.open({ dataDir });
    const revision = await store.revision();
    expect(revision).toBeGreaterThanOrEqual(acknowledged);
    // Revision r wrote value r-1 to k/((r-1) % 10): the last write and its revision agree.
    expect(await store.get(`k/${(revision - 1) % 10}`)).toMatchObject({ value: String(revision - 1), modRevision: revision });
    await store.close();

    // And a child process is refused while this process holds the store.
    const holder = await EmbeddedStore.open({ dataDir });
    await using refused = writerProcess(script, dataDir);
    const exit = await refused.waitForExit();
    expect(exit.code).toBe(1);
    expect(refused.output()).toContain(`unavailable data dir ${dataDir} is in use`);
    await holder.close();
  });

  it('keeps a bounded history: older watches get compacted', async () => {
    await using dir = await tempDir();
    const store = await EmbeddedStore.open({ dataDir: dir.path, historyRevisions: 10 });
    let last = 0;
    for (let i = 0; i < 30; i++) last = await put(store, 'k', `${i}`);
    expect((await collect(store, '', last - 9, untilRevision(last))).map((b) => b.revision)).toHaveLength(10);
    await expectStoreError(collect(store, '', last - 10, () => false), 'compacted');
    await store.close();
    // The compaction point survives a restart.
    const reopened = await EmbeddedStore.open({ dataDir: dir.path, historyRevisions: 10 });
    await expectStoreError(collect(reopened, '', last - 10, () => false), 'compacted');
    await reopened.close();
  });

  it('a watcher that falls far behind replays from the log with no gap and no repeat', async () => {
    await using dir = await tempDir();
    const store = await EmbeddedStore.open({ dataDir: dir.path });
    const from = await put(store, 'k', 'start');
    const abort = new AbortController();
    const iterator = store.watch('', from, abort.signal)[Symbol.asyncIterator]();
    const seen: WatchBatch[] = [(await iterator.next()).value as WatchBatch];
    // The watcher is live now; 2500 writes overflow its queue (1000) while it reads nothing.
    for (let i = 0; i < 2500; i++) await put(store, `k${i % 3}`, `${i}`);
    for (;;) {
      const next = await iterator.next();
      seen.push(next.value as WatchBatch);
      if (seen.length === 2501) break;
    }
    abort.abort();
    expect((await iterator.next()).done).toBe(true);
    expect(seen.map((b) => b.revision)).toEqual(Array.from({ length: 2501 }, (_, i) => from + i));
    await store.close();
  });

  it('prefixEnd bounds exactly the keys with the prefix', () => {
    expect(prefixEnd('')).toBeUndefined();
    expect(prefixEnd('a/')).toBe('a0');
    expect(prefixEnd('ab')).toBe('ac');
    expect(prefixEnd('a\u{10ffff}')).toBe('b');
    expect(prefixEnd('\u{10ffff}')).toBeUndefined();
    expect(prefixEnd('a\ud7ff')).toBe('a\ue000');
  });
});
