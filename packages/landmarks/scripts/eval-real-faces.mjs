#!/usr/bin/env node
// Landmarks on real faces made small (the LR-landmark paper's Figure 1 / Table 1a argument):
// every held-out HR face of the face corpus (test split: WIDER 19--Couple, 128x128 crops with
// 68 reference points from the HR detector) is degraded to 16, 24 and 32 px (MATLAB bicubic of
// the whole crop) and four ways to find its landmarks are compared against the reference points
// (NME normalised by the inter-ocular distance, outer eye corners 36 and 45; --normalizer box
// divides by sqrt(w h) of the reference points' tight box instead, as AFLW-style protocols do for
// sets with profile faces, whose inter-ocular distance nearly vanishes):
//   (a) the HR detector on the LR face upscaled bicubically back to 128 px;
//   (b) lrface's LR model ('lr68') on the LR face directly;
//   (c) super-resolution ('face-x4', x4) and then the HR detector on the SR face;
//   (d) the mean shape of the training faces' reference points placed in the face box, the
//       floor any method must beat.
// The HR column runs the HR detector on the 128 px crop itself (how far the pipeline alone moves
// the points from the reference). Prints a markdown table (mean NME, AUC@alpha and failure rate
// per LR size) and writes one CED plot per LR size (ced-16px.png, ...) and results.json to --out.
// (b) and (c) are skipped, with the reason, when their package or weights are not available.
//
//   node packages/landmarks/scripts/eval-real-faces.mjs --out DIR [--corpus DIR] [--sizes 16,24,32]
//        [--alpha 0.08] [--plot-max 0.2] [--normalizer inter-ocular|box] [--min-span F] [--reference given|settled] [--lr68 FILE] [--face-x4 FILE] [--limit N]
// --min-span F keeps only faces whose reference points span at least F of the annotated face
// box (sqrt of the area ratio): where the HR detector fails on an HR face (profiles pressed
// together in a kiss, say) its 68 points collapse into a small cluster, a reference that
// measures agreement with that failure rather than accuracy. The criterion reads only the
// reference and the human-drawn WIDER box, never a method's output.
// --reference settled labels the test faces as the corpus labels its training faces: the HR
// detector re-run on the box of its own points until the box settles (refineFaceBox), faces whose
// points then fail the corpus' plausibility check left out. On WIDER's loose boxes a single run
// often returns a collapsed cluster; the methods are still given the annotated box. (a') then
// adds the HR detector given that same procedure on the upscaled face.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ops from '@lrface/cuda-core';
import { bicubicResize, decodeImage, imageToTensor, tensorToImage } from '@lrface/datasets';
import { loadReferenceDetector, openFaceCorpus, refineFaceBox } from '@lrface/face-corpus';
import * as landmarks from '@lrface/landmarks';
import { defaultCorpusDir } from './common.mjs';
import { writeFileAtomic } from '@lrface/nn';

const { cedCurve, nmePerImage, summarizeErrors, writeCedPlot } = landmarks;

const fail = (message) => {
  console.error(`eval-real-faces: ${message}`);
  process.exit(2);
};
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      out: { type: 'string' },
      corpus: { type: 'string', default: defaultCorpusDir() },
      sizes: { type: 'string', default: '16,24,32' },
      alpha: { type: 'string', default: '0.08' },
      'plot-max': { type: 'string', default: '0.2' },
      normalizer: { type: 'string', default: 'inter-ocular' },
      'min-span': { type: 'string', default: '0' },
      reference: { type: 'string', default: 'given' },
      lr68: { type: 'string' },
      'face-x4': { type: 'string' },
      limit: { type: 'string' },
    },
  }));
} catch (err) {
  fail(err.message);
}
if (!args.out) fail('--out DIR is required (the CED plots and results.json go there)');
const sizes = args.sizes.split(',').map(Number);
if (sizes.some((s) => !Number.isInteger(s) || s < 4)) fail(`--sizes must be integers >= 4, got '${args.sizes}'`);
const alpha = Number(args.alpha);
const plotMax = Number(args['plot-max']);
if (!(alpha > 0 && alpha < 1)) fail(`--alpha must be in (0, 1), got '${args.alpha}'`);
if (!(plotMax > 0 && plotMax <= 1)) fail(`--plot-max must be in (0, 1], got '${args['plot-max']}'`);
const normalizer = args.normalizer;
if (!['inter-ocular', 'box'].includes(normalizer)) fail(`--normalizer must be inter-ocular or box, got '${normalizer}'`);
const normalizerText = normalizer === 'box' ? "sqrt(w h) of the reference points' box" : 'the inter-ocular distance (outer eye corners)';
const minSpan = Number(args['min-span']);
if (!(minSpan >= 0 && minSpan < 2)) fail(`--min-span must be a number in [0, 2), got '${args['min-span']}'`);
const reference = args.reference;
if (!['given', 'settled'].includes(reference)) fail(`--reference must be given or settled, got '${reference}'`);
const limit = args.limit === undefined ? Infinity : Number(args.limit);
if (!(limit >= 1)) fail(`--limit must be a positive number, got '${args.limit}'`);

