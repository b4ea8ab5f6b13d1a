import type { Command } from 'commander';
import { toYaml } from '@sluice/api';
import { CliError } from '../errors.js';
import { asArray, asRecord, asString, isRecord, kindOf, metadata, stringMap, type ApiObject } from '../object.js';
import { endpointRows, formatCount, formatMs, formatRate, UNKNOWN } from '../printers/endpoints.js';
import { parseResourceArgs, type ResourceTarget } from '../resource-args.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => (l === '' ? l : pad + l))
    .join('\n');
}

/** `Key:   value` pairs aligned on the longest key, like kubectl's describe prefix writer. */
function fields(pairs: [string, string][], spaces = 0): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length + 1)) + 2;
  const pad = ' '.repeat(spaces);
  return pairs.map(([k, v]) => {
    const [first = '', ...rest] = v.split('\n');
    return [`${pad}${`${k}:`.padEnd(width)}${first}`, ...rest.map((l) => `${pad}${' '.repeat(width)}${l}`)].join('\n');
  });
}

function mapLines(m: Record<string, string>): string {
  const entries = Object.entries(m);
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join('\n');
}

function table(headers: string[], rows: string[][], spaces: number): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    ' '.repeat(spaces) +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 2)))
      .join('')
      .trimEnd();
  return [line(headers), line(headers.map((h) => '-'.repeat(h.length))), ...rows.map(line)];
}

/** What the controller sends instead of a secret value (its admin API never returns one). */
const REDACTED = '[redacted]';

/** Byte sizes instead of values: describe never prints secret material. */
function secretData(obj: ApiObject): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(asRecord(obj['data']))) {
    if (v === REDACTED) {
      lines.push(`${k}:  ${REDACTED}`);
      continue;
    }
    const size = typeof v === 'string' ? Buffer.from(v, 'base64').length : 0;
    lines.push(`${k}:  ${size} bytes`);
  }
  for (const [k, v] of Object.entries(asRecord(obj['stringData']))) {
    lines.push(`${k}:  ${typeof v === 'string' ? Buffer.byteLength(v) : 0} bytes`);
  }
  return lines;
}

/** The human view of one object (kubectl describe). */
export function formatDescribe(obj: ApiObject): string {
  const meta = metadata(obj);
  const kind = kindOf(obj);
  const out: string[] = [];
  const top: [string, string][] = [['Name', asString(meta['name']) ?? '']];
  if (meta['namespace'] !== undefined) top.push(['Namespace', asString(meta['namespace']) ?? '']);
  top.push(
    ['Labels', mapLines(stringMap(meta['labels']))],
    ['Annotations', mapLines(stringMap(meta['annotations']))],
    ['API Version', asString(obj['apiVersion']) ?? ''],
    ['Kind', kind],
  );
  out.push(...fields(top));

  const metaPairs: [string, string][] = [];
  const add = (label: string, value: unknown): void => {
    if (value !== undefined && value !== null) metaPairs.push([label, typeof value === 'string' ? value : JSON.stringify(value)]);
  };
  add('Creation Timestamp', meta['creationTimestamp']);
  add('Generation', meta['generation']);
  add('Resource Version', meta['resourceVersion']);
  add('UID', meta['uid']);
  if (metaPairs.length > 0) out.push('Metadata:', ...fields(metaPairs, 2));

  if (kind === 'Secret') {
    out.push(...fields([['Type', asString(obj['type']) ?? '<none>']]));
    const data = secretData(obj);
    out.push('Data', '====', ...(data.length === 0 ? ['<none>'] : data));
  }

  if (obj['spec'] !== undefined) {
    out.push('Spec:');
    out.push(isRecord(obj['spec']) && Object.keys(obj['spec']).length === 0 ? '  <empty>' : indent(toYaml(obj['spec']), 2));
  }

  const status = asRecord(obj['status']);
  const { conditions, endpoints, ...otherStatus } = status;
  out.push('Status:');
  const conds = asArray(conditions).filter(isRecord);
  if (conds.length > 0) {
    out.push('  Conditions:');
    // Messages are printed verbatim: they carry agent rejections ("Rejected by 1/3 agents: ...").
    out.push(
      ...table(
        ['Type', 'Status', 'Reason', 'Message'],
        conds.map((c) => [asString(c['type']) ?? '', asString(c['status']) ?? '', asString(c['reason']) ?? '', asString(c['message']) ?? '']),
        4,
      ),
    );
  } else {
    out.push('  Conditions:  <none>');
  }
  const eps = asArray(endpoints).filter(isRecord);
  if (eps.length > 0) {
    // Upstream.status.endpoints: per endpoint the configured and effective weight, merged
    // health and the fleet's latency and error figures ('-': no data, or dynamic weights off).
    const rows = kind === 'Upstream' ? endpointRows(obj) : endpointRows({ ...obj, spec: {} });
    out.push('  Endpoints:');
    out.push(
      ...table(
        ['ADDRESS', 'PORT', 'WEIGHT', 'EFFECTIVE', 'HEALTH', 'P50', 'P99', 'ERRORS', 'AGENTS', 'SINCE'],
        rows.map((r) => [
          r.address,
          String(r.port),
          String(r.weight),
          r.effectiveWeight === undefined ? UNKNOWN : String(r.effectiveWeight),
          r.health,
          formatMs(r.p50Ms),
          formatMs(r.p99Ms),
          formatRate(r.errorRate),
          formatCount(r.agents),
          r.since ?? UNKNOWN,
        ]),
        4,
      ),
    );
  } else if (endpoints !== undefined) {
    out.push('  Endpoints:  <none>');
  }
  if (Object.keys(otherStatus).length > 0) out.push(indent(toYaml(otherStatus), 2));
  return `${out.join('\n')}\n`;
}

export async function runDescribe(session: Session, targets: ResourceTarget[], selector: string | undefined): Promise<void> {
  const client = await session.client();
  const { namespace } = await session.connection();
  const objects: ApiObject[] = [];
  for (const t of targets) {
    const ns = t.info.namespaced ? namespace : undefined;
    if (t.names.length === 0) {
      const list = await client.list(t.info, { namespace: ns, labelSelector: selector });
      objects.push(...list.items);
      continue;
    }
    for (const name of t.names) {
      try {
        objects.push(await client.get(t.info, ns, name));
      } catch (error: unknown) {
        if (error instanceof CliError && error.code === 'not-found') session.reportError([`error: ${error.message}`]);
        else throw error;
      }
    }
  }
  session.io.out(objects.map(formatDescribe).join('\n\n'));
  const named = targets.some((t) => t.names.length > 0);
  if (objects.length === 0 && !named) session.io.err(`No resources found in ${namespace} namespace.\n`);
}

export function registerDescribe(parent: Command, session: Session): void {
  const cmd = parent
    .command('describe')
    .description('Show details of a resource: metadata, spec, status and conditions')
    .argument('<kind>', 'resource type or KIND/NAME')
    .argument('[names...]', 'names (all objects of the kind when omitted)')
    .option('-l, --selector <selector>', 'label selector, when no names are given')
    .action(async (kind: string, names: string[], flags: { selector?: string }) => {
      const targets = parseResourceArgs([kind, ...names]);
      if (flags.selector !== undefined && targets.some((t) => t.names.length > 0)) {
        throw new CliError('usage', 'selectors and names cannot be used together');
      }
      await runDescribe(session, targets, flags.selector);
    });
  withExamples(
    cmd,
    `
# Describe one upstream
sluicectl describe upstream shop-v1

# Same, in KIND/NAME form
sluicectl describe route/shop

# Every listener of the namespace
sluicectl describe listeners -n edge
`,
  );
}
