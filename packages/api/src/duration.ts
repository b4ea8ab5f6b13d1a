const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

export const DURATION_HINT = 'use a number and a unit, like 100ms, 5s or 1m30s';

/**
 * Parses a Go-style duration (`100ms`, `5s`, `1m30s`, `1h`, `1.5s`) into milliseconds.
 * Units: ms, s, m, h. Returns undefined for anything else, including a bare number,
 * because `timeout: 5` is ambiguous (seconds? milliseconds?).
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART_RE)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
  }
  total = Math.round(total * 1000) / 1000;
  return Number.isFinite(total) ? total : undefined;
}

/** Formats milliseconds the way a user would write them: 90000 -> `1m30s`, 1500 -> `1500ms`, 0 -> `0s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot format duration ${ms}`);
  if (ms === 0) return '0s';
  if (!Number.isInteger(ms) || ms % 1000 !== 0) {
    // Sub-second precision: milliseconds keep the value exact and readable.
    return `${ms}ms`;
  }
  let rest = ms / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
}
