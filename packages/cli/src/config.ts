import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseYamlDocuments, toYaml } from '@sluice/api';
import { CliError } from './errors.js';

/** The controller's admin API when nothing else is configured (docs/admin-api.md). */
export const DEFAULT_SERVER = 'http://127.0.0.1:9080';
export const DEFAULT_NAMESPACE = 'default';

export interface Context {
  name: string;
  server?: string;
  namespace?: string;
}

/** `~/.sluice/config`: a small kubeconfig. Unknown keys are kept when the file is rewritten. */
export interface SluiceConfig {
  currentContext: string | undefined;
  contexts: Context[];
  /** Keys this version does not know, written back untouched. */
  extra: Record<string, unknown>;
}

export function emptyConfig(): SluiceConfig {
  return { currentContext: undefined, contexts: [], extra: {} };
}

/** `$SLUICE_CONFIG`, else `$HOME/.sluice/config`. */
export function configPath(env: Readonly<Record<string, string | undefined>>): string {
  const explicit = env['SLUICE_CONFIG'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const home = env['HOME'] !== undefined && env['HOME'] !== '' ? env['HOME'] : homedir();
  return join(home, '.sluice', 'config');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(value: unknown, where: string, path: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new CliError('config', `${path}: ${where} must be a string`);
  return value;
}

/** Parses the config file text; `path` only names the file in errors. */
export function parseConfig(text: string, path: string): SluiceConfig {
  const parsed = parseYamlDocuments(text, path);
  if (!parsed.ok) throw new CliError('config', parsed.error);
  const first = parsed.docs[0];
  if (first === undefined) return emptyConfig();
  if (parsed.docs.length > 1) throw new CliError('config', `${path}: expected one YAML document, found ${parsed.docs.length}`);
  const raw = first.object;
  if (!isRecord(raw)) throw new CliError('config', `${path}: must be a YAML mapping`);
  const { 'current-context': current, contexts: rawContexts, ...extra } = raw;
  const contexts: Context[] = [];
  if (rawContexts !== undefined && rawContexts !== null) {
    if (!Array.isArray(rawContexts)) throw new CliError('config', `${path}: contexts must be a list`);
    for (const [i, c] of rawContexts.entries()) {
      if (!isRecord(c)) throw new CliError('config', `${path}: contexts[${i}] must be a mapping`);
      const name = optionalString(c['name'], `contexts[${i}].name`, path);
      if (name === undefined) throw new CliError('config', `${path}: contexts[${i}].name is required`);
      const context: Context = { name };
      const server = optionalString(c['server'], `contexts[${i}].server`, path);
      const namespace = optionalString(c['namespace'], `contexts[${i}].namespace`, path);
      if (server !== undefined) context.server = server;
      if (namespace !== undefined) context.namespace = namespace;
      contexts.push(context);
    }
  }
  return { currentContext: optionalString(current, 'current-context', path), contexts, extra };
}

/** The file as YAML, in the order a person would write it. */
export function formatConfig(config: SluiceConfig): string {
  return toYaml({
    'current-context': config.currentContext ?? '',
    contexts: config.contexts.map((c) => ({ ...c })),
    ...config.extra,
  });
}

/** Reads the config file; a missing file is an empty config. */
export async function loadConfig(path: string): Promise<SluiceConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error: unknown) {
    if (isErrno(error, 'ENOENT')) return emptyConfig();
    throw new CliError('config', `cannot read ${path}: ${errnoMessage(error)}`, { cause: error });
  }
  return parseConfig(text, path);
}

/** Writes the config atomically, creating its directory (0700) and the file (0600) as needed. */
export async function saveConfig(path: string, config: SluiceConfig): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(tmp, formatConfig(config), { mode: 0o600 });
    await chmod(tmp, 0o600); // writeFile's mode is filtered by the umask
    await rename(tmp, path);
  } catch (error: unknown) {
    throw new CliError('config', `cannot write ${path}: ${errnoMessage(error)}`, { cause: error });
  }
}

export function findContext(config: SluiceConfig, name: string): Context | undefined {
  return config.contexts.find((c) => c.name === name);
}

export interface ConnectionFlags {
  server?: string | undefined;
  namespace?: string | undefined;
}

export interface Connection {
  server: string;
  namespace: string;
  /** Whether `-n` was given: apply then refuses objects from another namespace. */
  namespaceExplicit: boolean;
  context: Context | undefined;
}

/**
 * Where to talk to and which namespace to use. Server: `--server`, `$SLUICE_SERVER`, the
 * current context, the default. Namespace: `-n`, the current context, `default`.
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: Readonly<Record<string, string | undefined>>,
  config: SluiceConfig,
): Connection {
  let context: Context | undefined;
  if (config.currentContext !== undefined) {
    context = findContext(config, config.currentContext);
    if (context === undefined) {
      throw new CliError('config', `current-context "${config.currentContext}" does not exist in the config file`, {
        details: ['(fix it with: sluicectl config use-context NAME)'],
      });
    }
  }
  const envServer = env['SLUICE_SERVER'];
  const server = nonEmpty(flags.server) ?? nonEmpty(envServer) ?? context?.server ?? DEFAULT_SERVER;
  const namespace = nonEmpty(flags.namespace) ?? context?.namespace ?? DEFAULT_NAMESPACE;
  return { server: normalizeServer(server), namespace, namespaceExplicit: nonEmpty(flags.namespace) !== undefined, context };
}

/** Accepts `host:port` as kubectl does for --server, and drops a trailing slash. */
export function normalizeServer(server: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `http://${server}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError('usage', `invalid server URL "${server}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError('usage', `invalid server URL "${server}": only http and https are supported`);
  }
  return withScheme.replace(/\/+$/, '');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

const ERRNO_MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
};

export function errnoMessage(error: unknown): string {
  if (error instanceof Error) {
    const e = error as NodeJS.ErrnoException;
    return (e.code !== undefined ? ERRNO_MESSAGES[e.code] : undefined) ?? e.message;
  }
  return String(error);
}
