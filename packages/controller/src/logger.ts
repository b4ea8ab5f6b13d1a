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
    // deterministic: false keeps insertion order (the default sorts keys, which would bury `time`).
    format: winston.format.combine(stampTime(), winston.format.json({ deterministic: false })),
    transports: [new winston.transports.Console()],
  });
}

/** Puts `time`, `level` and `message` first (winston's timestamp format would add a second field). */
const stampTime = winston.format((info) => Object.assign({ time: new Date().toISOString(), level: info.level, message: info.message }, info));

/** A logger that drops everything, for unit tests of runners. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
