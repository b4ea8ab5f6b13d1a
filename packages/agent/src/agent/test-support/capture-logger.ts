import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger } from '../../logger.js';

export interface LogEntry {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A logger that keeps its entries, for assertions on what the agent reports. */
export function captureLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const stream = new Writable({
    objectMode: true,
    write(info: LogEntry, _encoding, callback) {
      entries.push({ ...info });
      callback();
    },
  });
  const logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] });
  return { logger, entries };
}

