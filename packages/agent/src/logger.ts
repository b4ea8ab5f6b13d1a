import winston from 'winston';

export type Logger = winston.Logger;

/**
 * JSON lines on stdout: one object per event with `time`, `level`, `message` and fields, as
 * the controller logs (packages/controller/src/logger.ts; the agent may not import it).
 * Level from --log-level (default info). Nothing is logged per request.
 */
export function createLogger(options: { level?: string; component?: string; fields?: Record<string, unknown> } = {}): Logger {
  const meta = { ...(options.component ? { component: options.component } : {}), ...options.fields };
  return winston.createLogger({
    level: options.level ?? 'info',
    defaultMeta: Object.keys(meta).length > 0 ? meta : undefined,
    // deterministic: false keeps insertion order (the default sorts keys, which would bury `time`).
    format: winston.format.combine(stampTime(), winston.format.json({ deterministic: false })),
    transports: [new winston.transports.Console()],
  });
}

/** Puts `time`, `level` and `message` first (winston's timestamp format would add a second field). */
const stampTime = winston.format((info) => Object.assign({ time: new Date().toISOString(), level: info.level, message: info.message }, info));

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
