#!/usr/bin/env node
// Median timings of the engine on the seed networks' layers, on 1 and 2 threads.
// usage: npm run bench [-- --json FILE] [--only id,id] [--quick]
// The comparison against onnxruntime-node in the same run is not wired in yet: ort_ms and
// speedup are null in the JSON until it is.
import { writeFileSync } from 'node:fs';
import * as lr from '@lrface/cuda-core';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag('--quick');
const only = value('--only')?.split(',');

lr.manualSeed(1);
const conv = (x, w, b, padding) => lr.conv2d(x, w, b, { padding });
const weights = (o, c, k) => lr.keep(lr.mul(lr.randn([o, c, k, k]), Math.sqrt(2 / (c * k * k))));

/** id -> { setup() returning a run() closure, flops } */
const workloads = {
  conv3x3_128: () => {
    const x = lr.randn([8, 128, 64, 64]), w = weights(128, 128, 3), b = lr.randn([128]);
    return { run: () => conv(x, w, b, 1), flops: 2 * 8 * 128 * 128 * 9 * 64 * 64 };
  },
  conv9x9_3to64: () => {
    const x = lr.randn([8, 3, 128, 128]), w = weights(64, 3, 9), b = lr.randn([64]);
    return { run: () => conv(x, w, b, 4), flops: 2 * 8 * 64 * 3 * 81 * 128 * 128 };
  },
  srcnn_915: () => {
    const x = lr.randn([8, 3, 128, 128]);
    const [w1, w2, w3] = [weights(64, 3, 9), weights(32, 64, 1), weights(3, 32, 5)];
    const [b1, b2, b3] = [lr.zeros([64]), lr.zeros([32]), lr.zeros([3])];
    return {
      run: () => lr.scope(() => conv(lr.relu(conv(lr.relu(conv(x, w1, b1, 4)), w2, b2, 0)), w3, b3, 2)),
      flops: 2 * 8 * 128 * 128 * (64 * 3 * 81 + 32 * 64 + 3 * 32 * 25),
    };
  },
  vdsr20: () => {
    const x = lr.randn([1, 1, 128, 128]);
    const ws = [weights(64, 1, 3), ...Array.from({ length: 18 }, () => weights(64, 64, 3)), weights(1, 64, 3)];
    return {
      run: () =>
        lr.scope(() => {
          let h = x;
          ws.forEach((w, i) => {
            h = conv(h, w, undefined, 1);
            if (i < ws.length - 1) h = lr.relu(h);
          });
          return lr.add(h, x);
        }),
      flops: 2 * 128 * 128 * 9 * (64 + 18 * 64 * 64 + 64),
    };
  },
  conv3x3_64_b32: () => {
    const x = lr.randn([32, 64, 32, 32]), w = weights(64, 64, 3), b = lr.randn([64]);
    return { run: () => conv(x, w, b, 1), flops: 2 * 32 * 64 * 64 * 9 * 32 * 32 };
  },
  gemm1024: () => {
    const a = lr.randn([1024, 1024]), b = lr.randn([1024, 1024]);
    return { run: () => lr.matmul(a, b), flops: 2 * 1024 ** 3 };
  },
  maxpool2x2: () => {
    const x = lr.randn([8, 128, 64, 64]);
    return { run: () => lr.maxPool2d(x, { kernelSize: 2 }), bytes: 8 * 128 * 64 * 64 * 4 * 1.25 };
  },
};

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const results = [];
const threadCounts = [1, 2];
console.log(`lrface bench (${lr.numThreads()} CPU threads available; medians)`);
console.log('workload          threads   lrface ms    GFLOP/s');
for (const [id, make] of Object.entries(workloads)) {
  if (only && !only.includes(id)) continue;
  const w = lr.noGrad(() => make());
  for (const threads of threadCounts) {
    lr.setNumThreads(threads);
    const reps = quick ? 3 : 9;
    const times = [];
    lr.noGrad(() => {
      for (let i = 0; i < reps + 1; i++) {
        const t0 = performance.now();
        const out = w.run();
        const ms = performance.now() - t0;
        out.dispose();
        if (i > 0) times.push(ms);
      }
    });
    const ms = median(times);
    const rate = w.flops ? `${(w.flops / ms / 1e6).toFixed(1)}` : `${(w.bytes / ms / 1e6).toFixed(1)} GB/s`;
    console.log(`${id.padEnd(18)}${String(threads).padStart(7)}${ms.toFixed(2).padStart(12)}${rate.padStart(11)}`);
    results.push({ workload: id, threads, lrface_ms: +ms.toFixed(3), ort_ms: null, speedup: null });
  }
}
const jsonPath = value('--json');
if (jsonPath) {
  writeFileSync(jsonPath, `${JSON.stringify({ results }, null, 2)}\n`);
  console.log(`wrote ${jsonPath}`);
}
