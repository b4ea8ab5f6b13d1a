import { Option, type Command } from 'commander';
import { kindInfo } from '@sluice/api';
import type { ApplyResultItem } from '../client.js';
import { CliError, isCliError } from '../errors.js';
import { describeSource, fieldLine, readInputs, withNamespaces, type InputObject } from '../inputs.js';
import { nameOf, objectRef } from '../object.js';
import { formatNames } from '../printers/name.js';
import { parseOutputFormat, type OutputFormat } from '../printers/output.js';
import { asListIfMany, formatJson, formatYaml } from '../printers/yaml.js';
import type { Session } from '../session.js';
import { collect, withExamples } from './examples.js';

export const DRY_RUN_SUFFIX = ' (server dry run)';

export interface ApplyFlags {
  filename?: string[];
  recursive?: boolean;
  dryRun?: string;
  output?: string;
}

export interface ApplyOptions {
  filenames: string[];
  recursive: boolean;
  dryRun: boolean;
  output: OutputFormat;
}

export function dryRunOption(): Option {
  return new Option('--dry-run <strategy>', 'server: the server validates and reports, nothing is stored').choices(['none', 'server']).default('none');
}

export function completeApply(flags: ApplyFlags): ApplyOptions {
  return {
    filenames: flags.filename ?? [],
    recursive: flags.recursive === true,
    dryRun: flags.dryRun === 'server',
    output: parseOutputFormat(flags.output, ['name', 'yaml', 'json']),
  };
}

export function validateApply(o: ApplyOptions): void {
  if (o.filenames.length === 0) throw new CliError('usage', 'must specify -f FILE, a directory or - (stdin)');
}

/** `items[4].spec.port` -> [4, 'spec.port']; undefined for causes not about one item. */
export function splitItemField(field: string): { index: number; field: string } | undefined {
  const m = /^items\[(\d+)\](?:\.(.*))?$/.exec(field);
  if (m === null) return undefined;
  return { index: Number(m[1]), field: m[2] ?? '' };
}

/** How an object is named in messages even when it lacks a name or has an unknown kind. */
function refFor(input: InputObject): string {
  const name = nameOf(input.object);
  return name === '' ? objectRef({ ...input.object, metadata: { name: '<no name>' } }) : objectRef(input.object);
}

/**
 * The lines for a rejected multi-object request: each cause mapped back to its file,
 * document and line (`shop.yaml (document 2, line 14): route/shop: spec.x: must be >= 0`).
 */
export function explainRejection(error: CliError, inputs: readonly InputObject[]): string[] {
  const lines: string[] = [];
  for (const cause of error.causes) {
    const item = splitItemField(cause.field);
    const input = item === undefined ? undefined : inputs[item.index];
    if (item === undefined || input === undefined) {
      lines.push(cause.field === '' ? cause.message : `${cause.field}: ${cause.message}`);
      continue;
    }
    const line = item.field === '' ? input.source.line : (fieldLine(input.source.text, input.source.line, item.field) ?? input.source.line);
    const what = item.field === '' ? cause.message : `${item.field}: ${cause.message}`;
    lines.push(`${describeSource(input.source, line)}: ${refFor(input)}: ${what}`);
  }
  if (lines.length === 0) lines.push(error.message);
  return lines;
}

export function applyResultLine(item: ApplyResultItem, dryRun: boolean): string {
  const singular = kindInfo(item.kind)?.singular ?? item.kind.toLowerCase();
  return `${singular}/${item.name} ${item.action}${dryRun ? DRY_RUN_SUFFIX : ''}`;
}

/** Sends every object in one all-or-nothing request; a 422 is reported per file and document. */
export async function applyInputs(session: Session, inputs: InputObject[], dryRun: boolean): Promise<ApplyResultItem[]> {
  const client = await session.client();
  try {
    return await client.apply(
      inputs.map((i) => i.object),
      { dryRun },
    );
  } catch (error: unknown) {
    if (isCliError(error) && (error.code === 'invalid' || error.causes.length > 0)) {
      const [first = error.message, ...rest] = explainRejection(error, inputs);
      throw new CliError(error.code, first, {
        details: [...rest.map((l) => `error: ${l}`), `error: nothing was applied (an apply is all or nothing)`],
        causes: error.causes,
        cause: error,
      });
    }
    throw error;
  }
}

export async function runApply(session: Session, o: ApplyOptions): Promise<void> {
  const connection = await session.connection();
  const inputs = withNamespaces(await readInputs(o.filenames, { recursive: o.recursive, io: session.io }), connection);
  if (inputs.length === 0) throw new CliError('input', 'no objects passed to apply');
  const results = await applyInputs(session, inputs, o.dryRun);
  const objects = results.map((r) => r.object);
  switch (o.output) {
    case 'default':
    case 'wide':
      session.io.out(results.map((r) => `${applyResultLine(r, o.dryRun)}\n`).join(''));
      break;
    case 'name':
      session.io.out(formatNames(objects));
      break;
    case 'yaml':
      session.io.out(formatYaml(asListIfMany(objects, true)));
      break;
    case 'json':
      session.io.out(formatJson(asListIfMany(objects, true)));
      break;
  }
}

export function registerApply(parent: Command, session: Session): void {
  const cmd = parent
    .command('apply')
    .description('Create or update resources from files, all or nothing')
    .option('-f, --filename <path>', 'a YAML or JSON file, a directory of them, or - for stdin (repeatable)', collect)
    .option('-R, --recursive', 'read directories given with -f recursively')
    .addOption(dryRunOption())
    .option('-o, --output <format>', 'output format: name, yaml or json')
    .action(async (flags: ApplyFlags) => {
      const o = completeApply(flags);
      validateApply(o);
      await runApply(session, o);
    });
  withExamples(
    cmd,
    `
# Apply one file (multi-document YAML is fine)
sluicectl apply -f upstream.yaml

# Every *.yaml, *.yml and *.json in a directory, in name order, as one transaction
sluicectl apply -f config/

# From stdin, into another namespace
cat route.yaml | sluicectl apply -n staging -f -

# Validate on the server without storing anything
sluicectl apply -f config/ --dry-run=server
`,
  );
}
