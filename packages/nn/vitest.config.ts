import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Test against the engine sources beside this package (its own checkout), not whatever
    // copy node_modules happens to link to; what ships still depends on it by name.
    alias: { '@lrface/cuda-core': fileURLToPath(new URL('../cuda-core/src/index.ts', import.meta.url)) },
  },
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
  },
});
