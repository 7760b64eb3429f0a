#!/usr/bin/env node
// Loader throughput: decoded + augmented face crops per second through the DataLoader, on the
// real WIDER FACE val images in ../shared/data (faces of 64 px and more, as the HR training
// group). Each sample: JPEG decode (sharp), crop around the face with a 20 % margin to 128x128
// with random scale / rotation / translation / flip, colour jitter, then batching to NCHW.
// Usage: node scripts/bench-loader.mjs [--seconds 10] [--batch 32] [--threads 2] [--json]
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const seconds = opt('seconds', 10);
const batchSize = opt('batch', 32);
const threads = opt('threads', Math.min(2, availableParallelism()));
// sharp decodes on libuv's pool; size it before sharp loads.
process.env.UV_THREADPOOL_SIZE = String(threads);

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
function findData() {
  if (process.env.LRFACE_DATA_DIR) return process.env.LRFACE_DATA_DIR;
  for (let dir = dirname(repo); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'shared', 'data'))) return join(dir, 'shared', 'data');
    if (dirname(dir) === dir) return null;
  }
}
const data = findData();
if (!data || !existsSync(join(data, 'widerface'))) {
  console.error('bench-loader: ../shared/data/widerface not found (set LRFACE_DATA_DIR)');
  process.exit(1);
}

const { WiderFace, DataLoader, augmentFaceFrom } = await import('../dist/index.js');
const { setNumThreads } = await import('@lrface/cuda-core');
setNumThreads(threads);
const sharp = (await import('sharp')).default;
sharp.concurrency(1);

// Faces of 64 px and more, in the images the shared excerpt holds.
const hr = (await WiderFace.open({ root: join(data, 'widerface'), split: 'val' })).filterFaces({ minSize: 64 }).filter((s) => existsSync(s.image.source));
const list = [];
for (const s of hr) for (let k = 0; k < s.boxes.length; k++) list.push({ sample: s, face: k });
const { ArrayDataset } = await import('../dist/index.js');
const ds = new ArrayDataset(list, 'WIDER val faces >= 64 px');

const loader = new DataLoader({
  dataset: ds,
  batchSize,
  shuffle: true,
  seed: 1,
  async transform({ sample, face }, rng) {
    const out = await augmentFaceFrom(sample.image, { boxes: sample.boxes }, rng, { size: [128, 128], margin: 0.2, face });
    return { image: out.image };
  },
});

let images = 0;
const { eventLoopUtilization } = await import('node:perf_hooks').then((m) => m.performance);
const elu0 = eventLoopUtilization();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let first = null;
while ((performance.now() - t0) / 1000 < seconds) {
  for await (const batch of loader) {
    if (first === null) first = performance.now() - t0;
    images += batch.image.shape[0];
    batch.image.dispose();
    if ((performance.now() - t0) / 1000 >= seconds) break;
  }
}
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const elu = eventLoopUtilization(elu0);
const rate = images / elapsed;
// CPU time of the whole process (main thread + sharp's threads) and of the main thread alone, per image:
// the machine may be shared, so these say more than the rate about what a sample costs.
const cpuMs = (cpu.user + cpu.system) / 1000 / images;
const mainMs = elu.active / images;
const load = (await import('node:os')).loadavg()[0];
const result = { threads, batchSize, faces: ds.length, images, seconds: +elapsed.toFixed(2), imagesPerSecond: +rate.toFixed(1), cpuMsPerImage: +cpuMs.toFixed(2), mainThreadMsPerImage: +mainMs.toFixed(2), firstBatchMs: Math.round(first ?? 0), loadAverage: +load.toFixed(2) };
if (args.includes('--json')) console.log(JSON.stringify(result));
else
  console.log(
    `loader: ${rate.toFixed(1)} decoded+augmented images/s (128x128 crops from ${ds.length} WIDER faces, batch ${batchSize}, ${threads} threads, ${images} images in ${elapsed.toFixed(1)} s); ` +
      `${cpuMs.toFixed(1)} CPU-ms per image (${mainMs.toFixed(1)} on the main thread); 1-min load average ${load.toFixed(2)}`,
  );
