// `lrface train sr`: trains a super-resolution model of @lrface/sr on a folder of HR images (its
// paper's recipe unless options say otherwise); `lrface train recognition`: a recognition network
// of @lrface/recognition on a folder of identity sub-folders (softmax + center loss). Both keep a
// resumable checkpoint and write weights that the other commands load (`--weights`).
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, W300_SUBSETS, cropAffine, decodeImage, transformPoints, warpAffine } from '@lrface/datasets';
import { LgcnTrainer, PcaShapeModel, saveLgcnWeights } from '@lrface/landmarks';
import { readCheckpointInfo } from '@lrface/nn';
import { openDataset } from './eval-landmarks.mjs';
import { RECOGNITION_ARCHS, RecognitionTrainer, createRecognitionNetwork, identityBatches, saveRecognitionWeights } from '@lrface/recognition';
import { Dic, DicTrainer, MODEL_REGISTRY, defaultRecipe, dicBatch, disposeDicBatch, evaluateDic, listModels, loadHrImages, loadSuperResolver, sampleDicFaces, saveDicWeights, saveSrWeights, trainSuperResolution } from '@lrface/sr';
import { devices } from '@lrface/cuda-core';
import { UsageError, deviceOption, parseCommand } from './landmarks.mjs';
import { loadEvalImages } from './sr.mjs';

const trainable = () => listModels().filter((m) => MODEL_REGISTRY[m].arch !== 'bicubic');

export const trainSrUsage = `usage: lrface train sr --model NAME --images DIR --steps N --out FILE.safetensors [options]
  trains a super-resolution network on the HR images of DIR (degraded on the fly: MATLAB bicubic
  down, then up where the network takes the interpolated image) and writes its weights to FILE
  --model NAME        the architecture and config of a registered model: ${trainable().join(', ')}
                      (face-x4 starts from its shipped weights, the others from scratch)
  --images DIR        folder of HR training images (png, jpg, bmp, tif, webp)
  --steps N           optimisation steps in all (a resumed run continues up to N)
  --out FILE          the weights to write (.safetensors), atomically, when training ends
  --init FILE         start from these weights (.safetensors or .pth of the same architecture)
  --scale S[,S...]    training scales (default: the model's scales)
  --patch-size P      square patch side (default: the paper's)
  --batch-size B      patches per step (default: the paper's)
  --optimizer NAME    sgd or adam (default: the paper's)
  --lr LR             learning rate (default: the paper's)
  --clip-norm C       clip the gradients' global norm to C (instead of the recipe's: VDSR and DRCN bound it by 0.01 / lr)
  --eval DIR          HR images evaluated every --eval-every steps (PSNR/SSIM on Y against bicubic)
  --eval-every K      default 100 when --eval is given
  --checkpoint FILE   a checkpoint written atomically every --checkpoint-every steps (default 50)
                      and at the end; an existing one is resumed (model, optimiser and step; the
                      run must have the same --model, --optimizer and --lr as the one that wrote it)
  --checkpoint-every K
  --minutes M         stop after M minutes (the weights are still written)
  --log FILE          append every step and evaluation as JSON lines
  --device ID         cpu (default) or a CUDA device from \`lrface devices\`
  --seed S            patch sampling seed (default 1; a resumed run mixes in its step, drawing new patches)
  --json              print one JSON line at the end:
                      {"model","arch","steps","seconds","first_loss","last_loss","eval","weights","sha256","resumed"}
                      (eval null without --eval; the losses null when no step ran: a checkpoint already at N)
  -h, --help          this text`;

export const trainRecognitionUsage = `usage: lrface train recognition --arch NAME --images DIR --steps N --out FILE.safetensors [options]
  trains a face recognition network with softmax and center loss on DIR's identity sub-folders
  (one folder per person, each face image whole or roughly cropped)
  --arch NAME         ${RECOGNITION_ARCHS.filter((a) => a !== 'resnet29').join(', ')}
  --images DIR        folder of identity sub-folders of images
  --steps N           optimisation steps in all (a resumed run continues up to N)
  --out FILE          the weights to write (.safetensors) when training ends
  --config JSON       the network's config, e.g. '{"inputSize":64,"pools":[true,true,false,false]}'
  --batch-size B      faces per step (default 32)
  --optimizer NAME    sgd (default) or adam
  --lr LR             learning rate (default 0.01 for sgd, 1e-3 for adam)
  --center-loss W     weight of the center loss (default 0.008; 0: softmax only)
  --downscale K       train on low-resolution faces: each face shrunk K times (MATLAB bicubic) and enlarged back
  --margin M          context around each face, as a fraction of its side (default 0)
  --min-images N      only identities with at least N images (default 1)
  --checkpoint FILE   a checkpoint written every --checkpoint-every steps (default 50) and at the end;
                      an existing one is resumed (network, centres, optimiser and step; the run must
                      have the same --arch, --config, identity folders, --optimizer and --lr)
  --checkpoint-every K
  --minutes M         stop after M minutes (the weights are still written)
  --log FILE          append every step as JSON lines
  --device ID         cpu (default) or a CUDA device from \`lrface devices\`
  --seed S            shuffling and augmentation seed (default 1; a resumed run mixes in its step)
  --json              print one JSON line at the end:
                      {"arch","identities","images","steps","seconds","first_loss","last_loss","train_accuracy","weights","resumed"}
                      (the losses and train_accuracy null when no step ran: a checkpoint already at N)
  -h, --help          this text`;

