import { ManagedProcess } from './child-process.js';
import { sluiceBin } from './repo.js';

export interface AgentOptions {
  /** `host:port` of one or more controllers' gRPC discovery, comma separated. */
  controller: string;
  id: string;
  labels?: Record<string, string>;
  /** Address the agent binds its listeners on, so several agents share one machine (127.0.0.2 ...). */
  listenAddress?: string;
  cacheDir?: string;
  workers?: number;
  /** PEM files: --tls-ca verifies the controller, --tls-cert/--tls-key are the client certificate. */
  tls?: { ca?: string; cert?: string; key?: string };
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * A real `sluice agent` child process with its admin port on 127.0.0.1:0. `adminUrl` is read
 * from the "agent admin listening" log line.
 */
export class AgentProcess implements AsyncDisposable {
  private constructor(
    readonly options: AgentOptions,
    public process: ManagedProcess,
    public adminUrl: string,
  ) {}

  static async start(options: AgentOptions): Promise<AgentProcess> {
    const proc = AgentProcess.spawn(options);
    try {
      return new AgentProcess(options, proc, await AgentProcess.admin(proc));
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
  }

  private static spawn(options: AgentOptions): ManagedProcess {
    const args = [sluiceBin, 'agent', '--controller', options.controller, '--id', options.id, '--admin-addr', '127.0.0.1:0'];
    args.push('--workers', String(options.workers ?? 1));
    const labels = Object.entries(options.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    if (labels.length > 0) args.push('--labels', labels.join(','));
    if (options.listenAddress !== undefined) args.push('--listen-address', options.listenAddress);
    if (options.cacheDir !== undefined) args.push('--cache-dir', options.cacheDir);
    if (options.tls?.ca !== undefined) args.push('--tls-ca', options.tls.ca);
    if (options.tls?.cert !== undefined) args.push('--tls-cert', options.tls.cert);
    if (options.tls?.key !== undefined) args.push('--tls-key', options.tls.key);
    args.push(...(options.extraArgs ?? []));
    return new ManagedProcess(process.execPath, args, { env: { ...process.env, ...options.env } });
  }

  private static async admin(proc: ManagedProcess): Promise<string> {
    const line = await proc.waitForLine((l) => l.includes('"agent admin listening"'));
    return (JSON.parse(line) as { address: string }).address;
  }

  /** Resolves once `/readyz` answers 200 (a first configuration is applied). */
  async ready(timeoutMs = 20_000): Promise<void> {
    await this.process.waitForLine((l) => l.includes('"agent ready"'), timeoutMs);
  }

  async restart(): Promise<void> {
    await this.process.stop();
    this.process = AgentProcess.spawn(this.options);
    this.adminUrl = await AgentProcess.admin(this.process);
  }

  stop(signal?: NodeJS.Signals): Promise<unknown> {
    return this.process.stop(signal);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.process.stop();
  }
}
