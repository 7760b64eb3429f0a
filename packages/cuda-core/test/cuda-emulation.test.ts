// The engine's own CUDA GEMM and convolution kernels (native/cuda/gemm_conv.cu), run on the
// host: test/emulation/ compiles them with g++ against an emulated CUDA runtime and compares
// every product, convolution and gradient with naive double-precision references. This runs
// everywhere a C++ compiler does, GPU or not; the same kernels on a real device are checked
// against the CPU by cuda-conv.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const compiler = process.env.CXX ?? 'g++';
// The emulated runtime switches threads with ucontext and _setjmp/_longjmp (glibc).
const canEmulate = process.platform === 'linux' && spawnSync(compiler, ['--version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!canEmulate)('CUDA GEMM and convolution kernels under host emulation', () => {
  it('match the references for every shape, transposition, batch layout, grid and buffer limit', { timeout: 300_000 }, () => {
    let output = '';
    try {
      output = execFileSync(process.execPath, [join(here, 'emulation', 'run.mjs')], { encoding: 'utf8', maxBuffer: 16 << 20 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`emulated kernels failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    // Both variants ran the whole suite: as built, and with limits small enough to take the
    // chunked and multi-launch paths.
    for (const variant of ['as built', 'small grid and buffer limits']) {
      const m = new RegExp(`^${variant}: (\\d+) checks, (\\d+) failed`, 'm').exec(output);
      expect(m, output).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(300);
      expect(Number(m![2])).toBe(0);
    }
    // The emulated runtime: launch limits, barriers, atomics, memory limit, copy checks, handles.
    const runtime = /^runtime: (\d+) checks, (\d+) failed/m.exec(output);
    expect(runtime, output).not.toBeNull();
    expect(Number(runtime![1])).toBeGreaterThan(50);
    expect(Number(runtime![2])).toBe(0);
    // The cuDNN / cuBLAS stand-ins: statuses, output sizes, results, alpha/beta, workspaces.
    const standIns = /^stand-ins: (\d+) checks, (\d+) failed/m.exec(output);
    expect(standIns, output).not.toBeNull();
    expect(Number(standIns![1])).toBeGreaterThan(60);
    expect(Number(standIns![2])).toBe(0);
  });
});
