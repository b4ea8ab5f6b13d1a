import { Command, CommanderError, Option } from 'commander';
import { registerApply } from './commands/apply.js';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerDelete } from './commands/delete.js';
import { registerDescribe } from './commands/describe.js';
import { registerDiff } from './commands/diff.js';
import { registerEdit } from './commands/edit.js';
import { registerExplain } from './commands/explain.js';
import { registerGet } from './commands/get.js';
import { registerPurge } from './commands/purge.js';
import { registerTop } from './commands/top.js';
import { registerTranslate } from './commands/translate.js';
import { registerVersion } from './commands/version.js';
import { DEFAULT_SERVER } from './config.js';
import { CliError, errorLines } from './errors.js';
import type { Io } from './io.js';
import { DEFAULT_REQUEST_TIMEOUT, Session, type GlobalFlags, type Outcome } from './session.js';

export type CliResult = { command: string | undefined } & ({ outcome: Outcome } | { error: unknown });

/** The command tree. Subcommands inherit output routing and error handling from the root. */
export function buildProgram(session: Session): Command {
  const program = new Command('sluicectl')
    .description('sluicectl controls the Sluice load balancer: it talks to the controller\'s admin API.')
    .addOption(new Option('--server <url>', `admin API of the controller (env SLUICE_SERVER, else the context, else ${DEFAULT_SERVER})`))
    .addOption(new Option('-n, --namespace <namespace>', 'namespace (default: the context\'s, else "default")'))
    .addOption(new Option('--request-timeout <duration>', 'give up on a request after this long (0: never)').default(DEFAULT_REQUEST_TIMEOUT))
    .configureOutput({
      writeOut: (s) => session.io.out(s),
      writeErr: (s) => session.io.err(s),
    })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage and examples)')
    .helpCommand(true)
    .allowExcessArguments(false);
  registerGet(program, session);
  registerDescribe(program, session);
  registerApply(program, session);
  registerDelete(program, session);
  registerDiff(program, session);
  registerEdit(program, session);
  registerExplain(program, session);
  registerTop(program, session);
  registerPurge(program, session);
  registerTranslate(program, session);
  registerConfig(program, session);
  registerVersion(program, session);
  registerCompletion(program, session);
  return program;
}

function commandName(argv: readonly string[], program: Command): string | undefined {
  const names = new Set(program.commands.map((c) => c.name()));
  return argv.find((a) => names.has(a));
}

/**
 * Parses and runs one command line. Never throws: errors are printed to stderr and the
 * result says how it ended; main.ts turns that into an exit status.
 */
export async function runCli(argv: readonly string[], io: Io): Promise<CliResult> {
  // The closure runs only once parsing has started, after `program` exists.
  const session = new Session(io, () => program.opts<GlobalFlags>());
  const program = buildProgram(session);
  const command = commandName(argv, program);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return { command, outcome: session.outcome };
  } catch (error: unknown) {
    if (error instanceof CommanderError) {
      // Help and version requests end through exitOverride too; they are not errors.
      if (error.exitCode === 0) return { command, outcome: 'ok' };
      // commander already printed "error: ..." to stderr.
      return { command, error: new CliError('usage', error.message) };
    }
    io.err(`${errorLines(error).join('\n')}\n`);
    return { command, error };
  }
}
