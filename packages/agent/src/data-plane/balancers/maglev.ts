import type { Member } from './balancer.js';
import { hash32 } from './hash.js';

export const DEFAULT_MAGLEV_SIZE = 65537;
export const MAX_MAGLEV_SIZE = 5_000_011;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * A Maglev lookup table (Eisenbud et al., NSDI 2016) of prime size M: each member walks its
 * own permutation of the slots (offset and skip from two hashes of its id) and claims the next
 * free one, in turns. Weighted as in Envoy: a member takes a turn each round in proportion to
 * weight / max weight. A key's member is table[hash % M]: one array read. Removing one of N
 * members moves about 1/N of the slots (a little more than a ring; Maglev trades that for an
 * even spread). Built once per member set, O(M x N / average weight share).
 */
export class MaglevTable {
  readonly table: Int32Array;

  constructor(members: readonly Member<unknown>[], size: number) {
    const m = size;
    const n = members.length;
    this.table = new Int32Array(m).fill(-1);
    if (n === 0) return;
    const offsets = new Float64Array(n);
    const skips = new Float64Array(n);
    const next = new Float64Array(n);
    const credit = new Float64Array(n);
    const maxWeight = members.reduce((x, mb) => Math.max(x, mb.weight), 0);
    members.forEach((mb, i) => {
      const id = (mb.endpoint as { id: string }).id;
      offsets[i] = hash32(id, 0x5bd1e995) % m;
      skips[i] = (hash32(id, 0x27d4eb2f) % (m - 1)) + 1;
    });
    let filled = 0;
    while (filled < m) {
      for (let i = 0; i < n && filled < m; i++) {
        credit[i] = (credit[i] as number) + (members[i] as Member<unknown>).weight / maxWeight;
        if ((credit[i] as number) < 1) continue;
        credit[i] = (credit[i] as number) - 1;
        // Next slot of i's permutation that is still free.
        let slot: number;
        do {
          slot = ((offsets[i] as number) + (next[i] as number) * (skips[i] as number)) % m;
          next[i] = (next[i] as number) + 1;
        } while (this.table[slot] !== -1);
        this.table[slot] = i;
        filled++;
      }
    }
  }
}
