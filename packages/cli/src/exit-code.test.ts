import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { exitCodeFor } from './exit-code.js';

describe('exitCodeFor', () => {
  it('maps outcomes: 0 ok, 1 failed', () => {
    expect(exitCodeFor({ outcome: 'ok' }, 'get')).toBe(0);
    expect(exitCodeFor({ outcome: 'failed' }, 'delete')).toBe(1);
  });

  it('maps every error to 1, except interrupts (130)', () => {
    for (const code of ['usage', 'unreachable', 'invalid', 'unavailable', 'not-found', 'conflict'] as const) {
      expect(exitCodeFor({ error: new CliError(code, 'x') }, 'apply')).toBe(1);
    }
    expect(exitCodeFor({ error: new Error('bug') }, 'get')).toBe(1);
    expect(exitCodeFor({ error: new CliError('interrupted', 'x') }, 'get')).toBe(130);
  });

  it('follows diff(1) for diff: 0 same, 1 differs, 2 error', () => {
    expect(exitCodeFor({ outcome: 'ok' }, 'diff')).toBe(0);
    expect(exitCodeFor({ outcome: 'differences' }, 'diff')).toBe(1);
    expect(exitCodeFor({ outcome: 'failed' }, 'diff')).toBe(2);
    expect(exitCodeFor({ error: new CliError('unreachable', 'x') }, 'diff')).toBe(2);
  });
});
