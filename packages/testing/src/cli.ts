import { spawn } from 'node:child_process';
import { sluicectlBin } from './repo.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real built `sluicectl` as a child process (HOME and SLUICE_CONFIG isolated by the
 * caller through `env`), feeding `input` on stdin. Never throws on a non-zero exit: tests
 * assert the exit code.
 */
export function runSluicectl(
  args: readonly string[],
  options: { server?: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.server !== undefined) env.SLUICE_SERVER = options.server;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [sluicectlBin, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
