import { CliError } from './errors.js';
import type { Outcome } from './session.js';

/** The conventional status of a process ended by SIGINT (128 + 2). */
export const EXIT_INTERRUPTED = 130;

/**
 * Exit statuses: 0 ok, 1 error. `diff` follows diff(1) and kubectl: 0 same, 1 differs,
 * >1 error. Only main.ts calls this; everything else speaks in error codes.
 */
export function exitCodeFor(result: { outcome: Outcome } | { error: unknown }, command: string | undefined): number {
  const isDiff = command === 'diff';
  if ('error' in result) {
    if (result.error instanceof CliError && result.error.code === 'interrupted') return EXIT_INTERRUPTED;
    return isDiff ? 2 : 1;
  }
  switch (result.outcome) {
    case 'ok':
      return 0;
    case 'differences':
      return 1;
    case 'failed':
      return isDiff ? 2 : 1;
  }
}
