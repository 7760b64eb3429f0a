import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native code runs in forked workers: a crash fails that file's tests, not the run.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
