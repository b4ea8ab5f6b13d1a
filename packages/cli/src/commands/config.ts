import type { Command } from 'commander';
import { findContext, formatConfig, saveConfig, type Context } from '../config.js';
import { CliError } from '../errors.js';
import { TableWriter } from '../printers/table.js';
import { parseOutputFormat } from '../printers/output.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

export async function setContext(session: Session, name: string, server: string | undefined, namespace: string | undefined): Promise<void> {
  const path = session.configPath();
  const config = await session.config();
  const existing = findContext(config, name);
  const context: Context = existing ?? { name };
  if (server !== undefined) {
    if (server === '') delete context.server;
    else context.server = server;
  }
  if (namespace !== undefined) {
    if (namespace === '') delete context.namespace;
    else context.namespace = namespace;
  }
  if (existing === undefined) config.contexts.push(context);
  await saveConfig(path, config);
  session.io.out(`Context "${name}" ${existing === undefined ? 'created' : 'modified'}.\n`);
}

function noSuchContext(name: string): CliError {
  return new CliError('config', `no context exists with the name: "${name}"`);
}

export function registerConfig(parent: Command, session: Session): void {
  const config = parent.command('config').description('Show and change contexts in the config file ($SLUICE_CONFIG or ~/.sluice/config)');
  withExamples(
    config,
    `
# Add a context and switch to it
sluicectl config set-context prod --server https://sluice.example.com:9080 --namespace shop
sluicectl config use-context prod

# Which contexts exist, and which one is current?
sluicectl config get-contexts
`,
  );

  withExamples(
    config
      .command('view')
      .description('Print the config file')
      .action(async () => {
        session.io.out(formatConfig(await session.config()));
      }),
    'sluicectl config view',
  );

  withExamples(
    config
      .command('current-context')
      .description('Print the name of the current context')
      .action(async () => {
        const current = (await session.config()).currentContext;
        if (current === undefined) throw new CliError('config', 'current-context is not set');
        session.io.out(`${current}\n`);
      }),
    'sluicectl config current-context',
  );

  withExamples(
    config
      .command('get-contexts')
      .description('List the contexts')
      .argument('[names...]', 'only these contexts')
      .option('-o, --output <format>', 'output format: name')
      .action(async (names: string[], flags: { output?: string }) => {
        const format = parseOutputFormat(flags.output, ['name']);
        const cfg = await session.config();
        const missing = names.filter((n) => findContext(cfg, n) === undefined);
        if (missing.length > 0) throw new CliError('config', `context ${missing.map((m) => `"${m}"`).join(', ')} not found`);
        const contexts = cfg.contexts.filter((c) => names.length === 0 || names.includes(c.name));
        if (format === 'name') {
          session.io.out(contexts.map((c) => `${c.name}\n`).join(''));
          return;
        }
        const writer = new TableWriter(
          [
            { header: 'CURRENT', value: (o) => (o['name'] === cfg.currentContext ? '*' : '') },
            { header: 'NAME', value: (o) => String(o['name']) },
            { header: 'SERVER', value: (o) => (typeof o['server'] === 'string' ? o['server'] : '') },
            { header: 'NAMESPACE', value: (o) => (typeof o['namespace'] === 'string' ? o['namespace'] : '') },
          ],
          session.io.out,
        );
        writer.print(contexts.map((c) => ({ ...c })));
      }),
    'sluicectl config get-contexts\nsluicectl config get-contexts -o name',
  );

  withExamples(
    config
      .command('use-context')
      .description('Make a context the current one')
      .argument('<name>', 'context name')
      .action(async (name: string) => {
        const cfg = await session.config();
        if (findContext(cfg, name) === undefined) throw noSuchContext(name);
        cfg.currentContext = name;
        await saveConfig(session.configPath(), cfg);
        session.io.out(`Switched to context "${name}".\n`);
      }),
    'sluicectl config use-context prod',
  );

  // --server and --namespace are the root command's flags (commander reads them anywhere on
  // the line); set-context takes their values for the context instead of the connection.
  withExamples(
    config
      .command('set-context')
      .description('Create or change a context (server and namespace)')
      .argument('<name>', 'context name')
      .addHelpText('after', '\nOptions (shared with every command):\n  --server URL        the context\'s server ("" to unset)\n  -n, --namespace NS  the context\'s namespace ("" to unset)\n')
      .action(async (name: string) => {
        const flags = session.flags();
        if (flags.server === undefined && flags.namespace === undefined && findContext(await session.config(), name) !== undefined) {
          throw new CliError('usage', 'nothing to change: give --server and/or --namespace');
        }
        await setContext(session, name, flags.server, flags.namespace);
      }),
    'sluicectl config set-context local --server http://127.0.0.1:9080\nsluicectl config set-context local --namespace shop',
  );

  withExamples(
    config
      .command('delete-context')
      .description('Remove a context')
      .argument('<name>', 'context name')
      .action(async (name: string) => {
        const cfg = await session.config();
        if (findContext(cfg, name) === undefined) throw noSuchContext(name);
        cfg.contexts = cfg.contexts.filter((c) => c.name !== name);
        const wasCurrent = cfg.currentContext === name;
        if (wasCurrent) cfg.currentContext = undefined;
        await saveConfig(session.configPath(), cfg);
        if (wasCurrent) session.io.err(`warning: this removed your active context, use "sluicectl config use-context" to select a different one\n`);
        session.io.out(`deleted context ${name} from ${session.configPath()}\n`);
      }),
    'sluicectl config delete-context old',
  );
}
