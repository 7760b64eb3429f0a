// Training and inference throughput of lrface's VDSR and SRINC, the workloads that
// bench_torch.py runs in PyTorch (same architectures, sizes, optimiser and loss; the sizes
// and configs of both come from train-workloads.json):
//   vdsr-train   VDSR (20 convs, 64 channels), batch 64 of 41x41 patches: forward, MSE, backward, Adam
//   srinc-train  SRINC (128 filters, 19 inception modules), batch 32 of 51x51 patches, the same
//   vdsr-infer   VDSR on one 512x512 grey image, no autograd
//   srinc-infer  SRINC on one 512x512 grey image, no autograd
// Each workload warms up, then times `steps` runs, each ended by a device synchronisation, so
// the times are finished work; the median is reported. --quick shrinks every size (tiny
// models, batches and images) to check the script end to end on any machine.
//
// usage: node bench-train.mjs [--device cpu|cuda] [--steps N] [--warmup N] [--quick] [--json FILE]
//        node bench-train.mjs --parity-out FILE   (the quick models' weights, an input and
//        lrface's outputs, for bench_torch.py --parity FILE: same architecture, layer for layer)
// (bundled by pack.mjs as .device/cuda-train-bench.mjs for the GPU machine)
import { writeFileSync } from 'node:fs';
import * as lr from '@lrface/cuda-core';
import { Adam, mseLoss } from '@lrface/nn';
import { kernels } from '../../packages/cuda-core/dist/native.js';
// The model module itself: the package index also loads the image pipeline (sharp).
import { Srinc, Vdsr } from '../../packages/sr/dist/models.js';
// Sizes and configs shared with bench_torch.py.
import workloadTable from './train-workloads.json' with { type: 'json' };

const args = process.argv.slice(2);
const known = new Set(['--device', '--steps', '--warmup', '--quick', '--json', '--parity-out']);
for (const a of args) if (a.startsWith('--') && !known.has(a)) fail(`unknown option ${a} (known: ${[...known].join(', ')})`);
function option(name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  if (i + 1 >= args.length || args[i + 1].startsWith('--')) fail(`${name} needs a value`);
  return args[i + 1];
}
function fail(message) {
  console.error(`bench-train: ${message}`);
  process.exit(2);
}
function positiveInt(name, fallback) {
  const v = Number(option(name, String(fallback)));
  if (!Number.isInteger(v) || v < 1) fail(`${name} must be an integer >= 1`);
  return v;
}

const device = option('--device', 'cuda');
if (device !== 'cpu' && device !== 'cuda') fail(`--device must be cpu or cuda, got ${device}`);
const quick = args.includes('--quick');
const steps = positiveInt('--steps', quick ? 3 : 20);
const warmup = positiveInt('--warmup', quick ? 1 : 3);
const jsonPath = option('--json', undefined);
const sizes = quick ? workloadTable.quick : workloadTable.full;

const parityPath = option('--parity-out', undefined);
if (parityPath) {
  // On the CPU at quick sizes: the check is of the architecture, not of a device.
  const exported = {};
  for (const [arch, make] of [['vdsr', (m) => new Vdsr(m)], ['srinc', (m) => new Srinc(m)]]) {
    lr.manualSeed(5);
    const net = make(workloadTable.quick[arch].model).eval();
    const x = lr.rand([2, 1, 23, 23]);
    const y = lr.noGrad(() => net.forward(x));
    const state = {};
    for (const [k, v] of net.stateDict()) state[k] = { shape: v.shape, data: Array.from(v.data()) };
    exported[arch] = { state, shape: x.shape, x: Array.from(x.data()), y: Array.from(y.data()) };
    [x, y].forEach((t) => t.dispose());
    net.dispose();
  }
  writeFileSync(parityPath, JSON.stringify(exported));
  console.log(`bench-train: wrote the quick models, an input and lrface's outputs to ${parityPath}`);
  process.exit(0);
}

if (device === 'cuda' && !lr.devices().some((d) => d.type === 'cuda')) fail(`no CUDA device: ${lr.buildInfo().cudaReason}`);
const sync = device === 'cuda' ? () => kernels.cuda_synchronize(0) : () => {};
const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

