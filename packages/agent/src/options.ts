import { isIP } from 'node:net';
import { availableParallelism, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { AgentError } from './errors.js';
import { formatHostPort, parseHostPort } from './host-port.js';
import { readCertificates, readKeyPair, type AgentTls } from './tls-files.js';

export interface AgentOptions {
  /** Controller gRPC addresses (`host:port`), tried in turn. */
  controllers: string[];
  id: string;
  labels: Record<string, string>;
  admin: { host: string; port: number };
  cacheDir: string | undefined;
  workers: number;
  /** Overrides every listener's bind address (several agents on one machine); unset = each listener's. */
  listenAddress: string | undefined;
  logLevel: string;
  /** TLS on every channel to a controller (redirects included); absent: plaintext. */
  tls?: AgentTls;
}

export const AGENT_USAGE = `Usage: sluice agent --controller HOST:PORT[,HOST:PORT] [flags]

Runs a Sluice agent: receives configuration from a controller over gRPC and proxies traffic.
It keeps serving its last configuration while no controller answers.

Flags:
  --controller HOST:PORT[,...]  controller gRPC discovery addresses, tried in turn (required)
  --id ID                       agent id, a DNS-1123 subdomain (default: the host name)
  --labels K=V[,K=V]            labels that Listener agentSelectors match (default: none)
  --admin-addr HOST:PORT        /healthz, /readyz, /config_dump (default: 127.0.0.1:9180; port 0 picks one)
  --cache-dir DIR               keep the applied configuration here and start from it
  --workers N                   data-plane processes (default: number of cores; 1 = in process)
  --listen-address IP           bind every listener on this address instead of its own
  --log-level LEVEL             error|warn|info|debug (default: info)
  --tls-ca FILE                 PEM CA bundle that verifies the controller's certificate;
                                turns on TLS to every controller (default: plaintext, or the
                                system's roots when only --tls-cert/--tls-key are given)
  --tls-cert FILE               PEM client certificate (chain) shown to controllers that
                                require one (--grpc-tls-ca); needs --tls-key
  --tls-key FILE                PEM private key of --tls-cert (unencrypted)
  --tls-server-name NAME        check the controller certificate for NAME (a SAN) instead of
                                the dialled host, for every controller including the leader
                                reports are redirected to (advertised by pod IP); also SNI
  -h, --help                    show this help

Examples:
  sluice agent --controller 10.0.0.5:9081,10.0.0.6:9081 --labels zone=eu-1,tier=edge
  sluice agent --controller 127.0.0.1:9081 --id edge-1 --cache-dir /var/lib/sluice-agent --workers 4
  sluice agent --controller sluice.example.com:9081 --tls-ca ca.pem --tls-cert agent.pem --tls-key agent-key.pem
`;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];
const MAX_WORKERS = 256;
const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
/** A host name as a certificate SAN carries it. */
const DNS_NAME = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Parses `sluice agent` flags; every problem is reported at once, naming its flag. */
export function parseAgentArgs(argv: string[], defaults: { hostname?: string; cores?: number } = {}): AgentOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        controller: { type: 'string' },
        id: { type: 'string' },
        labels: { type: 'string', default: '' },
        'admin-addr': { type: 'string', default: '127.0.0.1:9180' },
        'cache-dir': { type: 'string' },
        workers: { type: 'string' },
        'listen-address': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-server-name': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new AgentError('bad-request', error instanceof Error ? error.message : String(error));
  }
  if (values.help) return 'help';
  const problems: string[] = [];

  const controllers: string[] = [];
  if (values.controller === undefined) problems.push('--controller: required, e.g. --controller 127.0.0.1:9081');
  else {
    const entries = values.controller.split(',').map((e) => e.trim()).filter((e) => e !== '');
    if (entries.length === 0) problems.push('--controller: at least one HOST:PORT is required');
    for (const entry of entries) {
      const { host, port } = parseHostPort('--controller', entry, problems);
      if (host === '') continue;
      if (port === 0) problems.push(`--controller: "${entry}" needs a port from 1 to 65535`);
      else if (entry.startsWith(':')) problems.push(`--controller: "${entry}" needs a host`);
      else controllers.push(formatHostPort(host, port));
    }
  }

  const id = values.id ?? sanitizeId(defaults.hostname ?? hostname());
  if (id.length > 253 || !DNS1123_SUBDOMAIN.test(id)) {
    problems.push(`--id: must be a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253 characters), not "${id}"`);
  }

  const labels = parseLabels(values.labels, problems);
  const admin = parseHostPort('--admin-addr', values['admin-addr'], problems);

  const cacheDir = values['cache-dir'];
  if (cacheDir !== undefined && cacheDir.trim() === '') problems.push('--cache-dir: must be a directory path, not empty');

  let workers = defaults.cores ?? availableParallelism();
  if (values.workers !== undefined) {
    workers = /^\d+$/.test(values.workers) ? Number(values.workers) : NaN;
    if (!(workers >= 1 && workers <= MAX_WORKERS)) problems.push(`--workers: must be a whole number from 1 to ${MAX_WORKERS}, not "${values.workers}"`);
  }

  const listenAddress = values['listen-address'];
  if (listenAddress !== undefined && isIP(listenAddress) === 0) problems.push(`--listen-address: must be an IPv4 or IPv6 address, not "${listenAddress}"`);

  if (!LOG_LEVELS.includes(values['log-level'])) problems.push(`--log-level: must be one of ${LOG_LEVELS.join(', ')}`);

  const tls = parseTls(values['tls-ca'], values['tls-cert'], values['tls-key'], values['tls-server-name'], problems);

  if (problems.length > 0) throw new AgentError('bad-request', problems.join('\n'));
  return { controllers, id, labels, admin, cacheDir, workers, listenAddress, logLevel: values['log-level'], ...(tls ? { tls } : {}) };
}

