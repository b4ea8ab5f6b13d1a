import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError, type Store, type StoreErrorCode, type WatchBatch } from './store.js';

// The one behaviour both stores promise (store.ts). Test-only: imported by
// store.contract.test.ts, which runs it against an embedded store and a real etcd.

/** Opens a fresh, empty store; every call returns a new instance. Closing is the suite's job. */
export type StoreFactory = () => Promise<Store>;

export async function expectStoreError(promise: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe(code);
  return error as StoreError;
}

export async function put(store: Store, key: string, value: string): Promise<number> {
  const result = await store.txn([], [{ type: 'put', key, value }]);
  expect(result.succeeded).toBe(true);
  return result.revision;
}

/** Reads batches until `done` says so, then stops the watch; the test timeout bounds it. */
export async function collect(
  store: Store,
  prefix: string,
  fromRevision: number,
  done: (batches: WatchBatch[]) => boolean,
): Promise<WatchBatch[]> {
  const abort = new AbortController();
  const batches: WatchBatch[] = [];
  if (done(batches)) return batches;
  for await (const batch of store.watch(prefix, fromRevision, abort.signal)) {
    batches.push(batch);
    if (done(batches)) abort.abort();
  }
  return batches;
}

export const untilRevision = (revision: number) => (batches: WatchBatch[]) => (batches.at(-1)?.revision ?? 0) >= revision;