export const trainLandmarksUsage = `usage: lrface train landmarks --arch lgcn (--w300 DIR [--subset NAME] | --dlib-xml FILE) --steps N --out FILE.safetensors [options]
  trains LGCN (local-global context network) on annotated faces and fits its PCA shape model to
  their points; the weights file holds both (lrface landmarks --model lgcn --weights FILE)
  --arch lgcn         the architecture
  --w300 DIR          a 300-W root (images and .pts files); --subset ${W300_SUBSETS.join(', ')} (default train)
  --dlib-xml FILE     a dlib imglab XML with 68 parts per box
  --steps N           optimisation steps in all (a resumed run continues up to N)
  --out FILE          the weights to write (.safetensors) when training ends
  --config JSON       the network's config, e.g. '{"inputSize":64,"localLayers":6,"localWidth":32,"globalWidth":32}'
  --batch-size B      faces per step (default 8)
  --optimizer NAME    sgd (default, momentum 0.9) or adam
  --lr LR             learning rate (default 1e-5 for sgd, 1e-4 for adam)
  --sigma S           ground-truth Gaussian sigma in input pixels (default 2)
  --components K      PCA components of the shape model (default 12, at most the faces - 1)
  --margin M          context around the face box, as a fraction of its side (default 0.2)
  --checkpoint FILE   a checkpoint written every --checkpoint-every steps (default 50) and at the end;
                      an existing one is resumed (with the same --config, --optimizer and --lr)
  --checkpoint-every K
  --minutes M         stop after M minutes (the weights are still written)
  --log FILE          append every step as JSON lines
  --device ID         cpu (default) or a CUDA device from \`lrface devices\`
  --seed S            sampling and augmentation seed (default 1; a resumed run mixes in its step)
  --json              print one JSON line at the end:
                      {"arch","faces","steps","seconds","first_loss","last_loss","components","weights","resumed"}
                      (the losses null when no step ran: a checkpoint already at N)
  -h, --help          this text`;

export const trainDicUsage = `usage: lrface train dic (--w300 DIR [--subset NAME] | --dlib-xml FILE) --steps N --out FILE.safetensors [options]
  trains DIC (face super-resolution x8 collaborating with landmark estimation) on annotated faces:
  HR crops of the face boxes (--hr-size, default 128) with their 68 points; LR = bicubic 1/8 of them
  --w300 DIR          a 300-W root; --subset ${W300_SUBSETS.join(', ')} (default train)
  --dlib-xml FILE     a dlib imglab XML with 68 parts per box
  --steps N           optimisation steps in all (a resumed run continues up to N)
  --out FILE          the weights to write (.safetensors) when training ends
  --config JSON       the network's config, e.g. '{"numFeatures":16,"numGroups":2,"numSteps":2}'
  --hr-size P         side of the HR face crops (default 128: 16x16 LR faces)
  --batch-size B      faces per step (default 8)
  --lr LR             Adam learning rate (default 1e-4)
  --release-hg-step K step from which the landmark hourglass trains (default 2000)
  --margin M          context around the face box, as a fraction of its side (default 0.2)
  --no-flip           no mirrored faces (default: half the faces mirrored, points re-indexed)
  --eval-every K      PSNR (Y, border 8) and landmark NME on the training faces every K steps
  --checkpoint FILE   a checkpoint written every --checkpoint-every steps (default 50) and at the end;
                      an existing one is resumed (with the same --config and --lr)
  --checkpoint-every K
  --minutes M         stop after M minutes (the weights are still written)
  --log FILE          append every step as JSON lines
  --device ID         cpu (default) or a CUDA device from \`lrface devices\`
  --seed S            sampling seed (default 1; a resumed run mixes in its step)
  --json              print one JSON line at the end:
                      {"arch","faces","steps","seconds","first_loss","last_loss","psnr","nme","weights","resumed"}
                      (psnr and nme null without --eval-every, or before its first evaluation; the
                      losses null when no step ran: a checkpoint already at N)
  -h, --help          this text`;

export const trainUsage = `${trainSrUsage}\n\n${trainRecognitionUsage}\n\n${trainLandmarksUsage}\n\n${trainDicUsage}`;

