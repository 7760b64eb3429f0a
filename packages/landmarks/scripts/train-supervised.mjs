#!/usr/bin/env node
// Supervised heatmap training of the U-Net (G2 / HR-LD) on real HR train faces of the corpus,
// resized to the model input (--size 32: lr68, setting S1 of the paper with the corpus' real
// faces as the labelled set; --size 128: hr68). The heatmap loss is a foreground-weighted
// squared error, mean((pred - gt)^2 * (1 + w * gt)) over all N+1 maps: the plain MSE (w = 0) is
// almost satisfied by empty maps and left the networks predicting the mean shape within our
// step budget. Scale augmentation reaches down to --scale-min so that faces framed by loose
// detector boxes (WIDER's are ~1.3x the point box) are seen too. Weights are written every
// --every steps (atomically), with the held-out-free train NME logged.
// Options for the conditions of real tiny faces:
//   --res-min F --res-prob P: with probability P an input is bicubic-downscaled to a random
//     fraction in [F, 1) of its size and bilinearly upscaled back, as the detector sees a face
//     smaller than its input (the crop is upsampled);
//   --color P: with probability P, random brightness, contrast and saturation (grey at P / 4);
//   --pose-balance K: faces whose nose sits off the jaw's midpoint (a yaw proxy) are drawn up
//     to K times as often, as the corpus' training faces are mostly frontal;
//   --init FILE: start from a weights file of the same architecture (e.g. the shipped lr68).
//   LRFACE_NUM_THREADS=2 node packages/landmarks/scripts/train-supervised.mjs --size 32 --out weights/lr68.safetensors
import * as ops from '@lrface/cuda-core';
import { Adam } from '@lrface/nn';
import { Rng } from '@lrface/datasets';
import { openFaceCorpus } from '@lrface/face-corpus';
import {
  DEFAULT_AUGMENT, HeatmapUNet, SHIPPED_MODELS, decodeHeatmaps, groundTruthHeatmaps, heatmapEnergy, labelledBatch, loadLabelledFaces, loadLandmarkWeights, nme, saveLandmarkWeights,
} from '@lrface/landmarks';
import { defaultCorpusDir, parseArgs } from './common.mjs';

const args = parseArgs(process.argv.slice(2), {
  corpus: defaultCorpusDir(), size: 32, batch: 32, sigma: 1, foregroundWeight: 20, lr: 1e-3, steps: 8000, minutes: 40, scaleMin: 0.6, rotation: DEFAULT_AUGMENT.rotation, resMin: 1, resProb: 0, color: 0, poseBalance: 1, init: '', every: 100, seed: 1, out: '',
});
const model = args.size === 32 ? 'lr68' : args.size === 128 ? 'hr68' : null;
if (!model) throw new Error(`--size must be 32 (lr68) or 128 (hr68), got ${args.size}`);
if (!args.out) throw new Error('--out FILE is required');
ops.manualSeed(args.seed);
const corpus = await openFaceCorpus(args.corpus);
const faces = await loadLabelledFaces(corpus, 'train');
// The architecture recorded in the file (not the registry entry's file name, hash and description).
const { points, inputSize, margin, network } = SHIPPED_MODELS[model];
const spec = { points, inputSize, margin, network };
const net = new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network });
if (args.init) {
  const init = loadLandmarkWeights(args.init);
  if (JSON.stringify(init.spec.network) !== JSON.stringify(spec.network) || init.spec.inputSize !== spec.inputSize)
    throw new Error(`${args.init}: a ${init.spec.inputSize}px model of another architecture; --init needs the ${model} architecture`);
  net.loadStateDict(init.network.stateDict());
  init.network.dispose?.();
}
// Yaw proxy per face: the nose tip's (point 30) offset from the midpoint of the jaw ends (0, 16),
// in half jaw widths; 0 frontal, about 1 in profile.
const yaw = (l) => Math.min(1, Math.abs(l[60] - (l[0] + l[32]) / 2) / Math.max(1e-6, Math.abs(l[32] - l[0]) / 2));
const drawn = args.poseBalance > 1 ? faces.flatMap((f) => Array(Math.max(1, Math.round(1 + (args.poseBalance - 1) * Math.min(1, yaw(f.landmarks) / 0.6)))).fill(f)) : faces;
const optimizer = new Adam(net.parameters(), { lr: args.lr });
const rng = new Rng(args.seed + 6);
const augment = { ...DEFAULT_AUGMENT, scale: [args.scaleMin, DEFAULT_AUGMENT.scale[1]], rotation: args.rotation };

