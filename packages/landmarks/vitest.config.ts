import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native code runs in forked workers: a crash fails that file's tests, not the run.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    hookTimeout: 60_000,
  },
});