function positiveNumber(name, text, { integer = false } = {}) {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${integer ? 'an integer >= 1' : 'a number > 0'}, got '${text}'`);
  return n;
}


/** The optimiser a checkpoint's state belongs to, by its buffers (Adam keeps exp_avg; SGD momentum or nothing). */
const savedOptimizerKind = (info) => (info?.optimizerBuffers ? (info.optimizerBuffers.includes('exp_avg') ? 'adam' : 'sgd') : undefined);

/**
 * Refuses, before anything is loaded or overwritten, to resume `file` with another run than the
 * one that wrote it: the weights of another network configured alike would load silently, an
 * optimiser's state would load into the other kind, and a new --lr would be replaced by the saved
 * one. Each check is [what, saved, given]; saved undefined (an older file) or given undefined
 * (not set on this command line) skips it.
 */
function checkResume(file, checks) {
  const same = (a, b) => (typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b)) : JSON.stringify(a) === JSON.stringify(b));
  const differ = checks.filter(([, saved, given]) => saved !== undefined && given !== undefined && !same(saved, given));
  if (differ.length)
    throw new UsageError(
      `the checkpoint '${file}' was written by another run (${differ.map(([what, saved, given]) => `${what}: ${JSON.stringify(saved)} there, ${JSON.stringify(given)} here`).join('; ')}); ` +
        'resume it with the options it was started with, or give a new --checkpoint',
    );
}


/** The keys on which two configs differ, as checkResume's checks (keys either one lacks are left out: defaults). */
function configChecks(option, saved, own) {
  if (!saved || typeof saved !== 'object' || !own) return [];
  return Object.keys(own).filter((k) => k in saved).map((k) => [`${option} ${k}`, saved[k], own[k]]);
}

/** The options both tasks take, as util.parseArgs declares them. */
const COMMON_OPTIONS = {
  images: { type: 'string' },
  steps: { type: 'string' },
  out: { type: 'string' },
  'batch-size': { type: 'string' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  checkpoint: { type: 'string' },
  'checkpoint-every': { type: 'string' },
  minutes: { type: 'string' },
  log: { type: 'string' },
  device: { type: 'string', default: 'cpu' },
  seed: { type: 'string', default: '1' },
  json: { type: 'boolean', default: false },
};

/**
 * Parses a task's arguments (its own options beside the common ones) and checks the common
 * ones: required values, the output's extension, files that would overwrite each other.
 * Returns the raw values and the checked common options.
 */
function parseTaskArgs(argv, options) {
  let v;
  try {
    ({ values: v } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options } }));
  } catch (err) {
    if (typeof err?.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(err.message);
    throw err;
  }
  for (const [name, value] of Object.entries(v)) if (value === '') throw new UsageError(`option '--${name}' needs a value`);
  return v;
}

function checkCommon(v, task) {
  if (!v.images) throw new UsageError(`missing --images DIR`);
  if (!v.steps) throw new UsageError('missing --steps N');
  if (!v.out) throw new UsageError('missing --out FILE.safetensors');
  if (!/\.safetensors$/i.test(v.out)) throw new UsageError(`--out must name a .safetensors file, got '${v.out}'`);
  const files = { '--out': v.out, '--init': v.init, '--checkpoint': v.checkpoint, '--log': v.log, '--dlib-xml': v['dlib-xml'] };
  const named = Object.entries(files).filter(([, f]) => f !== undefined);
  for (let i = 0; i < named.length; i++)
    for (let j = i + 1; j < named.length; j++)
      if (resolve(named[i][1]) === resolve(named[j][1])) throw new UsageError(`${named[i][0]} and ${named[j][0]} name the same file '${named[i][1]}'; one would overwrite the other`);
  const seed = Number(v.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`--seed must be an integer >= 0, got '${v.seed}'`);
  if (v.optimizer !== undefined && v.optimizer !== 'sgd' && v.optimizer !== 'adam') throw new UsageError(`--optimizer must be sgd or adam, got '${v.optimizer}'`);
  if (v['checkpoint-every'] !== undefined && v.checkpoint === undefined) throw new UsageError('--checkpoint-every needs --checkpoint FILE');
  return {
    task,
    images: v.images,
    steps: positiveNumber('steps', v.steps, { integer: true }),
    out: v.out,
    checkpoint: v.checkpoint,
    checkpointEvery: v['checkpoint-every'] === undefined ? 50 : positiveNumber('checkpoint-every', v['checkpoint-every'], { integer: true }),
    minutes: v.minutes === undefined ? undefined : positiveNumber('minutes', v.minutes),
    log: v.log,
    device: v.device,
    seed,
    json: v.json,
  };
}

/** Parses `lrface train sr`'s arguments; throws a UsageError on anything unexpected. */
export function parseTrainSrArgs(argv) {
  const v = parseTaskArgs(argv, {
    model: { type: 'string' },
    init: { type: 'string' },
    scale: { type: 'string' },
    'patch-size': { type: 'string' },
    'clip-norm': { type: 'string' },
    eval: { type: 'string' },
    'eval-every': { type: 'string' },
  });
  if (!v.model) throw new UsageError('missing --model NAME');
  if (!trainable().includes(v.model)) throw new UsageError(`--model must be one of ${trainable().join(', ')}, got '${v.model}'`);
  const opts = { ...checkCommon(v, 'sr'), model: v.model, init: v.init, evalDir: v.eval, recipe: {} };
  deviceOption(opts.device, devices());
  if (v.scale !== undefined) {
    const scales = v.scale.split(',').map((s) => Number(s.trim()));
    if (!scales.every((s) => Number.isInteger(s) && s >= 2 && s <= 8)) throw new UsageError(`--scale must be integers in [2, 8] separated by commas, got '${v.scale}'`);
    opts.recipe.scales = scales;
  }
  if (v['patch-size'] !== undefined) opts.recipe.patchSize = positiveNumber('patch-size', v['patch-size'], { integer: true });
  if (v['batch-size'] !== undefined) opts.recipe.batchSize = positiveNumber('batch-size', v['batch-size'], { integer: true });
  if (v.optimizer !== undefined) opts.recipe.optimizer = v.optimizer;
  if (v.lr !== undefined) opts.recipe.lr = positiveNumber('lr', v.lr);
  if (v['clip-norm'] !== undefined) opts.recipe.clip = { kind: 'norm', maxNorm: positiveNumber('clip-norm', v['clip-norm']) };
  if (v['eval-every'] !== undefined && v.eval === undefined) throw new UsageError('--eval-every needs --eval DIR');
  opts.evalEvery = v.eval === undefined ? 0 : v['eval-every'] === undefined ? 100 : positiveNumber('eval-every', v['eval-every'], { integer: true });
  return opts;
}

/** Parses `lrface train recognition`'s arguments; throws a UsageError on anything unexpected. */
export function parseTrainRecognitionArgs(argv) {
  const v = parseTaskArgs(argv, {
    arch: { type: 'string' },
    config: { type: 'string' },
    'center-loss': { type: 'string' },
    downscale: { type: 'string' },
    margin: { type: 'string' },
    'min-images': { type: 'string' },
  });
  const archs = RECOGNITION_ARCHS.filter((a) => a !== 'resnet29');
  if (!v.arch) throw new UsageError('missing --arch NAME');
  if (!archs.includes(v.arch)) throw new UsageError(`--arch must be one of ${archs.join(', ')}, got '${v.arch}'`);
  const opts = { ...checkCommon(v, 'recognition'), arch: v.arch, trainer: {} };
  deviceOption(opts.device, devices());
  opts.config = jsonObjectOption('config', v.config);
  if ('numClasses' in opts.config) throw new UsageError('--config: numClasses is the number of identity folders; leave it out');
  opts.batchSize = v['batch-size'] === undefined ? 32 : positiveNumber('batch-size', v['batch-size'], { integer: true });
  if (v.optimizer !== undefined) opts.trainer.optimizer = v.optimizer;
  if (v.lr !== undefined) opts.trainer.lr = positiveNumber('lr', v.lr);
  if (v['center-loss'] !== undefined) {
    const w = Number(v['center-loss']);
    if (!(w >= 0) || !Number.isFinite(w)) throw new UsageError(`--center-loss must be a number >= 0, got '${v['center-loss']}'`);
    opts.trainer.centerLossWeight = w;
  }
  if (v.downscale !== undefined) {
    opts.downscale = positiveNumber('downscale', v.downscale, { integer: true });
    if (opts.downscale < 2) throw new UsageError(`--downscale must be an integer >= 2, got '${v.downscale}'`);
  }
  opts.margin = v.margin === undefined ? 0 : Number(v.margin);
  if (!(opts.margin >= 0 && opts.margin <= 1)) throw new UsageError(`--margin must be a number in [0, 1], got '${v.margin}'`);
  opts.minImages = v['min-images'] === undefined ? 1 : positiveNumber('min-images', v['min-images'], { integer: true });
  return opts;
}

/** Trains and writes the weights; returns the summary the --json line prints. */
export async function trainSr(opts, { onLog } = {}) {
  const entry = MODEL_REGISTRY[opts.model];
  // A model with shipped weights (face-x4) starts from them, others from their initialisation,
  // unless --init names weights; loadSuperResolver also checks the device id.
  const sr = await loadSuperResolver(opts.model, { ...(opts.init !== undefined ? { weights: opts.init } : { untrained: true }), device: opts.device });
  const net = sr.network;
  try {
    const scales = opts.recipe.scales ?? entry.scales;
    const images = await loadHrImages(opts.images);
    // Checked before training: an image too small for the protocol would fail at the first evaluation.
    const evalImages = opts.evalDir !== undefined ? await loadEvalImages(opts.evalDir, scales[0], '--eval') : undefined;
    for (const f of [opts.out, opts.checkpoint, opts.log]) if (f !== undefined) mkdirSync(dirname(resolve(f)), { recursive: true });
    const resumed = opts.checkpoint !== undefined && existsSync(opts.checkpoint);
    if (resumed) {
      const meta = readCheckpointInfo(opts.checkpoint);
      const recipe = meta?.extra?.recipe;
      const sameArch = meta?.extra?.arch === undefined || meta.extra.arch === net.arch;
      checkResume(opts.checkpoint, [
        ['--model architecture', meta?.extra?.arch, net.arch],
        ...(sameArch ? configChecks('--model config', meta?.extra?.config, net.config) : []),
        ['--optimizer', recipe?.optimizer ?? savedOptimizerKind(meta), opts.recipe.optimizer ?? defaultRecipe(net).optimizer],
        ['--lr', recipe?.lr, opts.recipe.lr],
      ]);
    }
    const result = await trainSuperResolution(net, {
      ...opts.recipe,
      scales,
      images,
      steps: opts.steps,
      evalImages,
      evalEvery: opts.evalEvery,
      evalScale: scales[0],
      checkpoint: opts.checkpoint,
      checkpointEvery: opts.checkpointEvery,
      resume: true,
      timeLimit: opts.minutes === undefined ? undefined : opts.minutes * 60,
      // trainSuperResolution mixes the resumed step into it (new patches after a resume).
      seed: opts.seed,
      onLog: (e) => {
        if (opts.log !== undefined) appendFileSync(opts.log, JSON.stringify(e) + '\n');
        onLog?.(e);
      },
    }).catch((err) => {
      throw divergenceHint(err);
    });
    const note = `${entry.arch} trained by lrface train sr for ${result.steps} steps on ${images.length} HR images of ${opts.images}${opts.init ? `, initialised from ${opts.init}` : ''}`;
    const digest = saveSrWeights(opts.out, net, { scales, note });
    const lastEval = result.evals.at(-1)?.eval;
    return {
      model: opts.model,
      arch: entry.arch,
      steps: result.steps,
      seconds: Math.round(result.seconds * 10) / 10,
      first_loss: result.losses[0] ?? null,
      last_loss: result.losses.at(-1) ?? null,
      eval: lastEval ? { scale: scales[0], psnr: lastEval.psnr, ssim: lastEval.ssim, bicubic_psnr: lastEval.bicubicPsnr, bicubic_ssim: lastEval.bicubicSsim } : null,
      weights: opts.out,
      sha256: digest,
      resumed,
    };
  } finally {
    sr.dispose();
  }
}

/** Parses `lrface train landmarks`' arguments; throws a UsageError on anything unexpected. */
export function parseTrainLandmarksArgs(argv) {
  const v = parseTaskArgs(argv, {
    arch: { type: 'string' },
    w300: { type: 'string' },
    subset: { type: 'string' },
    'dlib-xml': { type: 'string' },
    config: { type: 'string' },
    sigma: { type: 'string' },
    components: { type: 'string' },
    margin: { type: 'string' },
  });
  if (!v.arch) throw new UsageError('missing --arch lgcn');
  if (v.arch !== 'lgcn') throw new UsageError(`--arch must be lgcn, got '${v.arch}'`);
  const dataset = annotatedDataset(v);
  // The data comes from --w300/--dlib-xml; --images is sr's and recognition's.
  const opts = { ...checkCommon({ ...v, images: v.w300 ?? v['dlib-xml'] }, 'landmarks'), arch: v.arch, dataset, config: jsonObjectOption('config', v.config) };
  deviceOption(opts.device, devices());
  opts.batchSize = v['batch-size'] === undefined ? 8 : positiveNumber('batch-size', v['batch-size'], { integer: true });
  opts.optimizer = { ...(v.optimizer !== undefined ? { kind: v.optimizer } : {}), ...(v.lr !== undefined ? { lr: positiveNumber('lr', v.lr) } : {}) };
  opts.sigma = v.sigma === undefined ? 2 : positiveNumber('sigma', v.sigma);
  opts.components = v.components === undefined ? 12 : positiveNumber('components', v.components, { integer: true });
  opts.margin = v.margin === undefined ? 0.2 : Number(v.margin);
  if (!(opts.margin >= 0 && opts.margin < 2)) throw new UsageError(`--margin must be a number in [0, 2), got '${v.margin}'`);
  return opts;
}

/** A --config JSON object (an empty one when not given). */
function jsonObjectOption(name, text) {
  if (text === undefined) return {};
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${name} must be a JSON object, got '${text}' (${err.message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`--${name} must be a JSON object, got '${text}'`);
  return value;
}

/**
 * Builds what --config (and the other network options) describe; the network's own complaint
 * about a value (a TypeError or RangeError naming it) becomes a usage error pointing at --config.
 */
function fromConfig(build) {
  try {
    return build();
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) throw new UsageError(`--config: ${err.message}`);
    throw err;
  }
}

/** Side of the face crops LGCN's training draws its augmented inputs from. */
const LANDMARK_CROP = 128;

/**
 * The annotated faces of a dataset as `size`-pixel crops (the face box squared and widened by
 * `margin`, as the LGCN detector crops it) with their 68 points in crop pixels.
 */
async function labelledCrops(spec, margin, size = LANDMARK_CROP) {
  const { data, name, origin } = await openDataset(spec);
  const faces = [];
  for (let i = 0; i < data.length; i++) {
    const sample = data.get(i);
    const usable = sample.boxes.map((_, f) => f).filter((f) => sample.landmarks[f]?.length === 136);
    if (usable.length === 0) continue;
    const image = await sample.image.decode();
    for (const f of usable) {
      const box = { ...sample.boxes[f], x: sample.boxes[f].x - origin, y: sample.boxes[f].y - origin };
      const affine = cropAffine(box, [size, size], margin);
      faces.push({
        id: `${sample.image.name}#${f}`,
        image: warpAffine(image, affine, size, size, { fill: 'replicate', antialias: true }),
        landmarks: transformPoints(sample.landmarks[f].map((v) => v - origin), affine),
      });
    }
  }
  if (faces.length < 2) throw new Error(`train: ${name} has ${faces.length} face(s) with 68 annotated points; at least 2 are needed`);
  return faces;
}

