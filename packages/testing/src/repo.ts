import { fileURLToPath } from 'node:url';

/** The repository root, whether this file runs from src/ (tests) or dist/ (built). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The built `sluice` and `sluicectl` entry points (npm test builds before it runs). */
export const sluiceBin = `${repoRoot}packages/sluice/bin/sluice.js`;
export const sluicectlBin = `${repoRoot}packages/cli/bin/sluicectl.js`;
