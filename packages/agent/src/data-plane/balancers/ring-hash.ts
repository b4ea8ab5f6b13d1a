import type { Member } from './balancer.js';
import { hash32 } from './hash.js';

export const DEFAULT_RING_SIZE = 1024;
export const MAX_RING_SIZE = 8_388_608;

/**
 * A ketama-style ring: each member gets points in proportion to its weight (at least one),
 * `size` points in all, each at hash("<id>#<i>"). A key belongs to the first point at or after
 * its hash. Points depend only on the member's id and share, so removing one of N members
 * moves only the keys that were on its points (about 1/N). Built once per member set.
 */
export class Ring {
  private readonly hashes: Uint32Array;
  private readonly owners: Int32Array;

  constructor(members: readonly Member<unknown>[], size: number) {
    const total = members.reduce((s, m) => s + m.weight, 0);
    const counts = members.map((m) => Math.max(1, Math.round((size * m.weight) / total)));
    const points: [number, number][] = [];
    members.forEach((m, i) => {
      const id = (m.endpoint as { id: string }).id;
      for (let p = 0; p < (counts[i] as number); p++) points.push([hash32(`${id}#${p}`), i]);
    });
    // Ties (rare) are ordered by owner index, which follows the (sorted) endpoint order.
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.hashes = Uint32Array.from(points, (p) => p[0]);
    this.owners = Int32Array.from(points, (p) => p[1]);
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