/** Trains LGCN, fits its shape model and writes both; returns the summary the --json line prints. */
export async function trainLandmarks(opts, { onLog } = {}) {
  const t0 = Date.now();
  const faces = await labelledCrops(opts.dataset, opts.margin);
  for (const f of [opts.out, opts.checkpoint, opts.log]) if (f !== undefined) mkdirSync(dirname(resolve(f)), { recursive: true });
  const trainer = fromConfig(() => new LgcnTrainer({ network: opts.config, optimizer: opts.optimizer, heatmapSigma: opts.sigma }, opts.log !== undefined ? { log: opts.log } : {}));
  try {
    trainer.network.to(opts.device);
    const resumed = opts.checkpoint !== undefined && existsSync(opts.checkpoint);
    if (resumed) {
      // LgcnTrainer.load compares the network's config itself.
      const meta = readCheckpointInfo(opts.checkpoint);
      checkResume(opts.checkpoint, [
        ['--optimizer', savedOptimizerKind(meta), opts.optimizer.kind ?? 'sgd'],
        ['--lr', meta?.baseLr ?? undefined, opts.optimizer.lr],
      ]);
      trainer.load(opts.checkpoint);
    }
    const rng = Rng.resumed(opts.seed, trainer.step);
    const results = [];
    const outOfTime = () => opts.minutes !== undefined && (Date.now() - t0) / 60000 > opts.minutes;
    while (trainer.step < opts.steps && !outOfTime()) {
      const batch = trainer.batch(faces, rng, opts.batchSize);
      const images = batch.images.to(opts.device);
      const r = trainer.trainStep(images, batch.landmarks);
      if (images !== batch.images) images.dispose();
      batch.images.dispose();
      results.push(r);
      onLog?.({ ...r, seconds: (Date.now() - t0) / 1000 });
      if (opts.checkpoint !== undefined && trainer.step % opts.checkpointEvery === 0) trainer.save(opts.checkpoint);
      await new Promise((r) => setImmediate(r));
    }
    if (opts.checkpoint !== undefined) trainer.save(opts.checkpoint);
    // The shape model is fitted to the training points in the network's input frame.
    const S = trainer.network.config.inputSize;
    const shapes = faces.map((f) => Float64Array.from(f.landmarks, (v) => (v + 0.5) * (S / LANDMARK_CROP) - 0.5));
    const components = Math.min(opts.components, shapes.length - 1);
    const shapeModel = PcaShapeModel.fit(shapes, { components, imageSize: S });
    saveLgcnWeights(opts.out, trainer.network, { shapeModel, margin: opts.margin, metadata: { note: `LGCN trained by lrface train landmarks for ${trainer.step} steps on ${faces.length} faces` } });
    return {
      arch: opts.arch,
      faces: faces.length,
      steps: trainer.step,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      first_loss: results[0]?.loss ?? null,
      last_loss: results.at(-1)?.loss ?? null,
      components,
      weights: opts.out,
      resumed,
    };
  } finally {
    trainer.network.dispose();
  }
}

