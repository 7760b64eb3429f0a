// End-to-end install test: packs every non-private workspace package, installs the tarballs
// into a fresh project outside the repo with npm's default script policy (no approvals, so
// no install script of ours runs), then runs `npx lrface demo` and a script using the engine,
// nn and datasets. When @lrface/sr and @lrface/landmarks exist in the workspace, it also runs
// loadLandmarkDetector('lr68') and loadSuperResolver('face-x4') on the public-domain portrait
// made small (a real face of about 26 px); any failure there fails the test. With
// @lrface/recognition it describes the portrait with a network saved to and loaded from a
// weights file, and checks that face-api's recogniser names the package it needs.
//   node tools/scripts/e2e-install.mjs [--keep]
// Real images come from LRFACE_DATA_DIR (the shared data folder; .ci/run sets it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicWorkspaces } from './check-pack.mjs';

const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'lrface-e2e-'));
const tarballs = join(work, 'tarballs');
const project = join(work, 'project');
mkdirSync(tarballs);
mkdirSync(project);
// npm's environment from a parent `npm test` would leak settings (workspace, script policy) into the fresh project.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
const run = (cmd, args, cwd) => {
  console.log(`$ (${cwd}) ${cmd} ${args.join(' ')}`);
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
};

const started = Date.now();
try {
  const packages = publicWorkspaces();
  const names = new Set(packages.map((p) => p.name));
  const deps = {};
  for (const { name, dir } of packages) {
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs], dir));
    deps[name] = `file:${join(tarballs, packed.filename)}`;
    console.log(`  ${packed.filename}: ${(packed.size / 1024).toFixed(1)} KiB`);
  }
  // overrides make the optional platform packages and inter-package deps resolve to our tarballs, not the registry.
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'lrface-e2e', private: true, type: 'module', dependencies: deps, overrides: deps }, null, 2),
  );
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], project);

  const installedCore = join(project, 'node_modules', '@lrface', 'cuda-core');
  // npm 11 warns about unapproved install scripts; whether it also blocks them depends on its
  // version, so the prebuilt path is exercised explicitly by removing any local build.
  const localBuild = join(installedCore, 'build');
  console.log(`e2e: install script of @lrface/cuda-core ${existsSync(localBuild) ? 'ran (local build present; removing it)' : 'was blocked'}`);
  rmSync(localBuild, { recursive: true, force: true });

  const demo = run('npx', ['--no-install', 'lrface', 'demo', '--json'], project);
  console.log(demo.trim().split('\n').slice(-3).join('\n'));
  // The CLI's own dependencies (nn for the training step) resolve from the tarballs too.
  const bench = JSON.parse(run('npx', ['--no-install', 'lrface', 'bench', '--only', 'landmarks-lr68,train-vdsr-16', '--repeats', '1', '--json'], project));
  if (bench.results?.length !== 2) throw new Error('e2e: lrface bench gave ' + JSON.stringify(bench));
  console.log('lrface bench: ' + bench.results.map((r) => r.workload + ' ' + r.ms + ' ms').join(', '));

  writeFileSync(
    join(project, 'engine.mjs'),
    `import { tensor, matmul, nativeAddonOrigin } from '@lrface/cuda-core';
import { Module } from '@lrface/nn';
import { decodeImage, imageToTensor } from '@lrface/datasets';
const a = tensor([1, 2, 3, 4], [2, 2]);
if (!nativeAddonOrigin().startsWith('prebuilt package')) throw new Error('e2e: addon not from a prebuilt package: ' + nativeAddonOrigin());
console.log('addon: ' + nativeAddonOrigin());
const product = Array.from(matmul(a, a).data());
if (product.join() !== '7,10,15,22') throw new Error('e2e: matmul gave ' + product);
if (typeof Module !== 'function') throw new Error('e2e: @lrface/nn has no Module');
const image = await decodeImage(process.argv[2]);
const t = imageToTensor(image);
console.log('engine, nn and datasets load from the tarballs; ' + process.argv[2] + ' -> tensor ' + JSON.stringify(t.shape));
`,
  );
  if (!process.env.LRFACE_DATA_DIR) throw new Error('e2e: set LRFACE_DATA_DIR to the shared data folder (real face images)');
  const face = findImage(process.env.LRFACE_DATA_DIR);
  console.log(run('node', ['engine.mjs', face], project).trim());

  if (names.has('@lrface/sr') || names.has('@lrface/landmarks')) {
    if (!names.has('@lrface/sr') || !names.has('@lrface/landmarks')) {
      throw new Error('e2e: @lrface/sr and @lrface/landmarks must both be in the workspace for the model check');
    }
    writeFileSync(
      join(project, 'models.mjs'),
      `import { loadLandmarkDetector } from '@lrface/landmarks';
import { loadSuperResolver } from '@lrface/sr';
import sharp from 'sharp';
// A real photo made small: the astronaut portrait at 128x128, where her face is about 26 px wide.
const small = await sharp(process.argv[2]).resize(128, 128, { kernel: 'cubic' }).png().toBuffer();
const box = { x: 43, y: 19, width: 26, height: 24.5 };
const { points, confidence } = await (await loadLandmarkDetector('lr68')).detect(small, { box });
const sr = await (await loadSuperResolver('face-x4')).upscale(small, { scale: 4 });
const inside = points.every(([x, y]) => x > box.x - 8 && x < box.x + box.width + 8 && y > box.y - 8 && y < box.y + box.height + 8);
if (points.length !== 68 || confidence.length !== 68 || !inside) throw new Error('e2e: lr68 gave ' + JSON.stringify(points));
if (sr.image.width !== 512 || sr.image.height !== 512) throw new Error('e2e: face-x4 gave ' + sr.image.width + 'x' + sr.image.height);
console.log('lr68: 68 points on a ' + box.width + ' px face; face-x4: 128x128 -> ' + sr.image.width + 'x' + sr.image.height);
`,
    );
    const portrait = join(process.env.LRFACE_DATA_DIR, 'public-domain', 'astronaut.png');
    console.log(run('node', ['models.mjs', portrait], project).trim());
  }
  if (names.has('@lrface/recognition')) {
    // Without the optional face-api package: a network of its own describes a face, saved and
    // reloaded from a weights file; face-api's recogniser says what to install.
    writeFileSync(
      join(project, 'recognition.mjs'),
      `import { Frnet, loadFaceApiRecognizer, loadRecognizer, saveRecognitionWeights } from '@lrface/recognition';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
const file = join(tmpdir(), 'lrface-e2e-frnet-' + process.pid + '.safetensors');
saveRecognitionWeights(file, new Frnet({ inputSize: 48, channels: [4, 4, 8, 8, 8], units: [1, 0, 0, 0], embeddingDim: 16 }));
const rec = loadRecognizer(file);
const f = await rec.embed(process.argv[2]);
rmSync(file);
if (f.length !== 16 || Math.abs(Math.hypot(...f) - 1) > 1e-4) throw new Error('e2e: embed gave ' + Array.from(f));
let hint = '';
try { await loadFaceApiRecognizer(); hint = 'face-api found'; } catch (err) { hint = err.message; }
if (!/face-api/.test(hint)) throw new Error('e2e: loadFaceApiRecognizer said ' + hint);
console.log('recognition: a 16-d unit feature from a weights file; face-api: ' + hint);
`,
    );
    console.log(run('node', ['recognition.mjs', join(process.env.LRFACE_DATA_DIR, 'public-domain', 'astronaut.png')], project).trim());
  }
  console.log(`e2e: passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
} finally {
  if (process.argv.includes('--keep')) console.log(`e2e: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

/** First .png/.jpg under the shared data folder: a real face image. */
function findImage(dir) {
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) stack.push(p);
      else if (/\.(png|jpe?g)$/i.test(entry)) return p;
    }
  }
  throw new Error(`e2e: no image found under ${dir}`);
}
