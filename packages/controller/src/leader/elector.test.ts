import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, tempDir, type EtcdFixture } from '@sluice/testing';
import { silentLogger } from '../logger.js';
import { EmbeddedStore } from '../store/embedded-store.js';
import { EtcdStore } from '../store/etcd-store.js';
import { Watchable } from '../watchable.js';
import { AlwaysLeader, EtcdLeaderElector, createLeaderElector, decodeLeader, encodeLeader } from './elector.js';
import { LeaderOnly } from './leader-only.js';

let etcd: EtcdFixture;
const cleanups: (() => Promise<void>)[] = [];
let n = 0;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await etcd?.[Symbol.asyncDispose]();
});

async function connect(): Promise<EtcdStore> {
  const store = await EtcdStore.connect({ endpoints: [etcd.endpoint], timeoutMs: 1000 });
  cleanups.push(() => store.close());
  return store;
}

/** Resolves once `watchable` holds `value`. */
async function until<T>(watchable: Watchable<T>, value: T): Promise<void> {
  const abort = new AbortController();
  for await (const v of watchable.subscribe(abort.signal)) {
    if (v === value) break;
  }
  abort.abort();
}

/** Two electors on one key, each with its own etcd client. */
async function pair(ttlMs = 2000) {
  const key = `/elector-test-${++n}/leader`;
  const [storeA, storeB] = [await connect(), await connect()];
  const a = new EtcdLeaderElector(storeA, { key, id: 'a', address: 'a.example:9081', ttlMs }, silentLogger());
  const b = new EtcdLeaderElector(storeB, { key, id: 'b', address: 'b.example:9081', ttlMs }, silentLogger());
  const abort = new AbortController();
  cleanups.push(async () => {
    abort.abort();
    await Promise.all([a.close(), b.close()]);
  });
  await a.start(abort.signal);
  await until(a.leadership, true);
  await b.start(abort.signal);
  return { key, a, b, storeA, storeB };
}

describe('EtcdLeaderElector', () => {
  it('reads the key as JSON {id, address} or as an older plain id', () => {
    expect(decodeLeader(encodeLeader({ id: 'a', address: 'h:1' }))).toEqual({ id: 'a', address: 'h:1' });
    expect(decodeLeader('plain-id')).toEqual({ id: 'plain-id', address: '' });
    expect(decodeLeader('{not json')).toEqual({ id: '{not json', address: '' });
  });

  it('elects exactly one of two electors', async () => {
    const { key, a, b, storeA } = await pair();
    // b has campaigned and lost by the time it knows the leader's id.
    while (b.leaderId === '') await new Promise((r) => setTimeout(r, 20));
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(b.leaderId).toBe('a');
    expect(b.leader.value).toEqual({ id: 'a', address: 'a.example:9081' });
    expect(decodeLeader((await storeA.get(key))!.value)).toEqual({ id: 'a', address: 'a.example:9081' });
  });

  it('hands over at once when the leader resigns', async () => {
    const { key, a, b, storeB } = await pair(10_000);
    await a.close();
    expect(a.isLeader()).toBe(false);
    // With a 10 s TTL, only the resign (lease revoke) can make b leader within the test timeout.
    await until(b.leadership, true);
    expect(decodeLeader((await storeB.get(key))!.value).id).toBe('b');
  }, 5_000);

  it('hands over when the leader dies without resigning (its lease expires)', async () => {
    const { a, b, storeA } = await pair();
    const lost = until(a.leadership, false);
    // Closing a's client is a crash as far as etcd can tell: no keepalive, no revoke.
    await storeA.close();
    await until(b.leadership, true);
    await lost;
    expect(a.isLeader()).toBe(false);
  }, 10_000);

  it('steps down when etcd is unreachable, and leads again once it is back', async () => {
    const { a, b } = await pair();
    await etcd.kill();
    try {
      await until(a.leadership, false);
    } finally {
      await etcd.start();
    }
    await Promise.race([until(a.leadership, true), until(b.leadership, true)]);
  }, 20_000);
});

describe('embedded store', () => {
  it('is always leader', async () => {
    await using dir = await tempDir();
    const store = await EmbeddedStore.open({ dataDir: dir.path });
    try {
      const elector = createLeaderElector(store, { key: '/leader', id: 'x' }, silentLogger());
      expect(elector).toBeInstanceOf(AlwaysLeader);
      expect(elector.isLeader()).toBe(true);
      expect(elector.leadership.value).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('LeaderOnly', () => {
  it('runs a fresh runner per term and stops it when leadership is lost', async () => {
    const leadership = new Watchable<boolean>(false);
    const events: string[] = [];
    let terms = 0;
    const gated = new LeaderOnly(
      'test',
      leadership,
      () => {
        const term = ++terms;
        return {
          name: 'inner',
          start: (signal) => {
            events.push(`start ${term}`);
            signal.addEventListener('abort', () => events.push(`abort ${term}`));
            return Promise.resolve();
          },
          close: () => {
            events.push(`close ${term}`);
            return Promise.resolve();
          },
        };
      },
      silentLogger(),
    );
    const abort = new AbortController();
    await gated.start(abort.signal);
    const settle = () => new Promise((r) => setTimeout(r, 20));
    await settle();
    expect(events).toEqual([]);
    leadership.publish(true);
    await settle();
    leadership.publish(false);
    await settle();
    leadership.publish(true);
    await settle();
    abort.abort();
    await gated.close();
    expect(events).toEqual(['start 1', 'abort 1', 'close 1', 'start 2', 'abort 2', 'close 2']);
  });
});
