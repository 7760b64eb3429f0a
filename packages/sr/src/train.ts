// Training of every SR network on HR images with its paper's recipe by default: degradation
// (MATLAB bicubic down then up), patch size, optimiser, schedule, gradient clipping and loss;
// atomic checkpoints and evaluation (PSNR/SSIM against bicubic) during training.
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, tensor, typeError, type DeviceSpec, type Tensor } from '@lrface/cuda-core';
import { Adam, SGD, clipGradNorm, clipGradValue, loadCheckpoint, saveCheckpoint, type Optimizer } from '@lrface/nn';
import { Dataset, Rng, bicubicResize, convertColor, cropImage, decodeImage, modcrop, type FaceSample, type RawImage } from '@lrface/datasets';
import { Drcn, cropBorder, type SrNetwork } from './models.js';
import { toUnitFloat, upscaleImage } from './pipeline.js';
import { evaluateNetwork } from './evaluate.js';

/**
 * Gradient clipping. VDSR's adjustable clip bounds the gradient by theta / lr (so an update by
 * theta at most, whatever the rate): of the gradient's global norm ('adjustable-norm', VDSR's
 * default here) or of each element ('adjustable', the paper's wording). Or a fixed bound on each
 * element ('value') or on the global norm ('norm').
 */
export type ClipSpec =
  | { kind: 'adjustable-norm'; theta: number }
  | { kind: 'adjustable'; theta: number }
  | { kind: 'value'; value: number }
  | { kind: 'norm'; maxNorm: number };

// The bound's field of each clip kind.
const CLIP_BOUND = { 'adjustable-norm': 'theta', adjustable: 'theta', value: 'value', norm: 'maxNorm' } as const;

function checkClip(clip: unknown): ClipSpec | null {
  const fn = 'trainSuperResolution';
  if (clip === null) return null;
  if (typeof clip !== 'object' || Array.isArray(clip)) throw typeError(fn, 'clip', "null or { kind: 'adjustable-norm' | 'adjustable', theta } | { kind: 'value', value } | { kind: 'norm', maxNorm }", clip);
  const kind = (clip as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !(kind in CLIP_BOUND)) throw rangeError(fn, 'clip.kind', `one of ${Object.keys(CLIP_BOUND).map((k) => `'${k}'`).join(', ')}`, kind);
  const bound = CLIP_BOUND[kind as ClipSpec['kind']];
  checkKeys(fn, clip, ['kind', bound], 'clip');
  const value = (clip as Record<string, unknown>)[bound];
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw rangeError(fn, `clip.${bound}`, 'a finite number > 0', value);
  return clip as ClipSpec;
}

export interface TrainRecipe {
  /** Square patch side (input; the target is cropped by the net's border in 'valid' mode). */
  patchSize: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  /** Per-layer lr multipliers by parameter-name prefix (SRCNN: 0.1 for the last layer). */
  lrMultipliers?: Record<string, number>;
  momentum: number;
  weightDecay: number;
  /** Multiply the lr by lrGamma every lrStepEvery steps (0: constant). */
  lrStepEvery: number;
  lrGamma: number;
  clip: ClipSpec | null;
  /** 'half-sum': 1/(2N) sum of squares (VDSR, DRCN); 'mean': mean squared error. */
  loss: 'half-sum' | 'mean';
  /** Scales sampled per patch. */
  scales: number[];
  /** Random flips and 90-degree rotations (VDSR's augmentation). */
  augment: boolean;
  /** 'valid' padding during training (SRCNN / SRNET). */
  validPadding: boolean;
  /** DRCN: steps over which alpha decays linearly from 1 to 0. */
  alphaDecaySteps?: number;
}

