// `lrface bench`: how fast lrface runs its main jobs on this machine and device (super-resolving
// a face, finding landmarks, face features, a training step), as median milliseconds. The
// comparison with other engines is the repository's `npm run bench`; this needs nothing but
// the installed packages.
import { parseArgs } from 'node:util';
import * as core from '@lrface/cuda-core';
import { bicubicResize, imageToTensor, tensorToImage } from '@lrface/datasets';
import { loadLandmarkDetector } from '@lrface/landmarks';
import { Adam } from '@lrface/nn';
import { createRecognitionNetwork } from '@lrface/recognition';
import { createNetwork, loadSuperResolver, readDemoFace } from '@lrface/sr';
import { UsageError, deviceOption, parseCommand } from './landmarks.mjs';

/** Each workload: what it does, and a setup returning { run, dispose, items }. */
export const BENCH_WORKLOADS = {
  'sr-face-x4-40': { what: 'face-x4: a 40x40 face to 160x160 (RGB: Y by the network, CbCr bicubic)', setup: (ctx) => srSetup(ctx, 40) },
  'sr-face-x4-128': { what: 'face-x4: a 128x128 face to 512x512', setup: (ctx) => srSetup(ctx, 128) },
  'landmarks-lr68': { what: 'lr68: 68 points on a 32x32 face (direct and mirrored pass)', setup: (ctx) => landmarkSetup(ctx, 'lr68', 32) },
  'landmarks-hr68': { what: 'hr68: 68 points on a 128x128 face (direct and mirrored pass)', setup: (ctx) => landmarkSetup(ctx, 'hr68', 128) },
  'recognition-lightcnn9-16': { what: 'LightCNN-9: features of 16 faces of 128x128 grey', setup: (ctx) => recognitionSetup(ctx, 'lightcnn9', 16) },
  'train-vdsr-16': { what: 'VDSR training step: forward, MSE, backward and Adam on 16 patches of 41x41', setup: (ctx) => vdsrTrainSetup(ctx, 16) },
};

export const benchUsage = `usage: lrface bench [--only NAME,...] [--device ID] [--threads N] [--repeats N] [--json]
  times lrface's main jobs here (median of --repeats runs after one warm-up), in milliseconds
  --only NAME,...   some of: ${Object.keys(BENCH_WORKLOADS).join(', ')}
  --device ID       cpu (default) or a CUDA device from \`lrface devices\`
  --threads N       CPU threads (default: the engine's, LRFACE_NUM_THREADS or the cores)
  --repeats N       timed runs per workload (default 5)
  --json            print one JSON line {"device","threads","results":[{"workload","ms","min_ms","per_item_ms","items"}]}
  -h, --help        this text
The comparison with onnxruntime-node per layer is the repository's \`npm run bench\`.`;

async function faceOfSize(size) {
  const face = await readDemoFace();
  return core.scope(() => tensorToImage(core.clamp(bicubicResize(imageToTensor(face), { size: [size, size] }), 0, 1)));
}

async function srSetup({ device }, size) {
  const sr = await loadSuperResolver('face-x4', { device });
  const face = await faceOfSize(size);
  return {
    items: 1,
    run: async () => (await sr.upscale(face, { scale: 4 })).tensor.dispose(),
    dispose: () => sr.dispose(),
  };
}

async function landmarkSetup({ device }, model, size) {
  const detector = await loadLandmarkDetector(model, { device });
  const face = await faceOfSize(size);
  return { items: 1, run: () => detector.detect(face), dispose: () => detector.network.dispose() };
}

/** Reads one number back: work queued on a GPU stream has finished when it arrives. */
const settle = (t) => core.scope(() => core.sum(t).item());

async function recognitionSetup({ device }, arch, batch) {
  const net = createRecognitionNetwork(arch);
  net.eval();
  net.to(device);
  const [c, h, w] = net.inputShape;
  const x = core.rand([batch, c, h, w], { device });
  return {
    items: batch,
    run: () => core.noGrad(() => core.scope(() => settle(net.forward(x)))),
    dispose: () => {
      x.dispose();
      net.dispose();
    },
  };
}

async function vdsrTrainSetup({ device }, batch) {
  const net = createNetwork('vdsr');
  net.train();
  net.to(device);
  const params = net.parameters();
  const optimizer = new Adam(params, { lr: 1e-4 });
  const x = core.rand([batch, 1, 41, 41], { device });
  const y = core.rand([batch, 1, 41, 41], { device });
  return {
    items: batch,
    run: () => {
      core.scope(() => {
        const loss = core.mean(core.square(core.sub(net.forward(x), y)));
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
      });
      settle(params[0]);
    },
    dispose: () => {
      x.dispose();
      y.dispose();
      net.dispose();
    },
  };
}

/** Parses the command's arguments; throws a UsageError on anything unexpected. */
export function parseBenchArgs(argv) {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        only: { type: 'string' },
        device: { type: 'string', default: 'cpu' },
        threads: { type: 'string' },
        repeats: { type: 'string', default: '5' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    if (typeof err?.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(err.message);
    throw err;
  }
  const only = v.only === undefined ? Object.keys(BENCH_WORKLOADS) : v.only.split(',').map((s) => s.trim());
  for (const name of only) if (!(name in BENCH_WORKLOADS)) throw new UsageError(`--only: unknown workload '${name}' (known: ${Object.keys(BENCH_WORKLOADS).join(', ')})`);
  const repeats = Number(v.repeats);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 1000) throw new UsageError(`--repeats must be an integer in [1, 1000], got '${v.repeats}'`);
  let threads;
  if (v.threads !== undefined) {
    threads = Number(v.threads);
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new UsageError(`--threads must be an integer in [1, 1024], got '${v.threads}'`);
  }
  return { only, device: deviceOption(v.device, core.devices()), threads, repeats, json: v.json };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Times the workloads; returns the --json object. */
export async function runBench(opts, { onResult } = {}) {
  if (opts.threads !== undefined) core.setNumThreads(opts.threads);
  const results = [];
  for (const name of opts.only) {
    const work = await BENCH_WORKLOADS[name].setup({ device: opts.device });
    try {
      await work.run();
      const times = [];
      for (let i = 0; i < opts.repeats; i++) {
        const t0 = process.hrtime.bigint();
        await work.run();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const ms = median(times);
      const row = { workload: name, ms: round(ms), min_ms: round(Math.min(...times)), per_item_ms: round(ms / work.items), items: work.items };
      results.push(row);
      onResult?.(row);
    } finally {
      work.dispose();
    }
  }
  return { device: opts.device, threads: core.numThreads(), results };
}

const round = (x) => Math.round(x * 100) / 100;

export async function runBenchCommand(argv) {
  const { opts, exit } = parseCommand('bench', argv, parseBenchArgs, benchUsage);
  if (!opts) return exit;
  if (!opts.json) console.log(`lrface bench on ${opts.device}${opts.device === 'cpu' ? ` (${opts.threads ?? core.numThreads()} threads, ${core.buildInfo().cpuIsa})` : ''}: median of ${opts.repeats} runs`);
  const out = await runBench(opts, {
    onResult: (r) => {
      if (!opts.json) console.log(`${r.workload.padEnd(26)} ${r.ms.toFixed(2).padStart(9)} ms${r.items > 1 ? ` (${r.per_item_ms.toFixed(2)} ms per item)` : ''}   ${BENCH_WORKLOADS[r.workload].what}`);
    },
  });
  if (opts.json) console.log(JSON.stringify(out));
  return 0;
}
