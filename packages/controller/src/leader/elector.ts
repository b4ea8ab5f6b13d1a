import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import type { Runner } from '../runner.js';
import { StoreError, type KeyValue, type LeaseCapability, type Store } from '../store/index.js';
import { Watchable } from '../watchable.js';

/**
 * Leader election (DESIGN §6-§7): every controller replica serves agents; only the leader
 * writes derived status and weights. `leadership` publishes true while this replica leads.
 */
export interface LeaderElector extends Runner {
  readonly leadership: Watchable<boolean>;
  /** The current leader's id as last seen ('' if unknown). */
  readonly leaderId: string;
  readonly isLeader: () => boolean;
  /** The current leader as last seen (its id and advertised address), undefined if unknown. */
  readonly leader: Watchable<LeaderInfo | undefined>;
}

/** What the election key holds: the leader's id and where agents reach it. */
export interface LeaderInfo {
  readonly id: string;
  /** `host:port` of its gRPC server ('' if it did not say: an older replica). */
  readonly address: string;
}

/** The election key's value: JSON `{id, address}`. */
export function encodeLeader(info: LeaderInfo): string {
  return JSON.stringify({ id: info.id, address: info.address });
}

/** Reads the election key's value: JSON `{id, address}`, or the older plain id. */
export function decodeLeader(value: string): LeaderInfo {
  if (value.startsWith('{')) {
    try {
      const parsed = JSON.parse(value) as { id?: unknown; address?: unknown };
      if (typeof parsed.id === 'string') return { id: parsed.id, address: typeof parsed.address === 'string' ? parsed.address : '' };
    } catch {
      // not JSON after all: a plain id
    }
  }
  return { id: value, address: '' };
}

