#!/usr/bin/env node
// Trains the shipped `face-x4` model: VDSR (Y, x4) initialised from the public pytorch-vdsr
// checkpoint (MIT) and fine-tuned on the train split of the face corpus (128x128 HR crops;
// input = MATLAB bicubic down x4 then up, as VDSR), Adam, gradient-norm clipping, flips and
// rotations. Writes an atomic checkpoint while training (resumable) and the final weights (to ship
// them: copy over weights/face-x4.safetensors and record the printed sha256 in src/api.ts).
//
// usage: node packages/sr/scripts/train-face-x4.mjs [--corpus DIR] [--init FILE.pth] [--minutes 35]
//          [--steps N] [--batch 16] [--patch 41] [--lr 1e-5] [--checkpoint FILE] [--out FILE] [--log FILE]
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage } from '@lrface/datasets';
import { openFaceCorpus } from '@lrface/face-corpus';
import { loadSuperResolver, saveSrWeights, trainSuperResolution, sha256 } from '@lrface/sr';
import { builtCorpus, scriptsDir, sharedData } from './paths.mjs';

const defaultCorpus = builtCorpus('face-corpus-large', 'face-corpus');

const { values } = parseArgs({
  options: {
    corpus: { type: 'string', default: defaultCorpus },
    init: { type: 'string', default: resolve(sharedData, 'weights/vdsr-pytorch/model_epoch_50.pth') },
    minutes: { type: 'string', default: '35' },
    steps: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '16' },
    patch: { type: 'string', default: '41' },
    lr: { type: 'string', default: '1e-5' },
    checkpoint: { type: 'string', default: resolve(scriptsDir, '../.train/face-x4.ckpt.safetensors') },
    // Not the shipped file by default: its sha256 is checked on load, so overwriting it breaks 'face-x4'.
    out: { type: 'string', default: resolve(scriptsDir, '../.train/face-x4.safetensors') },
    log: { type: 'string', default: resolve(scriptsDir, '../.train/face-x4.log.jsonl') },
    seed: { type: 'string', default: '7' },
  },
});
if (!values.corpus) throw new Error('train-face-x4: no face corpus found; pass --corpus DIR, or build one with node tools/face-corpus/scripts/build.mjs (it writes .cache/face-corpus)');
const corpus = await openFaceCorpus(values.corpus);
const train = corpus.hr.filter((it) => it.split === 'train');
if (train.length === 0) throw new Error(`train-face-x4: ${values.corpus} has no train-split HR faces`);
const images = await Promise.all(train.map((it) => decodeImage(corpus.path(it))));
mkdirSync(dirname(values.checkpoint), { recursive: true });
mkdirSync(dirname(values.log), { recursive: true });
const log = (entry) => appendFileSync(values.log, JSON.stringify(entry) + '\n');
log({ event: 'start', corpus: values.corpus, trainFaces: images.length, init: values.init, batch: +values.batch, patch: +values.patch, lr: +values.lr, time: new Date().toISOString() });
console.error(`face-x4: ${images.length} train faces from ${values.corpus}; init ${values.init}`);

const sr = await loadSuperResolver('vdsr', { weights: values.init });
const net = sr.network;
const result = await trainSuperResolution(net, {
  images,
  steps: Number(values.steps),
  timeLimit: Number(values.minutes) * 60,
  scales: [4],
  patchSize: Number(values.patch),
  batchSize: Number(values.batch),
  optimizer: 'adam',
  lr: Number(values.lr),
  weightDecay: 0,
  lrStepEvery: 0,
  clip: { kind: 'norm', maxNorm: 0.4 },
  loss: 'half-sum',
  augment: true,
  seed: Number(values.seed),
  checkpoint: values.checkpoint,
  checkpointEvery: 25,
  resume: true,
  onLog: (e) => {
    log(e);
    if (e.step % 10 === 0) console.error(`step ${e.step} loss ${e.loss?.toFixed(4)} ${e.seconds.toFixed(0)} s`);
  },
});
const tail = result.losses.slice(-50);
const note = `VDSR x4 initialised from pytorch-vdsr model_epoch_50.pth (MIT), fine-tuned ${result.steps} steps (batch ${values.batch}, ${values.patch}x${values.patch} Y patches, Adam lr ${values.lr}) on ${images.length} train-split HR faces of the lrface face corpus in ${(result.seconds / 60).toFixed(1)} min`;
const digest = saveSrWeights(values.out, net, { scales: [4], note });
log({ event: 'done', steps: result.steps, seconds: result.seconds, meanLossLast50: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length), weights: values.out, sha256: digest });
console.error(`face-x4: ${result.steps} steps in ${(result.seconds / 60).toFixed(1)} min; wrote ${values.out} (sha256 ${digest})`);
console.log(JSON.stringify({ steps: result.steps, seconds: result.seconds, sha256: sha256(readFileSync(values.out)) }));
