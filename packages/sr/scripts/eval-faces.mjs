#!/usr/bin/env node
// The model card table: PSNR/SSIM (8-bit Y, border = scale) on the held-out test split of the
// face corpus (128x128 HR crops, MATLAB bicubic x4 down), for bicubic, the public VDSR
// checkpoint without fine-tuning, and the shipped face-x4.
//
// usage: node packages/sr/scripts/eval-faces.mjs [--corpus DIR] [--scale 4] [--vdsr FILE.pth]
//          [--face-x4 FILE.safetensors] [--json]
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeImage } from '@lrface/datasets';
import { openFaceCorpus } from '@lrface/face-corpus';
import { evaluateNetwork, loadSuperResolver } from '@lrface/sr';
import { builtCorpus, sharedData } from './paths.mjs';

const defaultCorpus = builtCorpus('face-corpus');
const { values } = parseArgs({
  options: {
    corpus: { type: 'string', default: defaultCorpus },
    scale: { type: 'string', default: '4' },
    vdsr: { type: 'string', default: resolve(sharedData, 'weights/vdsr-pytorch/model_epoch_50.pth') },
    'face-x4': { type: 'string' },
    only: { type: 'string', default: 'bicubic,vdsr,face-x4' },
    json: { type: 'boolean', default: false },
  },
});
if (!values.corpus) throw new Error('eval-faces: no face corpus found; pass --corpus DIR, or build one with node tools/face-corpus/scripts/build.mjs (it writes .cache/face-corpus)');
const corpus = await openFaceCorpus(values.corpus);
const test = corpus.hr.filter((it) => it.split === 'test');
const images = await Promise.all(test.map((it) => decodeImage(corpus.path(it))));
const scale = Number(values.scale);
const wanted = values.only.split(',');
const rows = [];
let bicubic = null;
for (const name of wanted) {
  const t0 = Date.now();
  let sr;
  if (name === 'bicubic') sr = await loadSuperResolver('bicubic');
  else if (name === 'vdsr') sr = await loadSuperResolver('vdsr', { weights: values.vdsr });
  else if (name === 'face-x4') sr = await loadSuperResolver('face-x4', values['face-x4'] ? { weights: values['face-x4'] } : {});
  else throw new Error(`eval-faces: unknown model '${name}'`);
  const s = evaluateNetwork(sr.network, images, scale);
  bicubic = { psnr: s.bicubicPsnr, ssim: s.bicubicSsim };
  rows.push({ model: name === 'vdsr' ? 'vdsr (public weights, no fine-tuning)' : name, psnr: s.psnr, ssim: s.ssim, seconds: (Date.now() - t0) / 1000 });
  sr.dispose();
}
if (values.json) console.log(JSON.stringify({ corpus: values.corpus, images: images.length, scale, bicubic, rows }));
else {
  console.log(`${images.length} held-out HR faces (${corpus.size}x${corpus.size}, test split of ${values.corpus}), x${scale}, Y channel, border ${scale}\n`);
  console.log('| model | PSNR (dB) | SSIM | gain over bicubic (dB) |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.model} | ${r.psnr.toFixed(2)} | ${r.ssim.toFixed(4)} | ${(r.psnr - bicubic.psnr).toFixed(2)} |`);
}
