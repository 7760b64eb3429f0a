// Where the real test data lives (../shared/data beside the repository) and how to read it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { decodePng, lumaOf } from './png.js';
export type { DecodedImage } from './png.js';

/**
 * The first `shared/data` beside the repository or beside one of its parent folders (a git
 * worktree under wt/ finds the same folder as the main checkout), with a trailing slash;
 * LRFACE_DATA_DIR overrides it. When none exists, the path beside the repository.
 */
function findSharedData(): string {
  if (process.env.LRFACE_DATA_DIR) return process.env.LRFACE_DATA_DIR.replace(/\/?$/, '/');
  const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
  let dir = dirname(repoRoot.replace(/\/$/, ''));
  for (;;) {
    const candidate = join(dir, 'shared', 'data');
    if (existsSync(candidate)) return candidate + '/';
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(dirname(repoRoot.replace(/\/$/, '')), 'shared', 'data') + '/';
}

/** The shared data folder (with a trailing slash). */
export const sharedDataDir: string = findSharedData();

/** Whether every given path (relative to the data folder) exists. */
export function haveSharedData(...paths: string[]): boolean {
  return paths.every((p) => existsSync(sharedDataDir + p));
}

/** The largest absolute difference between two equally long arrays (the lengths must match). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  return Array.prototype.reduce.call(a, (m: number, v: number, i: number) => Math.max(m, Math.abs(v - b[i])), 0) as number;
}