export function runStoreContract(name: string, open: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let n = 0;
    /** A key prefix no other test uses. */
    const unique = () => `t${++n}/`;
    const opened: Store[] = [];
    const openStore = async () => {
      const s = await open();
      opened.push(s);
      return s;
    };

    beforeAll(async () => {
      store = await openStore();
    });
    afterAll(async () => {
      await Promise.all(opened.map((s) => s.close()));
    });

    it('gets single keys and lists a prefix sorted by key, nothing outside it', async () => {
      const p = unique();
      expect(await store.get(`${p}missing`)).toBeUndefined();
      for (const key of ['b/2', 'a', 'b/10', 'b/1', 'b0', 'b', 'c']) await put(store, p + key, `v-${key}`);
      const revision = await store.revision();

      const b = await store.list(`${p}b/`);
      expect(b.items.map((kv) => kv.key)).toEqual([`${p}b/1`, `${p}b/10`, `${p}b/2`]);
      expect(b.revision).toBe(revision);
      expect((await store.list(`${p}b`)).items.map((kv) => kv.key.slice(p.length))).toEqual(['b', 'b/1', 'b/10', 'b/2', 'b0']);
      expect((await store.list(p)).items).toHaveLength(7);
      expect((await store.list(`${p}zz`)).items).toEqual([]);
      expect((await store.list('')).items.filter((kv) => kv.key.startsWith(p))).toHaveLength(7);

      const a = await store.get(`${p}a`);
      expect(a).toEqual({ key: `${p}a`, value: 'v-a', createRevision: a!.modRevision, modRevision: a!.modRevision });
      expect(b.items[0]).toEqual(await store.get(`${p}b/1`));
    });

    it('keeps createRevision and moves modRevision on update; unicode keys and values round-trip', async () => {
      const p = unique();
      const created = await put(store, `${p}k`, 'one');
      const updated = await put(store, `${p}k`, 'two');
      expect(await store.get(`${p}k`)).toEqual({ key: `${p}k`, value: 'two', createRevision: created, modRevision: updated });
      await put(store, `${p}ключ/ü`, 'wert ✓ \u0000 end');
      expect((await store.get(`${p}ключ/ü`))?.value).toBe('wert ✓ \u0000 end');
      expect((await store.list(`${p}ключ`)).items.map((kv) => kv.key)).toEqual([`${p}ключ/ü`]);
    });

    it('adds exactly 1 to the revision per write transaction, and nothing for one that changes nothing', async () => {
      const p = unique();
      const r0 = await store.revision();
      expect(await put(store, `${p}a`, '1')).toBe(r0 + 1);
      const multi = await store.txn([], [
        { type: 'put', key: `${p}b`, value: '1' },
        { type: 'put', key: `${p}c`, value: '1' },
        { type: 'delete', key: `${p}a` },
      ]);
      expect(multi).toEqual({ succeeded: true, revision: r0 + 2 });
      expect(await store.revision()).toBe(r0 + 2);
      expect((await store.get(`${p}b`))?.modRevision).toBe(r0 + 2);
      expect((await store.get(`${p}c`))?.modRevision).toBe(r0 + 2);

      // A failed compare and a delete of a missing key both leave the revision alone.
      expect(await store.txn([{ key: `${p}b`, modRevision: 1 }], [{ type: 'put', key: `${p}b`, value: 'x' }])).toEqual({
        succeeded: false,
        revision: r0 + 2,
      });
      expect(await store.txn([], [{ type: 'delete', key: `${p}never` }])).toEqual({ succeeded: true, revision: r0 + 2 });
      expect(await store.txn([], [])).toEqual({ succeeded: true, revision: r0 + 2 });
      expect(await put(store, `${p}b`, 'same')).toBe(r0 + 3);
      expect(await put(store, `${p}b`, 'same')).toBe(r0 + 4);
    });

    it('create-only: modRevision 0 means the key must not exist', async () => {
      const p = unique();
      const create = () => store.txn([{ key: `${p}k`, modRevision: 0 }], [{ type: 'put', key: `${p}k`, value: 'first' }]);
      const first = await create();
      expect(first.succeeded).toBe(true);
      const before = await store.revision();
      const second = await store.txn([{ key: `${p}k`, modRevision: 0 }], [{ type: 'put', key: `${p}k`, value: 'second' }]);
      expect(second).toEqual({ succeeded: false, revision: before });
      expect((await store.get(`${p}k`))?.value).toBe('first');

      // After a delete the key may be created again, with a new createRevision.
      await store.txn([], [{ type: 'delete', key: `${p}k` }]);
      const again = await create();
      expect(again.succeeded).toBe(true);
      expect((await store.get(`${p}k`))?.createRevision).toBe(again.revision);
    });

    it('compare-and-swap on modRevision: success applies, a stale revision changes nothing', async () => {
      const p = unique();
      const r1 = await put(store, `${p}k`, 'v1');
      const swapped = await store.txn([{ key: `${p}k`, modRevision: r1 }], [{ type: 'put', key: `${p}k`, value: 'v2' }]);
      expect(swapped.succeeded).toBe(true);
      const stale = await store.txn([{ key: `${p}k`, modRevision: r1 }], [{ type: 'put', key: `${p}k`, value: 'v3' }]);
      expect(stale).toEqual({ succeeded: false, revision: swapped.revision });
      expect(await store.get(`${p}k`)).toEqual({ key: `${p}k`, value: 'v2', createRevision: r1, modRevision: swapped.revision });
      // modRevision 0 fails for an existing key, a real revision fails for a missing key.
      expect((await store.txn([{ key: `${p}k`, modRevision: 0 }], [{ type: 'delete', key: `${p}k` }])).succeeded).toBe(false);
      expect((await store.txn([{ key: `${p}missing`, modRevision: r1 }], [{ type: 'put', key: `${p}x`, value: '' }])).succeeded).toBe(false);
      expect(await store.get(`${p}x`)).toBeUndefined();
    });

    it('multi-key transactions are atomic: one failing compare writes nothing', async () => {
      const p = unique();
      const ra = await put(store, `${p}a`, 'a1');
      const rb = await put(store, `${p}b`, 'b1');
      await put(store, `${p}c`, 'c1');
      const before = await store.list(p);
      const ops = [
        { type: 'put', key: `${p}a`, value: 'a2' },
        { type: 'put', key: `${p}b`, value: 'b2' },
        { type: 'put', key: `${p}new`, value: 'n' },
        { type: 'delete', key: `${p}c` },
      ] as const;
      const failed = await store.txn([{ key: `${p}a`, modRevision: ra }, { key: `${p}b`, modRevision: rb + 100 }], [...ops]);
      expect(failed.succeeded).toBe(false);
      expect(await store.list(p)).toEqual(before);

      const ok = await store.txn([{ key: `${p}a`, modRevision: ra }, { key: `${p}b`, modRevision: rb }, { key: `${p}new`, modRevision: 0 }], [...ops]);
      expect(ok).toEqual({ succeeded: true, revision: before.revision + 1 });
      const after = await store.list(p);
      expect(after.items.map((kv) => [kv.key.slice(p.length), kv.value, kv.modRevision])).toEqual([
        ['a', 'a2', ok.revision],
        ['b', 'b2', ok.revision],
        ['new', 'n', ok.revision],
      ]);
    });

    it('deletes: the key is gone from get and list, deleting a missing key is a no-op', async () => {
      const p = unique();
      await put(store, `${p}a`, '1');
      await put(store, `${p}b`, '2');
      const deleted = await store.txn([], [{ type: 'delete', key: `${p}a` }]);
      expect(deleted.succeeded).toBe(true);
      expect(await store.get(`${p}a`)).toBeUndefined();
      expect((await store.list(p)).items.map((kv) => kv.key)).toEqual([`${p}b`]);
      expect(await store.txn([], [{ type: 'delete', key: `${p}a` }])).toEqual({ succeeded: true, revision: deleted.revision });
      // Deleting a key deletes only that key, not keys it prefixes.
      await put(store, `${p}b/child`, '3');
      await store.txn([], [{ type: 'delete', key: `${p}b` }]);
      expect((await store.list(p)).items.map((kv) => kv.key)).toEqual([`${p}b/child`]);
    });

    it('rejects malformed requests with code invalid', async () => {
      const p = unique();
      await expectStoreError(store.get(''), 'invalid');
      await expectStoreError(store.txn([], [{ type: 'put', key: '', value: 'x' }]), 'invalid');
      await expectStoreError(store.txn([{ key: `${p}a`, modRevision: -1 }], []), 'invalid');
      await expectStoreError(
        store.txn([], [
          { type: 'put', key: `${p}a`, value: '1' },
          { type: 'delete', key: `${p}a` },
        ]),
        'invalid',
      );
      expect(await store.get(`${p}a`)).toBeUndefined();
      const watch = store.watch(p, 0, new AbortController().signal);
      await expectStoreError((async () => {
        for await (const _ of watch) break;
      })(), 'invalid');
      await expectStoreError(store.compact((await store.revision()) + 10), 'invalid');
    });

    it('watch replays history from a revision, then continues live, one batch per revision with prevKv', async () => {
      const p = unique();
      await put(store, `${p}a`, 'a0');
      const r1 = await put(store, `${p}a`, 'a1');
      const r2 = (await store.txn([], [
        { type: 'put', key: `${p}b`, value: 'b1' },
        { type: 'put', key: `${p}c`, value: 'c1' },
      ])).revision;
      const r3 = (await store.txn([], [{ type: 'delete', key: `${p}a` }])).revision;
      await put(store, 'elsewhere/x', 'not watched');

      const abort = new AbortController();
      const batches: WatchBatch[] = [];
      let r4 = 0;
      for await (const batch of store.watch(p, r1, abort.signal)) {
        batches.push(batch);
        // The history is in; write live only now, so the last batch must come from the live path.
        if (batch.revision === r3) r4 = (await store.txn([], [{ type: 'put', key: `${p}c`, value: 'c2' }])).revision;
        if (batch.revision === r4) abort.abort();
      }
      expect(batches.map((b) => b.revision)).toEqual([r1, r2, r3, r4]);
      expect(batches[0]!.events).toEqual([
        {
          type: 'put',
          kv: { key: `${p}a`, value: 'a1', createRevision: r1 - 1, modRevision: r1 },
          prevKv: { key: `${p}a`, value: 'a0', createRevision: r1 - 1, modRevision: r1 - 1 },
        },
      ]);
      expect(batches[1]!.events).toEqual([
        { type: 'put', kv: { key: `${p}b`, value: 'b1', createRevision: r2, modRevision: r2 } },
        { type: 'put', kv: { key: `${p}c`, value: 'c1', createRevision: r2, modRevision: r2 } },
      ]);
      expect(batches[2]!.events).toEqual([
        {
          type: 'delete',
          kv: { key: `${p}a`, value: '', createRevision: 0, modRevision: r3 },
          prevKv: { key: `${p}a`, value: 'a1', createRevision: r1 - 1, modRevision: r1 },
        },
      ]);
      expect(batches[3]!.events).toEqual([
        {
          type: 'put',
          kv: { key: `${p}c`, value: 'c2', createRevision: r2, modRevision: r4 },
          prevKv: { key: `${p}c`, value: 'c1', createRevision: r2, modRevision: r2 },
        },
      ]);
    });

    it('watch filters a multi-key transaction to the watched prefix', async () => {
      const p = unique();
      const r = (await store.txn([], [
        { type: 'put', key: `${p}in/1`, value: '1' },
        { type: 'put', key: `${p}out/1`, value: '1' },
        { type: 'put', key: `${p}in/2`, value: '2' },
      ])).revision;
      const batches = await collect(store, `${p}in/`, r, untilRevision(r));
      expect(batches).toHaveLength(1);
      expect(batches[0]!.events.map((e) => e.kv.key)).toEqual([`${p}in/1`, `${p}in/2`]);
    });

    it('a watch resumed from a later revision sees exactly the events it missed', async () => {
      const p = unique();
      const revisions: number[] = [];
      for (let i = 0; i < 6; i++) revisions.push(await put(store, `${p}k${i % 2}`, `v${i}`));
      const seen = await collect(store, p, revisions[0]!, untilRevision(revisions[2]!));
      expect(seen.map((b) => b.revision)).toEqual(revisions.slice(0, 3));
      const resumed = await collect(store, p, seen.at(-1)!.revision + 1, untilRevision(revisions[5]!));
      expect(resumed.map((b) => b.revision)).toEqual(revisions.slice(3));
      expect(resumed.map((b) => b.events[0]!.kv.value)).toEqual(['v3', 'v4', 'v5']);
    });

    it('watch from a future revision waits for it', async () => {
      const p = unique();
      const now = await store.revision();
      const pending = collect(store, p, now + 3, untilRevision(now + 3));
      const written: number[] = [];
      for (let i = 0; i < 3; i++) written.push(await put(store, `${p}k`, `${i}`));
      expect(written).toEqual([now + 1, now + 2, now + 3]);
      expect((await pending).map((b) => b.revision)).toEqual([now + 3]);
    });

    it('no gap and no duplicate between history and live events under concurrent writes', async () => {
      const p = unique();
      const first = await put(store, `${p}w/0`, '0');
      // More than one replay page of the embedded store (500 revisions) comes from history.
      const writes = 1200;
      const writers = 4;
      let startWatch!: () => void;
      const watchStarted = new Promise<void>((resolve) => (startWatch = resolve));
      // Writers race each other and the watcher: the watch starts while writes are in flight,
      // so some revisions come from the history and the rest live.
      const writing = Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const revisions: number[] = [];
          for (let i = w; i < writes; i += writers) {
            if (i === (writes * 3) / 4) startWatch();
            revisions.push(await put(store, `${p}w/${i % 7}`, `${i}`));
          }
          return revisions;
        }),
      );
      await watchStarted;
      const watching = (async () => {
        const seen: number[] = [];
        const abort = new AbortController();
        for await (const batch of store.watch(p, first, abort.signal)) {
          seen.push(batch.revision);
          expect(batch.events).toHaveLength(1);
          if (seen.length === writes + 1) abort.abort();
        }
        return seen;
      })();
      const [allWrites, seen] = await Promise.all([writing, watching]);
      const expected = [first, ...allWrites.flat()].sort((a, b) => a - b);
      expect(expected).toEqual(Array.from({ length: writes + 1 }, (_, i) => first + i));
      expect(seen).toEqual(expected);
    });

    it('watch from a compacted revision throws compacted; from the compaction point it works', async () => {
      const p = unique();
      const r1 = await put(store, `${p}k`, '1');
      const r2 = await put(store, `${p}k`, '2');
      const r3 = await put(store, `${p}k`, '3');
      await store.compact(r2);
      await store.compact(r1); // at or below the compaction point: a no-op
      const error = await expectStoreError(collect(store, p, r1, () => false), 'compacted');
      expect(error.message).toContain(String(r1));
      const batches = await collect(store, p, r2, untilRevision(r3));
      expect(batches.map((b) => b.revision)).toEqual([r2, r3]);
      // Current values are untouched by compaction.
      expect((await store.get(`${p}k`))?.value).toBe('3');
    });

    it('abort ends a watch quietly, whether it is waiting or not yet started', async () => {
      const p = unique();
      const from = (await store.revision()) + 1;
      const abort = new AbortController();
      const ended = (async () => {
        const got: WatchBatch[] = [];
        for await (const batch of store.watch(p, from, abort.signal)) {
          got.push(batch);
          abort.abort();
        }
        return got;
      })();
      await put(store, `${p}k`, '1');
      expect((await ended).map((b) => b.revision)).toEqual([from]);

      // Aborted while idle: write nothing, abort, the loop ends.
      const idle = new AbortController();
      const waiting = (async () => {
        for await (const _ of store.watch(p, from + 1, idle.signal)) throw new Error('no event expected');
        return 'ended';
      })();
      await Promise.resolve();
      idle.abort();
      expect(await waiting).toBe('ended');

      const before = new AbortController();
      before.abort();
      for await (const _ of store.watch(p, 1, before.signal)) throw new Error('no event expected');
    });

    it('close ends running watches with closed and rejects later calls with closed', async () => {
      const own = await openStore();
      const p = unique();
      const r = await put(own, `${p}k`, '1');
      const watching = (async () => {
        for await (const _ of own.watch(p, r + 1, new AbortController().signal)) {
          // nothing is written after r
        }
      })();
      expect((await collect(own, p, r, untilRevision(r))).map((b) => b.revision)).toEqual([r]);
      await own.close();
      await own.close(); // idempotent
      await expectStoreError(watching, 'closed');
      await expectStoreError(own.get(`${p}k`), 'closed');
      await expectStoreError(own.list(p), 'closed');
      await expectStoreError(own.revision(), 'closed');
      await expectStoreError(own.txn([], [{ type: 'put', key: `${p}k`, value: '2' }]), 'closed');
      await expectStoreError(own.health(), 'closed');
      await expectStoreError(collect(own, p, 1, () => false), 'closed');
    });

    it('health resolves on a working store', async () => {
      await expect(store.health()).resolves.toBeUndefined();
    });
  });
}
