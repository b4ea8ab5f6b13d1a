import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A child process that is always reaped: dispose sends SIGTERM, then SIGKILL after
 * `killAfterMs`, and waits for exit. Output lines are kept for assertions and diagnostics.
 */
export class ManagedProcess implements AsyncDisposable {
  readonly child: ChildProcess;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private lineWaiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ) {
    this.child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const onLine = (sink: string[]) => (line: string) => {
      sink.push(line);
      this.lineWaiters = this.lineWaiters.filter((w) => {
        if (!w.test(line)) return true;
        w.resolve(line);
        return false;
      });
    };
    createInterface({ input: this.child.stdout! }).on('line', onLine(this.stdoutLines));
    createInterface({ input: this.child.stderr! }).on('line', onLine(this.stderrLines));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first output line (stdout or stderr, past or future) that passes `test`. */
  waitForLine(test: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const seen = [...this.stdoutLines, ...this.stderrLines].find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.command} ${this.args.join(' ')}: no matching output line within ${timeoutMs} ms\n${this.output()}`));
      }, timeoutMs);
      const waiter = {
        test,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.lineWaiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        if (!this.lineWaiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`${this.command} exited (code ${code}, signal ${signal}) before the expected output\n${this.output()}`));
      });
    });
  }

  /** Everything printed so far, for test failure messages. */
  output(): string {
    return [...this.stdoutLines, ...this.stderrLines].slice(-80).join('\n');
  }

  waitForExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  /** Sends `signal` and waits for exit; escalates to SIGKILL after `killAfterMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), killAfterMs);
      const result = await this.exited;
      clearTimeout(timer);
      return result;
    }
    return this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
