#!/usr/bin/env node
// Trains lr68 through the full two-stage pipeline on real faces and writes
// weights/lr68.safetensors:
//   stage 1: G1 (high-to-low, projected noise) against D1 (spectral norm, hinge) + pixel loss,
//            HR corpus train faces -> 32x32, real LR = the corpus' real tiny WIDER/dlib faces;
//   stage 2: G2 on G1's outputs with the HR points scaled down (labelled set) and the real LR
//            faces (unlabelled set), with D2 (BEGAN k_t) and D3 (least squares): setting S4.
// Each stage resumes from its checkpoint; losses and k_t are logged per step (JSON lines).
// --init FILE starts G2 from a weights file of lr68's architecture (e.g. the supervised model of
// train-supervised.mjs) instead of from scratch; --foreground-weight and --sigma set the
// supervised heatmap term, --subsampled-fraction the share of labelled inputs taken as S1's
// subsampled faces rather than G1's outputs, --g1-residual makes G1 a learnt change to the
// average-pooled face (see HighToLowGeneratorConfig.residual).
//   LRFACE_NUM_THREADS=1 nice -n 5 node packages/landmarks/scripts/train-lr68.mjs --g1-steps 600 --g2-steps 1500
import { basename, join } from 'node:path';
import { existsSync } from 'node:fs';
import { manualSeed } from '@lrface/cuda-core';
import { Rng } from '@lrface/datasets';
import { openFaceCorpus } from '@lrface/face-corpus';
import {
  DEFAULT_AUGMENT, DEFAULT_HIGH_TO_LOW, SHIPPED_MODELS, HighToLowTrainer, JsonLinesLog, LandmarkTrainer,
  labelledBatch, landmarkPreset, loadLabelledFaces, loadLandmarkWeights, loadRealLowResFaces, realLowResBatch, saveLandmarkWeights,
} from '@lrface/landmarks';
import { defaultCorpusDir, packageDir, parseArgs } from './common.mjs';

const args = parseArgs(process.argv.slice(2), {
  corpus: defaultCorpusDir(), g1Steps: 600, g2Steps: 1500, g1Minutes: 30, g2Minutes: 60, batch: 16, seed: 2,
  setting: 'S4', stage: 'all', gamma: 0.5, lambdaK: 0.001, initialK: 0, kPeriod: 1, a: 1, b: 0.1, c: 0.01, alpha: DEFAULT_HIGH_TO_LOW.weights.alpha, beta: DEFAULT_HIGH_TO_LOW.weights.beta, g1Pools: 5, g1Residual: false, g1Lr: DEFAULT_HIGH_TO_LOW.optimizer.lr, lr: 2e-4, init: '', foregroundWeight: 0, sigma: 2, subsampledFraction: 0, work: join(packageDir, '.train', 'lr68'), out: join(packageDir, 'weights', 'lr68.safetensors'), checkpointEvery: 25,
});
// The architecture recorded in the file (not the registry entry's file name, hash and description).
const { points, inputSize, margin, network } = SHIPPED_MODELS.lr68;
const spec = { points, inputSize, margin, network };
manualSeed(args.seed);
const rng = new Rng(args.seed);
const corpus = await openFaceCorpus(args.corpus);
const faces = await loadLabelledFaces(corpus, 'train');
const realLr = await loadRealLowResFaces(corpus, spec.inputSize);
console.log(`lr68: ${faces.length} labelled HR train faces, ${realLr.length} real LR faces from ${args.corpus}`);
const log = new JsonLinesLog(join(args.work, 'log.jsonl'));
const milestones = (n) => [Math.round(n * 0.4), Math.round(n * 0.8)];