/** The --w300/--dlib-xml pair both landmark-annotated tasks take. */
function annotatedDataset(v) {
  if ((v.w300 === undefined) === (v['dlib-xml'] === undefined)) throw new UsageError('give --w300 DIR or --dlib-xml FILE (one of them)');
  if (v.subset !== undefined && v.w300 === undefined) throw new UsageError('--subset goes with --w300');
  const subset = v.subset ?? 'train';
  if (!W300_SUBSETS.includes(subset)) throw new UsageError(`--subset must be one of ${W300_SUBSETS.join(', ')}, got '${subset}'`);
  return v.w300 !== undefined ? { kind: 'w300', root: v.w300, subset } : { kind: 'dlib-xml', file: v['dlib-xml'] };
}

/** Parses `lrface train dic`'s arguments; throws a UsageError on anything unexpected. */
export function parseTrainDicArgs(argv) {
  const v = parseTaskArgs(argv, {
    w300: { type: 'string' },
    subset: { type: 'string' },
    'dlib-xml': { type: 'string' },
    config: { type: 'string' },
    'hr-size': { type: 'string' },
    'release-hg-step': { type: 'string' },
    margin: { type: 'string' },
    'no-flip': { type: 'boolean', default: false },
    'eval-every': { type: 'string' },
  });
  const dataset = annotatedDataset(v);
  if (v.optimizer !== undefined && v.optimizer !== 'adam') throw new UsageError(`--optimizer: DIC trains with adam, got '${v.optimizer}'`);
  const opts = { ...checkCommon({ ...v, images: v.w300 ?? v['dlib-xml'] }, 'dic'), dataset, config: jsonObjectOption('config', v.config) };
  deviceOption(opts.device, devices());
  opts.hrSize = v['hr-size'] === undefined ? 128 : positiveNumber('hr-size', v['hr-size'], { integer: true });
  opts.batchSize = v['batch-size'] === undefined ? 8 : positiveNumber('batch-size', v['batch-size'], { integer: true });
  opts.trainer = {};
  if (v.lr !== undefined) opts.trainer.lr = positiveNumber('lr', v.lr);
  if (v['release-hg-step'] !== undefined) {
    const k = Number(v['release-hg-step']);
    if (!Number.isInteger(k) || k < 0) throw new UsageError(`--release-hg-step must be an integer >= 0, got '${v['release-hg-step']}'`);
    opts.trainer.releaseHgStep = k;
  }
  opts.margin = v.margin === undefined ? 0.2 : Number(v.margin);
  if (!(opts.margin >= 0 && opts.margin < 2)) throw new UsageError(`--margin must be a number in [0, 2), got '${v.margin}'`);
  opts.flip = !v['no-flip'];
  opts.evalEvery = v['eval-every'] === undefined ? 0 : positiveNumber('eval-every', v['eval-every'], { integer: true });
  return opts;
}

