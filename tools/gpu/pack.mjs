#!/usr/bin/env node
// Packs what the GPU machine needs into .device/ (git-ignored; pass it to the device run
// with carry: ['.device']): a compressed node binary, the Node-API headers, and the CUDA
// test suite and benchmark bundled into single files that need no node_modules there.
// Then, on that machine, from the repository root: bash tools/gpu/run.sh
//
// usage: node tools/gpu/pack.mjs   (from the repository root)
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, '.device');
const limitBytes = 60 << 20; // the device run carries at most 64 MiB in all

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// 1. Node itself: the GPU machine has none.
console.log('pack: compressing node');
const nodeXz = execFileSync('xz', ['-T2', '-6', '-c', process.execPath], { maxBuffer: 256 << 20 });
writeFileSync(join(out, 'node.xz'), nodeXz);

// 2. Node-API headers for the plain CMake build there (cmake-js is not shipped).
for (const pkg of ['node-api-headers', 'node-addon-api'])
  cpSync(join(root, 'node_modules', pkg), join(out, 'node_modules', pkg), { recursive: true, dereference: true });

// 3. The CUDA suite and the benchmark, each one file, with 'vitest' replaced by the shim
// on node:test. The addon is found through LRFACE_ADDON_PATH (set by run.sh). The training
// suite and benchmark import the built packages (dist/): build them first.
const bundles = [
  { input: join(root, 'packages/cuda-core/test/cuda.test.ts'), file: 'cuda-suite.mjs' },
  { input: join(root, 'packages/cuda-core/test/cuda-conv.test.ts'), file: 'cuda-conv-suite.mjs' },
  { input: join(root, 'packages/cuda-core/test/cuda-cudnn-ops.test.ts'), file: 'cuda-cudnn-ops-suite.mjs' },
  { input: join(root, 'tools/gpu/bench.mjs'), file: 'cuda-bench.mjs' },
  { input: join(root, 'packages/sr/test/cuda-train.test.ts'), file: 'cuda-train-suite.mjs' },
  { input: join(root, 'packages/nn/test/device.test.ts'), file: 'nn-device-suite.mjs' },
  { input: join(root, 'packages/recognition/test/cuda-train.test.ts'), file: 'recognition-train-suite.mjs' },
  { input: join(root, 'packages/landmarks/test/cuda-train.test.ts'), file: 'landmarks-train-suite.mjs' },
  { input: join(root, 'tools/gpu/bench-train.mjs'), file: 'cuda-train-bench.mjs' },
];
for (const b of bundles) {
  console.log(`pack: bundling ${relative(root, b.input)}`);
  await build({
    input: b.input,
    platform: 'node',
    resolve: { alias: { vitest: join(root, 'tools/gpu/vitest-shim.mjs') } },
    output: { file: join(out, b.file), format: 'esm' },
    logLevel: 'warn',
  });
}

// 4. The training benchmark's PyTorch side and the sizes both sides read (Python runs it there as is).
for (const file of ['bench_torch.py', 'train-workloads.json']) cpSync(join(root, 'tools/gpu', file), join(out, file));

function folderBytes(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, name) => sum + folderBytes(join(path, name)), 0);
}
const total = folderBytes(out);
console.log(`pack: .device/ holds ${(total / (1 << 20)).toFixed(1)} MiB`);
if (total > limitBytes) {
  console.error(`pack: .device/ is over ${limitBytes >> 20} MiB; the device run would refuse it`);
  process.exit(1);
}
