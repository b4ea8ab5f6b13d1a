import winston from 'winston';

export type Logger = winston.Logger;

/**
 * JSON lines on stdout: one object per event with `time`, `level`, `message` and fields.
 * Level from --log-level (default info). Nothing is logged per request by default.
 */
export function createLogger(options: { level?: string; component?: string } = {}): Logger {
  return winston.createLogger({
    level: options.level ?? 'info',
    defaultMeta: options.component ? { component: options.component } : undefined,
    format: winston.format.combine(winston.format.timestamp({ alias: 'time' }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

/** A logger that drops everything, for unit tests of runners. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
