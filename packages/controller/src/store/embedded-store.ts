import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import {
  StoreError,
  type Compare,
  type KeyValue,
  type Store,
  type TxnOp,
  type TxnResult,
  type WatchBatch,
  type WatchEvent,
} from './store.js';
import { validateKey, validatePrefix, validateRevision, validateTxn } from './validate.js';

export interface EmbeddedStoreOptions {
  /** Directory holding `sluice.db` (created if missing). */
  dataDir: string;
  /** Revisions of watch history kept; watching from an older revision throws `compacted`. */
  historyRevisions?: number;
}

const schemaVersion = 1;
const defaultHistoryRevisions = 10_000;
/** Revisions read from the event log per step while a watcher catches up. */
const replayPageRevisions = 500;
/** A live watcher this many batches behind is dropped back to replaying from the log. */
const maxQueuedBatches = 1_000;

const schema = `
  CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compact_revision', 1);

  CREATE TABLE IF NOT EXISTS kv (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- One row per changed key per revision, in op order (idx): the watch history.
  CREATE TABLE IF NOT EXISTS events (
    revision             INTEGER NOT NULL,
    idx                  INTEGER NOT NULL,
    type                 TEXT NOT NULL CHECK (type IN ('put', 'delete')),
    key                  TEXT NOT NULL,
    value                TEXT NOT NULL,
    create_revision      INTEGER NOT NULL,
    prev_value           TEXT,
    prev_create_revision INTEGER,
    prev_mod_revision    INTEGER,
    PRIMARY KEY (revision, idx)
  ) WITHOUT ROWID;
`;

interface KvRow {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
}

interface EventRow {
  revision: number;
  type: 'put' | 'delete';
  key: string;
  value: string;
  create_revision: number;
  prev_value: string | null;
  prev_create_revision: number | null;
  prev_mod_revision: number | null;
}

/** A live watcher: batches committed after it subscribed, filtered to its prefix. */
interface Subscriber {
  readonly prefix: string;
  queue: WatchBatch[];
  /** Fell too far behind: the queue was dropped and the watcher replays from the log. */
  overflowed: boolean;
  error: StoreError | undefined;
  wake: (() => void) | undefined;
}

/**
 * The smallest string greater than every string starting with `prefix`, or undefined when
 * there is none (empty prefix). SQLite compares TEXT by its UTF-8 bytes, which orders like
 * code points, so bumping the last code point bounds the prefix range.
 */
