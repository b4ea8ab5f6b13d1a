import { Option, type Command } from 'commander';
import type { KindInfo } from '@sluice/api';
import type { SluiceClient, WatchEvent } from '../client.js';
import { statusError } from '../client.js';
import { CliError } from '../errors.js';
import { asString, metadata, type ApiObject } from '../object.js';
import { age } from '../printers/age.js';
import { columnsFor, conditionTypesIn, type Column } from '../printers/columns.js';
import { formatNames } from '../printers/name.js';
import { parseOutputFormat, type OutputFormat } from '../printers/output.js';
import { TableWriter } from '../printers/table.js';
import { asListIfMany, formatJson, formatYaml } from '../printers/yaml.js';
import { parseResourceArgs, type ResourceTarget } from '../resource-args.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

interface GetFlags {
  output?: string;
  selector?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  watchOnly?: boolean;
  outputWatchEvents?: boolean;
  showLabels?: boolean;
  headers?: boolean;
}

export interface GetOptions {
  targets: ResourceTarget[];
  output: OutputFormat;
  selector: string | undefined;
  allNamespaces: boolean;
  namespace: string;
  watch: boolean;
  watchOnly: boolean;
  watchEvents: boolean;
  showLabels: boolean;
  headers: boolean;
  /** `get KIND NAME -o yaml` prints the object itself; anything else a List. */
  single: boolean;
}

// complete: turn flags and arguments into options, filling in defaults.
export function completeGet(args: string[], flags: GetFlags, namespace: string): GetOptions {
  const targets = parseResourceArgs(args);
  const watchOnly = flags.watchOnly === true;
  return {
    targets,
    output: parseOutputFormat(flags.output, ['wide', 'yaml', 'json', 'name']),
    selector: flags.selector,
    allNamespaces: flags.allNamespaces === true,
    namespace,
    watch: flags.watch === true || watchOnly,
    watchOnly,
    watchEvents: flags.outputWatchEvents === true,
    showLabels: flags.showLabels === true,
    headers: flags.headers !== false,
    single: targets.length === 1 && targets[0]?.names.length === 1,
  };
}

// validate: reject combinations that cannot mean anything.
export function validateGet(o: GetOptions): void {
  const named = o.targets.some((t) => t.names.length > 0);
  if (named && o.allNamespaces) throw new CliError('usage', 'a resource cannot be retrieved by name across all namespaces');
  if (named && o.selector !== undefined) throw new CliError('usage', 'selectors and names cannot be used together');
  if (o.watch && o.targets.length > 1) throw new CliError('usage', 'you may only specify a single resource type when watching');
}

function namespaceFor(info: KindInfo, o: GetOptions): string | undefined {
  return info.namespaced && !o.allNamespaces ? o.namespace : undefined;
}

function noResourcesMessage(o: GetOptions): string {
  const clusterScoped = o.targets.every((t) => !t.info.namespaced);
  return o.allNamespaces || clusterScoped ? 'No resources found' : `No resources found in ${o.namespace} namespace.`;
}

function tableColumns(info: KindInfo, o: GetOptions, objects: readonly unknown[]): Column[] {
  const cols = columnsFor(info, {
    wide: o.output === 'wide',
    allNamespaces: o.allNamespaces,
    conditions: conditionTypesIn(objects),
    now: Date.now,
    age,
  });
  if (o.showLabels) {
    cols.push({
      header: 'LABELS',
      value: (obj) => {
        const labels = Object.entries(metadata(obj)['labels'] ?? {}).map(([k, v]) => `${k}=${String(v)}`);
        return labels.length === 0 ? '<none>' : labels.join(',');
      },
    });
  }
  return cols;
}

async function fetchTarget(client: SluiceClient, session: Session, t: ResourceTarget, o: GetOptions): Promise<ApiObject[]> {
  const ns = namespaceFor(t.info, o);
  if (t.names.length === 0) {
    return (await client.list(t.info, { namespace: ns, labelSelector: o.selector })).items;
  }
  const found: ApiObject[] = [];
  for (const name of t.names) {
    try {
      found.push(await client.get(t.info, ns, name));
    } catch (error: unknown) {
      // kubectl reports each missing name and goes on with the others.
      if (error instanceof CliError && error.code === 'not-found') session.reportError([`error: ${error.message}`]);
      else throw error;
    }
  }
  return found;
}

