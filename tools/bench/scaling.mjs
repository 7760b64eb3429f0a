#!/usr/bin/env node
// Thread scaling of the memory-heavy ops of srinc_body's inception module (max-pool 3x3 s1,
// 1x1 conv 128->32 + ReLU, concat of four 32-channel planes to 128, all at 128x128, N=1), each
// op called as many times as the network calls it, with its outputs either
//   kept  - alive until the end, as a forward under lr.scope keeps every intermediate: each
//           output lands in memory not touched since the last forward, and the working set
//           (~28 MB a module) outgrows the L3 cache, so the op streams through DRAM;
//   freed - disposed at once, so the block cache hands the same, cached block back.
// Where the speedup of two threads is far lower when kept than when freed, the op is held by
// memory bandwidth rather than by an idle thread.
//
// usage: node tools/bench/scaling.mjs [--threads 1,2] [--runs 5] [--calls 19]
import * as lr from '@lrface/cuda-core';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const threadCounts = opt('--threads', '1,2').split(',').map(Number);
const runs = Number(opt('--runs', '5'));
const calls = Number(opt('--calls', '19'));
if (threadCounts.some((t) => !Number.isInteger(t) || t < 1)) throw new Error(`--threads wants positive integers, got ${threadCounts}`);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs wants a positive integer, got ${runs}`);
if (!Number.isInteger(calls) || calls < 1) throw new Error(`--calls wants a positive integer, got ${calls}`);

// Fixed pseudo-random data (the values do not matter to the timing, only that they are not all equal).
let seed = 1;
const random = (shape) => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = seed / 2 ** 32 - 0.5;
  }
  return lr.keep(lr.tensor(data, shape));
};
const branches = [0, 1, 2, 3].map(() => random([1, 32, 128, 128]));
const x = lr.keep(lr.concat(branches, 1));
const weight = random([32, 128, 1, 1]);
const bias = random([32]);
const ops = {
  'maxPool k3 s1 1x128x128x128': () => lr.maxPool2d(x, { kernelSize: 3, stride: 1, padding: 1 }),
  'convRelu 128->32 k1 on 1x128x128': () => lr.conv2dRelu(x, weight, bias, {}),
  'concat 4 x 1x32x128x128': () => lr.concat(branches, 1),
};

/** Fastest of `runs` totals over `calls` calls of each op, the calls interleaved as in the network. */
function measure(keep) {
  const best = Object.fromEntries(Object.keys(ops).map((k) => [k, Infinity]));
  for (let run = 0; run < runs; run++) {
    const total = Object.fromEntries(Object.keys(ops).map((k) => [k, 0]));
    const live = [];
    for (let c = 0; c < calls; c++)
      for (const [name, op] of Object.entries(ops)) {
        const t0 = performance.now();
        const y = op();
        total[name] += performance.now() - t0;
        if (keep) live.push(y);
        else y.dispose();
      }
    for (const y of live) y.dispose();
    for (const k of Object.keys(ops)) best[k] = Math.min(best[k], total[k]);
  }
  return best;
}

const results = {};
for (const t of threadCounts) {
  lr.setNumThreads(t);
  measure(false); // warm-up: threads started, blocks cached
  results[t] = { freed: measure(false), kept: measure(true) };
}
const base = threadCounts[0];
console.log(`ms for ${calls} calls (fastest of ${runs} runs); speedup against ${base} thread(s)`);
for (const mode of ['freed', 'kept'])
  for (const name of Object.keys(ops)) {
    const cells = threadCounts.map((t) => {
      const ms = results[t][mode][name];
      return `${t} thr ${ms.toFixed(1).padStart(6)}${t === base ? '' : ` (${(results[base][mode][name] / ms).toFixed(2)}x)`}`;
    });
    console.log(`${mode.padEnd(5)}  ${name.padEnd(34)} ${cells.join('  ')}`);
  }
for (const t of [x, weight, bias, ...branches]) t.dispose();