/** Each paper's recipe (design/models/01, 02, 06; UNCERTAIN values marked there). */
export function defaultRecipe(net: SrNetwork): TrainRecipe {
  const base = { momentum: 0.9, weightDecay: 0, lrStepEvery: 0, lrGamma: 0.1, clip: null, loss: 'mean' as const, augment: false, validPadding: false };
  switch (net.arch) {
    case 'srcnn':
      return { ...base, patchSize: 33, batchSize: 128, optimizer: 'sgd', lr: 1e-4, lrMultipliers: { conv3: 0.1 }, scales: [3], validPadding: true };
    case 'srnet':
      // Table 1 gives the layers only; SRCNN's optimiser is assumed (UNCERTAIN).
      return { ...base, patchSize: 33, batchSize: 64, optimizer: 'sgd', lr: 1e-4, lrMultipliers: { conv3: 0.1 }, scales: [4], validPadding: true };
    case 'vdsr':
      // The paper's per-element reading of its clip (theta 0.01 at lr 0.1) moves every weight by up to
      // 0.01 in the first step, all in the gradient's sign: the loss jumped from 8 to 1e14 and the
      // network died (output = bicubic) on Set5. Bounding the global norm by theta / lr trains.
      return { ...base, patchSize: 41, batchSize: 64, optimizer: 'sgd', lr: 0.1, weightDecay: 1e-4, lrStepEvery: 20 * 1000, clip: { kind: 'adjustable-norm', theta: 0.01 }, loss: 'half-sum', scales: [2, 3, 4], augment: true };
    case 'drcn':
      // DRCN's paper names no clipping, but unclipped its 16 shared recursions made the loss NaN at
      // step 2 (Set5, batch 4); VDSR's clip from the same authors (above) trains: 150 steps of
      // batch 8 beat bicubic at x3 (30.69 against 30.39 dB).
      return { ...base, patchSize: 41, batchSize: 64, optimizer: 'sgd', lr: 0.01, weightDecay: 1e-4, lrStepEvery: 25 * 1000, clip: { kind: 'adjustable-norm', theta: 0.01 }, loss: 'half-sum', scales: [3], alphaDecaySteps: 25 * 1000 };
    case 'srinc':
    case 'srinc-f': {
      const scales = (net.config as { scales: number[] }).scales;
      // The seed gives 51x51 patches; optimiser and lr are not published (UNCERTAIN): Adam 1e-4.
      return { ...base, patchSize: 51, batchSize: 64, optimizer: 'adam', lr: 1e-4, scales, augment: true };
    }
    default:
      throw rangeError('defaultRecipe', 'net', 'a trainable network', net.arch, true);
  }
}

/** HR training images: a folder, files, decoded images, or a datasets reader of face samples. */
export type HrSource = string | string[] | RawImage[] | Dataset<FaceSample>;

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp']);

const LOAD_HR_OPTION_KEYS: Record<'limit', true> = { limit: true };

