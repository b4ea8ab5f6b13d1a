import { CONTROLLER_USAGE, ControllerError, createLogger, parseControllerArgs, startController } from '@sluice/controller';

const USAGE = `Usage: sluice COMMAND [flags]

Commands:
  controller   run the control plane (store, admin API, agent discovery)

Run "sluice COMMAND --help" for a command's flags.
`;

/** `sluice` process entry: picks the component, runs it until SIGTERM/SIGINT, exits 0 on a clean stop. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'controller':
      return runController(rest);
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

async function runController(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseControllerArgs(argv);
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n\n${CONTROLLER_USAGE}`);
    return 1;
  }
  if (options === 'help') {
    process.stdout.write(CONTROLLER_USAGE);
    return 0;
  }
  const logger = createLogger({ level: options.logLevel, component: 'controller' });
  let controller;
  try {
    controller = await startController(options, logger);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error('controller failed to start', { error: message });
    process.stderr.write(`error: ${message}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('shutting down', { signal });
  await controller.close();
  logger.info('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof ControllerError ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
