#!/usr/bin/env node
// Trains hr68 (HR-LD: the U-Net heatmap generator, supervised, on 128x128 corpus faces) and
// writes weights/hr68.safetensors. Resumes from its checkpoint. Per-step log as JSON lines.
//   LRFACE_NUM_THREADS=1 nice -n 5 node packages/landmarks/scripts/train-hr68.mjs --steps 1500 --minutes 60
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { manualSeed } from '@lrface/cuda-core';
import { Rng } from '@lrface/datasets';
import { openFaceCorpus } from '@lrface/face-corpus';
import { DEFAULT_AUGMENT, PAPER_OPTIMIZER, SHIPPED_MODELS, JsonLinesLog, SupervisedTrainer, labelledBatch, loadLabelledFaces, saveLandmarkWeights } from '@lrface/landmarks';
import { defaultCorpusDir, packageDir, parseArgs } from './common.mjs';

const args = parseArgs(process.argv.slice(2), {
  corpus: defaultCorpusDir(), steps: 1500, minutes: 60, batch: 8, lr: PAPER_OPTIMIZER.lr, seed: 1,
  work: join(packageDir, '.train', 'hr68'), out: join(packageDir, 'weights', 'hr68.safetensors'), checkpointEvery: 25, milestones: '',
});
const spec = SHIPPED_MODELS.hr68;
manualSeed(args.seed);
const rng = new Rng(args.seed);
const corpus = await openFaceCorpus(args.corpus);
const faces = await loadLabelledFaces(corpus, 'train');
console.log(`hr68: ${faces.length} labelled train faces from ${args.corpus}`);
const config = {
  generator: spec.network, inputSize: spec.inputSize, sigma: 2, steps: args.steps, batchSize: args.batch,
  // Default: halve at 40% and 80% of the steps; --milestones a,b sets them (e.g. when resuming for more steps).
  optimizer: { ...PAPER_OPTIMIZER, lr: args.lr, milestones: args.milestones ? args.milestones.split(',').map(Number) : [Math.round(args.steps * 0.4), Math.round(args.steps * 0.8)] },
};
const trainer = new SupervisedTrainer(config);
const ckpt = join(args.work, 'checkpoint.safetensors');
const log = new JsonLinesLog(join(args.work, 'log.jsonl'));
if (existsSync(ckpt)) {
  trainer.load(ckpt);
  console.log(`resumed at step ${trainer.step}`);
}
const start = Date.now();
const deadline = start + args.minutes * 60_000;
const meta = () => ({ corpus: args.corpus, trainFaces: String(faces.length), steps: String(trainer.step), batch: String(args.batch), seconds: String(Math.round((Date.now() - start) / 1000)) });
while (trainer.step < args.steps && Date.now() < deadline) {
  const batch = labelledBatch(faces, rng, args.batch, spec.inputSize, DEFAULT_AUGMENT);
  const r = trainer.trainStep(batch.images, batch.landmarks);
  batch.images.dispose();
  log.write({ ...r, lr: trainer.optimizer.paramGroups[0].lr, seconds: (Date.now() - start) / 1000 });
  if (r.step % args.checkpointEvery === 0) {
    trainer.save(ckpt, { trainFaces: faces.length });
    saveLandmarkWeights(args.out, trainer.generator, spec, { model: 'hr68', ...meta() });
    console.log(`step ${r.step} mse ${r.mse.toFixed(4)} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
  }
}
trainer.save(ckpt, { trainFaces: faces.length });
saveLandmarkWeights(args.out, trainer.generator, spec, { model: 'hr68', ...meta() });
console.log(`hr68: stopped at step ${trainer.step}; weights in ${args.out}`);
