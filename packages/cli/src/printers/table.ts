import type { Column } from './columns.js';

/** kubectl's tabwriter settings: columns padded to the widest cell plus 3 spaces. */
const PADDING = 3;

/**
 * Renders rows as aligned columns. Widths only grow, so a streaming table (get -w) stays
 * aligned with what it printed before whenever later rows fit.
 */
export class TableWriter {
  private widths: number[];
  private headerPrinted = false;

  constructor(
    private readonly columns: readonly Column[],
    private readonly write: (text: string) => void,
    private readonly extraHeaders: readonly string[] = [],
  ) {
    // Extra leading cells (get -w's EVENT) hold watch event types: reserve the longest.
    this.widths = [...extraHeaders.map((h) => Math.max(h.length, 'MODIFIED'.length)), ...columns.map((c) => c.header.length)];
  }

  /** For --no-headers. */
  skipHeader(): void {
    this.headerPrinted = true;
  }

  /** Prints the header (once) and the rows, sizing columns to fit all of them. */
  print(objects: readonly Record<string, unknown>[], extraCells: readonly (readonly string[])[] = []): void {
    const rows = objects.map((o, i) => [...(extraCells[i] ?? []), ...this.columns.map((c) => c.value(o))]);
    for (const row of rows) this.fit(row);
    const lines: string[] = [];
    if (!this.headerPrinted) {
      lines.push(this.format([...this.extraHeaders, ...this.columns.map((c) => c.header)]));
      this.headerPrinted = true;
    }
    for (const row of rows) lines.push(this.format(row));
    if (lines.length > 0) this.write(`${lines.join('\n')}\n`);
  }

  private fit(row: readonly string[]): void {
    row.forEach((cell, i) => {
      this.widths[i] = Math.max(this.widths[i] ?? 0, cell.length);
    });
  }

  private format(row: readonly string[]): string {
    const last = row.length - 1;
    return row.map((cell, i) => (i === last ? cell : cell.padEnd((this.widths[i] ?? 0) + PADDING))).join('');
  }
}

/** A whole table at once, as lines. */
export function formatTable(columns: readonly Column[], objects: readonly Record<string, unknown>[]): string {
  let out = '';
  new TableWriter(columns, (t) => (out += t)).print(objects);
  return out;
}
