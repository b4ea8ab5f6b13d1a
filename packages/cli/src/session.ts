import { parseDuration } from '@sluice/api';
import { SluiceClient } from './client.js';
import { configPath, loadConfig, resolveConnection, type Connection, type SluiceConfig } from './config.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';

/** Flags every command accepts (defined on the root command). */
export interface GlobalFlags {
  server?: string;
  namespace?: string;
  requestTimeout?: string;
}

/** How a command ended when it did not throw. main.ts maps it to an exit status. */
export type Outcome = 'ok' | 'failed' | 'differences';

export const DEFAULT_REQUEST_TIMEOUT = '30s';

/** `--request-timeout`: a duration (`30s`, `1m`), a bare number of seconds, or 0 for none. */
export function parseRequestTimeout(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const ms = parseDuration(trimmed);
  if (ms === undefined) {
    throw new CliError('usage', `invalid --request-timeout "${text}": use a duration like 30s or 1m, or 0 for no timeout`);
  }
  return ms;
}

/**
 * What a command run shares: I/O, the global flags, the config file and a client built
 * from them on first use (commands that never talk to the server never read the config).
 */
export class Session {
  outcome: Outcome = 'ok';
  private connectionPromise: Promise<Connection> | undefined;
  private configPromise: Promise<SluiceConfig> | undefined;

  constructor(
    readonly io: Io,
    private readonly globals: () => GlobalFlags,
  ) {}

  flags(): GlobalFlags {
    return this.globals();
  }

  configPath(): string {
    return configPath(this.io.env);
  }

  config(): Promise<SluiceConfig> {
    this.configPromise ??= loadConfig(this.configPath());
    return this.configPromise;
  }

  connection(): Promise<Connection> {
    this.connectionPromise ??= this.config().then((config) => resolveConnection(this.globals(), this.io.env, config));
    return this.connectionPromise;
  }

  async client(): Promise<SluiceClient> {
    const connection = await this.connection();
    return new SluiceClient({
      server: connection.server,
      timeoutMs: parseRequestTimeout(this.globals().requestTimeout ?? DEFAULT_REQUEST_TIMEOUT),
      interrupted: this.io.interrupted,
    });
  }

  /** Some of the work failed and was reported on stderr already; exit non-zero at the end. */
  fail(): void {
    if (this.outcome === 'ok') this.outcome = 'failed';
  }

  /** Prints an error message without ending the command (kubectl goes on with the other names). */
  reportError(lines: readonly string[]): void {
    this.io.err(`${lines.join('\n')}\n`);
    this.fail();
  }
}
