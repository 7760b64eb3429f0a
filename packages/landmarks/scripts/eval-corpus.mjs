#!/usr/bin/env node
// NME (inter-ocular, in % of the outer-eye-corner distance) on the held-out corpus faces (the
// test split: WIDER 19--Couple) against the reference points, for:
//   hr68 on the 128x128 crops; lr68 on the crops downscaled to 32x32 (MATLAB bicubic, the face
//   then ~23 px wide, inside the 20-40 px range of real tiny faces); hr68 on those 32x32 faces
//   upscaled back to 128 (the usual rescaling practice); and the mean-shape baseline (the mean of
//   the training faces' points placed in each test crop), which any model must beat.
//   node packages/landmarks/scripts/eval-corpus.mjs [--corpus DIR] [--lr68 FILE] [--hr68 FILE] [--json OUT]
import * as ops from '@lrface/cuda-core';
import { bicubicResize, decodeImage, imageToTensor, tensorToImage } from '@lrface/datasets';
import { openFaceCorpus } from '@lrface/face-corpus';
import { loadLandmarkDetector, meanNme, nmePerImage, summarizeErrors } from '@lrface/landmarks';
import { writeFileSync } from 'node:fs';
import { defaultCorpusDir, parseArgs } from './common.mjs';

const args = parseArgs(process.argv.slice(2), { corpus: defaultCorpusDir(), lr68: '', hr68: '', json: '', split: 'test' });
const corpus = await openFaceCorpus(args.corpus);
const S = corpus.size;
const items = corpus.hr.filter((i) => i.split === args.split && i.landmarks?.length === 136);
const train = corpus.hr.filter((i) => i.split === 'train' && i.landmarks?.length === 136);
if (items.length === 0) throw new Error(`no ${args.split} faces with reference points in ${args.corpus}`);

// The face box inside the crop: the crop shows `region` resized to S x S.
const cropBox = (item) => {
  const k = S / item.region.width;
  return { x: (item.box.x - item.region.x) * k, y: (item.box.y - item.region.y) * k, width: item.box.width * k, height: item.box.height * k };
};
const scaleBox = (b, f) => ({ x: (b.x + 0.5) * f - 0.5, y: (b.y + 0.5) * f - 0.5, width: b.width * f, height: b.height * f });
const flat = (points) => Float32Array.from(points.flat());
const toHr = (points, f) => points.map(([x, y]) => [(x + 0.5) * f - 0.5, (y + 0.5) * f - 0.5]);

const hr = [], lr = [], lrBoxes = [], hrBoxes = [], up = [];
for (const item of items) {
  const img = await decodeImage(corpus.path(item));
  hr.push(img);
  hrBoxes.push(cropBox(item));
  const small = ops.scope(() => bicubicResize(imageToTensor(img), { size: [S / 4, S / 4] }));
  lr.push(tensorToImage(small));
  lrBoxes.push(scaleBox(cropBox(item), 1 / 4));
  up.push(tensorToImage(ops.scope(() => bicubicResize(ops.clamp(small, 0, 1), { size: [S, S] }))));
}
const gts = items.map((i) => Float32Array.from(i.landmarks));
const rows = [];
const add = (name, preds, note) => {
  const errors = nmePerImage(preds, gts, { normalizer: 'inter-ocular' });
  const s = summarizeErrors(errors, [0.1]);
  rows.push({ name, note, faces: errors.length, nme: 100 * meanNme(errors), median: 100 * s.median, auc10: s.auc['0.1'], failure10: s.failureRate['0.1'] });
};

// Mean shape of the training faces' points, in crop pixels (the crops are box-aligned).
const mean = new Float32Array(136);
for (const t of train) t.landmarks.forEach((v, i) => (mean[i] += v / train.length));
add('mean shape (train faces)', items.map(() => mean), `${train.length} train faces`);

const hrDet = await loadLandmarkDetector('hr68', args.hr68 ? { weights: args.hr68 } : {});
add('hr68 on the 128x128 crops', (await hrDet.detect(hr, { box: hrBoxes })).map((r) => flat(r.points)), '');
const lrDet = await loadLandmarkDetector('lr68', args.lr68 ? { weights: args.lr68 } : {});
add('lr68 on 32x32 downscaled crops', (await lrDet.detect(lr, { box: lrBoxes })).map((r) => flat(toHr(r.points, 4))), '');
add('hr68 on 32x32 crops upscaled to 128', (await hrDet.detect(up, { box: hrBoxes })).map((r) => flat(r.points)), '');

console.log(`corpus ${args.corpus}, split ${args.split}: ${items.length} faces; NME in % of the inter-ocular distance`);
console.log('| method | NME (%) | median (%) | AUC@0.1 | FR@0.1 (%) |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.nme.toFixed(2)} | ${r.median.toFixed(2)} | ${r.auc10.toFixed(3)} | ${(100 * r.failure10).toFixed(1)} |`);
if (args.json) writeFileSync(args.json, JSON.stringify({ corpus: args.corpus, split: args.split, faces: items.length, rows }, null, 1));
