// Runs sluicectl in-process with captured output, for tests.
import { runCli } from '../cli.js';
import { exitCodeFor } from '../exit-code.js';
import type { Io } from '../io.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  cwd?: string;
  interrupted?: AbortSignal;
  /** Called with each chunk written to stdout (watch tests). */
  onStdout?: (text: string) => void;
}

export async function runInProcess(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (t) => {
      stdout += t;
      options.onStdout?.(t);
    },
    err: (t) => (stderr += t),
    readStdin: () => Promise.resolve(options.stdin ?? ''),
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    interrupted: options.interrupted ?? new AbortController().signal,
    holdInterrupts: () => () => undefined,
  };
  const result = await runCli(argv, io);
  return { code: exitCodeFor(result, result.command), stdout, stderr };
}
