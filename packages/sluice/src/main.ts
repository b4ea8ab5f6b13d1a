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

async function runController(argv: string[]): Promise<number> {
  const { CONTROLLER_USAGE, createLogger, parseControllerArgs, startController } = await import('@sluice/controller');
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
  logger.info('shutting down', { signal: await stopSignal() });
  await controller.close();
  logger.info('stopped');
  return 0;
}

async function runAgent(argv: string[]): Promise<number> {
  const { AGENT_USAGE, createLogger: createAgentLogger, parseAgentArgs, startAgent } = await import('@sluice/agent');
  let options;
  try {
    options = parseAgentArgs(argv);
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n\n${AGENT_USAGE}`);
    return 1;
  }
  if (options === 'help') {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  const logger = createAgentLogger({ level: options.logLevel, component: 'agent' });
  let agent;
  try {
    agent = await startAgent(options, logger);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.error('agent failed to start', { error: message });
    process.stderr.write(`error: ${message}\n`);
    return 1;
  }
  logger.info('shutting down', { signal: await stopSignal() });
  await agent.close();
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
