// A line-based unified diff (`diff -u`): longest common subsequence over the lines that
// differ, after trimming the common head and tail. Inputs are YAML documents of a few
// hundred lines, so the quadratic table stays small; beyond MAX_CELLS the changed middle
// is shown as a whole replacement rather than spending seconds on a minimal script.

export type EditOp = { type: 'equal' | 'delete' | 'insert'; line: string };

const MAX_CELLS = 16_000_000;

export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A shortest edit script turning `a` into `b` (deletions before insertions in each change). */
export function diffLines(a: readonly string[], b: readonly string[]): EditOp[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const ops: EditOp[] = a.slice(0, head).map((line) => ({ type: 'equal', line }));
  ops.push(...lcsScript(midA, midB));
  ops.push(...a.slice(a.length - tail).map((line): EditOp => ({ type: 'equal', line })));
  return ops;
}

function lcsScript(a: readonly string[], b: readonly string[]): EditOp[] {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0 || (n + 1) * (m + 1) > MAX_CELLS) {
    return [...a.map((line): EditOp => ({ type: 'delete', line })), ...b.map((line): EditOp => ({ type: 'insert', line }))];
  }
  // lcs[i][j] = length of the LCS of a[i..] and b[j..], in one flat array.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[i] === b[j] ? (lcs[(i + 1) * width + j + 1] ?? 0) + 1 : Math.max(lcs[(i + 1) * width + j] ?? 0, lcs[i * width + j + 1] ?? 0);
    }
  }
  const ops: EditOp[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      ops.push({ type: 'equal', line: a[i] ?? '' });
      i++;
      j++;
    } else if ((lcs[(i + 1) * width + j] ?? 0) >= (lcs[i * width + j + 1] ?? 0)) {
      ops.push({ type: 'delete', line: a[i] ?? '' });
      i++;
    } else {
      ops.push({ type: 'insert', line: b[j] ?? '' });
      j++;
    }
  }
  for (; i < n; i++) ops.push({ type: 'delete', line: a[i] ?? '' });
  for (; j < m; j++) ops.push({ type: 'insert', line: b[j] ?? '' });
  return ops;
}

export interface UnifiedDiffOptions {
  fromName: string;
  toName: string;
  /** Unchanged lines shown around each change (diff -u uses 3). */
  context?: number;
}

function range(start: number, length: number): string {
  // GNU diff: an empty range names the line before it; a one-line range omits the length.
  if (length === 0) return `${start - 1},0`;
  return length === 1 ? `${start}` : `${start},${length}`;
}

/** The unified diff of two texts, or '' when they are equal. */
export function unifiedDiff(from: string, to: string, options: UnifiedDiffOptions): string {
  const context = options.context ?? 3;
  const ops = diffLines(splitLines(from), splitLines(to));
  if (ops.every((op) => op.type === 'equal')) return '';

  // Positions (1-based line numbers in each file) before each op.
  const posA: number[] = [];
  const posB: number[] = [];
  let la = 1;
  let lb = 1;
  for (const op of ops) {
    posA.push(la);
    posB.push(lb);
    if (op.type !== 'insert') la++;
    if (op.type !== 'delete') lb++;
  }

  const out = [`--- ${options.fromName}`, `+++ ${options.toName}`];
  let k = 0;
  while (k < ops.length) {
    // Find the next change, then extend the hunk while changes are within 2*context lines.
    while (k < ops.length && ops[k]?.type === 'equal') k++;
    if (k >= ops.length) break;
    const start = Math.max(0, k - context);
    let end = k;
    for (;;) {
      while (end < ops.length && ops[end]?.type !== 'equal') end++;
      let next = end;
      while (next < ops.length && ops[next]?.type === 'equal') next++;
      if (next < ops.length && next - end <= 2 * context) {
        end = next;
        continue;
      }
      end = Math.min(ops.length, end + context);
      break;
    }
    const hunk = ops.slice(start, end);
    const lenA = hunk.filter((op) => op.type !== 'insert').length;
    const lenB = hunk.filter((op) => op.type !== 'delete').length;
    out.push(`@@ -${range(posA[start] ?? 1, lenA)} +${range(posB[start] ?? 1, lenB)} @@`);
    for (const op of hunk) out.push(`${op.type === 'equal' ? ' ' : op.type === 'delete' ? '-' : '+'}${op.line}`);
    k = end;
  }
  return `${out.join('\n')}\n`;
}
