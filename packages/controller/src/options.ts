import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDuration } from '@sluice/api';
import { ControllerError } from './errors.js';
import { readCertificates, readKeyPair } from './tls-files.js';

export interface ControllerOptions {
  store: 'embedded' | 'etcd';
  dataDir: string;
  etcdEndpoints: string[];
  etcdPrefix: string;
  admin: { host: string; port: number };
  grpc: { host: string; port: number };
  logLevel: string;
  /** This replica's name in Agent objects (`status.controller`); default `<hostname>:<pid>`. */
  id?: string;
  /** Agents that actively health-check each endpoint (default 2). */
  healthProbers?: number;
  /** How often agents report (default 1000 ms). */
  reportIntervalMs?: number;
  /** Leader election lease TTL with --store etcd (default 10 s). */
  leaderLeaseTtlMs?: number;
  /**
   * `host:port` agents can reach this replica's gRPC server at, published by the leader so
   * agents send it their reports. Default: the bound gRPC address, or `<hostname>:<port>` when
   * it is bound to every interface.
   */
  advertiseAddr?: string;
  /** TLS on the agents' gRPC server; absent: plaintext. */
  grpcTls?: GrpcTls;
  /** HTTPS on the admin API; absent: plain HTTP. */
  adminTls?: { cert: Buffer; key: Buffer };
}

/** PEM files for the gRPC server, read and checked once when the flags are parsed. */
export interface GrpcTls {
  cert: Buffer;
  key: Buffer;
  /** Present: every agent must show a client certificate this CA bundle verifies (mTLS). */
  ca?: Buffer;
}

export const CONTROLLER_USAGE = `Usage: sluice controller [flags]

Runs the Sluice controller: stores resources, serves the admin API and streams
configuration to agents.

Flags:
  --store embedded|etcd        where resources live (default: embedded)
  --data-dir DIR               embedded store directory (default: ./.sluice-data)
  --etcd-endpoints URL[,URL]   etcd client URLs for --store etcd (default: http://127.0.0.1:2379)
  --etcd-prefix PREFIX         key prefix in etcd (default: /sluice)
  --admin-addr HOST:PORT       admin REST API (default: 127.0.0.1:9080; port 0 picks one)
  --grpc-addr HOST:PORT        agent discovery gRPC (default: 0.0.0.0:9081)
  --log-level LEVEL            error|warn|info|debug (default: info)
  --health-probers N           agents that actively health-check each endpoint (default: 2)
  --report-interval DURATION   how often agents report health (default: 1s)
  --leader-lease-ttl DURATION  with --store etcd, the leader's lease TTL: a dead leader is
                               replaced within about two, and a leader cut off from etcd
                               steps down after half of one (default: 10s)
  --advertise-addr HOST:PORT   where agents reach this replica's gRPC server; the leader
                               publishes it so every agent reports to the leader (default:
                               the --grpc-addr, or HOSTNAME:PORT when it is 0.0.0.0 or ::)
  --grpc-tls-cert FILE         PEM server certificate (chain) for --grpc-addr; turns on TLS
                               for agents (default: plaintext). Its SANs must cover the
                               addresses agents dial, --advertise-addr included, or the
                               name agents are given as --tls-server-name
  --grpc-tls-key FILE          PEM private key of --grpc-tls-cert (unencrypted)
  --grpc-tls-ca FILE           PEM CA bundle: agents must present a client certificate it
                               verifies (mutual TLS); needs --grpc-tls-cert
  --admin-tls-cert FILE        PEM server certificate (chain) for --admin-addr: serve HTTPS
                               (default: HTTP). sluicectl trusts its CA through
                               NODE_EXTRA_CA_CERTS=ca.pem, or a publicly trusted certificate
  --admin-tls-key FILE         PEM private key of --admin-tls-cert (unencrypted)
  --id NAME                    this replica's name, shown as the CONTROLLER of its agents
                               (default: HOSTNAME:PID; give a stable one, e.g. the pod name,
                               so a restarted replica releases the agents it left connected)
  -h, --help                   show this help

Examples:
  sluice controller --store embedded --data-dir /var/lib/sluice
  sluice controller --store etcd --etcd-endpoints http://10.0.0.5:2379,http://10.0.0.6:2379
  sluice controller --grpc-tls-cert server.pem --grpc-tls-key server-key.pem --grpc-tls-ca ca.pem
`;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];

