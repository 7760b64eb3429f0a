// Shared by the training and evaluation scripts: argument parsing and the corpus location.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const packageDir = fileURLToPath(new URL('../', import.meta.url));
export const repoDir = fileURLToPath(new URL('../../../', import.meta.url));

/** --name value pairs (and bare --flags) into an object; numbers where they parse. */
export function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown option '${a}' (known: ${Object.keys(defaults).map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')})`);
    if (typeof defaults[key] === 'boolean') out[key] = true;
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`option '${a}' needs a value`);
      out[key] = typeof defaults[key] === 'number' ? Number(v) : v;
      if (typeof defaults[key] === 'number' && !Number.isFinite(out[key])) throw new Error(`option '${a}' needs a number, got '${v}'`);
    }
  }
  return out;
}

/** The largest corpus built under the repository's .cache (xl, then large, then the small one). */
export function defaultCorpusDir() {
  for (const name of ['face-corpus-xl', 'face-corpus-large', 'face-corpus'])
    if (existsSync(join(repoDir, '.cache', name, 'index.json'))) return join(repoDir, '.cache', name);
  return join(repoDir, '.cache', 'face-corpus');
}
