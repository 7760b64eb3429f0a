// `lrface eval-landmarks`: NME, AUC and failure rate of a landmark model on an annotated dataset
// (300-W's folders of images and .pts files, or a dlib imglab XML with 68 parts per face), on
// the faces as they are or shrunk so the face box is S px wide (the low-resolution protocol).
import { parseArgs } from 'node:util';
import * as core from '@lrface/cuda-core';
import { DlibXml, W300, W300_SUBSETS, bicubicResize, cropImage, imageToTensor, tensorToImage } from '@lrface/datasets';
import { NME_NORMALIZERS, SCHEME_68, nme, summarizeErrors } from '@lrface/landmarks';
import { LANDMARK_CLI_MODELS, UsageError, checkLandmarkModelOptions, openLandmarkDetector, parseCommand } from './landmarks.mjs';

export const evalLandmarksUsage = `usage: lrface eval-landmarks (--w300 DIR [--subset NAME] | --dlib-xml FILE) [--model lr68|hr68|lgcn]
              [--weights FILE] [--low-resolution S] [--normalizer NAME] [--no-flip] [--limit N] [--json]
  68-point landmark error of a model on annotated faces, each found from the dataset's face box
  --w300 DIR          the 300-W root (lfpw/, helen/, afw/, ibug/, 300W/ with images and .pts files)
  --subset NAME       ${W300_SUBSETS.join(', ')} (default full)
  --dlib-xml FILE     a dlib imglab XML with 68 parts per box (images relative to it)
  --model NAME        ${LANDMARK_CLI_MODELS().join(', ')} (default lr68; lgcn needs --weights)
  --weights FILE      custom weights for the model's architecture
  --low-resolution S  shrink each face (MATLAB bicubic, with its surroundings) so its box is S px on
                      its longer side before detection; errors are measured in the original image
  --normalizer NAME   ${NME_NORMALIZERS.join(', ')} (default inter-ocular: outer eye corners)
  --no-flip           skip the mirrored second pass
  --limit N           the first N faces only
  --json              print one JSON line {"model","dataset","faces","lowResolution","normalizer",
                      "nme","median","std","auc_0.08","failure_0.08","auc_0.07","failure_0.07","seconds"}
  -h, --help          this text`;

