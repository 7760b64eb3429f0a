// `lrface verify <imageA> <imageB> (--model face-api | --weights FILE) [--box-a x,y,w,h] [--box-b x,y,w,h] [--threshold T | --max-distance D] [--json]`:
// whether two faces are the same person, by the similarity of a recognition network's features.
import { parseArgs } from 'node:util';
import { RECOGNITION_ARCHS, loadFaceApiRecognizer, loadRecognizer } from '@lrface/recognition';
import { MODEL_REGISTRY, listModels } from '@lrface/sr';
import { UsageError, parseBoxOption, parseCommand } from './landmarks.mjs';

export const verifyUsage = `usage: lrface verify <imageA> <imageB> (--model face-api | --weights FILE) [options]
  --model face-api   dlib's ResNet29 with the trained weights of the installed @vladmandic/face-api
                     (an HR recogniser; install that package to use it)
  --weights FILE     a recognition network's weights (.safetensors written by @lrface/recognition,
                     or a PyTorch checkpoint with --arch)
  --arch NAME        ${RECOGNITION_ARCHS.join(', ')} (PyTorch checkpoints only)
  --box-a, --box-b   the face in each image, in pixels (default: the whole image, a face crop)
  --margin M         margin around the box as a fraction of its side (default 0)
  --threshold T      the same person when the cosine similarity is >= T (default 0.5 with --weights)
  --max-distance D   the same person when the feature distance is < D (default 0.6 with --model face-api,
                     face-api's rule)
  --json             print one JSON line {"model","similarity","distance","same","rule"}`;

/** The recogniser options verify and eval-verify share: --model or --weights, --arch, --margin. */
function checkRecognizerOptions(values) {
  if (values.model !== undefined && values.model !== 'face-api') throw new UsageError(`--model must be face-api, got '${values.model}'`);
  if (!values.weights === !values.model) throw new UsageError('give --model face-api or --weights FILE (one of them)');
  if (values.arch !== undefined && !RECOGNITION_ARCHS.includes(values.arch)) throw new UsageError(`--arch must be one of ${RECOGNITION_ARCHS.join(', ')}, got '${values.arch}'`);
  const margin = Number(values.margin);
  if (!(margin >= 0)) throw new UsageError(`--margin must be a number >= 0, got '${values.margin}'`);
  return { model: values.model, weights: values.weights, arch: values.arch, margin };
}

/** --low-resolution S and --hallucinate NAME, as eval-verify and eval-identify take them. */
function checkLowResolutionOptions(v) {
  let lowResolution;
  if (v['low-resolution'] !== undefined) {
    lowResolution = Number(v['low-resolution']);
    if (!(Number.isInteger(lowResolution) && lowResolution >= 4)) throw new UsageError(`--low-resolution must be an integer >= 4, got '${v['low-resolution']}'`);
  }
  if (v.hallucinate !== undefined && lowResolution === undefined) throw new UsageError('--hallucinate needs --low-resolution (it enlarges the shrunk faces)');
  if (v.hallucinate !== undefined) {
    // It runs a model as shipped: one with weights (or bicubic), and x4.
    const usable = listModels().filter((m) => (MODEL_REGISTRY[m].weights || m === 'bicubic') && MODEL_REGISTRY[m].scales.includes(4));
    if (!usable.includes(v.hallucinate)) throw new UsageError(`--hallucinate must be one of ${usable.join(', ')} (models with shipped weights that upscale x4), got '${v.hallucinate}'`);
  }
  return { lowResolution, hallucinate: v.hallucinate };
}

/** "face-api on 16px faces super-resolved by face-x4": what a protocol's figures are of. */
function protocolLabel({ model, lowResolution, hallucinate }) {
  return `${model}${lowResolution ? ` on ${lowResolution}px faces${hallucinate ? ` super-resolved by ${hallucinate}` : ''}` : ''}`;
}

/** The `enhance` step of --hallucinate NAME: each shrunk face super-resolved x4. */
async function hallucinator(name) {
  if (!name) return undefined;
  const { loadSuperResolver } = await import('@lrface/sr');
  const sr = await loadSuperResolver(name);
  return async (face) => (await sr.upscale(face, { scale: 4 })).image;
}

/** A progress line rewritten in place on stderr ('\r'), and whether one is open (not yet ended by a newline). */
const progressLine = { open: false };
function writeProgress(text) {
  process.stderr.write(`\r${text}`);
  progressLine.open = true;
}