const corpus = await openFaceCorpus(args.corpus).catch((err) => fail(err.message));
const S = corpus.size;
const allTest = corpus.hr.filter((i) => i.split === 'test' && i.landmarks?.length === 136);
/** sqrt(area of the reference points' box / area of the annotated face box), both in crop pixels. */
const referenceSpan = (item) => {
  const xs = item.landmarks.filter((_, k) => k % 2 === 0);
  const ys = item.landmarks.filter((_, k) => k % 2 === 1);
  const b = cropBox(item);
  return Math.sqrt(((Math.max(...xs) - Math.min(...xs)) * (Math.max(...ys) - Math.min(...ys))) / (b.width * b.height));
};
const spanned = allTest.filter((i) => referenceSpan(i) >= minSpan).slice(0, limit);
if (minSpan > 0) console.error(`eval-real-faces: ${spanned.length} of ${allTest.length} test faces have reference points spanning >= ${minSpan} of their face box`);
const train = corpus.hr.filter((i) => i.split === 'train' && i.landmarks?.length === 136);
if (spanned.length === 0) fail(`no test faces with reference points in ${args.corpus}`);

// Frames: a W-pixel image of the crop region has pixel centres at integers; scaling the region's
// image by f maps a centre x to (x + 0.5) f - 0.5 and a box {x, y, w, h} (spanning
// [x - 0.5, x + w - 0.5]) to {x f, y f, w f, h f}.
const scalePoints = (points, f) => Float32Array.from(points, (v) => (v + 0.5) * f - 0.5);
const scaleBox = (b, f) => ({ x: b.x * f, y: b.y * f, width: b.width * f, height: b.height * f });
/** The face box in crop pixels: the crop shows `region` resized to S x S. */
function cropBox(item) {
  const s = S / item.region.width;
  return { x: (item.box.x - item.region.x) * s, y: (item.box.y - item.region.y) * s, width: item.box.width * s, height: item.box.height * s };
}
const resize = (img, size) => ops.scope(() => tensorToImage(ops.clamp(bicubicResize(imageToTensor(img), { size: [size, size] }), 0, 1)));

const hrDetector = await loadReferenceDetector();
const spannedImages = await Promise.all(spanned.map((i) => decodeImage(corpus.path(i))));
// The reference points of each face, or null where there is none.
let references = spanned.map((i) => Float32Array.from(i.landmarks));
if (reference === 'settled') {
  // The corpus' labelling of training faces: the HR detector re-run on the box of its own points
  // until the box settles; faces whose points stay implausible get no reference, as such training
  // faces got no label. Every method still gets the annotated (WIDER) box.
  const rejected = new Map();
  references = [];
  for (let i = 0; i < spanned.length; i++) {
    const r = await refineFaceBox(hrDetector, spannedImages[i], cropBox(spanned[i]), { minSize: 0 });
    if (r.rejected) {
      const why = r.rejected.replace(/[0-9.]+/g, 'N'); // counted by kind, not by figure
      rejected.set(why, (rejected.get(why) ?? 0) + 1);
    }
    references.push(r.rejected ? null : r.points);
  }
  const reasons = [...rejected].map(([why, n]) => `${n} x ${why}`).join('; ');
  console.error(`eval-real-faces: settled reference points for ${references.filter(Boolean).length} of ${spanned.length} test faces${reasons ? ` (none for: ${reasons})` : ''}`);
}
const kept = spanned.map((_, i) => i).filter((i) => references[i] !== null);
const test = kept.map((i) => spanned[i]);
const hrImages = kept.map((i) => spannedImages[i]);
const gts = kept.map((i) => references[i]);
if (test.length === 0) fail('no test face has reference points');
const boxes = test.map(cropBox);
console.error(`eval-real-faces: ${test.length} test faces (${S}x${S}) from ${args.corpus}; mean shape from ${train.length} training faces`);
const lrImages = new Map(sizes.map((size) => [size, hrImages.map((img) => resize(img, size))]));

