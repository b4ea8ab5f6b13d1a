import { afterAll, beforeAll } from 'vitest';
import { startEtcd, tempDir, type EtcdFixture, type TempDir } from '@sluice/testing';
import { EmbeddedStore } from './embedded-store.js';
import { EtcdStore } from './etcd-store.js';
import { runStoreContract } from './store-contract.js';

// One contract, two stores. The etcd side runs against a real etcd (one per file); each
// store opened gets its own key prefix, so tests never see each other's keys.

const dirs: TempDir[] = [];
let etcd: EtcdFixture;
let etcdStores = 0;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.[Symbol.asyncDispose]();
  await Promise.all(dirs.map((dir) => dir[Symbol.asyncDispose]()));
});

runStoreContract('embedded', async () => {
  const dir = await tempDir('sluice-store-');
  dirs.push(dir);
  return EmbeddedStore.open({ dataDir: dir.path });
});

runStoreContract('etcd', () => EtcdStore.connect({ endpoints: [etcd.endpoint], prefix: `/contract-${++etcdStores}/` }));
