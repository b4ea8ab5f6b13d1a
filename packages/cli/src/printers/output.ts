import { CliError } from '../errors.js';

export type OutputFormat = 'default' | 'wide' | 'yaml' | 'json' | 'name';

/** Validates `-o`; unset is the command's default (a table, or `kind/name action` lines). */
export function parseOutputFormat(value: string | undefined, allowed: readonly Exclude<OutputFormat, 'default'>[]): OutputFormat {
  if (value === undefined || value === '') return 'default';
  const match = allowed.find((f) => f === value);
  if (match === undefined) {
    throw new CliError('usage', `unable to match a printer suitable for the output format "${value}", allowed formats are: ${[...allowed].sort().join(',')}`);
  }
  return match;
}
