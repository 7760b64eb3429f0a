// Adds up the vitest JSON reports of every package (the emulated CUDA runs too) into one closing line.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
for (const group of ['packages', 'tools']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    // vitest.json, and vitest-emulated.json where the CUDA suites ran again under host emulation.
    const results = join(dir, name, 'test-results');
    if (!existsSync(results)) continue;
    for (const file of readdirSync(results).filter((f) => /^vitest(-[\w-]+)?\.json$/.test(f))) {
      const r = JSON.parse(readFileSync(join(results, file), 'utf8'));
      passed += r.numPassedTests ?? 0;
      failed += r.numFailedTests ?? 0;
      skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
