/**
 * Everything a command touches outside the process: streams, environment, working
 * directory and interrupts. main.ts wires the real ones; tests pass fakes.
 */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Reads all of stdin (for `-f -`). */
  readStdin: () => Promise<string>;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Aborted on SIGINT. Long-running commands (watch) end cleanly when it fires. */
  interrupted: AbortSignal;
  /**
   * While a command holds a lease from here, SIGINT only aborts `interrupted` instead of
   * ending the process (watch streams; edit while the editor owns the terminal).
   */
  holdInterrupts: () => () => void;
}

/** Writes `lines` with a trailing newline each. */
export function printLines(write: (text: string) => void, lines: readonly string[]): void {
  if (lines.length > 0) write(`${lines.join('\n')}\n`);
}
