import { ConsistentHash_Algorithm, type HashKey, type LoadBalancing } from '@sluice/proto';
import { noEndpoint, weightedRandomIndex, type BalancerEnv, type BalancerPolicy, type Member, type Parsed, type PickContext, type PickResult, type Picker } from './balancer.js';
import { hash32, keyReader, mix32, type KeyReader } from './hash.js';
import { DEFAULT_MAGLEV_SIZE, isPrime, MaglevTable, MAX_MAGLEV_SIZE } from './maglev.js';
import { DEFAULT_RING_SIZE, MAX_RING_SIZE, Ring } from './ring-hash.js';

export interface ConsistentHashOptions {
  readonly key: KeyReader;
  readonly algorithm: 'ring-hash' | 'maglev';
  readonly tableSize: number;
  /** Bounded loads: no member takes more than factor x its weighted share of the in-flight requests; 0 = unbounded. */
  readonly boundedLoadFactor: number;
}

/** Where a key lands and where it goes next when that member is full or already tried. */
interface Table {
  /** The member index for `hash`, or for its `attempt`-th alternative. */
  lookup(hash: number, attempt: number): number;
  readonly attempts: number;
}

function ringTable(members: readonly Member<unknown>[], size: number): Table {
  const ring = new Ring(members, size);
  let lastHash = -1;
  let lastPosition = 0;
  return {
    attempts: ring.length,
    lookup: (hash, attempt) => {
      // Walk the ring clockwise from the key's point (Envoy's bounded-load walk).
      if (hash !== lastHash) {
        lastHash = hash;
        lastPosition = ring.position(hash);
      }
      return ring.owner(lastPosition + attempt);
    },
  };
}

function maglevTable(members: readonly Member<unknown>[], size: number): Table {
  const { table } = new MaglevTable(members, size);
  return {
    // Alternatives: rehash the key with the attempt number (Envoy does the same for Maglev).
    attempts: members.length * 8,
    lookup: (hash, attempt) => table[(attempt === 0 ? hash : mix32(hash + Math.imul(attempt, 0x9e3779b9))) % table.length] as number,
  };
}

/**
 * Consistent hashing on a key, over a ring (ketama) or a Maglev table built once per endpoint
 * set. A request without the key (no such header, cookie or parameter) gets a weighted random
 * endpoint, as in Envoy. With a bounded-load factor c, an endpoint already holding more than
 * ceil(c x (in flight + 1) x weight / total weight) requests is passed over for the next one
 * on the ring (Mirrokni et al., "Consistent Hashing with Bounded Loads"). A retry walks on to
 * the next endpoint not tried yet.
 */
class ConsistentHash<E> implements Picker<E> {
  private readonly table: Table;
  private readonly totalWeight: number;

  constructor(
    private readonly members: readonly Member<E>[],
    private readonly options: ConsistentHashOptions,
    private readonly env: BalancerEnv,
  ) {
    this.table = options.algorithm === 'maglev' ? maglevTable(members, options.tableSize) : ringTable(members, options.tableSize);
    this.totalWeight = members.reduce((s, m) => s + m.weight, 0);
  }

  pick(ctx: PickContext<E>): PickResult<E> {
    const members = this.members;
    if (members.length === 0) return noEndpoint();
    const key = this.options.key(ctx);
    if (key === undefined) {
      const i = weightedRandomIndex(members, ctx.exclude, this.env.random);
      return { kind: 'endpoint', endpoint: (members[i < 0 ? weightedRandomIndex(members, undefined, this.env.random) : i] as Member<E>).endpoint };
    }
    const h = hash32(key);
    const factor = this.options.boundedLoadFactor;
    const exclude = ctx.exclude;
    if (factor === 0 && exclude === undefined) return { kind: 'endpoint', endpoint: (members[this.table.lookup(h, 0)] as Member<E>).endpoint };
    let inFlight = 0;
    if (factor > 0) for (const m of members) inFlight += m.load.inFlight;
    let fallback = -1;
    for (let attempt = 0; attempt < this.table.attempts; attempt++) {
      const i = this.table.lookup(h, attempt);
      const m = members[i] as Member<E>;
      if (exclude !== undefined && exclude.has(m.endpoint)) continue;
      if (fallback < 0) fallback = i;
      if (factor === 0 || m.load.inFlight < Math.ceil((factor * (inFlight + 1) * m.weight) / this.totalWeight)) return { kind: 'endpoint', endpoint: m.endpoint };
    }
    // Everyone is full or tried: the key's own (untried) endpoint, else its own endpoint.
    return { kind: 'endpoint', endpoint: (members[fallback >= 0 ? fallback : this.table.lookup(h, 0)] as Member<E>).endpoint };
  }
}

