// Enforces the package layering of ARCHITECTURE.md from each package's nx tags:
// engine <- nn <- models; engine <- datasets; cli may import everything; only
// @lrface/cuda-core's src/native.ts loads the native binding.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const allowed = {
  'scope:engine': [],
  'scope:nn': ['scope:engine'],
  'scope:datasets': ['scope:engine'],
  'scope:models': ['scope:engine', 'scope:nn', 'scope:datasets'],
  'scope:tools': ['scope:engine', 'scope:nn', 'scope:datasets', 'scope:models'],
  'scope:cli': ['scope:engine', 'scope:nn', 'scope:datasets', 'scope:models', 'scope:tools'],
};

const packages = new Map();
for (const group of ['packages', 'tools']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    const scope = (pkg.nx?.tags ?? []).find((t) => t.startsWith('scope:'));
    packages.set(pkg.name, { dir: join(dir, name), scope });
  }
}

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist' || entry === 'build') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(ts|mts|mjs|js)$/.test(entry) && !entry.endsWith('.d.ts')) yield path;
  }
}

const problems = [];
for (const [name, { dir, scope }] of packages) {
  if (!scope || !(scope in allowed)) {
    problems.push(`${name}: package.json needs an nx tag scope:<${Object.keys(allowed).join('|')}>`);
    continue;
  }
  for (const sub of ['src', 'bin']) {
    if (!existsSync(join(dir, sub))) continue;
    for (const file of sourceFiles(join(dir, sub))) {
      const text = readFileSync(file, 'utf8');
      const where = relative(root, file);
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](@lrface\/[\w-]+)/g)) {
        const target = packages.get(m[1]);
        if (!target) problems.push(`${where}: imports unknown package ${m[1]}`);
        else if (m[1] !== name && !allowed[scope].includes(target.scope))
          problems.push(`${where}: ${scope} may not import ${m[1]} (${target.scope})`);
      }
      const touchesBinding = /\.node['"]|lrface_core|from\s+['"][./]*native(\.js)?['"]/.test(text);
      const isLoader = name === '@lrface/cuda-core';
      if (touchesBinding && !isLoader) problems.push(`${where}: only @lrface/cuda-core may load the native binding`);
    }
  }
}

if (problems.length) {
  console.error(`package boundaries: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`package boundaries: ${packages.size} packages checked, layering respected`);
