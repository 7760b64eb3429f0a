// The CUDA kernels against the CPU kernels on the same inputs: each workload is checked
// (max |cpu - cuda|) before it is timed. Device times include a synchronisation, so they
// measure finished work, not queued launches.
//
// usage: node bench.mjs [--json FILE] [--reps N]   (bundled by pack.mjs for the GPU machine)
import { writeFileSync } from 'node:fs';
import * as lr from '../../packages/cuda-core/src/index.js';
import { kernels } from '../../packages/cuda-core/src/native.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const reps = Number(option('--reps', '20'));
const jsonPath = option('--json', undefined);

if (!lr.devices().some((d) => d.type === 'cuda')) {
  console.error(`bench: no CUDA device: ${lr.buildInfo().cudaReason}`);
  process.exit(2);
}

function random(shape, seed) {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296 - 0.5;
  }
  return data;
}

const workloads = [
  { id: 'add-broadcast', shapes: [[8, 64, 128, 128], [64, 1, 1]], run: (a, b) => lr.add(a, b) },
  { id: 'sigmoid', shapes: [[8, 64, 128, 128]], run: (a) => lr.sigmoid(a) },
  { id: 'sum-hw', shapes: [[8, 64, 128, 128]], run: (a) => lr.sum(a, { axis: [2, 3] }) },
  { id: 'max-channels', shapes: [[8, 64, 128, 128]], run: (a) => lr.max(a, { axis: 1 }) },
  { id: 'bicubic-x4', shapes: [[8, 3, 64, 64]], run: (a) => lr.upsample(a, { mode: 'bicubic', scaleFactor: 4 }) },
  { id: 'bilinear-x2', shapes: [[8, 64, 64, 64]], run: (a) => lr.upsample(a, { mode: 'bilinear', scaleFactor: 2 }) },
  { id: 'pad-reflect', shapes: [[8, 64, 128, 128]], run: (a) => lr.pad(a, [1, 1, 1, 1], { mode: 'reflect' }) },
  { id: 'pixel-shuffle', shapes: [[8, 256, 64, 64]], run: (a) => lr.pixelShuffle(a, 2) },
];

const sync = () => kernels.cuda_synchronize(0);
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

function time(fn, device) {
  for (let i = 0; i < 3; i++) fn().dispose();
  if (device === 'cuda') sync();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    const y = fn();
    if (device === 'cuda') sync();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    y.dispose();
  }
  return median(times);
}

const results = [];
const device = lr.devices().find((d) => d.type === 'cuda');
console.log(`device: ${device.name} (sm ${device.computeCapability}), CPU threads: ${lr.numThreads()}, reps: ${reps}`);
console.log('workload           cpu ms    cuda ms   speed-up   max |diff|');
for (const w of workloads) {
  const cpuIn = w.shapes.map((s, k) => lr.tensor(random(s, 17 + k), s));
  const gpuIn = cpuIn.map((t) => t.to('cuda'));
  const yc = w.run(...cpuIn);
  const yg = w.run(...gpuIn);
  const a = yc.data();
  const b = yg.data();
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  yc.dispose();
  yg.dispose();
  const cpuMs = time(() => w.run(...cpuIn), 'cpu');
  const cudaMs = time(() => w.run(...gpuIn), 'cuda');
  results.push({ workload: w.id, cpu_ms: cpuMs, cuda_ms: cudaMs, speedup: cpuMs / cudaMs, max_abs_diff: diff });
  console.log(`${w.id.padEnd(18)} ${cpuMs.toFixed(3).padStart(8)} ${cudaMs.toFixed(3).padStart(10)} ${(cpuMs / cudaMs).toFixed(1).padStart(9)}x   ${diff.toExponential(2)}`);
  [...cpuIn, ...gpuIn].forEach((t) => t.dispose());
}

// Transfers through the pinned staging buffers.
const bytes = 64 << 20;
const host = lr.tensor(random([bytes / 4], 5), [bytes / 4]);
const h2d = time(() => host.to('cuda'), 'cuda');
const onDevice = host.to('cuda');
const d2h = time(() => onDevice.to('cpu'), 'cpu');
console.log(`transfer 64 MiB: host->device ${h2d.toFixed(2)} ms (${(bytes / h2d / 1e6).toFixed(2)} GB/s), device->host ${d2h.toFixed(2)} ms (${(bytes / d2h / 1e6).toFixed(2)} GB/s)`);
results.push({ workload: 'h2d-64MiB', cuda_ms: h2d }, { workload: 'd2h-64MiB', cuda_ms: d2h });
host.dispose();
onDevice.dispose();
console.log('memory:', JSON.stringify(lr.memory()));

if (jsonPath) writeFileSync(jsonPath, JSON.stringify({ device, buildInfo: lr.buildInfo(), reps, results }, null, 2));