export function prefixEnd(prefix: string): string | undefined {
  const codePoints = [...prefix];
  while (codePoints.length > 0) {
    const last = codePoints.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // skip surrogates: not valid UTF-8
      return codePoints.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function toKeyValue(row: KvRow): KeyValue {
  return { key: row.key, value: row.value, createRevision: row.create_revision, modRevision: row.mod_revision };
}

function toEvent(row: EventRow): WatchEvent {
  const event: WatchEvent = {
    type: row.type,
    kv: { key: row.key, value: row.value, createRevision: row.create_revision, modRevision: row.revision },
  };
  if (row.prev_value !== null) {
    event.prevKv = { key: row.key, value: row.prev_value, createRevision: row.prev_create_revision!, modRevision: row.prev_mod_revision! };
  }
  return event;
}

function isBusy(error: unknown): boolean {
  return error instanceof Error && 'code' in error && (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED');
}

function prepareStatements(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
    setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE name = ?'),
    get: db.prepare<[string], KvRow>('SELECT key, value, create_revision, mod_revision FROM kv WHERE key = ?'),
    listFrom: db.prepare<[string], KvRow>('SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ? ORDER BY key'),
    listRange: db.prepare<[string, string], KvRow>(
      'SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ? AND key < ? ORDER BY key',
    ),
    put: db.prepare<[string, string, number, number]>(
      'INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision',
    ),
    delete: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
    insertEvent: db.prepare<[number, number, string, string, string, number, string | null, number | null, number | null]>(
      'INSERT INTO events (revision, idx, type, key, value, create_revision, prev_value, prev_create_revision, prev_mod_revision) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    eventsFrom: db.prepare<[number, number, string], EventRow>(
      'SELECT revision, type, key, value, create_revision, prev_value, prev_create_revision, prev_mod_revision ' +
        'FROM events WHERE revision >= ? AND revision <= ? AND key >= ? ORDER BY revision, idx',
    ),
    eventsRange: db.prepare<[number, number, string, string], EventRow>(
      'SELECT revision, type, key, value, create_revision, prev_value, prev_create_revision, prev_mod_revision ' +
        'FROM events WHERE revision >= ? AND revision <= ? AND key >= ? AND key < ? ORDER BY revision, idx',
    ),
    deleteEventsBefore: db.prepare<[number]>('DELETE FROM events WHERE revision < ?'),
  };
}

/**
 * The single-machine store: one SQLite file, revisions and watch in this process.
 *
 * Everything better-sqlite3 does is synchronous, so a write transaction, the in-memory
 * revision update and the hand-off of its events to live watchers happen in one turn of the
 * event loop. A watcher that reads the log and subscribes in the same turn therefore can
 * neither miss nor repeat a revision.
 */
export class EmbeddedStore implements Store {
  readonly kind = 'embedded';
  readonly description: string;

  private revisionNow: number;
  private compactRevisionNow: number;
  private closed = false;
  private readonly subscribers = new Set<Subscriber>();
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly writeTxn: (compares: readonly Compare[], ops: readonly TxnOp[]) => { succeeded: boolean; revision: number; events: WatchEvent[] };
  private readonly compactTxn: (revision: number) => void;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly historyRevisions: number,
  ) {
    this.description = `embedded store at ${path}`;
    const s = prepareStatements(db);
    this.statements = s;
    this.revisionNow = s.getMeta.get('revision')!.value;
    this.compactRevisionNow = s.getMeta.get('compact_revision')!.value;

    const compactTo = (revision: number): void => {
      s.deleteEventsBefore.run(revision);
      s.setMeta.run(revision, 'compact_revision');
    };
    this.compactTxn = db.transaction(compactTo);

    this.writeTxn = db.transaction((compares: readonly Compare[], ops: readonly TxnOp[]) => {
      const current = this.revisionNow;
      for (const compare of compares) {
        if ((s.get.get(compare.key)?.mod_revision ?? 0) !== compare.modRevision) {
          return { succeeded: false, revision: current, events: [] };
        }
      }
      const revision = current + 1;
      const events: WatchEvent[] = [];
      for (const op of ops) {
        const prev = s.get.get(op.key);
        const prevKv = prev && toKeyValue(prev);
        if (op.type === 'put') {
          const createRevision = prev?.create_revision ?? revision;
          s.put.run(op.key, op.value, createRevision, revision);
          events.push({ type: 'put', kv: { key: op.key, value: op.value, createRevision, modRevision: revision }, ...(prevKv && { prevKv }) });
        } else if (prevKv) {
          s.delete.run(op.key);
          events.push({ type: 'delete', kv: { key: op.key, value: '', createRevision: 0, modRevision: revision }, prevKv });
        }
      }
      if (events.length === 0) return { succeeded: true, revision: current, events };
      events.forEach((event, idx) => {
        const { kv, prevKv } = event;
        s.insertEvent.run(revision, idx, event.type, kv.key, kv.value, kv.createRevision, prevKv?.value ?? null, prevKv?.createRevision ?? null, prevKv?.modRevision ?? null);
      });
      s.setMeta.run(revision, 'revision');
      const keepFrom = revision - this.historyRevisions + 1;
      if (keepFrom > this.compactRevisionNow) compactTo(keepFrom);
      return { succeeded: true, revision, events };
    });
  }

  static open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    return new Promise((resolve) => resolve(EmbeddedStore.openNow(options)));
  }

  private static openNow(options: EmbeddedStoreOptions): EmbeddedStore {
    const dataDir = resolve(options.dataDir);
    const path = join(dataDir, 'sluice.db');
    const historyRevisions = options.historyRevisions ?? defaultHistoryRevisions;
    validateRevision(historyRevisions, 'historyRevisions', 1);
    let db: Database.Database;
    try {
      mkdirSync(dataDir, { recursive: true });
      db = new Database(path, { timeout: 0 });
    } catch (error) {
      throw new StoreError('unavailable', `embedded store at ${path} unavailable: ${String(error)}`, { cause: error });
    }
    try {
      // EXCLUSIVE locking, set before WAL is enabled: the connection takes the database lock
      // on first access and keeps it until close, so a second process (or a second store in
      // this one) on the same data dir fails right here instead of interleaving revisions.
      // It also means WAL needs no shared-memory index.
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      // FULL: every commit is fsynced before txn() resolves, as etcd does. NORMAL would only
      // survive a process crash; after a power loss it could roll back revisions agents and
      // watchers have already seen, and the store would then hand out the same revision
      // numbers for different contents. Control-plane writes are few; the fsync is cheap.
      db.pragma('synchronous = FULL');
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > schemaVersion) {
        throw new StoreError('invalid', `embedded store at ${path} has schema version ${version}; this sluice knows up to ${schemaVersion}`);
      }
      db.transaction(() => {
        db.exec(schema);
        db.pragma(`user_version = ${schemaVersion}`);
      })();
    } catch (error) {
      db.close();
      if (error instanceof StoreError) throw error;
      if (isBusy(error)) {
        throw new StoreError(
          'unavailable',
          `data dir ${dataDir} is in use by another sluice controller (${path} is locked); an embedded store has exactly one owner`,
          { cause: error },
        );
      }
      throw new StoreError('unavailable', `embedded store at ${path} unavailable: ${String(error)}`, { cause: error });
    }
    return new EmbeddedStore(db, path, historyRevisions);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('closed', `${this.description} is closed`);
  }

  /** Runs a synchronous database step, mapping SQLite failures (disk full, I/O) to `unavailable`. */
  private now<T>(step: () => T): T {
    this.assertOpen();
    try {
      return step();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError('unavailable', `${this.description} unavailable: ${String(error)}`, { cause: error });
    }
  }

  /** `now`, as a promise: every failure, validation included, becomes a rejection. */
  private later<T>(step: () => T): Promise<T> {
    return new Promise((resolve) => resolve(this.now(step)));
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.later(() => {
      validateKey(key, 'get');
      const row = this.statements.get.get(key);
      return row && toKeyValue(row);
    });
  }

  list(prefix: string): Promise<{ items: KeyValue[]; revision: number }> {
    return this.later(() => {
      validatePrefix(prefix, 'list');
      const end = prefixEnd(prefix);
      const rows = end === undefined ? this.statements.listFrom.all(prefix) : this.statements.listRange.all(prefix, end);
      return { items: rows.map(toKeyValue), revision: this.revisionNow };
    });
  }

  revision(): Promise<number> {
    return this.later(() => this.revisionNow);
  }

  txn(compares: Compare[], ops: TxnOp[]): Promise<TxnResult> {
    return this.later(() => {
      validateTxn(compares, ops);
      const result = this.writeTxn(compares, ops);
      if (result.revision !== this.revisionNow) {
        // Committed: from here on the revision is visible; hand the events to live watchers
        // in the same synchronous step.
        this.revisionNow = result.revision;
        this.compactRevisionNow = Math.max(this.compactRevisionNow, result.revision - this.historyRevisions + 1);
        this.publish({ revision: result.revision, events: result.events });
      }
      return { succeeded: result.succeeded, revision: result.revision };
    });
  }

  compact(revision: number): Promise<void> {
    return this.later(() => {
      validateRevision(revision, 'compact', 1);
      if (revision > this.revisionNow) {
        throw new StoreError('invalid', `compact: revision ${revision} is in the future (current ${this.revisionNow})`);
      }
      if (revision <= this.compactRevisionNow) return;
      this.compactTxn(revision);
      this.compactRevisionNow = revision;
    });
  }

  health(): Promise<void> {
    return this.later(() => {
      this.statements.getMeta.get('revision');
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const error = new StoreError('closed', `${this.description} is closed`);
    for (const subscriber of this.subscribers) {
      subscriber.error = error;
      subscriber.wake?.();
    }
    this.subscribers.clear();
    this.db.close();
    return Promise.resolve();
  }

  private publish(batch: WatchBatch): void {
    for (const subscriber of this.subscribers) {
      const events = batch.events.filter((event) => event.kv.key.startsWith(subscriber.prefix));
      if (events.length === 0) continue;
      if (subscriber.queue.length >= maxQueuedBatches) {
        subscriber.overflowed = true;
        subscriber.queue = [];
        this.subscribers.delete(subscriber);
      } else {
        subscriber.queue.push({ revision: batch.revision, events });
      }
      subscriber.wake?.();
    }
  }

  /** Batches for `[from, to]` under the prefix, read from the event log. */
  private readLog(prefix: string, end: string | undefined, from: number, to: number): WatchBatch[] {
    const s = this.statements;
    const rows = end === undefined ? s.eventsFrom.all(from, to, prefix) : s.eventsRange.all(from, to, prefix, end);
    const batches: WatchBatch[] = [];
    for (const row of rows) {
      const last = batches.at(-1);
      if (last?.revision === row.revision) last.events.push(toEvent(row));
      else batches.push({ revision: row.revision, events: [toEvent(row)] });
    }
    return batches;
  }

  watch(prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchBatch> {
    return this.watchBatches(prefix, fromRevision, signal);
  }

  private async *watchBatches(prefix: string, fromRevision: number, signal: AbortSignal): AsyncGenerator<WatchBatch> {
    validatePrefix(prefix, 'watch');
    validateRevision(fromRevision, 'watch', 1);
    const end = prefixEnd(prefix);
    /** The lowest revision not yet delivered; guards against repeats on every path. */
    let next = fromRevision;
    let subscriber: Subscriber | undefined;
    const onAbort = (): void => subscriber?.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        if (subscriber === undefined || subscriber.overflowed) {
          // Catch up from the log one page at a time. The page that reaches the current
          // revision subscribes in the same synchronous step, so the next write lands in the
          // queue: no gap, and no revision both replayed and queued.
          subscriber = undefined;
          const batches = this.now(() => {
            if (next < this.compactRevisionNow) {
              throw new StoreError(
                'compacted',
                `${this.description}: revision ${next} has been compacted (history starts at ${this.compactRevisionNow})`,
              );
            }
            const to = Math.min(this.revisionNow, next + replayPageRevisions - 1);
            const page = next <= to ? this.readLog(prefix, end, next, to) : [];
            if (to === this.revisionNow) {
              subscriber = { prefix, queue: [], overflowed: false, error: undefined, wake: undefined };
              this.subscribers.add(subscriber);
            }
            next = Math.max(next, to + 1);
            return page;
          });
          for (const batch of batches) {
            if (signal.aborted) return;
            yield batch;
          }
          continue;
        }
        const live: Subscriber = subscriber;
        if (live.error) throw live.error;
        const batch = live.queue.shift();
        if (batch === undefined) {
          await new Promise<void>((wake) => (live.wake = wake));
          live.wake = undefined;
          continue;
        }
        if (batch.revision < next) continue;
        next = batch.revision + 1;
        yield batch;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (subscriber) this.subscribers.delete(subscriber);
    }
  }
}
