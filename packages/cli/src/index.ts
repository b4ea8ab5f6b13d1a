// A small surface for tests and tools; the product is the bin.
export { runCli, buildProgram, type CliResult } from './cli.js';
export { CliError, type CliErrorCode } from './errors.js';
export { exitCodeFor } from './exit-code.js';
export type { Io } from './io.js';
export { SluiceClient } from './client.js';
export { unifiedDiff } from './diff.js';
export { parseResourceArgs } from './resource-args.js';
