import type { KindInfo } from '@sluice/api';
import { objectRef } from '../object.js';

/** `-o name`: `upstream/shop-v1`, one per line. */
export function formatNames(objects: readonly Record<string, unknown>[], info?: KindInfo): string {
  return objects.map((o) => `${objectRef(o, info)}\n`).join('');
}
