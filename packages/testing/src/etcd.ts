import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { ManagedProcess } from './child-process.js';
import { freePort } from './free-port.js';
import { tempDir, type TempDir } from './temp-dir.js';

/** A real single-member etcd on loopback. Dispose stops it and removes its data dir. */
export interface EtcdFixture extends AsyncDisposable {
  /** Client URL, e.g. `http://127.0.0.1:40123`. Stays the same across stop/start. */
  readonly endpoint: string;
  readonly dataDir: string;
  readonly running: boolean;
  /** Starts etcd again on the same data dir and the same ports; resolves when it is healthy. */
  start(): Promise<void>;
  /** SIGTERM, then waits for exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then waits for exit. */
  kill(): Promise<void>;
}

const startAttempts = 3;
const readyTimeoutMs = 20_000;

/** `/usr/bin/etcd` (Debian's etcd-server, see scripts/ensure-test-deps.sh) or `etcd` from PATH. */
function etcdBinary(): string {
  return existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : 'etcd';
}

class PortClash extends Error {}

class EtcdServer implements EtcdFixture {
  private process: ManagedProcess | undefined;

  constructor(
    private readonly dir: TempDir,
    private readonly clientPort: number,
    private readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get dataDir(): string {
    return `${this.dir.path}/etcd`;
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  private args(): string[] {
    const peerUrl = `http://127.0.0.1:${this.peerPort}`;
    return [
      '--name=sluice-test',
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.endpoint}`,
      `--advertise-client-urls=${this.endpoint}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=sluice-test=${peerUrl}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=sluice-test',
      // A single member elects itself after one election timeout on every restart; keep it short.
      '--heartbeat-interval=20',
      '--election-timeout=200',
      '--logger=zap',
      '--log-level=error',
    ];
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`etcd at ${this.endpoint} is already running`);
    const proc = new ManagedProcess(etcdBinary(), this.args());
    this.process = proc;
    try {
      await this.waitHealthy(proc);
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
  }

  /**
   * etcd has no readiness signal at --log-level=error, so poll GET /health: a bounded loop of
   * short requests that stops early when the process exits.
   */
  private async waitHealthy(proc: ManagedProcess): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!proc.running) {
        const output = proc.output();
        const message = `etcd exited before becoming healthy (${this.endpoint})\n${output}`;
        throw output.includes('address already in use') ? new PortClash(message) : new Error(message);
      }
      try {
        const response = await fetch(`${this.endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
        const body = (await response.json()) as { health?: string };
        if (response.ok && body.health === 'true') return;
        lastError = new Error(`GET /health: ${response.status} ${JSON.stringify(body)}`);
      } catch (error) {
        lastError = error;
      }
      await delay(50);
    }
    throw new Error(`etcd at ${this.endpoint} not healthy within ${readyTimeoutMs} ms: ${String(lastError)}\n${proc.output()}`, {
      cause: lastError,
    });
  }

  async stop(): Promise<void> {
    await this.process?.stop('SIGTERM');
  }

  async kill(): Promise<void> {
    await this.process?.stop('SIGKILL');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.process?.stop('SIGTERM');
    } finally {
      await this.dir[Symbol.asyncDispose]();
    }
  }
}

/**
 * Starts a fresh etcd with its data dir under /dev/shm and client/peer URLs on free ports.
 * A port taken between `freePort()` and etcd's bind makes etcd exit; the whole start is
 * then retried with new ports (up to 3 times).
 */
export async function startEtcd(): Promise<EtcdFixture> {
  for (let attempt = 1; ; attempt++) {
    const dir = await tempDir('sluice-etcd-');
    const clientPort = await freePort();
    let peerPort = await freePort();
    while (peerPort === clientPort) peerPort = await freePort();
    const server = new EtcdServer(dir, clientPort, peerPort);
    try {
      await server.start();
      return server;
    } catch (error) {
      await server[Symbol.asyncDispose]();
      if (!(error instanceof PortClash) || attempt >= startAttempts) throw error;
    }
  }
}
