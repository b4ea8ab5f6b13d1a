import type { Command } from 'commander';
import type { KindInfo } from '@sluice/api';
import { CliError } from '../errors.js';
import { parseOutputFormat, type OutputFormat } from '../printers/output.js';
import { parseNamedResourceArgs } from '../resource-args.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

export interface PurgeOptions {
  targets: { info: KindInfo; name: string }[];
  output: OutputFormat;
}

export function completePurge(args: string[], flags: { output?: string }): PurgeOptions {
  return { targets: parseNamedResourceArgs(args, 'purge'), output: parseOutputFormat(flags.output, ['name']) };
}

export function validatePurge(o: PurgeOptions): void {
  if (o.targets.length === 0) throw new CliError('usage', 'you must specify a route: sluicectl purge route NAME');
  for (const t of o.targets) {
    if (t.info.kind !== 'Route') throw new CliError('usage', `only routes have a cache to purge, not ${t.info.plural}`);
  }
}

/** POST .../routes/{name}/purge for each route: the controller sets a fresh sluice.io/cache-purge token. */
export async function runPurge(session: Session, o: PurgeOptions): Promise<void> {
  const client = await session.client();
  const { namespace } = await session.connection();
  for (const t of o.targets) {
    await client.request('POST', `${client.objectPath(t.info, namespace, t.name)}/purge`);
    const ref = `${t.info.singular}/${t.name}`;
    session.io.out(o.output === 'name' ? `${ref}\n` : `${ref} purged\n`);
  }
}

export function registerPurge(parent: Command, session: Session): void {
  const cmd = parent
    .command('purge')
    .description("Empty a route's response cache on every agent (the Cache filter)")
    .argument('<args...>', 'route NAME..., or route/NAME...')
    .option('-o, --output <format>', 'output format: name')
    .action(async (args: string[], flags: { output?: string }) => {
      const o = completePurge(args, flags);
      validatePurge(o);
      await runPurge(session, o);
    });
  withExamples(
    cmd,
    `
# Empty the cache of the route "shop" in the current namespace
sluicectl purge route shop

# In another namespace, two routes at once
sluicectl purge route/shop route/catalog -n store
`,
  );
}