/** The embedded store has one controller: it is always the leader. */
export class AlwaysLeader implements LeaderElector {
  readonly name = 'leader-election';
  readonly leadership = new Watchable<boolean>(true);
  readonly isLeader = () => true;
  readonly leader: Watchable<LeaderInfo | undefined>;
  constructor(readonly leaderId: string) {
    this.leader = new Watchable<LeaderInfo | undefined>({ id: leaderId, address: '' });
  }
  start(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface EtcdElectorOptions {
  /** The election key, e.g. `/sluice/leader`. */
  key: string;
  /** This replica's id, the key's value while it leads. */
  id: string;
  /** Where agents reach this replica (published in the key while it leads). */
  address?: string;
  /** Lease TTL in ms (rounded up to whole seconds for etcd). Default 10 s. */
  ttlMs?: number;
}

class Timeout extends Error {}
/** etcd says this replica no longer leads (as opposed to: etcd did not answer). */
class LeadershipLost extends Error {}

/** `promise`, or a Timeout rejection after `ms`; a late rejection of `promise` is swallowed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  promise.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Timeout(`no answer within ${ms} ms`)), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Election on one key with a lease: campaign = grant a lease and create the key attached to
 * it if it does not exist (a txn on create revision 0). The leader keeps the lease alive every
 * TTL/4 and steps down as soon as TTL/2 has passed since the sending of its last successful
 * keepalive (so it stops acting before etcd could expire its lease and elect another), or
 * when etcd says the lease is gone or the key no longer holds its id. Followers watch the key
 * and campaign when it is deleted (resign, or lease expiry after a crash). On close the
 * leader revokes its lease, so a graceful shutdown hands over at once.
 */
export class EtcdLeaderElector implements LeaderElector {
  readonly name = 'leader-election';
  readonly leadership = new Watchable<boolean>(false);
  readonly isLeader = () => this.leadership.value === true;
  leaderId = '';
  readonly leader = new Watchable<LeaderInfo | undefined>(undefined);

  private readonly leases: LeaseCapability;
  private readonly ttlSeconds: number;
  private readonly ttlMs: number;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private lease: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly options: EtcdElectorOptions,
    private readonly logger: Logger,
  ) {
    if (!store.leases) throw new Error(`${store.description} does not support leases`);
    this.leases = store.leases;
    this.ttlSeconds = Math.max(1, Math.ceil((options.ttlMs ?? 10_000) / 1000));
    this.ttlMs = this.ttlSeconds * 1000;
  }

  start(signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.abort.signal]);
    this.loop = this.run(stop);
    return Promise.resolve();
  }

  /** Stops campaigning; a leader resigns (revokes its lease) so another takes over at once. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private setLeader(leading: boolean, reason: string): void {
    if (this.leadership.value === leading) return;
    this.leadership.publish(leading);
    if (leading) this.logger.info('became leader', { id: this.options.id, key: this.options.key });
    else this.logger.warn('lost leadership', { id: this.options.id, reason });
  }

  private seeLeader(info: LeaderInfo): void {
    this.leaderId = info.id;
    const before = this.leader.value;
    if (before?.id !== info.id || before.address !== info.address) this.leader.publish(info);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let backoffMs = 100;
    while (!signal.aborted) {
      try {
        await this.round(signal);
        backoffMs = 100;
      } catch (error) {
        this.setLeader(false, messageOf(error));
        if (signal.aborted) break;
        if (error instanceof StoreError && error.code === 'closed') {
          this.logger.warn('leader election: the store is closed, no longer campaigning');
          break;
        }
        this.logger.warn('leader election: store call failed, retrying', { error: messageOf(error), retryInMs: backoffMs });
        await delay(backoffMs, undefined, { signal }).catch(() => {});
        backoffMs = Math.min(backoffMs * 2, Math.max(1000, this.ttlMs / 4));
      }
    }
    this.setLeader(false, 'shutting down');
    await this.resign();
  }

  private async resign(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease === undefined) return;
    try {
      await within(this.leases.revokeLease(lease), this.ttlMs / 2);
    } catch (error) {
      this.logger.warn('leader election: could not revoke the lease; it expires by itself', { error: messageOf(error) });
    }
  }

  /** One campaign: lead until it is lost, or wait until the key is free. */
  private async round(signal: AbortSignal): Promise<void> {
    const { key, id } = this.options;
    const sentAt = Date.now();
    const lease = await within(this.leases.grantLease(this.ttlSeconds), this.ttlMs / 2);
    this.lease = lease;
    let result: Awaited<ReturnType<LeaseCapability['createWithLease']>>;
    try {
      result = await within(this.leases.createWithLease(key, encodeLeader({ id, address: this.options.address ?? '' }), lease), this.ttlMs / 2 - (Date.now() - sentAt));
    } catch (error) {
      await this.resign();
      throw error;
    }
    if (result.succeeded) {
      this.seeLeader({ id, address: this.options.address ?? '' });
      this.setLeader(true, '');
      try {
        await this.lead(lease, sentAt, signal);
      } finally {
        this.setLeader(false, 'lease lost');
        await this.resign();
      }
      return;
    }
    // Someone else holds the key (or a lease of ours from before an outage: free it).
    await this.resign();
    const current = result.current;
    if (current === undefined) return; // deleted in between: campaign again
    const holder = decodeLeader(current.value);
    this.seeLeader(holder);
    if (holder.id === id) {
      await within(this.store.txn([{ key, modRevision: current.modRevision }], [{ type: 'delete', key }]), this.ttlMs / 2);
      return;
    }
    await this.waitForRelease(current, result.revision, signal);
  }

  /** Leads while keepalives succeed in time and the key is still ours. */
  private async lead(lease: string, sentAt: number, signal: AbortSignal): Promise<void> {
    let lastOk = sentAt;
    const interval = this.ttlMs / 4;
    const stepDownAfter = this.ttlMs / 2;
    while (!signal.aborted) {
      const untilStepDown = lastOk + stepDownAfter - Date.now();
      await delay(Math.min(interval, Math.max(0, untilStepDown)), undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
      const sent = Date.now();
      try {
        const ttl = await within(this.leases.keepAlive(lease), lastOk + stepDownAfter - sent);
        if (ttl <= 0) throw new LeadershipLost('the lease expired');
        const holder = await within(this.store.get(this.options.key), lastOk + stepDownAfter - Date.now());
        const holderId = holder === undefined ? undefined : decodeLeader(holder.value).id;
        if (holderId !== this.options.id) throw new LeadershipLost(`the election key is now held by ${holderId ?? 'nobody'}`);
        lastOk = sent;
      } catch (error) {
        // An unreachable store: keep trying until TTL/2 has passed since the last success.
        if (!(error instanceof LeadershipLost) && Date.now() - lastOk < stepDownAfter) continue;
        this.setLeader(false, messageOf(error));
        return;
      }
    }
  }

  /** Waits until the key changes from `current` (deleted or replaced), or a TTL passes (then re-checks). */
  private async waitForRelease(current: KeyValue, revision: number, signal: AbortSignal): Promise<void> {
    const wait = AbortSignal.any([signal, AbortSignal.timeout(this.ttlMs)]);
    try {
      for await (const batch of this.store.watch(this.options.key, revision + 1, wait)) {
        for (const event of batch.events) {
          if (event.kv.key !== this.options.key) continue;
          if (event.type === 'delete' || event.kv.createRevision !== current.createRevision) return;
        }
      }
    } catch (error) {
      if (wait.aborted) return;
      throw error;
    }
  }
}

/** The elector for `store`: a lease election on etcd, always leader on the embedded store. */
export function createLeaderElector(store: Store, options: EtcdElectorOptions, logger: Logger): LeaderElector {
  return store.leases ? new EtcdLeaderElector(store, options, logger) : new AlwaysLeader(options.id);
}