/** Trains DIC and writes its weights; returns the summary the --json line prints. */
export async function trainDic(opts, { onLog } = {}) {
  const t0 = Date.now();
  const net = fromConfig(() => new Dic(opts.config));
  try {
    const step = net.config.scale * net.sizeMultiple;
    if (opts.hrSize % step !== 0) throw new UsageError(`--hr-size must be a multiple of ${step} for this network (scale ${net.config.scale}), got ${opts.hrSize}`);
    const faces = await labelledCrops(opts.dataset, opts.margin, opts.hrSize);
    net.to(opts.device);
    const trainer = new DicTrainer(net, opts.trainer);
    for (const f of [opts.out, opts.checkpoint, opts.log]) if (f !== undefined) mkdirSync(dirname(resolve(f)), { recursive: true });
    const resumed = opts.checkpoint !== undefined && existsSync(opts.checkpoint);
    if (resumed) {
      // DicTrainer.loadCheckpoint compares the network's config itself.
      checkResume(opts.checkpoint, [['--lr', readCheckpointInfo(opts.checkpoint)?.baseLr ?? undefined, opts.trainer.lr]]);
      trainer.loadCheckpoint(opts.checkpoint);
    }
    const rng = Rng.resumed(opts.seed, trainer.step);
    const results = [];
    let lastEval = null;
    const outOfTime = () => opts.minutes !== undefined && (Date.now() - t0) / 60000 > opts.minutes;
    const evaluate = () => {
      const e = evaluateDic(net, faces);
      lastEval = { psnr: e.psnr, nme: e.nme ?? null };
      return lastEval;
    };
    while (trainer.step < opts.steps && !outOfTime()) {
      const { faces: chosen, flips } = sampleDicFaces(faces, opts.batchSize, rng, opts.flip);
      const batch = dicBatch(net, chosen, { flips });
      let r;
      try {
        r = trainer.trainStep(batch);
      } finally {
        disposeDicBatch(batch);
      }
      results.push(r);
      const entry = { step: trainer.step, ...r, seconds: (Date.now() - t0) / 1000 };
      if (opts.evalEvery > 0 && trainer.step % opts.evalEvery === 0) entry.eval = evaluate();
      if (opts.log !== undefined) appendFileSync(opts.log, JSON.stringify(entry) + '\n');
      onLog?.(entry);
      if (opts.checkpoint !== undefined && trainer.step % opts.checkpointEvery === 0) trainer.saveCheckpoint(opts.checkpoint);
      await new Promise((r) => setImmediate(r));
    }
    if (opts.checkpoint !== undefined) trainer.saveCheckpoint(opts.checkpoint);
    saveDicWeights(opts.out, net, { note: `DIC trained by lrface train dic for ${trainer.step} steps on ${faces.length} faces` });
    return {
      arch: 'dic',
      faces: faces.length,
      steps: trainer.step,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      first_loss: results[0]?.total ?? null,
      last_loss: results.at(-1)?.total ?? null,
      psnr: lastEval?.psnr ?? null,
      nme: lastEval?.nme ?? null,
      weights: opts.out,
      resumed,
    };
  } finally {
    net.dispose();
  }
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp']);

/** A diverged run's hint names the library's options; on the command line they are --lr and --clip-norm. */
function divergenceHint(err) {
  const hint = /\(lower 'lr' or enable 'clip'\)$/;
  if (!(err instanceof Error) || !hint.test(err.message)) return err;
  return new Error(err.message.replace(hint, '(lower --lr, or bound the gradient with --clip-norm C)'), { cause: err });
}

/** The identity sub-folders of `dir` (sorted by name) with at least `minImages` images each. */
export async function readIdentityFolders(dir, minImages = 1) {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new Error(`train recognition: cannot read the folder '${dir}' (${err.code ?? err.message})`, { cause: err });
  }
  const identities = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const files = (await readdir(join(dir, entry.name))).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
    if (files.length >= minImages) identities.push({ name: entry.name, files: files.map((f) => join(dir, entry.name, f)) });
  }
  if (identities.length < 2)
    throw new Error(`train recognition: '${dir}' needs at least 2 identity sub-folders holding ${minImages} or more images each, found ${identities.length}`);
  return identities;
}