/** Loads HR images as 8-bit RGB. */
export async function loadHrImages(source: HrSource, options: { limit?: number } = {}): Promise<RawImage[]> {
  checkKeys('loadHrImages', options, LOAD_HR_OPTION_KEYS);
  const limit = options.limit ?? Infinity;
  if (typeof source === 'string') {
    let names: string[];
    try {
      names = (await readdir(source)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
    } catch (err) {
      throw new Error(`loadHrImages: cannot read the folder '${source}' (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
    }
    if (names.length === 0) throw new RangeError(`loadHrImages: the folder '${source}' holds no images`);
    return loadHrImages(names.map((n) => join(source, n)), options);
  }
  if (source instanceof Dataset) {
    const out: RawImage[] = [];
    // Face readers: each annotated face, cropped square with a 20 % margin; the whole image otherwise.
    for (let i = 0; i < source.length && out.length < limit; i++) {
      const sample = source.get(i);
      if (sample.boxes.length === 0) out.push(await sample.image.decode());
      else {
        const full = await sample.image.decode();
        for (const box of sample.boxes) if (out.length < limit) out.push(cropImage(full, box, { margin: 0.2, square: true, fill: 'replicate' }).image);
      }
    }
    return out;
  }
  if (!Array.isArray(source) || source.length === 0) throw typeError('loadHrImages', 'source', 'a folder, a non-empty array of files or images, or a Dataset', source);
  const out: RawImage[] = [];
  for (const s of source.slice(0, Math.min(source.length, limit))) out.push(typeof s === 'string' ? await decodeImage(s) : s);
  return out;
}

/** One HR image prepared for patch sampling: per scale, the modcropped HR and its degraded input, as planes in [0, 1]. */
interface Prepared {
  byScale: Map<number, { hr: Float32Array; lr: Float32Array; w: number; h: number }>;
}

function toPlanes(img: RawImage, channels: number): { data: Float32Array; w: number; h: number } {
  const u = toUnitFloat(img);
  const { width: w, height: h } = u;
  if (channels === 1) {
    // MATLAB rgb2ycbcr's Y in [0, 1]; one-channel images are taken as Y already.
    return { data: u.channels === 1 ? u.data.slice() : convertColor(u, 'y').data, w, h };
  }
  if (u.channels !== 3) throw rangeError('trainSuperResolution', 'images', 'RGB images for an RGB model', `${u.channels} channels`, true);
  const d = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) for (let p = 0; p < w * h; p++) d[c * w * h + p] = u.data[3 * p + c];
  return { data: d, w, h };
}

/** Bicubic down by 1/scale then up by scale on [C, H, W] planes (scale 1: identity). */
export function degradePlanes(planes: Float32Array, c: number, h: number, w: number, scale: number): Float32Array {
  if (scale === 1) return planes.slice();
  const x = tensor(planes, [1, c, h, w]);
  const lr = bicubicResize(x, { size: [h / scale, w / scale] });
  const up = bicubicResize(lr, { size: [h, w] });
  const d = up.data() as Float32Array;
  x.dispose();
  lr.dispose();
  up.dispose();
  return d;
}

function prepare(img: RawImage, channels: number, scales: number[], patch: number): Prepared | null {
  const byScale: Prepared['byScale'] = new Map();
  for (const s of scales) {
    const cropped = modcrop(img, s);
    if (cropped.width < patch || cropped.height < patch) return null;
    const { data, w, h } = toPlanes(cropped, channels);
    byScale.set(s, { hr: data, lr: degradePlanes(data, channels, h, w, s), w, h });
  }
  return { byScale };
}

/** Copies a patch with one of the 8 dihedral transforms (flips and 90-degree rotations). */
function cutPatch(src: Float32Array, c: number, h: number, w: number, x0: number, y0: number, size: number, t: number, dst: Float32Array, offset: number): void {
  for (let ch = 0; ch < c; ch++)
    for (let r = 0; r < size; r++)
      for (let q = 0; q < size; q++) {
        let rr = r, qq = q;
        if (t & 1) qq = size - 1 - qq;
        if (t & 2) rr = size - 1 - rr;
        if (t & 4) [rr, qq] = [qq, rr];
        dst[offset + (ch * size + r) * size + q] = src[ch * h * w + (y0 + rr) * w + x0 + qq];
      }
}

export interface TrainOptions extends Partial<TrainRecipe> {
  /** HR training images. */
  images: HrSource | RawImage[];
  /** Optimisation steps. */
  steps: number;
  /** Held-out HR images evaluated during training (PSNR/SSIM on Y vs bicubic). */
  evalImages?: RawImage[];
  evalEvery?: number;
  /** Scale used for evaluation (default: the first training scale). */
  evalScale?: number;
  /** Checkpoint file (written atomically every checkpointEvery steps and at the end). */
  checkpoint?: string;
  checkpointEvery?: number;
  /** Resume from `checkpoint` when it exists. */
  resume?: boolean;
  /** Stop after this many seconds (the step in progress finishes). */
  timeLimit?: number;
  seed?: number;
  /** Called after every step and every evaluation. */
  onLog?: (entry: TrainLogEntry) => void;
}

// A misspelt recipe field (patchsize, lrGama) would otherwise train with the paper's value.
const TRAIN_OPTION_KEYS: Record<keyof TrainOptions, true> = {
  patchSize: true, batchSize: true, optimizer: true, lr: true, lrMultipliers: true, momentum: true, weightDecay: true, lrStepEvery: true, lrGamma: true,
  clip: true, loss: true, scales: true, augment: true, validPadding: true, alphaDecaySteps: true,
  images: true, steps: true, evalImages: true, evalEvery: true, evalScale: true, checkpoint: true, checkpointEvery: true, resume: true, timeLimit: true, seed: true, onLog: true,
};

export interface TrainLogEntry {
  step: number;
  loss?: number;
  lr?: number;
  eval?: { psnr: number; ssim: number; bicubicPsnr: number; bicubicSsim: number };
  seconds: number;
}

export interface TrainResult {
  steps: number;
  losses: number[];
  evals: TrainLogEntry[];
  recipe: TrainRecipe;
  seconds: number;
}

function buildOptimizer(net: SrNetwork, r: TrainRecipe): Optimizer {
  const named = [...net.stateDict().entries()].filter(([, t]) => t.requiresGrad);
  const groups = new Map<number, Tensor[]>();
  for (const [name, t] of named) {
    // Parameter groups by lr multiplier (SRCNN's smaller lr for the last layer).
    const mult = Object.entries(r.lrMultipliers ?? {}).find(([prefix]) => name.startsWith(prefix))?.[1] ?? 1;
    if (!groups.has(mult)) groups.set(mult, []);
    groups.get(mult)!.push(t);
  }
  const paramGroups = [...groups.entries()].map(([mult, params]) => ({ params, lr: r.lr * mult }));
  return r.optimizer === 'sgd'
    ? new SGD(paramGroups, { lr: r.lr, momentum: r.momentum, weightDecay: r.weightDecay })
    : new Adam(paramGroups, { lr: r.lr, weightDecay: r.weightDecay });
}

function squaredLoss(out: Tensor, target: Tensor, kind: 'half-sum' | 'mean'): Tensor {
  const d = ops.square(ops.sub(out, target));
  return kind === 'mean' ? ops.mean(d) : ops.affine(ops.sum(d), 0.5 / out.shape[0]);
}

/** Trains `net` in place; returns the loss curve and evaluations. */
export async function trainSuperResolution(net: SrNetwork, options: TrainOptions): Promise<TrainResult> {
  if (!options || typeof options !== 'object') throw typeError('trainSuperResolution', 'options', 'an object', options);
  checkKeys('trainSuperResolution', options, TRAIN_OPTION_KEYS);
  const steps = options.steps;
  if (!Number.isInteger(steps) || steps < 0) throw rangeError('trainSuperResolution', 'steps', 'an integer >= 0', steps);
  const recipe: TrainRecipe = { ...defaultRecipe(net) };
  for (const [k, v] of Object.entries(options)) if (k in recipe || k === 'lrMultipliers' || k === 'alphaDecaySteps') (recipe as unknown as Record<string, unknown>)[k] = v;
  if (!Number.isInteger(recipe.patchSize) || recipe.patchSize < 2 * net.border + 1) throw rangeError('trainSuperResolution', 'patchSize', `an integer > ${2 * net.border} (twice the border the network loses)`, recipe.patchSize);
  if (!Number.isInteger(recipe.batchSize) || recipe.batchSize < 1) throw rangeError('trainSuperResolution', 'batchSize', 'an integer >= 1', recipe.batchSize);
  if (!Array.isArray(recipe.scales) || recipe.scales.length === 0 || !recipe.scales.every((s) => Number.isInteger(s) && s >= 1))
    throw rangeError('trainSuperResolution', 'scales', 'a non-empty array of integers >= 1', recipe.scales);
  recipe.clip = checkClip(recipe.clip);
  const hrImages = await loadHrImages(options.images as HrSource);
  const prepared = hrImages.map((img) => prepare(img, net.channels, recipe.scales, recipe.patchSize)).filter((p): p is Prepared => p !== null);
  if (prepared.length === 0) throw rangeError('trainSuperResolution', 'images', `images of at least ${recipe.patchSize}x${recipe.patchSize} pixels`, 'none large enough', true);
  if (recipe.validPadding) net.setPadding?.('valid');
  net.train();
  const params = net.parameters().filter((p) => p.requiresGrad);
  const optimizer = buildOptimizer(net, recipe);
  const baseLrs = optimizer.paramGroups.map((g) => g.lr);
  let start = 0;
  if (options.checkpoint && options.resume) {
    const { existsSync } = await import('node:fs');
    if (existsSync(options.checkpoint)) start = loadCheckpoint(options.checkpoint, { model: net, optimizer }).step;
  }
  // A resumed run draws new patches, not those of its first steps again.
  const rng = Rng.resumed(options.seed ?? 1, start);
  const c = net.channels;
  const size = recipe.patchSize;
  const border = net.border;
  const t0 = Date.now();
  const losses: number[] = [];
  const evals: TrainLogEntry[] = [];
  const evalEvery = options.evalEvery ?? 0;
  const evalScale = options.evalScale ?? recipe.scales[0];
  const runEval = (step: number) => {
    if (!options.evalImages?.length) return;
    net.setPadding?.('same');
    net.eval();
    const e = ops.noGrad(() => evaluateNetwork(net, options.evalImages!, evalScale));
    if (recipe.validPadding) net.setPadding?.('valid');
    net.train();
    const entry = { step, eval: e, seconds: (Date.now() - t0) / 1000 };
    evals.push(entry);
    options.onLog?.(entry);
  };
  const save = (step: number) => {
    if (options.checkpoint) saveCheckpoint(options.checkpoint, { model: net, optimizer, step, extra: { arch: net.arch, config: net.config, recipe } });
  };
  const device = net.device as DeviceSpec;
  let step = start;
  for (; step < steps; step++) {
    if (options.timeLimit !== undefined && (Date.now() - t0) / 1000 > options.timeLimit) break;
    const lrFactor = recipe.lrStepEvery > 0 ? recipe.lrGamma ** Math.floor(step / recipe.lrStepEvery) : 1;
    optimizer.paramGroups.forEach((g, i) => (g.lr = baseLrs[i] * lrFactor));
    const inp = new Float32Array(recipe.batchSize * c * size * size);
    const tgt = new Float32Array(recipe.batchSize * c * size * size);
    for (let b = 0; b < recipe.batchSize; b++) {
      const img = prepared[rng.int(prepared.length)];
      const s = recipe.scales[rng.int(recipe.scales.length)];
      const { hr, lr, w, h } = img.byScale.get(s)!;
      const x0 = rng.int(w - size + 1);
      const y0 = rng.int(h - size + 1);
      const t = recipe.augment ? rng.int(8) : 0;
      cutPatch(lr, c, h, w, x0, y0, size, t, inp, b * c * size * size);
      cutPatch(hr, c, h, w, x0, y0, size, t, tgt, b * c * size * size);
    }
    const loss = ops.scope(() => {
      // On the network's device (a network moved there before training trains there).
      const x = tensor(inp, [recipe.batchSize, c, size, size], 'float32', device);
      const y = cropBorder(tensor(tgt, [recipe.batchSize, c, size, size], 'float32', device), border);
      let l: Tensor;
      if (net instanceof Drcn) {
        // Recursive supervision: alpha * mean over d of the intermediate losses + (1 - alpha) * the ensemble's loss.
        const alpha = recipe.alphaDecaySteps ? Math.max(0, 1 - step / recipe.alphaDecaySteps) : 0;
        const outs = net.intermediate(x);
        const l1 = ops.affine(outs.map((o) => squaredLoss(o, y, recipe.loss)).reduce((a, b) => ops.add(a, b)), 1 / outs.length);
        const l2 = squaredLoss(net.combine(outs), y, recipe.loss);
        l = ops.add(ops.affine(l1, alpha), ops.affine(l2, 1 - alpha));
      } else l = squaredLoss(net.forward(x), y, recipe.loss);
      optimizer.zeroGrad();
      l.backward();
      return l.item();
    });
    if (!Number.isFinite(loss)) throw new Error(`trainSuperResolution: the loss became ${loss} at step ${step + 1} (lower 'lr' or enable 'clip')`);
    if (recipe.clip?.kind === 'adjustable-norm') clipGradNorm(params, recipe.clip.theta / optimizer.paramGroups[0].lr);
    else if (recipe.clip?.kind === 'adjustable') clipGradValue(params, recipe.clip.theta / optimizer.paramGroups[0].lr);
    else if (recipe.clip?.kind === 'value') clipGradValue(params, recipe.clip.value);
    else if (recipe.clip?.kind === 'norm') clipGradNorm(params, recipe.clip.maxNorm);
    optimizer.step();
    losses.push(loss);
    options.onLog?.({ step: step + 1, loss, lr: optimizer.paramGroups[0].lr, seconds: (Date.now() - t0) / 1000 });
    if (evalEvery > 0 && (step + 1) % evalEvery === 0) runEval(step + 1);
    if (options.checkpointEvery && (step + 1) % options.checkpointEvery === 0) save(step + 1);
    // Let other work (I/O, progress output) run between steps.
    await new Promise((r) => setImmediate(r));
  }
  save(step);
  net.setPadding?.('same');
  net.eval();
  return { steps: step, losses, evals, recipe, seconds: (Date.now() - t0) / 1000 };
}