/** The HR detector on each image of `images` (a frame scaled by f from the crop), points returned in crop pixels. */
async function detectHr(images, f) {
  const out = [];
  for (let i = 0; i < images.length; i++) out.push(scalePoints((await hrDetector.detect68(images[i], scaleBox(boxes[i], f))).flat(), 1 / f));
  return out;
}

// Methods: per LR size, crop-pixel predictions (or a reason the method is unavailable).
const methods = [];
const skipped = [];

const hrOnHr = await detectHr(hrImages, 1);

{
  const preds = new Map();
  for (const size of sizes) preds.set(size, await detectHr(lrImages.get(size).map((img) => resize(img, S)), 1));
  methods.push({ key: 'a', name: `(a) HR detector on the bicubic upscale to ${S} px`, label: '(a) bicubic + HR detector', preds, hr: hrOnHr });
  if (reference === 'settled') {
    // (a) given the reference's own procedure: its box settled on the upscaled face.
    const settle = async (img, i) => (await refineFaceBox(hrDetector, img, boxes[i], { minSize: 0 })).points;
    const settled = new Map();
    for (const size of sizes) {
      const out = [];
      for (const [i, img] of lrImages.get(size).entries()) out.push(await settle(resize(img, S), i));
      settled.set(size, out);
    }
    // On the HR crop this procedure is the reference itself (deterministic): its HR column is 0.
    methods.push({ key: 'a-settled', name: `(a') the same, its box settled as the reference's is`, label: "(a') bicubic + HR detector, settled", preds: settled, hr: gts });
  }
}

if (typeof landmarks.loadLandmarkDetector !== 'function') skipped.push('(b) lr68: @lrface/landmarks has no loadLandmarkDetector in this build');
else {
  try {
    const lr = await landmarks.loadLandmarkDetector('lr68', args.lr68 ? { weights: args.lr68 } : {});
    const preds = new Map();
    for (const size of sizes) {
      const f = size / S;
      const results = await lr.detect(lrImages.get(size), { box: boxes.map((b) => scaleBox(b, f)) });
      preds.set(size, results.map((r) => scalePoints(r.points.flat(), 1 / f)));
    }
    methods.push({ key: 'b', name: '(b) lr68 on the LR face', label: '(b) lr68', preds });
  } catch (err) {
    skipped.push(`(b) lr68: ${err.message}`);
  }
}

{
  let sr = null;
  try {
    const mod = await import('@lrface/sr');
    if (typeof mod.loadSuperResolver !== 'function') throw new Error('@lrface/sr has no loadSuperResolver in this build');
    sr = await mod.loadSuperResolver('face-x4', args['face-x4'] ? { weights: args['face-x4'] } : {});
  } catch (err) {
    skipped.push(`(c) face-x4 + HR detector: ${err.code === 'ERR_MODULE_NOT_FOUND' ? '@lrface/sr is not installed' : err.message}`);
  }
  if (sr) {
    const preds = new Map();
    for (const size of sizes) {
      const upscaled = [];
      for (const img of lrImages.get(size)) upscaled.push((await sr.upscale(img, { scale: 4 })).image);
      // The SR face is 4 x size pixels: the detector sees the box in that frame.
      preds.set(size, await detectHr(upscaled, (4 * size) / S));
    }
    sr.dispose?.();
    methods.push({ key: 'c', name: '(c) face-x4 SR x4, then HR detector', label: '(c) face-x4 + HR detector', preds });
  }
}

