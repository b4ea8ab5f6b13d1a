import { ManagedProcess } from './child-process.js';
import { sluiceBin } from './repo.js';

export interface ControllerOptions {
  store: 'embedded' | 'etcd';
  /** Required for the embedded store; a restart with the same dir keeps the data. */
  dataDir?: string;
  etcdEndpoints?: string;
  /** Pin the gRPC address (e.g. a freePort()) so agents find a restarted controller again. */
  grpcAddr?: string;
  /** PEM files for --grpc-tls-cert/--grpc-tls-key, and --grpc-tls-ca to require client certificates. */
  grpcTls?: { cert: string; key: string; ca?: string };
  /** PEM files for --admin-tls-cert/--admin-tls-key: `url` is then https://. */
  adminTls?: { cert: string; key: string };
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
    public grpcAddress: string,
  ) {}

  static async start(options: ControllerOptions): Promise<ControllerProcess> {
    const proc = ControllerProcess.spawn(options);
    try {
      const { url, grpcAddress } = await ControllerProcess.addresses(proc);
      return new ControllerProcess(options, proc, url, grpcAddress);
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
  }

  private static spawn(options: ControllerOptions): ManagedProcess {
    const args = [sluiceBin, 'controller', '--store', options.store, '--admin-addr', '127.0.0.1:0', '--grpc-addr', options.grpcAddr ?? '127.0.0.1:0'];
    if (options.dataDir !== undefined) args.push('--data-dir', options.dataDir);
    if (options.etcdEndpoints !== undefined) args.push('--etcd-endpoints', options.etcdEndpoints);
    if (options.grpcTls !== undefined) args.push('--grpc-tls-cert', options.grpcTls.cert, '--grpc-tls-key', options.grpcTls.key);
    if (options.grpcTls?.ca !== undefined) args.push('--grpc-tls-ca', options.grpcTls.ca);
    if (options.adminTls !== undefined) args.push('--admin-tls-cert', options.adminTls.cert, '--admin-tls-key', options.adminTls.key);
    args.push(...(options.extraArgs ?? []));
    return new ManagedProcess(process.execPath, args, { env: { ...process.env, ...options.env } });
  }

  /** The admin URL and the gRPC `host:port`, read from the controller's startup log lines. */
  private static async addresses(proc: ManagedProcess): Promise<{ url: string; grpcAddress: string }> {
    const admin = await proc.waitForLine((l) => l.includes('"admin API listening"'));
    const grpc = await proc.waitForLine((l) => l.includes('"gRPC discovery listening"'));
    return {
      url: (JSON.parse(admin) as { address: string }).address,
      grpcAddress: (JSON.parse(grpc) as { address: string }).address,
    };
  }

  /**
   * Stops the process (SIGTERM, graceful) and starts it again with the same options. Ports
   * come from port 0 again unless pinned (`grpcAddr`, for agents that must find it again).
   */
  async restart(): Promise<void> {
    await this.process.stop();
    this.process = ControllerProcess.spawn(this.options);
    ({ url: this.url, grpcAddress: this.grpcAddress } = await ControllerProcess.addresses(this.process));
  }

  stop(): Promise<unknown> {
    return this.process.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}
