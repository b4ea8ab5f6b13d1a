import type { Compare, KeyValue, LeaseCapability, Store, TxnOp, TxnResult, WatchBatch } from '../store/index.js';
import { StoreError } from '../store/index.js';
import type { ControllerMetrics } from './controller-metrics.js';

type StoreMetrics = Pick<ControllerMetrics, 'storeDuration' | 'storeErrors'>;

/** A txn's operation label: a plain single put or delete is named so, anything else is `txn`. */
export function txnOperation(compares: readonly Compare[], ops: readonly TxnOp[]): string {
  if (ops.length === 1 && compares.length === 0) return (ops[0] as TxnOp).type;
  return 'txn';
}

/**
 * Wraps any Store (embedded or etcd) so every call is timed and every failure counted, by
 * operation: one decorator instead of hooks in both stores. A watch is long-lived, so only
 * its failures are counted (its duration says nothing); a closed store or an aborted watch is
 * not a failure.
 */
export function instrumentStore(store: Store, metrics: StoreMetrics): Store {
  async function timed<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const end = metrics.storeDuration.startTimer({ operation });
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof StoreError && error.code === 'closed')) metrics.storeErrors.inc({ operation });
      throw error;
    } finally {
      end();
    }
  }
  const leases = store.leases;
  const instrumentedLeases: LeaseCapability | undefined = leases && {
    grantLease: (ttlSeconds) => timed('lease', () => leases.grantLease(ttlSeconds)),
    keepAlive: (lease) => timed('lease', () => leases.keepAlive(lease)),
    revokeLease: (lease) => timed('lease', () => leases.revokeLease(lease)),
    createWithLease: (key, value, lease) => timed('lease', () => leases.createWithLease(key, value, lease)),
  };
  return {
    kind: store.kind,
    leases: instrumentedLeases,
    description: store.description,
    get: (key: string): Promise<KeyValue | undefined> => timed('get', () => store.get(key)),
    list: (prefix: string) => timed('list', () => store.list(prefix)),
    revision: () => timed('revision', () => store.revision()),
    txn: (compares: Compare[], ops: TxnOp[]): Promise<TxnResult> => timed(txnOperation(compares, ops), () => store.txn(compares, ops)),
    watch: (prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchBatch> => countWatchErrors(store.watch(prefix, fromRevision, signal), signal, metrics),
    compact: (revision: number) => timed('compact', () => store.compact(revision)),
    health: () => timed('health', () => store.health()),
    close: () => store.close(),
  };
}

async function* countWatchErrors(watch: AsyncIterable<WatchBatch>, signal: AbortSignal, metrics: StoreMetrics): AsyncIterable<WatchBatch> {
  try {
    yield* watch;
  } catch (error) {
    if (!signal.aborted && !(error instanceof StoreError && error.code === 'closed')) metrics.storeErrors.inc({ operation: 'watch' });
    throw error;
  }
}