/** checkResume's check of the identity folders, naming the first that differs rather than listing thousands. */
function identityCheck(saved, names) {
  const what = 'identity folders of --images';
  if (!Array.isArray(saved) || JSON.stringify(saved) === JSON.stringify(names)) return [what, saved, saved];
  const i = names.findIndex((n, k) => saved[k] !== n);
  const at = i < 0 ? saved.length : i;
  const describe = (list) => `${list.length} folders${at < list.length ? `, number ${at + 1} '${list[at]}'` : ''}`;
  return [what, describe(saved), describe(names)];
}

/** Trains a recognition network and writes its weights; returns the summary the --json line prints. */
export async function trainRecognition(opts, { onLog } = {}) {
  const t0 = Date.now();
  const identities = await readIdentityFolders(opts.images, opts.minImages);
  const faces = [];
  for (const [identity, { files }] of identities.entries())
    for (const file of files) faces.push({ image: await decodeImage(file, { orientation: 'exif' }), identity });
  const network = fromConfig(() => createRecognitionNetwork(opts.arch, { ...opts.config, numClasses: identities.length }));
  try {
    network.to(opts.device);
    const trainer = new RecognitionTrainer(network, opts.trainer);
    for (const f of [opts.out, opts.checkpoint, opts.log]) if (f !== undefined) mkdirSync(dirname(resolve(f)), { recursive: true });
    const resumed = opts.checkpoint !== undefined && existsSync(opts.checkpoint);
    const names = identities.map((i) => i.name);
    if (resumed) {
      const meta = readCheckpointInfo(opts.checkpoint);
      const extra = meta?.extra;
      checkResume(opts.checkpoint, [
        ['--arch', extra?.arch, opts.arch],
        ...configChecks('--config', extra?.config, network.config),
        // The classifier's rows are the identity folders in order: others would be trained under their labels.
        identityCheck(extra?.identities, names),
        ['--optimizer', extra?.optimizer ?? savedOptimizerKind(meta), trainer.config.optimizer],
        ['--lr', extra?.lr, opts.trainer.lr],
      ]);
      trainer.load(opts.checkpoint);
    }
    const batches = identityBatches(faces, { batchSize: opts.batchSize, inputShape: network.inputShape, margin: opts.margin, lowResolutionScale: opts.downscale, seed: Rng.resumed(opts.seed, trainer.step) });
    const results = [];
    const save = () =>
      opts.checkpoint !== undefined &&
      trainer.save(opts.checkpoint, { arch: opts.arch, config: network.config, identities: names, optimizer: trainer.config.optimizer, lr: trainer.config.lr });
    const outOfTime = () => opts.minutes !== undefined && (Date.now() - t0) / 60000 > opts.minutes;
    while (trainer.step < opts.steps && !outOfTime()) {
      for (const batch of batches) {
        const r = trainer.trainStep({ images: batch.images, labels: batch.labels });
        for (const t of [batch.images, batch.labels, batch.targets]) t?.dispose();
        results.push(r);
        const entry = { step: trainer.step, ...r, seconds: (Date.now() - t0) / 1000 };
        if (opts.log !== undefined) appendFileSync(opts.log, JSON.stringify(entry) + '\n');
        onLog?.(entry);
        if (trainer.step % opts.checkpointEvery === 0) save();
        // Let other work (I/O, progress output) run between steps.
        await new Promise((r) => setImmediate(r));
        if (trainer.step >= opts.steps || outOfTime()) break;
      }
    }
    save();
    saveRecognitionWeights(opts.out, network, { note: `${opts.arch} trained by lrface train recognition for ${trainer.step} steps on ${faces.length} images of ${names.length} identities in ${opts.images}` });
    const last = results.slice(-10);
    return {
      arch: opts.arch,
      identities: names.length,
      images: faces.length,
      steps: trainer.step,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      first_loss: results[0]?.loss ?? null,
      last_loss: results.at(-1)?.loss ?? null,
      train_accuracy: last.length ? last.reduce((a, r) => a + r.accuracy, 0) / last.length : null,
      weights: opts.out,
      resumed,
    };
  } finally {
    network.dispose();
  }
}

