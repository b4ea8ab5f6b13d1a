import { Writable } from 'node:stream';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('createLogger', () => {
  it('writes JSON lines starting with time, level and message, then the fields', () => {
    const lines: string[] = [];
    const logger = createLogger({ component: 'agent' });
    logger.clear().add(new winston.transports.Stream({ stream: new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) }) }));
    logger.info('agent admin listening', { address: 'http://127.0.0.1:1' });
    const entry = JSON.parse(lines[0]!);
    expect(Object.keys(entry)).toEqual(['time', 'level', 'message', 'component', 'address']);
    expect(entry).toMatchObject({ level: 'info', message: 'agent admin listening', component: 'agent', address: 'http://127.0.0.1:1' });
  });
});
