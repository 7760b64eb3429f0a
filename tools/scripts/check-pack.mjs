// Checks what `npm pack` would publish for every non-private workspace package and reports
// tarball sizes. Fails on test files, fixtures, node_modules, sources or maps of tests, and
// on a missing README, licence, `files`, or an `exports` entry without its types file.
//   node tools/scripts/check-pack.mjs [--json]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const forbidden = [
  [/(^|\/)node_modules\//, 'node_modules'],
  [/(^|\/)(test|tests|__tests__|fixtures?)\//, 'test or fixture folder'],
  [/\.(test|spec)\.[cm]?[jt]sx?(\.map)?$/, 'test file'],
  [/(^|\/)vitest\.config\./, 'test config'],
  [/(^|\/)test-results\//, 'test results'],
  [/\.tsbuildinfo$/, 'TypeScript build info'],
];

/** Non-private workspace packages, found from npm's own workspace listing. */
export function publicWorkspaces() {
  const listing = JSON.parse(execFileSync('npm', ['query', '.workspace'], { cwd: root, encoding: 'utf8' }));
  return listing.filter((w) => !w.private).map((w) => ({ name: w.name, dir: join(root, w.location) }));
}

/** Problems found in one package's pack listing. */
export function checkPackage(dir, files) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const paths = new Set(files.map((f) => f.path));
  const problems = [];
  for (const path of paths) {
    for (const [pattern, what] of forbidden) if (pattern.test(path)) problems.push(`${path}: ${what} must not be published`);
  }
  if (!Array.isArray(manifest.files)) problems.push('package.json has no "files" list');
  if (!manifest.license) problems.push('package.json has no "license"');
  if (![...paths].some((p) => /^readme(\.md)?$/i.test(p))) problems.push('README.md missing');
  const exportsField = manifest.exports ?? {};
  for (const [key, target] of Object.entries(typeof exportsField === 'string' ? { '.': exportsField } : exportsField)) {
    const targets = typeof target === 'string' ? { default: target } : target;
    if (key === '.' && targets.default?.endsWith('.js') && !targets.types) problems.push(`exports["${key}"] has no "types"`);
    for (const [condition, file] of Object.entries(targets)) {
      if (!paths.has(file.replace(/^\.\//, ''))) problems.push(`exports["${key}"].${condition} -> ${file} is not in the tarball`);
    }
  }
  for (const bin of Object.values(typeof manifest.bin === 'string' ? { x: manifest.bin } : (manifest.bin ?? {}))) {
    if (!paths.has(bin.replace(/^\.\//, ''))) problems.push(`bin ${bin} is not in the tarball`);
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let failed = false;
  const rows = [];
  for (const { name, dir } of publicWorkspaces()) {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    // A platform package for a binary not built on this machine (e.g. CUDA without the toolkit) is reported, not failed.
    if (manifest.os && !existsSync(join(dir, manifest.main))) {
      console.log(`${name.padEnd(36)} not built here (run node packages/cuda-core/scripts/prebuild.mjs on a matching machine)`);
      continue;
    }
    const [result] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' }));
    const problems = checkPackage(dir, result.files);
    rows.push({ name, tarball: result.filename, size: result.size, unpackedSize: result.unpackedSize, files: result.entryCount, problems });
    if (problems.length) failed = true;
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2));
  else {
    for (const r of rows) {
      console.log(`${r.name.padEnd(36)} ${(r.size / 1024).toFixed(1).padStart(9)} KiB packed ${(r.unpackedSize / 1024).toFixed(1).padStart(9)} KiB unpacked ${String(r.files).padStart(4)} files`);
      for (const p of r.problems) console.log(`  ✗ ${p}`);
    }
  }
  if (failed) {
    console.error('check-pack: some packages would publish badly (see ✗ above)');
    process.exit(1);
  }
}