/** Runs `work`; an error ends the progress line it left open, so its message starts a line of its own. */
async function endProgressLineOnError(work) {
  try {
    return await work();
  } catch (err) {
    if (progressLine.open) process.stderr.write('\n');
    progressLine.open = false;
    throw err;
  }
}

/** Parses the command's arguments; throws a UsageError on anything unexpected. */
export function parseVerifyArgs(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        weights: { type: 'string' },
        arch: { type: 'string' },
        'box-a': { type: 'string' },
        'box-b': { type: 'string' },
        margin: { type: 'string', default: '0' },
        threshold: { type: 'string' },
        'max-distance': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw new UsageError(`two images are needed, got ${positionals.length}`);
  const recognizer = checkRecognizerOptions(values);
  if (values.threshold !== undefined && values['max-distance'] !== undefined) throw new UsageError('give --threshold or --max-distance, not both');
  let rule;
  if (values.threshold !== undefined || (values['max-distance'] === undefined && values.weights)) {
    const threshold = Number(values.threshold ?? 0.5);
    if (!(threshold >= -1 && threshold <= 1)) throw new UsageError(`--threshold must be a number in [-1, 1], got '${values.threshold}'`);
    rule = { kind: 'similarity', threshold };
  } else {
    const maxDistance = Number(values['max-distance'] ?? 0.6);
    if (!(maxDistance > 0)) throw new UsageError(`--max-distance must be a number > 0, got '${values['max-distance']}'`);
    rule = { kind: 'distance', maxDistance };
  }
  return {
    images: positionals,
    ...recognizer,
    boxA: values['box-a'] === undefined ? undefined : parseBoxOption('box-a', values['box-a']),
    boxB: values['box-b'] === undefined ? undefined : parseBoxOption('box-b', values['box-b']),
    rule,
    json: values.json,
  };
}

/** The recogniser the options name: face-api's, or a weights file's network. */
async function openRecognizer(opts) {
  if (opts.model) return loadFaceApiRecognizer({ margin: opts.margin });
  try {
    return await loadRecognizer(opts.weights, { ...(opts.arch ? { arch: opts.arch } : {}), margin: opts.margin });
  } catch (err) {
    // The library's hint names its own option; on the command line it is --arch, and a training
    // checkpoint (the likeliest such file) is not a weights file at all.
    if (!(err instanceof Error) || !/pass options\.arch$/.test(err.message)) throw err;
    throw new Error(`${err.message.replace(/: pass options\.arch$/, '')}: give the --out weights of lrface train recognition (not its --checkpoint), or --arch NAME for a PyTorch checkpoint`, { cause: err });
  }
}

export async function runVerify(argv) {
  const { opts, exit } = parseCommand('verify', argv, parseVerifyArgs, verifyUsage);
  if (!opts) return exit;
  const recognizer = await openRecognizer(opts);
  const boxes = { boxA: opts.boxA, boxB: opts.boxB };
  const { similarity, distance } = await recognizer.match(opts.images[0], opts.images[1], boxes);
  const same = opts.rule.kind === 'similarity' ? similarity >= opts.rule.threshold : distance < opts.rule.maxDistance;
  const rule = opts.rule.kind === 'similarity' ? `similarity >= ${opts.rule.threshold}` : `distance < ${opts.rule.maxDistance}`;
  const round = (v) => Math.round(v * 1e4) / 1e4;
  const model = opts.model ?? recognizer.network.arch;
  if (opts.json) console.log(JSON.stringify({ model, similarity: round(similarity), distance: round(distance), same, rule }));
  else console.log(`${same ? 'same person' : 'different people'}: similarity ${round(similarity)}, distance ${round(distance)} (${rule}, ${model})`);
  return 0;
}

export const evalVerifyUsage = `usage: lrface eval-verify (--pairs FILE --images DIR | --ytf DIR) (--model face-api | --weights FILE) [options]
  --pairs FILE          an LFW pairs file (View 2: 10 folds of matched and mismatched pairs)
  --images DIR          the LFW image folder (<Name>/<Name>_0001.jpg, or --layout flat)
  --model, --weights, --arch, --margin   the recogniser, as for lrface verify
  --layout nested|flat  how the images are laid out (default nested)
  --extension EXT       image file extension (default .jpg)
  --box x,y,w,h         the face in every image (LFW's 250x250 images: 68,68,114,114 is the centred face)
  --low-resolution S    shrink every face to S x S pixels first (the low-resolution protocol)
  --hallucinate NAME    super-resolve each shrunk face x4 with an @lrface/sr model (e.g. face-x4) first
  --ytf DIR             YouTube Faces instead (splits.txt and frame_images_DB/ with the labeled_faces files):
                        each video described by the mean of its frames' unit features, pairs by cosine similarity
  --frames N            frames per video with --ytf, evenly spaced (default 100)
  --score similarity|distance   what pairs are scored by (default: distance with face-api, else similarity)
  --json                print one JSON line {"model","pairs","folds","accuracy","std","auc","eer",...}`;