/** Any --tls-* flag turns TLS on; the files are read now so a bad one stops the start. */
function parseTls(
  caFile: string | undefined,
  certFile: string | undefined,
  keyFile: string | undefined,
  serverName: string | undefined,
  problems: string[],
): AgentTls | undefined {
  if (caFile === undefined && certFile === undefined && keyFile === undefined && serverName === undefined) return undefined;
  const ca = caFile === undefined ? undefined : readCertificates('--tls-ca', caFile, problems)?.pem;
  const pair = readKeyPair('client', '--tls-cert', certFile, '--tls-key', keyFile, problems);
  if (serverName !== undefined && isIP(serverName) === 0 && (serverName.length > 253 || !DNS_NAME.test(serverName))) {
    problems.push(`--tls-server-name: must be a DNS name or an IP address, not "${serverName}"`);
  }
  return { ...(ca ? { ca } : {}), ...(pair ?? {}), ...(serverName !== undefined ? { serverName } : {}) };
}

/** `k=v,k2=v2` with Kubernetes label rules (optional `prefix/` on keys, values may be empty). */
function parseLabels(text: string, problems: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq < 0) {
      problems.push(`--labels: "${pair}" must be KEY=VALUE`);
      continue;
    }
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = key.slice(slash + 1);
    if ((prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) || name.length > 63 || !LABEL_NAME.test(name)) {
      problems.push(`--labels: key "${key}" must be [PREFIX/]NAME: NAME up to 63 letters, digits, "-", "_", "." starting and ending alphanumeric; PREFIX a DNS-1123 subdomain`);
    } else if (value.length > 63 || (value !== '' && !LABEL_NAME.test(value))) {
      problems.push(`--labels: value "${value}" of "${key}" must be up to 63 letters, digits, "-", "_", "." starting and ending alphanumeric`);
    } else if (key in labels) {
      problems.push(`--labels: "${key}" is given twice`);
    } else {
      labels[key] = value;
    }
  }
  return labels;
}

/** A host name as a DNS-1123 subdomain: lowercase, other characters to "-", edges trimmed. */
export function sanitizeId(name: string): string {
  const labels = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .split('.')
    .map((label) => label.replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, ''))
    .filter((label) => label !== '');
  const id = labels.join('.').slice(0, 253).replace(/[.-]+$/, '');
  return id === '' ? 'agent' : id;
}
