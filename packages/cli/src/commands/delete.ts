import type { Command } from 'commander';
import { kindInfo, type KindInfo } from '@sluice/api';
import { CliError } from '../errors.js';
import { readInputs, withNamespaces } from '../inputs.js';
import { kindOf, nameOf, namespaceOf } from '../object.js';
import { parseOutputFormat, type OutputFormat } from '../printers/output.js';
import { parseResourceArgs, type ResourceTarget } from '../resource-args.js';
import type { Session } from '../session.js';
import { DRY_RUN_SUFFIX, dryRunOption } from './apply.js';
import { collect, withExamples } from './examples.js';

interface DeleteFlags {
  filename?: string[];
  recursive?: boolean;
  ignoreNotFound?: boolean;
  dryRun?: string;
  all?: boolean;
  selector?: string;
  output?: string;
}

export interface DeleteOptions {
  targets: ResourceTarget[];
  filenames: string[];
  recursive: boolean;
  ignoreNotFound: boolean;
  dryRun: boolean;
  all: boolean;
  selector: string | undefined;
  output: OutputFormat;
}

interface DeleteItem {
  info: KindInfo;
  namespace: string | undefined;
  name: string;
}

export function completeDelete(args: string[], flags: DeleteFlags): DeleteOptions {
  return {
    targets: args.length > 0 ? parseResourceArgs(args) : [],
    filenames: flags.filename ?? [],
    recursive: flags.recursive === true,
    ignoreNotFound: flags.ignoreNotFound === true,
    dryRun: flags.dryRun === 'server',
    all: flags.all === true,
    selector: flags.selector,
    output: parseOutputFormat(flags.output, ['name']),
  };
}

export function validateDelete(o: DeleteOptions): void {
  if (o.filenames.length > 0) {
    if (o.targets.length > 0) throw new CliError('usage', 'give either -f or KIND NAME..., not both');
    if (o.all || o.selector !== undefined) throw new CliError('usage', '--all and -l cannot be used with -f');
    return;
  }
  if (o.targets.length === 0) throw new CliError('usage', 'you must specify KIND NAME..., KIND/NAME, or -f FILE');
  const named = o.targets.some((t) => t.names.length > 0);
  if (named && (o.all || o.selector !== undefined)) throw new CliError('usage', 'names cannot be combined with --all or -l');
  if (!named && !o.all && o.selector === undefined) {
    const t = o.targets[0];
    throw new CliError('usage', `resource(s) were provided, but no name was specified (use --all to delete every ${t?.info.singular ?? 'object'})`);
  }
}

async function itemsToDelete(session: Session, o: DeleteOptions): Promise<DeleteItem[]> {
  const connection = await session.connection();
  if (o.filenames.length > 0) {
    const inputs = withNamespaces(await readInputs(o.filenames, { recursive: o.recursive, io: session.io }), connection);
    if (inputs.length === 0) throw new CliError('input', 'no objects passed to delete');
    return inputs.map(({ object, source }) => {
      const info = kindInfo(kindOf(object));
      const name = nameOf(object);
      if (info === undefined) throw new CliError('input', `${source.file} (document ${source.document}): unknown kind "${kindOf(object)}"`);
      if (name === '') throw new CliError('input', `${source.file} (document ${source.document}): metadata.name is required`);
      return { info, namespace: namespaceOf(object), name };
    });
  }
  const items: DeleteItem[] = [];
  for (const t of o.targets) {
    const namespace = t.info.namespaced ? connection.namespace : undefined;
    if (t.names.length > 0) {
      items.push(...t.names.map((name) => ({ info: t.info, namespace, name })));
      continue;
    }
    const client = await session.client();
    const list = await client.list(t.info, { namespace, labelSelector: o.selector });
    items.push(...list.items.map((obj) => ({ info: t.info, namespace, name: nameOf(obj) })));
  }
  return items;
}

export async function runDelete(session: Session, o: DeleteOptions): Promise<void> {
  const client = await session.client();
  const items = await itemsToDelete(session, o);
  if (items.length === 0 && o.filenames.length === 0) {
    session.io.err('No resources found\n');
    return;
  }
  for (const item of items) {
    try {
      await client.delete(item.info, item.namespace, item.name, { dryRun: o.dryRun });
    } catch (error: unknown) {
      if (error instanceof CliError && error.code === 'not-found') {
        // kubectl goes on with the other objects and fails at the end.
        if (!o.ignoreNotFound) session.reportError([`error: ${error.message}`]);
        continue;
      }
      throw error;
    }
    const ref = `${item.info.singular}/${item.name}`;
    session.io.out(o.output === 'name' ? `${ref}\n` : `${ref} deleted${o.dryRun ? DRY_RUN_SUFFIX : ''}\n`);
  }
}

export function registerDelete(parent: Command, session: Session): void {
  const cmd = parent
    .command('delete')
    .description('Delete resources by kind and name, by label, or as listed in files')
    .argument('[args...]', 'KIND NAME..., KIND/NAME..., or KIND with --all / -l')
    .option('-f, --filename <path>', 'delete the objects listed in a file, directory or - (repeatable)', collect)
    .option('-R, --recursive', 'read directories given with -f recursively')
    .option('--ignore-not-found', 'treat "not found" as a successful delete')
    .option('--all', 'delete every object of the kind in the namespace')
    .option('-l, --selector <selector>', 'delete the objects matching a label selector')
    .addOption(dryRunOption())
    .option('-o, --output <format>', 'output format: name')
    .action(async (args: string[], flags: DeleteFlags) => {
      const o = completeDelete(args, flags);
      validateDelete(o);
      await runDelete(session, o);
    });
  withExamples(
    cmd,
    `
# Delete a route
sluicectl delete route shop

# Several objects, in KIND/NAME form
sluicectl delete upstream/shop-v1 upstream/shop-v2

# Everything defined in a directory, succeeding for objects already gone
sluicectl delete -f config/ --ignore-not-found

# See what would be deleted, without deleting
sluicectl delete upstreams -l app=shop --dry-run=server
`,
  );
}