/** Parses eval-verify's arguments; throws a UsageError on anything unexpected. */
export function parseEvalVerifyArgs(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        pairs: { type: 'string' },
        images: { type: 'string' },
        ytf: { type: 'string' },
        frames: { type: 'string' },
        model: { type: 'string' },
        weights: { type: 'string' },
        arch: { type: 'string' },
        margin: { type: 'string', default: '0' },
        layout: { type: 'string', default: 'nested' },
        extension: { type: 'string', default: '.jpg' },
        box: { type: 'string' },
        'low-resolution': { type: 'string' },
        hallucinate: { type: 'string' },
        score: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const v = parsed.values;
  let frames = 100;
  if (v.ytf !== undefined) {
    const lfwOnly = ['pairs', 'images', 'box', 'layout', 'extension'].filter((k) => argv.some((a) => a === `--${k}` || a.startsWith(`--${k}=`)));
    if (lfwOnly.length) throw new UsageError(`--ytf reads YouTube Faces' own splits, frames and boxes: leave out ${lfwOnly.map((k) => `--${k}`).join(', ')}`);
    if (v.score === 'distance') throw new UsageError('--ytf scores videos by the cosine similarity of their mean features: --score distance does not apply');
    if (v.frames !== undefined) {
      frames = Number(v.frames);
      if (!(Number.isInteger(frames) && frames >= 1)) throw new UsageError(`--frames must be an integer >= 1, got '${v.frames}'`);
    }
  } else {
    if (v.frames !== undefined) throw new UsageError('--frames goes with --ytf');
    if (!v.pairs) throw new UsageError('missing --pairs FILE (or --ytf DIR)');
    if (!v.images) throw new UsageError('missing --images DIR');
  }
  const recognizer = checkRecognizerOptions(v);
  if (v.layout !== 'nested' && v.layout !== 'flat') throw new UsageError(`--layout must be nested or flat, got '${v.layout}'`);
  const { lowResolution } = checkLowResolutionOptions(v);
  const score = v.score ?? (v.model && v.ytf === undefined ? 'distance' : 'similarity');
  if (score !== 'similarity' && score !== 'distance') throw new UsageError(`--score must be similarity or distance, got '${v.score}'`);
  return {
    pairs: v.pairs,
    images: v.images,
    ytf: v.ytf,
    frames,
    ...recognizer,
    layout: v.layout,
    extension: v.extension,
    box: v.box === undefined ? undefined : parseBoxOption('box', v.box),
    lowResolution,
    hallucinate: v.hallucinate,
    score,
    json: v.json,
  };
}

export async function runEvalVerify(argv) {
  const { opts, exit } = parseCommand('eval-verify', argv, parseEvalVerifyArgs, evalVerifyUsage);
  if (!opts) return exit;
  const { Lfw, Ytf } = await import('@lrface/datasets');
  const { evaluatePairs, evaluateVideoPairs, ytfVideoPairs } = await import('@lrface/recognition');
  const recognizer = await openRecognizer(opts);
  const enhance = await hallucinator(opts.hallucinate);
  const onProgress = (done, total) => {
    if (done % 100 === 0 || done === total) writeProgress(`eval-verify: ${done}/${total} pairs`);
  };
  const started = performance.now();
  const result = await endProgressLineOnError(() => opts.ytf
    ? Ytf.open({ root: opts.ytf }).then(ytfVideoPairs).then((pairs) => evaluateVideoPairs(recognizer, pairs, { framesPerVideo: opts.frames, lowResolution: opts.lowResolution, enhance, onProgress }))
    : Lfw.pairs({ root: opts.images, pairsFile: opts.pairs, layout: opts.layout, extension: opts.extension }).then((pairs) =>
        evaluatePairs(recognizer, pairs, {
          box: opts.box,
          lowResolution: opts.lowResolution,
          enhance,
          score: opts.score,
          onProgress,
        }),
      ));
  process.stderr.write('\n');
  const round = (x) => Math.round(x * 1e5) / 1e5;
  const summary = {
    model: opts.model ?? recognizer.network.arch,
    pairs: result.pairs,
    folds: result.folds.length,
    accuracy: round(result.accuracy),
    std: round(result.std),
    auc: round(result.auc),
    eer: round(result.eer),
    score: opts.score,
    lowResolution: opts.lowResolution ?? null,
    hallucinate: opts.hallucinate ?? null,
    seconds: round((performance.now() - started) / 1000),
  };
  if (opts.json) console.log(JSON.stringify(summary));
  else
    console.log(
      `${protocolLabel(summary)}: ` +
        `accuracy ${(100 * summary.accuracy).toFixed(2)} % +- ${(100 * summary.std).toFixed(2)} over ${summary.folds} folds of ${summary.pairs} pairs, AUC ${summary.auc}, EER ${summary.eer}`,
    );
  return 0;
}

