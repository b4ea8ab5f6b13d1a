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
    format: winston.format.combine(stampTime(), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

/** Puts the time first as `time` (winston's timestamp format would add a second field). */
const stampTime = winston.format((info) => Object.assign({ time: new Date().toISOString() }, info));

/** A logger that drops everything, for unit tests of runners. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
