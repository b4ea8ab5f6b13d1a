export { startController, type RunningController } from './controller.js';
export { parseControllerArgs, CONTROLLER_USAGE, type ControllerOptions } from './options.js';
export { createLogger, type Logger } from './logger.js';
export { ControllerError } from './errors.js';
