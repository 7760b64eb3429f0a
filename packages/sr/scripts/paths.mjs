// Where the sr scripts find what lies outside the package: the repository, the shared data
// beside it (or beside a parent folder, as for a worktree; LRFACE_DATA_DIR overrides), and the
// first face corpus built under .cache among the given names.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const scriptsDir = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(scriptsDir, '../../..');
const mainCache = resolve(repo, '..', '..', 'main', '.cache');

export const sharedData =
  process.env.LRFACE_DATA_DIR ?? [resolve(repo, '..', 'shared/data'), resolve(repo, '..', '..', 'shared/data')].find((d) => existsSync(d)) ?? resolve(repo, '..', 'shared/data');

/** The first of the corpora `names` (in order) built under this repository's or the main checkout's .cache. */
export function builtCorpus(...names) {
  return names.flatMap((n) => [resolve(repo, '.cache', n), resolve(mainCache, n)]).find((d) => existsSync(resolve(d, 'index.json')));
}
