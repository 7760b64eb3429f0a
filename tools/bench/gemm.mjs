#!/usr/bin/env node
// GEMM throughput of lr.matmul on square and conv-like shapes, 1 and 2 threads.
// usage: node tools/bench/gemm.mjs [--reps N]
// Prints the best of N runs (the machine is shared, so the best run is the one least disturbed)
// and the median, in GFLOP/s, with the micro-kernel in use.
import * as lr from '@lrface/cuda-core';

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1]) || 15;
const shapes = [
  [1024, 1024, 1024],
  [512, 512, 512],
  [2048, 2048, 2048],
  [64, 4096, 576], // a 3x3 conv layer, 64 -> 64 channels, 64x64 image
  [4096, 256, 256], // a linear layer on a batch of 4096
];
console.log(`micro-kernel: ${lr.buildInfo().cpuIsa}, ${lr.numThreads()} threads available`);
console.log('    M     N     K  threads   best GFLOP/s  median GFLOP/s');
for (const [m, n, k] of shapes) {
  const a = lr.randn([m, k]), b = lr.randn([k, n]);
  for (const threads of [1, 2]) {
    lr.setNumThreads(threads);
    const times = [];
    lr.noGrad(() => {
      for (let i = 0; i <= reps; i++) {
        const t0 = performance.now();
        lr.matmul(a, b).dispose();
        if (i > 0) times.push(performance.now() - t0);
      }
    });
    times.sort((x, y) => x - y);
    const gflops = (ms) => ((2 * m * n * k) / ms / 1e6).toFixed(1);
    console.log(`${[m, n, k].map((v) => String(v).padStart(5)).join(' ')}  ${String(threads).padStart(7)}  ${gflops(times[0]).padStart(13)}  ${gflops(times[times.length >> 1]).padStart(14)}`);
  }
  a.dispose();
  b.dispose();
}