/** Parses `sluice controller` flags; every problem is reported at once, naming its flag. */
export function parseControllerArgs(argv: string[]): ControllerOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        store: { type: 'string', default: 'embedded' },
        'data-dir': { type: 'string', default: '.sluice-data' },
        'etcd-endpoints': { type: 'string', default: 'http://127.0.0.1:2379' },
        'etcd-prefix': { type: 'string', default: '/sluice' },
        'admin-addr': { type: 'string', default: '127.0.0.1:9080' },
        'grpc-addr': { type: 'string', default: '0.0.0.0:9081' },
        'log-level': { type: 'string', default: 'info' },
        id: { type: 'string' },
        'advertise-addr': { type: 'string' },
        'health-probers': { type: 'string', default: '2' },
        'report-interval': { type: 'string', default: '1s' },
        'leader-lease-ttl': { type: 'string', default: '10s' },
        'grpc-tls-cert': { type: 'string' },
        'grpc-tls-key': { type: 'string' },
        'grpc-tls-ca': { type: 'string' },
        'admin-tls-cert': { type: 'string' },
        'admin-tls-key': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new ControllerError('bad-request', error instanceof Error ? error.message : String(error));
  }
  if (values.help) return 'help';
  const problems: string[] = [];
  if (values.store !== 'embedded' && values.store !== 'etcd') problems.push(`--store: must be embedded or etcd, not "${values.store}"`);
  const endpoints = values['etcd-endpoints'].split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const endpoint of endpoints) {
    if (!/^https?:\/\/[^/\s]+$/.test(endpoint)) problems.push(`--etcd-endpoints: "${endpoint}" must look like http://host:port`);
  }
  if (values.store === 'etcd' && endpoints.length === 0) problems.push('--etcd-endpoints: at least one URL is required with --store etcd');
  if (!/^\/[\w./-]*[^/]$/.test(values['etcd-prefix'])) problems.push(`--etcd-prefix: must start with "/" and not end with one, not "${values['etcd-prefix']}"`);
  const id = values.id ?? `${hostname()}:${process.pid}`;
  if (id.trim() === '' || id.length > 253) problems.push('--id: must be 1 to 253 characters');
  if (!LOG_LEVELS.includes(values['log-level'])) problems.push(`--log-level: must be one of ${LOG_LEVELS.join(', ')}`);
  const healthProbers = Number(values['health-probers']);
  if (!Number.isInteger(healthProbers) || healthProbers < 1 || healthProbers > 100) problems.push(`--health-probers: must be an integer from 1 to 100, not "${values['health-probers']}"`);
  const reportIntervalMs = parseDuration(values['report-interval']);
  if (reportIntervalMs === undefined || reportIntervalMs < 50 || reportIntervalMs > 60_000) {
    problems.push(`--report-interval: must be a duration from 50ms to 1m, not "${values['report-interval']}"`);
  }
  const leaderLeaseTtlMs = parseDuration(values['leader-lease-ttl']);
  if (leaderLeaseTtlMs === undefined || leaderLeaseTtlMs < 2_000 || leaderLeaseTtlMs > 300_000 || leaderLeaseTtlMs % 1000 !== 0) {
    problems.push(`--leader-lease-ttl: must be whole seconds from 2s to 5m, not "${values['leader-lease-ttl']}"`);
  }
  const admin = parseHostPort('--admin-addr', values['admin-addr'], problems);
  const grpc = parseHostPort('--grpc-addr', values['grpc-addr'], problems);
  const advertise = values['advertise-addr'];
  if (advertise !== undefined) {
    const parsed = parseHostPort('--advertise-addr', advertise, problems);
    if (parsed.host === '0.0.0.0' || parsed.host === '::' || parsed.port === 0) problems.push(`--advertise-addr: must name a reachable host and a port, not "${advertise}"`);
  }
  const grpcTls = parseGrpcTls(values['grpc-tls-cert'], values['grpc-tls-key'], values['grpc-tls-ca'], problems);
  const adminTls = readKeyPair('server', '--admin-tls-cert', values['admin-tls-cert'], '--admin-tls-key', values['admin-tls-key'], problems);
  if (problems.length > 0) throw new ControllerError('bad-request', problems.join('\n'));
  return {
    store: values.store as 'embedded' | 'etcd',
    dataDir: values['data-dir'],
    etcdEndpoints: endpoints,
    etcdPrefix: values['etcd-prefix'],
    admin,
    grpc,
    logLevel: values['log-level'],
    id,
    healthProbers,
    reportIntervalMs: reportIntervalMs ?? 1000,
    leaderLeaseTtlMs: leaderLeaseTtlMs ?? 10_000,
    ...(advertise !== undefined ? { advertiseAddr: advertise } : {}),
    ...(grpcTls !== undefined ? { grpcTls } : {}),
    ...(adminTls !== undefined ? { adminTls } : {}),
  };
}

/** The files are read now so a bad one stops the start, naming its flag. */
function parseGrpcTls(certFile: string | undefined, keyFile: string | undefined, caFile: string | undefined, problems: string[]): GrpcTls | undefined {
  const pair = readKeyPair('server', '--grpc-tls-cert', certFile, '--grpc-tls-key', keyFile, problems);
  if (caFile === undefined) return pair;
  // Client certificates ride on the server's TLS: a CA alone would leave the stream in plaintext.
  if (certFile === undefined && keyFile === undefined) problems.push('--grpc-tls-ca: needs --grpc-tls-cert and --grpc-tls-key (client certificates are checked over TLS)');
  const ca = readCertificates('--grpc-tls-ca', caFile, problems);
  return pair && ca ? { ...pair, ca: ca.pem } : undefined;
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). */
export function parseHostPort(flag: string, text: string, problems: string[]): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    problems.push(`${flag}: must be HOST:PORT with a port from 0 to 65535, not "${text}"`);
    return { host: '', port: 0 };
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
