import { defineConfig } from 'vitest/config';

// Tests import workspace packages from source through the `sluice-source` export condition;
// cross-process tests spawn the built binaries (npm test builds first).
export default defineConfig({
  resolve: { conditions: ['sluice-source'] },
  ssr: { resolve: { conditions: ['sluice-source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