const ALGORITHM_FIELD = 'load_balancing.consistent_hash.algorithm';
const SIZE_FIELD = 'load_balancing.consistent_hash.table_size';

function parseConsistentHash(lb: LoadBalancing | undefined): Parsed<ConsistentHashOptions> {
  const ch = lb?.consistentHash;
  if (ch === undefined) return { ok: false, error: 'load_balancing.consistent_hash: required by policy CONSISTENT_HASH' };
  const key = keyReader(ch.key?.key);
  if (key === undefined) return { ok: false, error: 'load_balancing.consistent_hash.key: must set one of source_ip, header, cookie, query_parameter' };
  const keyError = checkKey(ch.key?.key);
  if (keyError !== undefined) return { ok: false, error: keyError };
  let algorithm: ConsistentHashOptions['algorithm'];
  switch (ch.algorithm) {
    case ConsistentHash_Algorithm.ALGORITHM_UNSPECIFIED:
    case ConsistentHash_Algorithm.ALGORITHM_RING_HASH:
      algorithm = 'ring-hash';
      break;
    case ConsistentHash_Algorithm.ALGORITHM_MAGLEV:
      algorithm = 'maglev';
      break;
    case ConsistentHash_Algorithm.UNRECOGNIZED:
      return { ok: false, error: `${ALGORITHM_FIELD}: unknown value` };
  }
  let tableSize = ch.tableSize;
  if (algorithm === 'maglev') {
    if (tableSize === 0) tableSize = DEFAULT_MAGLEV_SIZE;
    else if (tableSize > MAX_MAGLEV_SIZE || !isPrime(tableSize)) return { ok: false, error: `${SIZE_FIELD}: must be a prime up to ${MAX_MAGLEV_SIZE} for Maglev, got ${tableSize}` };
  } else if (tableSize === 0) tableSize = DEFAULT_RING_SIZE;
  else if (tableSize > MAX_RING_SIZE) return { ok: false, error: `${SIZE_FIELD}: must be at most ${MAX_RING_SIZE} for a ring, got ${tableSize}` };
  const bounded = ch.boundedLoadPercent;
  if (bounded !== 0 && bounded < 100) return { ok: false, error: `load_balancing.consistent_hash.bounded_load_percent: must be 0 (unbounded) or >= 100, got ${bounded}` };
  return { ok: true, options: { key, algorithm, tableSize, boundedLoadFactor: bounded / 100 } };
}

function checkKey(key: HashKey['key']): string | undefined {
  if (key?.$case === 'header' && key.value === '') return 'load_balancing.consistent_hash.key.header: must not be empty';
  if (key?.$case === 'cookie' && key.value === '') return 'load_balancing.consistent_hash.key.cookie: must not be empty';
  if (key?.$case === 'queryParameter' && key.value === '') return 'load_balancing.consistent_hash.key.query_parameter: must not be empty';
  return undefined;
}

export const consistentHash: BalancerPolicy<ConsistentHashOptions> = {
  name: 'consistent-hash',
  weighted: false,
  parse: parseConsistentHash,
  create: (members, options, env) => new ConsistentHash(members, options, env),
};

const SOURCE_IP = keyReader({ $case: 'sourceIp', value: true }) as KeyReader;

/** Consistent hashing (Maglev) of the client address: HAProxy `balance source` + `hash-type consistent`. */
export const ipHash: BalancerPolicy<ConsistentHashOptions> = {
  name: 'ip-hash',
  weighted: false,
  parse: (lb) =>
    lb?.consistentHash === undefined
      ? { ok: true, options: { key: SOURCE_IP, algorithm: 'maglev', tableSize: DEFAULT_MAGLEV_SIZE, boundedLoadFactor: 0 } }
      : { ok: false, error: 'load_balancing.consistent_hash: must not be set for policy IP_HASH (use CONSISTENT_HASH with key source_ip)' },
  create: (members, options, env) => new ConsistentHash(members, options, env),
};