function positiveInt(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be an integer >= 1, got '${text}'`);
  return n;
}

/** Parses the command's arguments; throws a UsageError on anything unexpected. */
export function parseEvalLandmarksArgs(argv) {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        w300: { type: 'string' },
        subset: { type: 'string' },
        'dlib-xml': { type: 'string' },
        model: { type: 'string', default: 'lr68' },
        weights: { type: 'string' },
        'low-resolution': { type: 'string' },
        normalizer: { type: 'string', default: 'inter-ocular' },
        'no-flip': { type: 'boolean', default: false },
        limit: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    if (typeof err?.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(err.message);
    throw err;
  }
  for (const [name, value] of Object.entries(v)) if (value === '') throw new UsageError(`option '--${name}' needs a value`);
  if ((v.w300 === undefined) === (v['dlib-xml'] === undefined)) throw new UsageError('give --w300 DIR or --dlib-xml FILE (one of them)');
  if (v.subset !== undefined && v.w300 === undefined) throw new UsageError('--subset goes with --w300');
  const subset = v.subset ?? 'full';
  if (!W300_SUBSETS.includes(subset)) throw new UsageError(`--subset must be one of ${W300_SUBSETS.join(', ')}, got '${subset}'`);
  if (!LANDMARK_CLI_MODELS().includes(v.model)) throw new UsageError(`--model must be one of ${LANDMARK_CLI_MODELS().join(', ')}, got '${v.model}'`);
  checkLandmarkModelOptions(v.model, v.weights, !v['no-flip']);
  if (!NME_NORMALIZERS.includes(v.normalizer)) throw new UsageError(`--normalizer must be one of ${NME_NORMALIZERS.join(', ')}, got '${v.normalizer}'`);
  let lowResolution = null;
  if (v['low-resolution'] !== undefined) {
    lowResolution = positiveInt('low-resolution', v['low-resolution']);
    if (lowResolution < 8) throw new UsageError(`--low-resolution must be at least 8 px, got '${v['low-resolution']}'`);
  }
  return {
    dataset: v.w300 !== undefined ? { kind: 'w300', root: v.w300, subset } : { kind: 'dlib-xml', file: v['dlib-xml'] },
    model: v.model,
    weights: v.weights,
    lowResolution,
    normalizer: v.normalizer,
    flip: !v['no-flip'],
    limit: v.limit === undefined ? Infinity : positiveInt('limit', v.limit),
    json: v.json,
  };
}

/** The dataset a --w300/--dlib-xml option names, its label, and where its pixel coordinates start (300-W: 1). */
export async function openDataset(spec) {
  if (spec.kind === 'w300') {
    const ds = await W300.open({ root: spec.root, subset: spec.subset });
    // .pts files count pixels from 1; the detectors' points count from 0.
    return { data: ds, name: `300-W ${spec.subset}`, origin: 1 };
  }
  const ds = await DlibXml.open({ file: spec.file });
  if (ds.points !== 68) throw new Error(`eval-landmarks: '${spec.file}' has ${ds.points} parts per face; the models find 68`);
  return { data: ds, name: `dlib XML ${spec.file}`, origin: 0 };
}

/**
 * The face shrunk so its box's longer side is `size` px: a crop of the box with half its size of
 * context on each side, MATLAB-bicubic resized. Returns the small image, the box in it and the
 * mapping of its points back to the original image.
 */
export function shrinkFace(image, box, size) {
  // As the detectors refuse it at full size: the crop's replicated border would be scored as a face.
  if (!(box.x < image.width && box.y < image.height && box.x + box.width > 0 && box.y + box.height > 0))
    throw new RangeError(`shrinkFace: 'box' must be a box overlapping the image (${image.width}x${image.height}), got ${JSON.stringify(box)}`);
  const { image: crop, region } = cropImage(image, box, { margin: 0.5, fill: 'replicate' });
  const scale = size / Math.max(box.width, box.height);
  const width = Math.max(1, Math.round(region.width * scale));
  const height = Math.max(1, Math.round(region.height * scale));
  const small = core.scope(() => tensorToImage(core.clamp(bicubicResize(imageToTensor(crop), { size: [height, width] }), 0, 1)));
  const sx = width / region.width;
  const sy = height / region.height;
  return {
    image: small,
    box: { x: (box.x - region.x) * sx, y: (box.y - region.y) * sy, width: box.width * sx, height: box.height * sy },
    toImage: ([x, y]) => [region.x + (x + 0.5) / sx - 0.5, region.y + (y + 0.5) / sy - 0.5],
  };
}

/** The figures of the --json line. */
export async function evalLandmarks(opts, { onFace } = {}) {
  const t0 = Date.now();
  const { data, name, origin } = await openDataset(opts.dataset);
  const detector = await openLandmarkDetector(opts.model, opts.weights);
  const errors = [];
  try {
    for (let i = 0; i < data.length && errors.length < opts.limit; i++) {
      const sample = data.get(i);
      if (sample.boxes.length === 0) continue;
      const image = await sample.image.decode();
      for (let f = 0; f < sample.boxes.length && errors.length < opts.limit; f++) {
        if (!sample.landmarks[f] || sample.landmarks[f].length !== 136) continue;
        const gt = sample.landmarks[f].map((v) => v - origin);
        const box = { ...sample.boxes[f], x: sample.boxes[f].x - origin, y: sample.boxes[f].y - origin };
        let points;
        try {
          if (opts.lowResolution === null) points = (await detector.detect(image, { box, flip: opts.flip })).points;
          else {
            const lr = shrinkFace(image, box, opts.lowResolution);
            points = (await detector.detect(lr.image, { box: lr.box, flip: opts.flip })).points.map(lr.toImage);
          }
        } catch (err) {
          // An annotation that does not fit its image (a box outside it) names the image.
          throw new Error(`eval-landmarks: face ${f + 1} of ${sample.image.name}: ${err.message}`, { cause: err });
        }
        const error = nme(points.flat(), gt, { normalizer: opts.normalizer, scheme: SCHEME_68, box, visibility: sample.visibility[f] });
        errors.push(error);
        onFace?.(errors.length, error);
      }
    }
  } finally {
    detector.dispose();
  }
  if (errors.length === 0) throw new Error(`eval-landmarks: ${name} has no face with 68 annotated points`);
  const s = summarizeErrors(errors, [0.07, 0.08]);
  return {
    model: opts.model,
    dataset: name,
    faces: s.count,
    lowResolution: opts.lowResolution,
    normalizer: opts.normalizer,
    nme: s.mean,
    median: s.median,
    std: s.std,
    'auc_0.08': s.auc['0.08'],
    'failure_0.08': s.failureRate['0.08'],
    'auc_0.07': s.auc['0.07'],
    'failure_0.07': s.failureRate['0.07'],
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
}

export async function runEvalLandmarks(argv) {
  const { opts, exit } = parseCommand('eval-landmarks', argv, parseEvalLandmarksArgs, evalLandmarksUsage);
  if (!opts) return exit;
  const r = await evalLandmarks(opts, {
    onFace: (n, e) => {
      if (n % 10 === 0) process.stderr.write(`eval-landmarks: ${n} faces, last NME ${e.toFixed(4)}\n`);
    },
  });
  if (opts.json) console.log(JSON.stringify(r));
  else {
    console.log(`${r.model} on ${r.dataset}: ${r.faces} faces${r.lowResolution ? `, shrunk to ${r.lowResolution} px` : ''}; NME (${r.normalizer})`);
    console.log(`mean ${r.nme.toFixed(4)}  median ${r.median.toFixed(4)}  std ${r.std.toFixed(4)}`);
    console.log(`AUC@0.08 ${r['auc_0.08'].toFixed(4)}  FR@0.08 ${(100 * r['failure_0.08']).toFixed(1)} %   AUC@0.07 ${r['auc_0.07'].toFixed(4)}  FR@0.07 ${(100 * r['failure_0.07']).toFixed(1)} %   (${r.seconds} s)`);
  }
  return 0;
}
