#!/usr/bin/env node
// Builds native/cuda/gemm_conv.cu for the host emulation in this folder and runs its checks
// (gemm_conv_check.cpp), twice: as written, and with the launch-grid and buffer limits cut
// down so that the paths for grids past 65535 entries along y/z, column buffers in several
// chunks of images or bands of output rows, and bounded split-k partial sums run on small
// shapes too. Then checks the emulated runtime itself (runtime_check.cpp) and the cuDNN / cuBLAS
// stand-ins (stand_ins_check.cpp).
//
// usage: node test/emulation/run.mjs [--out DIR]   (needs g++ with C++17; prints the checks'
// summary per variant, exit status 1 on any failure)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nativeCuda = join(here, '..', '..', 'native', 'cuda');
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 ? process.argv[outFlag + 1] : mkdtempSync(join(tmpdir(), 'lrface-emulation-'));
mkdirSync(out, { recursive: true });

/** Replaces `constexpr int64_t NAME = ...;` with the given value; fails when the constant is gone. */
function setConstant(source, name, value) {
  const pattern = new RegExp(`(constexpr int64_t ${name} = )[^;]+;`);
  if (!pattern.test(source)) throw new Error(`run.mjs: constant ${name} not found in gemm_conv.cu`);
  return source.replace(pattern, `$1${value};`);
}

// Launches are written LRFACE_LAUNCH(...) (native/cuda/launch.h): without nvcc they expand to
// emu::launch, so the source compiles as it stands.
const original = readFileSync(join(nativeCuda, 'gemm_conv.cu'), 'utf8');
let small = setConstant(original, 'kMaxGridYZ', '2');
small = setConstant(small, 'kColumnBudget', '700');
small = setConstant(small, 'kPartialBudget', '3000');
const variants = [
  { name: 'as built', source: original },
  { name: 'small grid and buffer limits', source: small },
];

let failed = false;
process.on('exit', () => {
  if (outFlag < 0) rmSync(out, { recursive: true, force: true });  // a temporary folder of ours
});
for (const [i, v] of variants.entries()) {
  const src = join(out, `gemm_conv_${i}.cu.inc`);
  const bin = join(out, `gemm_conv_check_${i}`);
  writeFileSync(src, v.source);
  execFileSync(
    process.env.CXX ?? 'g++',
    ['-std=c++17', '-O2', '-march=native', '-fno-strict-aliasing', '-U_FORTIFY_SOURCE', `-I${here}`, `-I${nativeCuda}`,
      `-DGEMM_CONV_SOURCE="${src}"`, join(here, 'gemm_conv_check.cpp'), '-o', bin],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  try {
    const report = execFileSync(bin, { encoding: 'utf8', maxBuffer: 16 << 20 });
    console.log(`${v.name}: ${report.trim()}`);
  } catch (err) {
    failed = true;
    console.log(`${v.name}: FAILED (status ${err.status})\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}
// The emulated runtime itself, as the emulated addon compiles it (LRFACE_CUDA_EMULATION).
{
  const bin = join(out, 'runtime_check');
  execFileSync(
    process.env.CXX ?? 'g++',
    ['-std=c++17', '-O1', '-fno-strict-aliasing', '-U_FORTIFY_SOURCE', '-DLRFACE_CUDA_EMULATION', `-I${here}`,
      `-I${nativeCuda}`, join(here, 'runtime_check.cpp'), '-o', bin],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  try {
    console.log(`runtime: ${execFileSync(bin, { encoding: 'utf8' }).trim()}`);
  } catch (err) {
    failed = true;
    console.log(`runtime: FAILED (status ${err.status})\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}
// The cuDNN and cuBLAS stand-ins (stand-ins/), built as the emulated build builds them, against
// the documented behaviour (stand_ins_check.cpp).
{
  const libs = ['cudnn', 'cublas'].map((name) => {
    const lib = join(out, `lib${name}_stand_in.so`);
    execFileSync(
      process.env.CXX ?? 'g++',
      ['-std=c++17', '-O2', '-shared', '-fPIC', '-fvisibility=hidden', join(here, 'stand-ins', `${name}_stand_in.cpp`), '-o', lib],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    return lib;
  });
  const bin = join(out, 'stand_ins_check');
  execFileSync(process.env.CXX ?? 'g++', ['-std=c++17', '-O1', join(here, 'stand_ins_check.cpp'), '-o', bin, '-ldl'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    console.log(`stand-ins: ${execFileSync(bin, libs, { encoding: 'utf8' }).trim()}`);
  } catch (err) {
    failed = true;
    console.log(`stand-ins: FAILED (status ${err.status})\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}
process.exit(failed ? 1 : 0);