// run
export async function runGet(session: Session, o: GetOptions): Promise<void> {
  const client = await session.client();
  if (o.watch) {
    const target = o.targets[0];
    if (target !== undefined) await watch(session, client, target, o);
    return;
  }
  const { io } = session;
  const all: ApiObject[] = [];
  let tablesPrinted = 0;
  for (const t of o.targets) {
    const objects = await fetchTarget(client, session, t, o);
    all.push(...objects);
    if ((o.output === 'default' || o.output === 'wide') && objects.length > 0) {
      if (tablesPrinted > 0) io.out('\n');
      const writer = new TableWriter(tableColumns(t.info, o, objects), io.out);
      if (!o.headers) writer.skipHeader();
      writer.print(objects);
      tablesPrinted++;
    }
  }
  switch (o.output) {
    case 'default':
    case 'wide':
      break;
    case 'name':
      io.out(formatNames(all));
      break;
    case 'yaml':
      if (all.length > 0 || !o.single) io.out(formatYaml(asListIfMany(all, o.single)));
      break;
    case 'json':
      if (all.length > 0 || !o.single) io.out(formatJson(asListIfMany(all, o.single)));
      break;
  }
  const named = o.targets.some((t) => t.names.length > 0);
  if (all.length === 0 && !named && (o.output === 'default' || o.output === 'wide')) io.err(`${noResourcesMessage(o)}\n`);
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function resourceVersionNumber(obj: ApiObject): number | undefined {
  const rv = asString(metadata(obj)['resourceVersion']);
  if (rv === undefined || !/^\d+$/.test(rv)) return undefined;
  return Number(rv);
}

/**
 * `get -w`: list, print, then follow the watch from the list's revision. Reconnects when the
 * server ends the stream; lists again on 410 Gone. Ends cleanly on SIGINT.
 */
async function watch(session: Session, client: SluiceClient, t: ResourceTarget, o: GetOptions): Promise<void> {
  const { io } = session;
  const release = io.holdInterrupts();
  try {
    const ns = namespaceFor(t.info, o);
    const wanted = (obj: ApiObject): boolean => t.names.length === 0 || t.names.includes(asString(metadata(obj)['name']) ?? '');
    let writer: TableWriter | undefined;
    let printedObjects = 0;

    const print = (type: WatchEvent['type'], objects: ApiObject[]): void => {
      if (objects.length === 0) return;
      switch (o.output) {
        case 'default':
        case 'wide':
          if (writer === undefined) {
            writer = new TableWriter(tableColumns(t.info, o, objects), io.out, o.watchEvents ? ['EVENT'] : []);
            if (!o.headers) writer.skipHeader();
          }
          writer.print(
            objects,
            objects.map(() => (o.watchEvents ? [type] : [])),
          );
          break;
        case 'name':
          io.out(o.watchEvents ? objects.map((obj) => `${type} ${formatNames([obj], t.info)}`).join('') : formatNames(objects, t.info));
          break;
        case 'yaml':
          for (const obj of objects) {
            if (printedObjects > 0) io.out('---\n');
            io.out(formatYaml(o.watchEvents ? { type, object: obj } : obj));
            printedObjects++;
          }
          break;
        case 'json':
          for (const obj of objects) io.out(formatJson(o.watchEvents ? { type, object: obj } : obj));
          break;
      }
    };

    const relist = async (printAll: boolean): Promise<string | undefined> => {
      const list = await client.list(t.info, { namespace: ns, labelSelector: o.selector });
      if (printAll) print('ADDED', list.items.filter(wanted));
      return list.resourceVersion;
    };

    let resourceVersion = await relist(!o.watchOnly);
    let seen = Number(resourceVersion ?? '0');
    while (!io.interrupted.aborted) {
      let gone = false;
      for await (const event of client.watch(t.info, { namespace: ns, labelSelector: o.selector, resourceVersion, signal: io.interrupted })) {
        if (event.type === 'ERROR') {
          const err = statusError(event.object, 500, 'the watch failed');
          if (err.code === 'gone') {
            gone = true;
            break;
          }
          throw err;
        }
        const rv = resourceVersionNumber(event.object);
        if (rv !== undefined && rv > seen) {
          seen = rv;
          resourceVersion = String(rv);
        }
        if (event.type === 'BOOKMARK' || !wanted(event.object)) continue;
        print(event.type, [event.object]);
      }
      if (io.interrupted.aborted) break;
      // History compacted past our revision: list again (printing the current state, as
      // kubectl does) and watch from there. A stream the server closed resumes in place.
      if (gone) {
        resourceVersion = await relist(true);
        seen = Number(resourceVersion ?? '0');
      } else {
        await pause(1000, io.interrupted);
      }
    }
  } finally {
    release();
  }
}

export function registerGet(parent: Command, session: Session): void {
  const cmd = parent
    .command('get')
    .description('Display one or many resources')
    .argument('<kind>', 'resource type (singular, plural or short name), KIND/NAME, or KIND1,KIND2')
    .argument('[names...]', 'names of the objects to show')
    .option('-o, --output <format>', 'output format: wide, yaml, json or name')
    .option('-l, --selector <selector>', 'label selector (app=shop,tier!=db,env in (a,b))')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-w, --watch', 'after listing, watch for changes')
    .option('--watch-only', 'watch for changes without listing first')
    .option('--output-watch-events', 'with --watch, print the event type (ADDED, MODIFIED, DELETED)')
    .option('--show-labels', 'show labels as the last column')
    .addOption(new Option('--no-headers', 'do not print column headers'))
    .action(async (kind: string, names: string[], flags: GetFlags) => {
      const connection = await session.connection();
      const o = completeGet([kind, ...names], flags, connection.namespace);
      validateGet(o);
      await runGet(session, o);
    });
  withExamples(
    cmd,
    `
# List the upstreams of the current namespace
sluicectl get upstreams

# More columns, across every namespace
sluicectl get routes -o wide -A

# One object as YAML (re-appliable with sluicectl apply -f)
sluicectl get upstream shop-v1 -o yaml
sluicectl get upstream/shop-v1 -o yaml

# Several kinds at once, filtered by label
sluicectl get upstreams,routes -l app=shop

# Watch for changes (Ctrl-C to stop)
sluicectl get upstreams -w
`,
  );
}
