// `sluicectl translate`: the controller's pure translator run offline (STYLE §13), so an
// operator can see what agents with given labels would receive, without a controller.
import type { Command } from 'commander';
import { validateResource, type Resource } from '@sluice/api';
import { resourceToJSON, snapshotFor, translate } from '@sluice/translator';
import { CliError } from '../errors.js';
import { readInputs, withNamespaces, type InputObject } from '../inputs.js';
import { parseOutputFormat } from '../printers/output.js';
import { formatJson, formatYaml } from '../printers/yaml.js';
import type { Session } from '../session.js';
import { explainRejection } from './apply.js';
import { collect, withExamples } from './examples.js';

export interface TranslateFlags {
  filename?: string[];
  recursive?: boolean;
  labels?: string;
  output?: string;
}

export interface TranslateOptions {
  filenames: string[];
  recursive: boolean;
  labels: Record<string, string>;
  output: 'yaml' | 'json';
}

/** `--labels pool=edge,zone=a` -> `{pool: 'edge', zone: 'a'}`; empty -> no labels. */
export function parseAgentLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of (text ?? '').split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq).trim();
    if (key === '') throw new CliError('usage', `invalid --labels "${text}": expected key=value pairs separated by commas, like pool=edge,zone=a`);
    labels[key] = item.slice(eq + 1).trim();
  }
  return labels;
}

export function completeTranslate(flags: TranslateFlags): TranslateOptions {
  const output = parseOutputFormat(flags.output, ['yaml', 'json']);
  return {
    filenames: flags.filename ?? [],
    recursive: flags.recursive === true,
    labels: parseAgentLabels(flags.labels),
    output: output === 'json' ? 'json' : 'yaml',
  };
}

export function validateTranslate(o: TranslateOptions): void {
  if (o.filenames.length === 0) throw new CliError('usage', 'must specify -f FILE, a directory or - (stdin)');
}

/** Validates every object (defaults applied), reporting all problems the way apply does. */
function validateInputs(inputs: readonly InputObject[]): Resource[] {
  const resources: Resource[] = [];
  const causes: { field: string; message: string }[] = [];
  for (const [i, input] of inputs.entries()) {
    const r = validateResource(input.object);
    if (r.ok) resources.push(r.value);
    else causes.push(...r.errors.map((e) => ({ field: e.field === '' ? `items[${i}]` : `items[${i}].${e.field}`, message: e.message })));
  }
  if (causes.length > 0) {
    const error = new CliError('invalid', `${causes.length} invalid field${causes.length === 1 ? '' : 's'}`, { causes });
    const [first = error.message, ...rest] = explainRejection(error, inputs);
    throw new CliError('invalid', first, { details: rest.map((l) => `error: ${l}`), causes });
  }
  return resources;
}

export async function runTranslate(session: Session, o: TranslateOptions): Promise<void> {
  let inputs = await readInputs(o.filenames, { recursive: o.recursive, io: session.io });
  // Offline: no config file is read; -n fills in (and checks) namespaces as apply does.
  const namespace = session.flags().namespace;
  if (namespace !== undefined) inputs = withNamespaces(inputs, { namespace, namespaceExplicit: true });
  if (inputs.length === 0) throw new CliError('input', 'no objects passed to translate');
  const translation = translate(validateInputs(inputs), { revision: 0 });
  const snapshot = snapshotFor(translation, o.labels);

  const served = new Set(snapshot.resources.filter((r) => r.resource.body?.$case === 'listener').map((r) => r.name));
  const left = translation.listeners.filter((l) => !served.has(l.name)).map((l) => l.name);
  if (left.length > 0) {
    const labels = Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(',') || 'none';
    session.io.err(`note: ${left.length} of ${translation.listeners.length} listeners left out by their agentSelector (agent labels: ${labels}): ${left.join(', ')}; use --labels k=v,... to pick agents\n`);
  }

  const doc = {
    revision: snapshot.revision,
    version: snapshot.version,
    resources: snapshot.resources.map(resourceToJSON),
    problems: translation.problems.map((p) => ({ source: p.source, message: p.message })),
  };
  session.io.out(o.output === 'json' ? formatJson(doc) : formatYaml(doc));
}

export function registerTranslate(parent: Command, session: Session): void {
  const cmd = parent
    .command('translate')
    .description('Show what agents would receive for some resources, offline (no controller)')
    .option('-f, --filename <path>', 'a YAML or JSON file, a directory of them, or - for stdin (repeatable)', collect)
    .option('-R, --recursive', 'read directories given with -f recursively')
    .option('--labels <k=v,...>', "the agent's labels: only listeners whose agentSelector matches them are shown (default: none)")
    .option('-o, --output <format>', 'output format: yaml (default) or json')
    .action(async (flags: TranslateFlags) => {
      const o = completeTranslate(flags);
      validateTranslate(o);
      await runTranslate(session, o);
    });
  withExamples(
    cmd,
    `
# What an agent without labels receives for a directory of resources
sluicectl translate -f config/

# What an agent labelled pool=edge receives, as JSON
sluicectl translate -f config/ --labels pool=edge -o json

# From stdin
cat shop.yaml | sluicectl translate -f -
`,
  );
}
