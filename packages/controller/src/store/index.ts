import { EmbeddedStore } from './embedded-store.js';
import { EtcdStore } from './etcd-store.js';
import type { Store } from './store.js';

export {
  StoreError,
  type Compare,
  type KeyValue,
  type LeaseCapability,
  type Store,
  type StoreErrorCode,
  type TxnOp,
  type TxnResult,
  type WatchBatch,
  type WatchEvent,
} from './store.js';
export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded-store.js';
export { EtcdStore, type EtcdStoreOptions } from './etcd-store.js';

export type OpenStoreOptions =
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'etcd'; endpoints: string[]; prefix?: string; timeoutMs?: number };

/** Opens the store the controller was configured with (`--store embedded|etcd`). */
export function openStore(options: OpenStoreOptions): Promise<Store> {
  switch (options.kind) {
    case 'embedded':
      return EmbeddedStore.open({ dataDir: options.dataDir });
    case 'etcd':
      return EtcdStore.connect(options);
  }
}
