import type { Member } from './balancer.js';
import { hash32 } from './hash.js';

/** Points of an endpoint of the highest weight (ketama's 160); others get points in proportion. */
export const DEFAULT_RING_SIZE = 160;
export const MAX_RING_SIZE = 8_388_608;
/** Most points on one ring; beyond it every endpoint's count is scaled down. */
const MAX_RING_POINTS = 1 << 20;
/** Room for the owner index in a packed point (endpoints per cluster stay far below it). */
const OWNER_SPACE = 1 << 20;

/**
 * A ketama-style ring: an endpoint of the highest weight gets `size` points, the others in
 * proportion to their weight (at least one), each at hash("<id>#<i>"). A key belongs to the
 * first point at or after its hash. An endpoint's points depend only on its id and weight
 * (relative to the heaviest), not on how many endpoints there are, so removing one of N moves
 * only the keys that were on its points (about 1/N). Built once per endpoint set.
 */
export class Ring {
  private readonly hashes: Uint32Array;
  private readonly owners: Int32Array;

  constructor(members: readonly Member<unknown>[], size: number) {
    const maxWeight = members.reduce((x, m) => Math.max(x, m.weight), 0);
    let counts = members.map((m) => Math.max(1, Math.round((size * m.weight) / maxWeight)));
    const total = counts.reduce((s, c) => s + c, 0);
    if (total > MAX_RING_POINTS) counts = counts.map((c) => Math.max(1, Math.floor((c * MAX_RING_POINTS) / total)));
    // Each point packed as hash x 2^20 + owner (< 2^52, exact in a double) and sorted as numbers:
    // ties (rare) are ordered by owner index, which follows the (sorted) endpoint order.
    const points = new Float64Array(counts.reduce((s, c) => s + c, 0));
    let at = 0;
    members.forEach((m, i) => {
      const id = (m.endpoint as { id: string }).id;
      for (let p = 0; p < (counts[i] as number); p++) points[at++] = hash32(`${id}#${p}`) * OWNER_SPACE + i;
    });
    points.sort();
    this.hashes = new Uint32Array(points.length);
    this.owners = new Int32Array(points.length);
    for (let j = 0; j < points.length; j++) {
      const packed = points[j] as number;
      const owner = packed % OWNER_SPACE;
      this.owners[j] = owner;
      this.hashes[j] = (packed - owner) / OWNER_SPACE;
    }
  }

  get length(): number {
    return this.hashes.length;
  }

  /** The position of the first point at or after `h` (wrapping). */
  position(h: number): number {
    const hashes = this.hashes;
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((hashes[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === hashes.length ? 0 : lo;
  }

  /** The member index owning the point at `position` (any integer, wrapped). */
  owner(position: number): number {
    return this.owners[position % this.owners.length] as number;
  }
}
