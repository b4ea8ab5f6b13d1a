// Each command loads only its own component (import on demand): the agent never loads the
// controller's store drivers, and a broken build of one cannot stop the other from starting.

const USAGE = `Usage: sluice COMMAND [flags]

Commands:
  controller   run the control plane (store, admin API, agent discovery)
  agent        run a proxy that takes its configuration from a controller
  up           run a whole Sluice on this machine: controller, agent, demo backends (quickstart)

Run "sluice COMMAND --help" for a command's flags.
`;

/** `sluice` process entry: picks the component, runs it until SIGTERM/SIGINT, exits 0 on a clean stop. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'controller':
      return runController(rest);
    case 'agent':
      return runAgent(rest);
    case 'up':
      return (await import('./up.js')).runUp(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`error: unknown command "${command}"\n\n${USAGE}`);
      return 1;
  }
}

/** What `sluice controller` and `sluice agent` have in common: parse, log, start, run until a signal, close. */
interface Component<O extends { logLevel: string }, L extends Logger> {
  name: string;
  usage: string;
  parse(argv: string[]): O | 'help';
  createLogger(options: { level: string; component: string }): L;
  start(options: O, logger: L): Promise<{ close(): Promise<void> }>;
}

interface Logger {
  info(message: string, meta?: object): unknown;
  error(message: string, meta?: object): unknown;
}

async function runController(argv: string[]): Promise<number> {
  const c = await import('@sluice/controller');
  return runComponent(argv, { name: 'controller', usage: c.CONTROLLER_USAGE, parse: c.parseControllerArgs, createLogger: c.createLogger, start: c.startController });
}

async function runAgent(argv: string[]): Promise<number> {
  const a = await import('@sluice/agent');
  return runComponent(argv, { name: 'agent', usage: a.AGENT_USAGE, parse: a.parseAgentArgs, createLogger: a.createLogger, start: a.startAgent });
}

async function runComponent<O extends { logLevel: string }, L extends Logger>(argv: string[], component: Component<O, L>): Promise<number> {
  let options;
  try {
    options = component.parse(argv);
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n\n${component.usage}`);
    return 1;
  }
  if (options === 'help') {
    process.stdout.write(component.usage);
    return 0;
  }
  const logger = component.createLogger({ level: options.logLevel, component: component.name });
  let running;
  try {
    running = await component.start(options, logger);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error(`${component.name} failed to start`, { error: message });
    process.stderr.write(`error: ${message}\n`);
    return 1;
  }
  logger.info('shutting down', { signal: await stopSignal() });
  await running.close();
  logger.info('stopped');
  return 0;
}

function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
