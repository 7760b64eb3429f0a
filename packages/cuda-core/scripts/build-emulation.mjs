// Builds the test-only variant of the addon in which the whole CUDA backend is compiled by the
// C++ compiler against the host emulation of the CUDA runtime (test/emulation/cuda_runtime.h):
// build-emulation/Release/lrface_core.node lists one emulated CUDA device, so the device test
// suites run without a GPU (vitest.emulated.config.ts). Never shipped.
//
// usage: node scripts/build-emulation.mjs
// Where the tools are missing (not Linux, no cmake, no C++ compiler) it says so and exits 0,
// leaving no addon behind, so the emulated suites are skipped instead of failing the run; a
// build that fails with the tools present fails (status 1).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const addon = join(root, 'build-emulation', 'Release', 'lrface_core.node');
// The cuDNN / cuBLAS stand-ins (test/emulation/stand-ins) built next to it.
const standIns = ['libcudnn.so.9', 'libcublas.so.13'].map((name) => join(root, 'build-emulation', 'Release', name));

/** Why the emulated addon cannot be built here, or '' when the tools are present. */
function missingTools() {
  // The emulation switches threads with glibc's ucontext and _setjmp/_longjmp.
  if (process.platform !== 'linux') return `the host emulation builds on Linux only, not ${process.platform}`;
  const runs = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
  if (!runs('cmake')) return 'cmake was not found on PATH';
  const compiler = process.env.CXX ?? 'c++';
  if (!runs(compiler)) return `no C++ compiler (${compiler}) was found on PATH`;
  return '';
}

// A stale addon from an earlier build must never be tested in place of this source.
for (const file of [addon, ...standIns]) rmSync(file, { force: true });
const missing = missingTools();
if (missing) {
  console.warn(`lrface: the emulated CUDA addon is not built: ${missing}. The device suites under host emulation are skipped.`);
  process.exit(0);
}
const started = Date.now();
const parallel = String(Math.max(1, Number(process.env.LRFACE_BUILD_JOBS) || availableParallelism()));
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [cmakeJs, 'compile', '--directory', root, '--out', join(root, 'build-emulation'), '--parallel', parallel,
  '--CDLRFACE_CUDA_EMULATION=ON', '--CDLRFACE_CUDA=OFF', '--log-level', 'warn'];
console.log('lrface: building the addon with the CUDA backend under host emulation (tests only)');
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  for (const file of [addon, ...standIns]) rmSync(file, { force: true });
  console.error(`lrface: the emulated CUDA addon failed to build (${result.error?.message ?? `status ${result.status}`}); see above.`);
  process.exit(1);
}
console.log(`lrface: emulated addon built in ${((Date.now() - started) / 1000).toFixed(0)} s: ${addon}`);