{
  // The mean shape in face-box coordinates (x: 0 at the box's left edge, 1 at its right), placed
  // in each test face's box: boxes from different sources differ in aspect, so this follows the
  // box rather than the square crop around it.
  const mean = new Float64Array(136);
  for (const t of train) {
    const b = cropBox(t);
    t.landmarks.forEach((v, i) => (mean[i] += (i % 2 === 0 ? (v + 0.5 - b.x) / b.width : (v + 0.5 - b.y) / b.height) / train.length));
  }
  const place = (b) => Float32Array.from(mean, (u, i) => (i % 2 === 0 ? b.x + u * b.width : b.y + u * b.height) - 0.5);
  const placed = boxes.map(place);
  const preds = new Map(sizes.map((size) => [size, placed]));
  methods.push({ key: 'd', name: `(d) mean shape (${train.length} train faces)`, label: '(d) mean shape', preds, hr: placed });
}

// Scores.
const score = (preds) => {
  const errors = nmePerImage(preds, gts, { normalizer });
  return { errors, summary: summarizeErrors(errors, [alpha]) };
};
const key = String(alpha);
const pct = (v) => (Number.isFinite(v) ? (100 * v).toFixed(2) : String(v));
const results = methods.map((m) => ({
  ...m,
  bySize: new Map(sizes.map((size) => [size, score(m.preds.get(size))])),
  hrScore: m.hr ? score(m.hr) : null,
}));

const head = ['method', ...sizes.flatMap((s) => [`${s}px NME %`, `${s}px AUC@${alpha}`, `${s}px FR@${alpha} %`]), `HR ${S}px NME %`];
const referenceText = reference === 'settled' ? "the HR detector's settled reference points (re-run on its own points' box until it settles, as training faces are labelled)" : "the HR detector's reference points (one run on the annotated box)";
console.log(`NME normalised by ${normalizerText}, against ${referenceText}; ${test.length} held-out real faces${test.length < allTest.length ? ` of ${allTest.length}` : ''}${minSpan > 0 ? ` (reference points spanning >= ${minSpan} of the face box)` : ''} (${args.corpus}), LR = the ${S}px crop resized to N px (MATLAB bicubic).\n`);
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map(() => '---').join('|')}|`);
for (const r of results) {
  const cells = sizes.flatMap((size) => {
    const s = r.bySize.get(size).summary;
    return [pct(s.mean), s.auc[key].toFixed(3), pct(s.failureRate[key])];
  });
  console.log(`| ${[r.name, ...cells, r.hrScore ? pct(r.hrScore.summary.mean) : 'n/a'].join(' | ')} |`);
}
for (const s of skipped) console.log(`\nskipped ${s}`);

// CED plots and the raw numbers.
mkdirSync(args.out, { recursive: true });
for (const size of sizes) {
  const curves = results.map((r) => ({ name: r.label, curve: cedCurve(r.bySize.get(size).errors, { max: plotMax, step: plotMax / 1000 }) }));
  const file = join(args.out, `ced-${size}px.png`);
  await writeCedPlot(file, curves, { title: `CED, faces at ${size} px (${test.length} real faces)`, xLabel: `NME (${normalizer})`, maxError: plotMax });
  console.error(`eval-real-faces: wrote ${file}`);
}
const json = {
  corpus: args.corpus,
  faces: test.length,
  trainFaces: train.length,
  normalizer,
  reference,
  minSpan,
  alpha,
  sizes,
  skipped,
  methods: results.map((r) => ({
    key: r.key,
    name: r.name,
    hr: r.hrScore ? { mean: r.hrScore.summary.mean, auc: r.hrScore.summary.auc[key], failureRate: r.hrScore.summary.failureRate[key] } : null,
    bySize: Object.fromEntries(sizes.map((size) => {
      const { errors, summary } = r.bySize.get(size);
      return [size, { mean: summary.mean, median: summary.median, auc: summary.auc[key], failureRate: summary.failureRate[key], errors: Array.from(errors) }];
    })),
  })),
};
writeFileAtomic(join(args.out, 'results.json'), JSON.stringify(json, null, 1));
console.error(`eval-real-faces: wrote ${join(args.out, 'results.json')}`);
