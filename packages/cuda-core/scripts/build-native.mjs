// Builds the native addon with cmake-js. CPU-only when LRFACE_CPU_ONLY=1 or
// `npm config set lrface_cpu_only true`; LRFACE_CUDA=ON makes a missing nvcc an error.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
const cpuOnly = truthy(process.env.LRFACE_CPU_ONLY) || truthy(process.env.npm_config_lrface_cpu_only);
const cudaMode = cpuOnly ? 'OFF' : (process.env.LRFACE_CUDA ?? 'AUTO').toUpperCase();
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const parallel = String(Math.max(1, Number(process.env.LRFACE_BUILD_JOBS) || (await import('node:os')).availableParallelism()));

const args = [cmakeJs, 'compile', '--directory', root, '--parallel', parallel, `--CDLRFACE_CUDA=${cudaMode}`, '--log-level', 'warn'];
if (process.env.CUDA_ARCHITECTURES) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CUDA_ARCHITECTURES}`);
console.log(`lrface: building the native addon (CUDA: ${cudaMode})`);
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  // An approved install on a machine without a compiler still works from the prebuilt package.
  const prebuilt = [`-cuda`, ''].map((v) => `@lrface/cuda-core-${process.platform}-${process.arch}${v}/lrface_core.node`).find((m) => {
    try {
      require.resolve(m);
      return true;
    } catch {
      return false;
    }
  });
  if (prebuilt && process.env.npm_lifecycle_event === 'install') {
    console.warn(`lrface: the native build failed; using the prebuilt ${prebuilt.split('/lrface_core.node')[0]} instead`);
    process.exit(0);
  }
  console.error(
    'lrface: the native build failed. It needs cmake >= 3.18 and a C++17 compiler (g++ or clang++) on PATH.\n' +
      'For a CPU-only build set LRFACE_CPU_ONLY=1. See the messages above for the failing step.',
  );
  process.exit(result.status ?? 1);
}