export const evalIdentifyUsage = `usage: lrface eval-identify --tinyface DIR (--model face-api | --weights FILE) [options]
  TinyFace's closed-set identification: each probe ranked against the gallery (matched faces and,
  unless --no-distractors, the 153,428 distractors) by cosine similarity; CMC and mAP
  --tinyface DIR        the TinyFace root (Testing_Set/ with Probe/, Gallery_Match/, Gallery_Distractor/
                        and the two *_img_ID_pairs.mat files)
  --model, --weights, --arch, --margin   the recogniser, as for lrface verify
  --no-distractors      rank against the matched gallery faces only
  --low-resolution S    shrink every face to S x S pixels first
  --hallucinate NAME    super-resolve each shrunk face x4 with an @lrface/sr model (e.g. face-x4) first
  --json                print one JSON line {"model","probes","gallery","distractors","rank1","rank5",
                        "rank10","rank20","mAP","lowResolution","hallucinate","seconds"}`;

/** Parses eval-identify's arguments; throws a UsageError on anything unexpected. */
export function parseEvalIdentifyArgs(argv) {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        tinyface: { type: 'string' },
        model: { type: 'string' },
        weights: { type: 'string' },
        arch: { type: 'string' },
        margin: { type: 'string', default: '0' },
        'no-distractors': { type: 'boolean', default: false },
        'low-resolution': { type: 'string' },
        hallucinate: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (!v.tinyface) throw new UsageError('missing --tinyface DIR');
  return { tinyface: v.tinyface, ...checkRecognizerOptions(v), distractors: !v['no-distractors'], ...checkLowResolutionOptions(v), json: v.json };
}

export async function runEvalIdentify(argv) {
  const { opts, exit } = parseCommand('eval-identify', argv, parseEvalIdentifyArgs, evalIdentifyUsage);
  if (!opts) return exit;
  const { TinyFace } = await import('@lrface/datasets');
  const { evaluateIdentification } = await import('@lrface/recognition');
  const { probe, gallery } = await TinyFace.identification({ root: opts.tinyface, distractors: opts.distractors });
  const recognizer = await openRecognizer(opts);
  const started = performance.now();
  const enhance = await hallucinator(opts.hallucinate);
  const result = await endProgressLineOnError(() =>
    evaluateIdentification(recognizer, probe, gallery, {
      lowResolution: opts.lowResolution,
      enhance,
      onProgress: (done, total) => {
        if (done % 500 === 0 || done === total) writeProgress(`eval-identify: ${done}/${total} faces described`);
      },
    }),
  );
  process.stderr.write('\n');
  const round = (x) => Math.round(x * 1e5) / 1e5;
  const summary = {
    model: opts.model ?? recognizer.network.arch,
    probes: result.probes,
    gallery: result.galleryMatched,
    distractors: result.distractors,
    rank1: round(result.cmc[1]),
    rank5: round(result.cmc[5]),
    rank10: round(result.cmc[10]),
    rank20: round(result.cmc[20]),
    mAP: round(result.meanAveragePrecision),
    lowResolution: opts.lowResolution ?? null,
    hallucinate: opts.hallucinate ?? null,
    seconds: round((performance.now() - started) / 1000),
  };
  if (opts.json) console.log(JSON.stringify(summary));
  else
    console.log(
      `${protocolLabel(summary)}: ` +
        `rank-1 ${(100 * summary.rank1).toFixed(2)} %, rank-20 ${(100 * summary.rank20).toFixed(2)} %, mAP ${(100 * summary.mAP).toFixed(2)} % ` +
        `(${summary.probes} probes against ${summary.gallery} gallery faces and ${summary.distractors} distractors)`,
    );
  return 0;
}
