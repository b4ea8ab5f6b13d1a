import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Resource } from '@sluice/proto';
import type { Logger } from '../logger.js';

/** The applied configuration as the agent last held it. */
export interface CachedConfig {
  revision: number;
  snapshotVersion: string;
  resources: Resource[];
}

const FILE = 'config.json';
const FORMAT = 'sluice.agent.config-cache/v1';

/**
 * `--cache-dir`: the applied resources in one JSON file (proto3 JSON via `Resource.toJSON`, so
 * an operator can read it), replaced atomically (temp file, fsync, rename) after every apply.
 * It holds TLS private keys: the file is 0600 and the directory 0700 when we create it.
 * A file that does not parse is reported and ignored: the agent then starts empty.
 */
export class CacheDir {
  readonly file: string;
  private latest: CachedConfig | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {
    this.file = join(dir, FILE);
  }

  /** Creates the directory, so a bad --cache-dir fails at start rather than at the first write. */
  async prepare(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The cached configuration, or undefined when there is none or it is unreadable. */
  async load(): Promise<CachedConfig | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.logger.warn('cannot read the config cache; starting empty', { file: this.file, error: errorMessage(error) });
      return undefined;
    }
    try {
      return decode(text);
    } catch (error) {
      this.logger.warn('config cache is corrupt; starting empty', { file: this.file, error: errorMessage(error) });
      return undefined;
    }
  }

  /**
   * Writes `config` (or a newer one saved meanwhile: bursts coalesce). Never rejects: a failed
   * write is logged, and the next apply tries again.
   */
  save(config: CachedConfig): Promise<void> {
    this.latest = config;
    this.queue = this.queue.then(() => this.writeLatest());
    return this.queue;
  }

  /** Resolves once every saved configuration is on disk (or failed). */
  flush(): Promise<void> {
    return this.queue;
  }

  private async writeLatest(): Promise<void> {
    const config = this.latest;
    if (config === undefined) return;
    this.latest = undefined;
    const temp = join(this.dir, `.${FILE}.${process.pid}.tmp`);
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(encode(config));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
      this.logger.debug('config cache written', { file: this.file, revision: config.revision, resources: config.resources.length });
    } catch (error) {
      this.logger.warn('cannot write the config cache', { file: this.file, error: errorMessage(error) });
      await rm(temp, { force: true }).catch(() => undefined);
    }
  }
}

export function encode(config: CachedConfig): string {
  return `${JSON.stringify({
    format: FORMAT,
    revision: config.revision,
    snapshotVersion: config.snapshotVersion,
    resources: config.resources.map((r) => Resource.toJSON(r)),
  })}\n`;
}

export function decode(text: string): CachedConfig {
  const data = JSON.parse(text) as unknown;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('not a JSON object');
  const { format, revision, snapshotVersion, resources } = data as Record<string, unknown>;
  if (format !== FORMAT) throw new Error(`format is ${JSON.stringify(format)}, expected "${FORMAT}"`);
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision)) throw new Error('revision is not an integer');
  if (typeof snapshotVersion !== 'string') throw new Error('snapshotVersion is not a string');
  if (!Array.isArray(resources)) throw new Error('resources is not a list');
  return {
    revision,
    snapshotVersion,
    resources: resources.map((item: unknown, i) => {
      if (typeof item !== 'object' || item === null) throw new Error(`resources[${i}] is not an object`);
      const resource = Resource.fromJSON(item);
      if (resource.name === '' || resource.version === '' || resource.body === undefined) throw new Error(`resources[${i}] lacks a name, version or body`);
      return resource;
    }),
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
