import { ManagedProcess } from './child-process.js';
import { sluiceBin } from './repo.js';

export interface ControllerOptions {
  store: 'embedded' | 'etcd';
  /** Required for the embedded store; a restart with the same dir keeps the data. */
  dataDir?: string;
  etcdEndpoints?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * A real `sluice controller` child process on loopback with its admin API on port 0.
 * `url` is the admin base URL, read from the "admin API listening" log line.
 */
export class ControllerProcess implements AsyncDisposable {
  private constructor(
    readonly options: ControllerOptions,
    public process: ManagedProcess,
    public url: string,
  ) {}

  static async start(options: ControllerOptions): Promise<ControllerProcess> {
    const proc = ControllerProcess.spawn(options);
    try {
      const url = await ControllerProcess.adminUrl(proc);
      return new ControllerProcess(options, proc, url);
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
  }

  private static spawn(options: ControllerOptions): ManagedProcess {
    const args = [sluiceBin, 'controller', '--store', options.store, '--admin-addr', '127.0.0.1:0', '--grpc-addr', '127.0.0.1:0'];
    if (options.dataDir !== undefined) args.push('--data-dir', options.dataDir);
    if (options.etcdEndpoints !== undefined) args.push('--etcd-endpoints', options.etcdEndpoints);
    args.push(...(options.extraArgs ?? []));
    return new ManagedProcess(process.execPath, args, { env: { ...process.env, ...options.env } });
  }

  private static async adminUrl(proc: ManagedProcess): Promise<string> {
    const line = await proc.waitForLine((l) => l.includes('"admin API listening"'));
    const { address } = JSON.parse(line) as { address: string };
    return address;
  }

  /** Stops the process (SIGTERM, graceful) and starts it again with the same options. */
  async restart(): Promise<void> {
    await this.process.stop();
    this.process = ControllerProcess.spawn(this.options);
    this.url = await ControllerProcess.adminUrl(this.process);
  }

  stop(): Promise<unknown> {
    return this.process.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}