/** Each task: its usage, argument parser, training, a progress line per log entry (or null) and the summary's lines. */
const TASKS = {
  sr: {
    usage: () => trainSrUsage,
    parse: parseTrainSrArgs,
    train: trainSr,
    progress: (e, opts) =>
      e.eval
        ? `step ${e.step}: PSNR ${e.eval.psnr.toFixed(2)} dB (bicubic ${e.eval.bicubicPsnr.toFixed(2)}), SSIM ${e.eval.ssim.toFixed(4)}`
        : `step ${e.step}/${opts.steps} loss ${e.loss.toExponential(3)} lr ${e.lr.toExponential(2)} ${e.seconds.toFixed(1)} s`,
    lines: (r) => [
      `${r.model} (${r.arch}): ${r.steps} steps in ${r.seconds} s${r.resumed ? ' (resumed)' : ''}; loss ${r.first_loss?.toExponential(3)} -> ${r.last_loss?.toExponential(3)}`,
      ...(r.eval ? [`eval x${r.eval.scale}: PSNR ${r.eval.psnr.toFixed(2)} dB / SSIM ${r.eval.ssim.toFixed(4)} (bicubic ${r.eval.bicubic_psnr.toFixed(2)} / ${r.eval.bicubic_ssim.toFixed(4)})`] : []),
      `weights written to ${r.weights} (sha256 ${r.sha256}); use them with: lrface sr --model ${r.model} --weights ${r.weights} <images>`,
    ],
  },
  recognition: {
    usage: () => trainRecognitionUsage,
    parse: parseTrainRecognitionArgs,
    train: trainRecognition,
    progress: (e, opts) => `step ${e.step}/${opts.steps} loss ${e.loss.toFixed(4)} (softmax ${e.softmax.toFixed(4)}, center ${e.center.toFixed(4)}) accuracy ${(100 * e.accuracy).toFixed(0)} % ${e.seconds.toFixed(1)} s`,
    lines: (r) => [
      `${r.arch}: ${r.steps} steps on ${r.images} images of ${r.identities} identities in ${r.seconds} s${r.resumed ? ' (resumed)' : ''}; loss ${r.first_loss?.toFixed(4)} -> ${r.last_loss?.toFixed(4)}, training accuracy ${(100 * (r.train_accuracy ?? 0)).toFixed(0)} %`,
      `weights written to ${r.weights}; use them with: lrface verify a.jpg b.jpg --weights ${r.weights}`,
    ],
  },
  landmarks: {
    usage: () => trainLandmarksUsage,
    parse: parseTrainLandmarksArgs,
    train: trainLandmarks,
    progress: (e, opts) => `step ${e.step}/${opts.steps} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.seconds.toFixed(1)} s`,
    lines: (r) => [
      `${r.arch}: ${r.steps} steps on ${r.faces} faces in ${r.seconds} s${r.resumed ? ' (resumed)' : ''}; loss ${r.first_loss?.toFixed(4)} -> ${r.last_loss?.toFixed(4)}; shape model of ${r.components} components`,
      `weights written to ${r.weights}; use them with: lrface landmarks image.jpg --box x,y,w,h --model lgcn --weights ${r.weights}`,
    ],
  },
  dic: {
    usage: () => trainDicUsage,
    parse: parseTrainDicArgs,
    train: trainDic,
    progress: (e, opts) =>
      `step ${e.step}/${opts.steps} loss ${e.total.toFixed(4)} (pixel ${e.pixel.toFixed(4)}, align ${e.align.toFixed(4)})${e.hourglassTrained ? '' : ' hourglass fixed'} ${e.seconds.toFixed(1)} s` +
      (e.eval ? `; PSNR ${e.eval.psnr.toFixed(2)} dB, NME ${e.eval.nme?.toFixed(4)}` : ''),
    lines: (r) => [
      `dic: ${r.steps} steps on ${r.faces} faces in ${r.seconds} s${r.resumed ? ' (resumed)' : ''}; loss ${r.first_loss?.toFixed(4)} -> ${r.last_loss?.toFixed(4)}`,
      `weights written to ${r.weights}; use them with: lrface sr face16.png --model dic --weights ${r.weights}`,
    ],
  },
};

/** lrface train <task> ... */
export async function runTrain(argv) {
  const [name, ...rest] = argv;
  const names = Object.keys(TASKS).join(', ');
  if (name === undefined) {
    console.error(`lrface train: missing the task (${names})\n\n${trainUsage}`);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(trainUsage);
    return 0;
  }
  const task = Object.hasOwn(TASKS, name) ? TASKS[name] : undefined;
  if (!task) {
    console.error(`lrface train: unknown task '${name}' (tasks: ${names})\n\n${trainUsage}`);
    return 2;
  }
  const { opts, exit } = parseCommand(`train ${name}`, rest, task.parse, task.usage());
  if (!opts) return exit;
  let summary;
  try {
    summary = await task.train(opts, {
      onLog: (e) => {
        // Every 10th step (and the first and last), and every evaluation.
        if (e.eval || e.step === 1 || e.step % 10 === 0 || e.step === opts.steps) process.stderr.write(task.progress(e, opts) + '\n');
      },
    });
  } catch (err) {
    // A setting found wrong only once the data or network is known (e.g. DIC's --hr-size).
    if (!(err instanceof UsageError)) throw err;
    console.error(`lrface train ${name}: ${err.message}\n\n${task.usage()}`);
    return 2;
  }
  if (opts.json) console.log(JSON.stringify(summary));
  else for (const line of task.lines(summary)) console.log(line);
  return 0;
}
