import { fileURLToPath } from 'node:url';
import { packageTestConfig } from '../../vitest.shared';

export default packageTestConfig({
  resolve: {
    // Test against the engine sources beside this package (its own checkout), not whatever
    // copy node_modules happens to link to; what ships still depends on it by name.
    alias: { '@lrface/cuda-core': fileURLToPath(new URL('../cuda-core/src/index.ts', import.meta.url)) },
  },
  test: { testTimeout: 300_000 },
});
