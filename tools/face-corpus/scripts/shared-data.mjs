// The shared data folder for the scripts (the tests use @lrface/test-data, which is TypeScript
// source): LRFACE_DATA_DIR, else the first shared/data beside the repository or a parent folder.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function findSharedData() {
  if (process.env.LRFACE_DATA_DIR) return process.env.LRFACE_DATA_DIR;
  for (let dir = dirname(repoRoot.replace(/\/$/, '')); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'shared', 'data'))) return join(dir, 'shared', 'data');
    if (dirname(dir) === dir) return join(dirname(repoRoot), 'shared', 'data');
  }
}