/** Times `run` (which returns nothing it keeps): warm-up runs, then `steps` timed runs. */
function time(run) {
  for (let i = 0; i < warmup; i++) run();
  sync();
  const times = [];
  for (let i = 0; i < steps; i++) {
    const t0 = process.hrtime.bigint();
    run();
    sync();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms_median: median(times), ms_min: Math.min(...times), ms_mean: times.reduce((a, b) => a + b, 0) / times.length, times_ms: times };
}

function makeNet(arch) {
  const s = sizes[arch];
  lr.manualSeed(1);
  const net = arch === 'vdsr' ? new Vdsr(s.model) : new Srinc(s.model);
  return net.to(device);
}

function trainWorkload(arch) {
  const { batch, patch } = sizes[arch];
  const net = makeNet(arch).train();
  const opt = new Adam(net.parameters(), { lr: 1e-4 });
  lr.manualSeed(2);
  const x = lr.rand([batch, 1, patch, patch], { device });
  const y = lr.rand([batch, 1, patch, patch], { device });
  const losses = [];
  const step = () =>
    lr.scope(() => {
      opt.zeroGrad();
      const loss = mseLoss(net.forward(x), y);
      loss.backward();
      opt.step();
      losses.push(lr.keep(loss));
    });
  const t = time(step);
  // Read after timing: a read per step would add a synchronisation the PyTorch loop does not have.
  const values = losses.map((l) => l.item());
  losses.forEach((l) => l.dispose());
  const result = { ...t, batch, patch, samples_per_s: (batch * 1000) / t.ms_median, loss_first: values[0], loss_last: values[values.length - 1], parameters: net.numParameters() };
  [x, y].forEach((v) => v.dispose());
  opt.zeroGrad();
  net.dispose();
  return result;
}

function inferWorkload(arch) {
  const { image } = sizes[arch];
  const net = makeNet(arch).eval();
  lr.manualSeed(3);
  const x = lr.rand([1, 1, image, image], { device });
  const t = time(() => lr.noGrad(() => lr.scope(() => void net.forward(x))));
  const out = lr.noGrad(() => net.forward(x));
  const mean = lr.mean(out).item();
  [x, out].forEach((v) => v.dispose());
  net.dispose();
  return { ...t, image, images_per_s: 1000 / t.ms_median, output_mean: mean };
}

const workloads = [
  { id: 'vdsr-train', run: () => trainWorkload('vdsr') },
  { id: 'srinc-train', run: () => trainWorkload('srinc') },
  { id: 'vdsr-infer', run: () => inferWorkload('vdsr') },
  { id: 'srinc-infer', run: () => inferWorkload('srinc') },
];

const info = {
  side: 'lrface',
  device,
  device_name: device === 'cuda' ? lr.devices().find((d) => d.type === 'cuda').name : `CPU, ${lr.numThreads()} threads`,
  quick,
  steps,
  warmup,
  sizes,
  buildInfo: lr.buildInfo(),
};
const results = [];
const save = () => jsonPath && writeFileSync(jsonPath, JSON.stringify({ ...info, results }, null, 2));
console.log(`lrface on ${info.device_name}${quick ? ' (quick sizes)' : ''}, ${warmup} warm-up + ${steps} timed steps`);
for (const w of workloads) {
  // One workload failing (a kernel missing on the device, out of memory) leaves the others' results.
  try {
    const r = w.run();
    results.push({ workload: w.id, ...r });
    const rate = r.samples_per_s !== undefined ? `${r.samples_per_s.toFixed(1)} samples/s, loss ${r.loss_first.toFixed(5)} -> ${r.loss_last.toFixed(5)}` : `${r.images_per_s.toFixed(2)} images/s`;
    console.log(`${w.id.padEnd(12)} median ${r.ms_median.toFixed(2).padStart(9)} ms  (min ${r.ms_min.toFixed(2)})  ${rate}`);
  } catch (err) {
    results.push({ workload: w.id, error: String(err?.stack ?? err) });
    console.log(`${w.id.padEnd(12)} FAILED: ${err?.message ?? err}`);
    process.exitCode = 1;
  }
  save();
}
console.log('memory:', JSON.stringify(lr.memory()));
