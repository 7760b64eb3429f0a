// The test setup every package shares: native code runs in forked workers (a crash fails that
// file's tests, not the run), and a JSON report feeds the CI summary.
import { defineConfig, mergeConfig, type UserConfig } from 'vitest/config';

export function packageTestConfig(overrides: UserConfig = {}): UserConfig {
  const base = defineConfig({
    test: {
      pool: 'forks',
      include: ['test/**/*.test.ts'],
      testTimeout: 120_000,
      hookTimeout: 60_000,
      reporters: ['default', 'json'],
      outputFile: { json: 'test-results/vitest.json' },
    },
  });
  return mergeConfig(base, overrides);
}