// Stage 1: G1 / D1.
// --g1-pools 2 keeps G1 at 32x32 after two poolings (no bottleneck, no upsampling); the paper's
// text pools to 4x4 (5 poolings, 3 upsamplings back to 32).
if (![2, 3, 4, 5].includes(args.g1Pools)) throw new Error(`--g1-pools must be 2, 3, 4 or 5, got ${args.g1Pools}`);
const g1Config = {
  ...DEFAULT_HIGH_TO_LOW.generator,
  encoderPoolAfter: Array.from({ length: args.g1Pools }, (_, i) => i),
  decoderUpsampleAfter: Array.from({ length: args.g1Pools - 2 }, (_, i) => i),
  residual: args.g1Residual,
};
const stage1 = new HighToLowTrainer({
  ...DEFAULT_HIGH_TO_LOW, generator: g1Config, weights: { alpha: args.alpha, beta: args.beta }, steps: args.g1Steps, batchSize: args.batch,
  optimizer: { ...DEFAULT_HIGH_TO_LOW.optimizer, lr: args.g1Lr, milestones: milestones(args.g1Steps) },
});
const ckpt1 = join(args.work, 'stage1.safetensors');
if (existsSync(ckpt1)) {
  stage1.load(ckpt1);
  console.log(`stage 1 resumed at step ${stage1.step}`);
}
let start = Date.now();
let deadline = start + args.g1Minutes * 60_000;
if (!['all', '1', '2'].includes(args.stage)) throw new Error(`--stage must be all, 1 or 2, got '${args.stage}'`);
if (args.stage === '2' && !existsSync(ckpt1)) throw new Error(`--stage 2 needs the stage 1 checkpoint ${ckpt1}`);
while (args.stage !== '2' && stage1.step < args.g1Steps && Date.now() < deadline) {
  const hr = labelledBatch(faces, rng, args.batch, 128, DEFAULT_AUGMENT).images;
  const real = realLowResBatch(realLr, rng, args.batch, spec.inputSize);
  const r = stage1.trainStep(hr, real);
  hr.dispose();
  real.dispose();
  log.write({ stage: 1, ...r, seconds: (Date.now() - start) / 1000 });
  if (r.step % args.checkpointEvery === 0) {
    stage1.save(ckpt1);
    console.log(`stage 1 step ${r.step}: D1 ${r.lossD1.toFixed(3)} G1 ${r.lossG1.toFixed(3)} pixel ${r.pixel.toFixed(4)} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
  }
}
if (args.stage !== '2') stage1.save(ckpt1, { done: true });
const g1Steps = stage1.step;
console.log(`stage 1 done at step ${g1Steps}`);
if (args.stage === '1') process.exit(0);

// Stage 2: G2 with D2 and D3.
const config = landmarkPreset(args.setting, {
  steps: args.g2Steps, batchSize: args.batch, generator: spec.network,
  weights: { a: args.a, b: args.b, c: args.c },
  balance: { gamma: args.gamma, lambdaK: args.lambdaK, initialK: args.initialK, period: args.kPeriod },
  foregroundWeight: args.foregroundWeight, sigma: args.sigma, subsampledFraction: args.subsampledFraction,
});
config.optimizer = { ...config.optimizer, lr: args.lr, milestones: milestones(args.g2Steps) };
const stage2 = new LandmarkTrainer(config, stage1.generator);
const ckpt2 = join(args.work, 'stage2.safetensors');
if (existsSync(ckpt2)) {
  stage2.load(ckpt2);
  console.log(`stage 2 resumed at step ${stage2.step}`);
} else if (args.init) {
  const init = loadLandmarkWeights(args.init);
  if (JSON.stringify(init.spec.network) !== JSON.stringify(spec.network) || init.spec.inputSize !== spec.inputSize)
    throw new Error(`${args.init}: not lr68's architecture; --init needs a ${spec.inputSize}px model of it`);
  stage2.generator.loadStateDict(init.network.stateDict());
  console.log(`stage 2 starts from ${args.init}`);
}
start = Date.now();
deadline = start + args.g2Minutes * 60_000;
const meta = () => ({ init: basename(args.init), corpus: basename(args.corpus), setting: args.setting, config: JSON.stringify(config), g1: JSON.stringify(stage1.config), trainFaces: String(faces.length), realLowResFaces: String(realLr.length), g1Steps: String(g1Steps), g2Steps: String(stage2.step), batch: String(args.batch) });
while (stage2.step < args.g2Steps && Date.now() < deadline) {
  const batch = labelledBatch(faces, rng, args.batch, 128, DEFAULT_AUGMENT);
  const real = realLowResBatch(realLr, rng, args.batch, spec.inputSize);
  const r = stage2.trainStep({ hr: batch.images, landmarks: batch.landmarks, realLr: real });
  batch.images.dispose();
  real.dispose();
  log.write({ stage: 2, ...r, seconds: (Date.now() - start) / 1000 });
  if (r.step % args.checkpointEvery === 0) {
    stage2.save(ckpt2);
    saveLandmarkWeights(args.out, stage2.generator, spec, { model: 'lr68', ...meta() });
    console.log(`stage 2 step ${r.step}: G2 ${r.lossG2.toFixed(4)} mse ${r.mse.toFixed(4)} D2 ${r.lossD2?.toFixed(4)} D3 ${r.lossD3?.toFixed(4)} k ${r.k?.toFixed(5)} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
  }
}
stage2.save(ckpt2, { done: true });
saveLandmarkWeights(args.out, stage2.generator, spec, { model: 'lr68', ...meta() });
console.log(`lr68: stopped at stage 2 step ${stage2.step}; weights in ${args.out}`);
