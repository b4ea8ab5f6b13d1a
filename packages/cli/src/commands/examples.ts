import type { Command } from 'commander';

/** Appends kubectl's `Examples:` block to a command's --help. */
export function withExamples(command: Command, examples: string): Command {
  const body = examples
    .trim()
    .split('\n')
    .map((l) => (l === '' ? '' : `  ${l}`))
    .join('\n');
  return command.addHelpText('after', `\nExamples:\n${body}\n`);
}

/** Collects a repeatable option (`-f a -f b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