/** Resolution and colour augmentation of a batch [N, 3, S, S] in [-1, 1] (see the options above). */
function degradeBatch(images) {
  if (!(args.resProb > 0) && !(args.color > 0)) return images;
  const [n, , s] = images.shape;
  const parts = [];
  for (let i = 0; i < n; i++) {
    let x = ops.slice(images, { axis: 0, start: i, end: i + 1 });
    if (rng.chance(args.resProb)) {
      const small = Math.max(4, Math.round(s * (args.resMin + (1 - args.resMin) * rng.uniform(0, 1))));
      if (small < s) x = ops.upsample(ops.upsample(x, { size: [small, small], mode: 'bicubic', antialias: true }), { size: [s, s], mode: 'bilinear' });
    }
    if (rng.chance(args.color)) {
      const grey = ops.mean(x, { axis: 1, keepDims: true });
      const saturation = rng.chance(0.25) ? 0 : 0.6 + 0.8 * rng.uniform(0, 1);
      x = ops.add(grey, ops.mul(ops.sub(x, grey), ops.full([1], saturation)));
      const contrast = 0.6 + 0.8 * rng.uniform(0, 1), brightness = 0.4 * (rng.uniform(0, 1) - 0.5);
      x = ops.add(ops.mul(x, ops.full([1], contrast)), ops.full([1], brightness));
    }
    parts.push(ops.clamp(x, -1, 1));
  }
  const out = ops.concat(parts, 0);
  images.dispose();
  return out;
}
const probe = labelledBatch(faces.slice(0, 200), new Rng(99), 32, args.size, null);
console.log(`${model}: ${faces.length} train faces (${drawn.length} draws with pose balancing) from ${args.corpus}; ${JSON.stringify(args)}`);
const started = Date.now();
for (let step = 1; step <= args.steps && Date.now() - started < args.minutes * 60_000; step++) {
  const batch = labelledBatch(drawn, rng, args.batch, args.size, augment);
  batch.images = ops.noGrad(() => ops.scope(() => degradeBatch(batch.images)));
  const gt = groundTruthHeatmaps(batch.landmarks, args.size, args.size, args.sigma);
  net.train();
  const loss = ops.scope(() => {
    // heatmapEnergy sums over the maps; per map, as the loss has always been logged here.
    const l = ops.mul(heatmapEnergy(gt, net.forward(batch.images), args.foregroundWeight), 1 / gt.shape[1]);
    optimizer.zeroGrad();
    l.backward();
    optimizer.step();
    return l.item();
  });
  batch.images.dispose();
  gt.dispose();
  if (step % args.every === 0) {
    net.eval();
    const decoded = ops.noGrad(() => ops.scope(() => decodeHeatmaps(net.forward(probe.images), { background: true, minPeak: -Infinity })));
    let sum = 0;
    for (let i = 0; i < 32; i++) sum += nme(decoded.points.subarray(i * 136, (i + 1) * 136), probe.landmarks[i], { normalizer: 'inter-ocular' });
    saveLandmarkWeights(args.out, net, spec, { steps: String(step), recipe: 'train-supervised.mjs' });
    console.log(`step ${step} loss ${loss.toFixed(5)} train-probe NME ${(sum / 32).toFixed(3)} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
}
