// Builds the prebuilt platform package for this machine: packages/cuda-core-<platform>-<arch>[-cuda].
//   node packages/cuda-core/scripts/prebuild.mjs           CPU build (LRFACE_CUDA=OFF)
//   node packages/cuda-core/scripts/prebuild.mjs --cuda    CUDA build; fails where the toolkit is missing
//   --reuse-build  copy build/Release/lrface_core.node instead of compiling, if its CUDA flag matches
// The build goes to its own cmake-js output folder so the local build is left alone.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
for (const a of args) {
  if (a !== '--cuda' && a !== '--reuse-build') {
    console.error(`prebuild: unknown option '${a}' (expected --cuda, --reuse-build)`);
    process.exit(2);
  }
}
const cuda = args.includes('--cuda');
const reuse = args.includes('--reuse-build');

if (process.platform === 'linux' && !process.report.getReport().header.glibcVersionRuntime) {
  console.error('prebuild: musl Linux has no platform package definition yet; add packages/cuda-core-linux-<arch>-musl first');
  process.exit(1);
}
const packageName = `cuda-core-${process.platform}-${process.arch}${cuda ? '-cuda' : ''}`;
const packageDir = join(root, '..', packageName);
if (!existsSync(join(packageDir, 'package.json'))) {
  console.error(`prebuild: no platform package at ${packageDir}; create it (os/cpu/libc fields) before building for this platform`);
  process.exit(1);
}

let built;
if (reuse) {
  built = join(root, 'build', 'Release', 'lrface_core.node');
  if (!existsSync(built)) {
    console.error(`prebuild: --reuse-build but ${built} does not exist; run npm run build:native -w @lrface/cuda-core`);
    process.exit(1);
  }
} else {
  const outDir = join(root, cuda ? 'build-prebuild-cuda' : 'build-prebuild-cpu');
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const jobs = String(Math.max(1, Number(process.env.LRFACE_BUILD_JOBS) || (await import('node:os')).availableParallelism()));
  const cmake = [cmakeJs, 'compile', '--directory', root, '--out', outDir, '--parallel', jobs, `--CDLRFACE_CUDA=${cuda ? 'ON' : 'OFF'}`, '--log-level', 'warn'];
  if (process.env.CUDA_ARCHITECTURES) cmake.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CUDA_ARCHITECTURES}`);
  console.log(`prebuild: compiling ${cuda ? 'CUDA' : 'CPU'} build into ${outDir}`);
  const result = spawnSync(process.execPath, cmake, { stdio: 'inherit', cwd: root });
  if (result.status !== 0) {
    console.error(`prebuild: the ${cuda ? 'CUDA' : 'CPU'} build failed${cuda ? ' (the CUDA variant needs nvcc and cuDNN)' : ''}`);
    process.exit(result.status ?? 1);
  }
  built = join(outDir, 'Release', 'lrface_core.node');
}

// Check the binary loads and is the variant asked for before it goes into the package.
const addon = require(built);
const info = addon.cudaInfo();
if (info.compiled !== cuda) {
  console.error(`prebuild: ${built} was compiled ${info.compiled ? 'with' : 'without'} CUDA, but the ${packageName} package needs ${cuda ? 'CUDA' : 'a CPU-only build'}`);
  process.exit(1);
}

const target = join(packageDir, 'lrface_core.node');
copyFileSync(built, `${target}.tmp`);
renameSync(`${target}.tmp`, target);
const bytes = readFileSync(target);
const manifest = {
  package: `@lrface/${packageName}`,
  napiVersion: Number(process.versions.napi),
  builtWithNode: process.version,
  cuda: info.compiled,
  sha256: createHash('sha256').update(bytes).digest('hex'),
  bytes: bytes.length,
};
writeFileSync(`${join(packageDir, 'prebuild.json')}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
renameSync(`${join(packageDir, 'prebuild.json')}.tmp`, join(packageDir, 'prebuild.json'));
console.log(`prebuild: wrote ${target} (${(bytes.length / 1e6).toFixed(2)} MB, sha256 ${manifest.sha256})`);
