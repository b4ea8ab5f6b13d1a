import { setTimeout as delay } from 'node:timers/promises';
import {
  CompareResult,
  CompareTarget,
  Etcd3,
  GRPCUnavailableError,
  type IDuplexStream,
  type IKeyValue,
  type IOptions,
  type IRangeResponse,
  type IRequestOp,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
import {
  StoreError,
  type Compare,
  type KeyValue,
  type LeaseCapability,
  type Store,
  type TxnOp,
  type TxnResult,
  type WatchBatch,
  type WatchEvent,
} from './store.js';
import { validateKey, validatePrefix, validateRevision, validateTxn } from './validate.js';

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Prepended to every key (e.g. `/sluice/`); keys in and out of this store exclude it. */
  prefix?: string;
  /** Bound on every call, connect included. Default 5 s. */
  timeoutMs?: number;
  /**
   * How long a watch keeps trying to reconnect after losing etcd before it throws
   * `unavailable`. Default 60 s: long enough for an etcd restart or a leader election,
   * short enough that an outage shows up in the controller's logs and health.
   */
  watchRetryTimeoutMs?: number;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

/**
 * A pass-through fault policy. etcd3's defaults (3 immediate retries, then a per-host
 * circuit breaker that stays open for 5 s) both hide an outage and delay recovery, and a
 * blind retry of a txn that timed out after etcd applied it would turn a successful CAS into
 * a reported conflict. EtcdStore.call retries what is safe to retry, briefly; beyond that
 * the caller (a level-triggered reconcile loop) retries with its own backoff.
 */
const passThrough: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

const defaultTimeoutMs = 5_000;
const defaultWatchRetryTimeoutMs = 60_000;
const listPageSize = 500;
/**
 * Pauses between attempts of one call (within its timeout). They cover a channel that is
 * reconnecting after an etcd restart or a leader change, yet a dead etcd, which refuses
 * connections at once, still turns into `unavailable` in under a second.
 */
const retryDelaysMs = [50, 100, 200, 400];

const compactedMessage = 'required revision has been compacted';
const futureRevisionMessage = 'required revision is a future revision';

/** Smallest key after every key starting with `prefix` (etcd's range_end); `\0` means "to the end". */
function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function toRevision(value: string | number | undefined): number {
  const revision = Number(value ?? 0);
  if (!Number.isSafeInteger(revision)) throw new StoreError('invalid', `etcd revision ${String(value)} is not a safe integer`);
  return revision;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** grpc-js failed the call before sending it (no connection): safe to retry even a write. */
function neverSent(error: unknown): boolean {
  return error instanceof GRPCUnavailableError && error.message.includes('No connection established');
}

/**
 * The production store: etcd v3 through the `etcd3` client, using its raw KV and Watch
 * services so that revisions, compares and watch resumption are exactly etcd's.
 */
export class EtcdStore implements Store {
  readonly kind = 'etcd';
  readonly description: string;

  private readonly prefix: Buffer;
  private readonly timeoutMs: number;
  private readonly watchRetryTimeoutMs: number;
  private closed = false;
  /** Stops every running watch on close. */
  private readonly closing = new AbortController();

  private constructor(
    private readonly client: Etcd3,
    options: EtcdStoreOptions,
  ) {
    this.description = `etcd at ${options.endpoints.join(',')}`;
    this.prefix = Buffer.from(options.prefix ?? '', 'utf8');
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    this.watchRetryTimeoutMs = options.watchRetryTimeoutMs ?? defaultWatchRetryTimeoutMs;
  }

  /** Connects and checks that etcd answers; rejects with `unavailable` within the timeout otherwise. */
  static async connect(options: EtcdStoreOptions): Promise<EtcdStore> {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new StoreError('invalid', 'etcd store: at least one endpoint is required');
    }
    for (const endpoint of options.endpoints) {
      if (!/^https?:\/\/[^/]+\/?$/.test(endpoint)) {
        throw new StoreError('invalid', `etcd store: endpoint ${endpoint} must look like http://host:port`);
      }
    }
    if (options.timeoutMs !== undefined) validateRevision(options.timeoutMs, 'etcd store timeoutMs', 1);
    const client = new Etcd3({
      hosts: options.endpoints,
      faultHandling: { host: () => passThrough, global: passThrough },
      grpcOptions: {
        // Reconnect promptly once etcd is back instead of after grpc's default backoff (up
        // to 120 s), and notice a silently dead connection (etcd allows pings every 5 s).
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      },
    });
    const store = new EtcdStore(client, options);
    try {
      await store.health();
    } catch (error) {
      client.close();
      throw error;
    }
    return store;
  }

  private fullKey(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key, 'utf8')]);
  }

  /** [key, range_end) of every key under `prefix` (within this store's own prefix). */
  private range(prefix: string): { key: Buffer; range_end: Buffer } {
    const key = this.fullKey(prefix);
    // An empty key is not valid in etcd; ['\0', '\0') is etcd's "every key".
    return key.length === 0 ? { key: Buffer.from([0]), range_end: Buffer.from([0]) } : { key, range_end: prefixRangeEnd(key) };
  }

  private toKeyValue(kv: IKeyValue): KeyValue {
    return {
      key: kv.key.subarray(this.prefix.length).toString('utf8'),
      value: kv.value.toString('utf8'),
      createRevision: toRevision(kv.create_revision),
      modRevision: toRevision(kv.mod_revision),
    };
  }

  private unavailable(cause: unknown): StoreError {
    return new StoreError('unavailable', `${this.description} unavailable: ${messageOf(cause)}`, { cause });
  }

  private toStoreError(error: unknown, what: string): StoreError {
    if (error instanceof StoreError) return error;
    if (this.closed) return new StoreError('closed', `${this.description} is closed`, { cause: error });
    const message = messageOf(error);
    if (message.includes(compactedMessage)) return new StoreError('compacted', `${this.description}: ${what}: ${message}`, { cause: error });
    if (message.includes(futureRevisionMessage) || message.includes('duplicate key') || message.includes('too many operations') || message.includes('request is too large')) {
      return new StoreError('invalid', `${this.description}: ${what}: ${message}`, { cause: error });
    }
    // Network failures, deadlines, "no leader", auth problems: the store cannot serve us.
    return this.unavailable(error);
  }

  /**
   * One etcd call, bounded by the timeout both as a grpc deadline and as a local timer (so a
   * stuck channel cannot outlive it either). Reads are retried on `unavailable`; writes only
   * when grpc never sent them, since a write that reached etcd may have been applied.
   */
  private async call<T>(what: string, kind: 'read' | 'write', fn: (options: { deadline: number }) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('closed', `${this.description} is closed`);
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
      });
      try {
        return await Promise.race([fn({ deadline }), timeout]);
      } catch (error) {
        const storeError = this.toStoreError(error, what);
        const retryable = storeError.code === 'unavailable' && (kind === 'read' || neverSent(error));
        const pause = retryDelaysMs[attempt];
        if (!retryable || pause === undefined || Date.now() + pause >= deadline || this.closed) throw storeError;
        await delay(pause);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    validateKey(key, 'get');
    const response = await this.call('get', 'read', (options) => this.client.kv.range({ key: this.fullKey(key) }, options));
    const kv = response.kvs[0];
    return kv && this.toKeyValue(kv);
  }

  async list(prefix: string): Promise<{ items: KeyValue[]; revision: number }> {
    validatePrefix(prefix, 'list');
    const { key, range_end } = this.range(prefix);
    const items: KeyValue[] = [];
    let revision = 0;
    let from = key;
    // Pages of a bounded size, all read at the revision of the first page: one consistent
    // snapshot without one huge response.
    for (;;) {
      const page: IRangeResponse = await this.call('list', 'read', (options) =>
        this.client.kv.range({ key: from, range_end, limit: listPageSize, revision }, options),
      );
      if (revision === 0) revision = toRevision(page.header.revision);
      items.push(...page.kvs.map((kv) => this.toKeyValue(kv)));
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { items, revision };
  }

  async revision(): Promise<number> {
    // Any range answers with the current revision in its header; one exact key is the cheapest.
    const response = await this.call('revision', 'read', (options) => this.client.kv.range({ key: this.range('').key }, options));
    return toRevision(response.header.revision);
  }

  async txn(compares: Compare[], ops: TxnOp[]): Promise<TxnResult> {
    validateTxn(compares, ops);
    const success: IRequestOp[] = ops.map((op) =>
      op.type === 'put'
        ? { request_put: { key: this.fullKey(op.key), value: Buffer.from(op.value, 'utf8') } }
        : { request_delete_range: { key: this.fullKey(op.key) } },
    );
    const response = await this.call('txn', 'write', (options) =>
      this.client.kv.txn(
        {
          compare: compares.map((c) => ({
            key: this.fullKey(c.key),
            target: CompareTarget.Mod,
            result: CompareResult.Equal,
            mod_revision: c.modRevision,
          })),
          success,
          failure: [],
        },
        options,
      ),
    );
    return { succeeded: response.succeeded, revision: toRevision(response.header.revision) };
  }

  readonly leases: LeaseCapability = {
    grantLease: async (ttlSeconds) => {
      validateRevision(ttlSeconds, 'grantLease ttlSeconds', 1);
      // A grant that reached etcd but timed out leaves an orphan lease that simply expires.
      const response = await this.call('lease grant', 'write', (options) => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, options));
      if (response.error) throw new StoreError('unavailable', `${this.description}: lease grant: ${response.error}`);
      return response.ID;
    },
    keepAlive: (lease) =>
      this.call('lease keepalive', 'read', async (options) => {
        const stream = await this.client.leaseClient.leaseKeepAlive(options);
        try {
          const response = await new Promise<{ TTL: string }>((resolve, reject) => {
            stream.on('data', resolve);
            stream.on('error', reject);
            stream.on('end', () => reject(new Error('lease keepalive stream ended without an answer')));
            stream.write({ ID: lease });
          });
          return Math.max(0, Number(response.TTL));
        } finally {
          stream.end();
        }
      }),
    revokeLease: async (lease) => {
      try {
        await this.call('lease revoke', 'write', (options) => this.client.leaseClient.leaseRevoke({ ID: lease }, options));
      } catch (error) {
        if (error instanceof StoreError && /lease not found/.test(error.message)) return;
        throw error;
      }
    },
    createWithLease: async (key, value, lease) => {
      validateKey(key, 'createWithLease');
      const fullKey = this.fullKey(key);
      const response = await this.call('create with lease', 'write', (options) =>
        this.client.kv.txn(
          {
            compare: [{ key: fullKey, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
            success: [{ request_put: { key: fullKey, value: Buffer.from(value, 'utf8'), lease } }],
            failure: [{ request_range: { key: fullKey } }],
          },
          options,
        ),
      );
      const kv = response.succeeded ? undefined : response.responses[0]?.response_range?.kvs[0];
      return { succeeded: response.succeeded, current: kv && this.toKeyValue(kv), revision: toRevision(response.header.revision) };
    },
  };

  async compact(revision: number): Promise<void> {
    validateRevision(revision, 'compact', 1);
    try {
      await this.call('compact', 'write', (options) => this.client.kv.compact({ revision }, options));
    } catch (error) {
      // Already compacted at or past `revision`: the history is already gone, as asked.
      if (error instanceof StoreError && error.code === 'compacted') return;
      throw error;
    }
  }

  async health(): Promise<void> {
    // A linearizable read needs a leader and a quorum: cheaper than status(), and it proves
    // that the cluster, not just one member, can serve us.
    await this.revision();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.closing.abort();
      this.client.close();
    }
    return Promise.resolve();
  }

  watch(prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchBatch> {
    return this.watchBatches(prefix, fromRevision, signal);
  }

  /**
   * One etcd watch stream per call. etcd3's own Watcher reconnects by itself, but resumes
   * from the header revision of the last response (+1); that header can run ahead of the
   * events delivered (catch-up responses carry at most 1000 revisions, and the "created"
   * response carries the current revision), so a disconnect can silently skip events. Here
   * the stream is reopened from the last revision actually handed to the caller, + 1.
   */
  private async *watchBatches(prefix: string, fromRevision: number, signal: AbortSignal): AsyncGenerator<WatchBatch> {
    validatePrefix(prefix, 'watch');
    validateRevision(fromRevision, 'watch', 1);
    if (this.closed) throw new StoreError('closed', `${this.description} is closed`);
    const stop = AbortSignal.any([signal, this.closing.signal]);
    let next = fromRevision;
    let failingSince: number | undefined;
    let backoffMs = 50;
    while (!stop.aborted) {
      const session = new WatchSession(this.watchTools, this.range(prefix), next, stop, this.timeoutMs);
      let lastError: unknown;
      try {
        for await (const batch of session.batches()) {
          failingSince = undefined;
          backoffMs = 50;
          if (stop.aborted) break;
          if (batch.revision < next) continue;
          next = batch.revision + 1;
          yield batch;
        }
        if (session.established) {
          failingSince = undefined;
          backoffMs = 50;
        }
      } catch (error) {
        if (error instanceof StoreError && error.code !== 'unavailable') throw error;
        lastError = error;
      }
      if (signal.aborted) return;
      if (this.closed) throw new StoreError('closed', `${this.description} is closed`);
      // The stream broke (etcd restarting, leader change, network): reopen from `next`.
      const now = Date.now();
      failingSince ??= now;
      if (now - failingSince >= this.watchRetryTimeoutMs) {
        throw this.unavailable(lastError ?? new Error(`watch could not reconnect within ${this.watchRetryTimeoutMs} ms`));
      }
      await delay(backoffMs, undefined, { signal: stop }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, 1_000);
    }
  }

  /** What a WatchSession needs from this store, without making it public. */
  private readonly watchTools: WatchTools = {
    description: () => this.description,
    open: () => this.client.watchClient.watch(),
    toBatches: (response) => this.toBatches(response),
    toError: (error) => this.toStoreError(error, 'watch'),
  };

  private toBatches(response: IWatchResponse): WatchBatch[] {
    const batches: WatchBatch[] = [];
    for (const event of response.events) {
      const revision = toRevision(event.kv.mod_revision);
      const type = event.type.toLowerCase() === 'delete' ? 'delete' : 'put';
      const kv: KeyValue =
        type === 'delete'
          ? { key: event.kv.key.subarray(this.prefix.length).toString('utf8'), value: '', createRevision: 0, modRevision: revision }
          : this.toKeyValue(event.kv);
      const watchEvent: WatchEvent = { type, kv };
      if (event.prev_kv) watchEvent.prevKv = this.toKeyValue(event.prev_kv);
      const last = batches.at(-1);
      if (last?.revision === revision) last.events.push(watchEvent);
      else batches.push({ revision, events: [watchEvent] });
    }
    return batches;
  }

}

interface WatchTools {
  description(): string;
  open(): Promise<IDuplexStream<IWatchRequest, IWatchResponse>>;
  toBatches(response: IWatchResponse): WatchBatch[];
  toError(error: unknown): StoreError;
}

/**
 * One attempt: a watch stream from `startRevision` until it breaks (ends quietly: the caller
 * reconnects), etcd cancels it (throws), or `stop` aborts (ends quietly).
 */
class WatchSession {
  established = false;
  private readonly queue: WatchBatch[] = [];
  private done = false;
  private error: StoreError | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly tools: WatchTools,
    private readonly range: { key: Buffer; range_end: Buffer },
    private readonly startRevision: number,
    private readonly stop: AbortSignal,
    private readonly timeoutMs: number,
  ) {}

  private finish(error?: StoreError): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake?.();
  }

  async *batches(): AsyncGenerator<WatchBatch> {
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.tools.open();
    } catch (error) {
      throw this.tools.toError(error);
    }
    const onStop = (): void => this.finish();
    this.stop.addEventListener('abort', onStop);
    if (this.stop.aborted) this.finish(); // aborted while the stream was being opened
    // A stream that never confirms the watch (etcd hung, no leader) is given up and retried.
    const createTimer = setTimeout(() => this.finish(this.tools.toError(new Error(`watch not created within ${this.timeoutMs} ms`))), this.timeoutMs);
    stream.on('data', (response: IWatchResponse) => {
      if (response.created) {
        clearTimeout(createTimer);
        this.established = true;
      }
      if (response.canceled) {
        const compactRevision = toRevision(response.compact_revision);
        this.finish(
          compactRevision > 0
            ? new StoreError('compacted', `${this.tools.description()}: revision ${this.startRevision} has been compacted (history starts at ${compactRevision})`)
            : new StoreError('unavailable', `${this.tools.description()} unavailable: watch canceled: ${response.cancel_reason}`),
        );
        return;
      }
      // etcd sends a revision's events together in one response (we never ask for fragments).
      this.queue.push(...this.tools.toBatches(response));
      this.wake?.();
    });
    stream.on('error', () => this.finish());
    stream.on('end', () => this.finish());
    try {
      stream.write({
        create_request: { ...this.range, start_revision: this.startRevision, prev_kv: true, progress_notify: true },
      });
      for (;;) {
        const batch = this.queue.shift();
        if (batch !== undefined) {
          yield batch;
          continue;
        }
        if (this.done) break;
        await new Promise<void>((wake) => (this.wake = wake));
        this.wake = undefined;
      }
      if (this.error) throw this.error;
    } finally {
      clearTimeout(createTimer);
      this.stop.removeEventListener('abort', onStop);
      stream.cancel();
    }
  }
}
