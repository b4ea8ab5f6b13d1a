// The one storage interface the controller uses. Two implementations: `embedded` (SQLite,
// one machine) and `etcd` (production). Semantics follow etcd v3 so both behave alike:
// a single global revision that every write increments, per-key create/mod revisions,
// compare-and-swap on mod revision, multi-key transactions, and watch from a revision.
//
// Keys are non-empty strings, ordered by their UTF-8 bytes (what etcd and SQLite both do).
// A revision is created by a transaction that changes something: a successful txn whose ops
// change nothing (no ops, or only deletes of missing keys) leaves the revision as it was,
// exactly as in etcd. A txn may touch each key at most once (etcd rejects duplicates).

export interface KeyValue {
  key: string;
  value: string;
  /** Revision at which the key was created (0 never happens for a live key). */
  createRevision: number;
  /** Revision of the last write to the key. Used as `metadata.resourceVersion`. */
  modRevision: number;
}

/** A transaction guard: the key's current mod revision must equal `modRevision`; 0 means "must not exist". */
export interface Compare {
  key: string;
  modRevision: number;
}

export type TxnOp = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string };

export interface TxnResult {
  succeeded: boolean;
  /** Store revision after the transaction (or the current one if it failed). */
  revision: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** For deletes: `value` is '', `createRevision` is 0 and `modRevision` is the revision of the delete. */
  kv: KeyValue;
  /** The value before this event, when there was one (always present for deletes). */
  prevKv?: KeyValue;
}

/** All events of one store revision (a transaction may touch many keys). */
export interface WatchBatch {
  revision: number;
  events: WatchEvent[];
}

/**
 * Leases, for leader election (etcd only; the embedded store has one controller, always the
 * leader). Every call has the store's deadline and is not retried beyond what is safe.
 */
export interface LeaseCapability {
  /** Grants a lease that expires `ttlSeconds` after the last keepalive; returns its id. */
  grantLease(ttlSeconds: number): Promise<string>;
  /** One keepalive; returns the remaining TTL in seconds, 0 if the lease has expired or was revoked. */
  keepAlive(lease: string): Promise<number>;
  /** Revokes the lease, deleting the keys attached to it; a lease already gone is fine. */
  revokeLease(lease: string): Promise<void>;
  /**
   * Creates `key` = `value` attached to `lease` if the key does not exist. Otherwise leaves it
   * and returns its current holder. `revision` is the store revision of the answer.
   */
  createWithLease(key: string, value: string, lease: string): Promise<{ succeeded: boolean; current?: KeyValue; revision: number }>;
}

export interface Store {
  readonly kind: 'embedded' | 'etcd';
  /** Present when the store supports leases (etcd). */
  readonly leases?: LeaseCapability;
  /** Human-readable location for error messages, e.g. `etcd at http://127.0.0.1:2379`. */
  readonly description: string;

  get(key: string): Promise<KeyValue | undefined>;
  /** Every key with the prefix, sorted by key, and the store revision they were read at. */
  list(prefix: string): Promise<{ items: KeyValue[]; revision: number }>;
  /** Current store revision. */
  revision(): Promise<number>;
  /** Atomic: if every compare holds, apply every op in one revision. */
  txn(compares: Compare[], ops: TxnOp[]): Promise<TxnResult>;
  /**
   * Events for keys under `prefix` with revision >= `fromRevision`, in revision order, one
   * batch per revision, until `signal` aborts (then the iterator ends quietly). Throws a
   * StoreError with code `compacted` if `fromRevision` is older than the retained history,
   * `unavailable` if the store connection is lost for good (the etcd store reconnects and
   * resumes after the last delivered revision first), `closed` when the store is closed, and
   * `invalid` if `fromRevision` < 1. A revision whose events all fall outside `prefix` yields
   * no batch; `fromRevision` may lie in the future.
   */
  watch(prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchBatch>;
  /**
   * Discards history before `revision`: afterwards watching from a revision < `revision`
   * throws `compacted`. Compacting at or below the current compaction point is a no-op; a
   * revision above the current one is `invalid`. (The embedded store also compacts by itself
   * to keep a bounded history; etcd is compacted by whoever operates it, or by this call.)
   */
  compact(revision: number): Promise<void>;
  /** Resolves when the store answers; rejects with StoreError `unavailable` otherwise. */
  health(): Promise<void>;
  close(): Promise<void>;
}

export type StoreErrorCode = 'unavailable' | 'compacted' | 'closed' | 'invalid';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
