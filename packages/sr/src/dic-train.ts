// DIC / DICGAN training, data preparation, inference and evaluation (design/models/03):
// per-step L1 on the SR images plus eta * per-step MSE on the heatmaps, Adam with x0.5
// milestones, the hourglass frozen until a release step; DICGAN adds a feature loss through a
// frozen extractor and a vanilla-GAN loss through a discriminator (both injectable Modules; a
// LightCNN-9-shaped discriminator is the default).
import * as ops from '@lrface/cuda-core';
import { rangeError, tensor, typeError, type DeviceSpec, type Tensor } from '@lrface/cuda-core';
import {
  Adam,
  LeakyReLU,
  Linear,
  MFMConv2d,
  MFMGroup,
  MFMLinear,
  MaxPool2d,
  Module,
  MultiStepLR,
  Sequential,
  constant_,
  kaimingNormal_,
  l1Loss,
  loadCheckpoint,
  mseLoss,
  readCheckpointInfo,
  saveCheckpoint,
} from '@lrface/nn';
import { MIRROR_68, Rng, bicubicResize, checkImage, checkKeys, checkUnitPixels, gaussianHeatmaps, permutePoints, tensorToImage, toUint8, type RawImage } from '@lrface/datasets';
import { Dic, type DicOutput } from './dic.js';
import { srScores } from './metrics.js';

// ---------------------------------------------------------------------------------------------
// Data

/** An HR face: RGB image (8-bit, or float in [0, 1]) and its landmarks as x, y pairs in HR pixels (pixel centres at integers). */
export interface DicFace {
  image: RawImage;
  landmarks?: ArrayLike<number> | null;
}

/** Maps HR images [B, C, H, W] in [0, 1] to LR images [B, C, H / scale, W / scale]. */
export type DicDownscaler = (hr: Tensor, scale: number) => Tensor;

/** How HR faces become training / evaluation tensors. */
export interface DicDataOptions {
  /**
   * The HR -> LR degradation: 'matlab' (default) is the repository's MATLAB-style antialiased
   * bicubic (`bicubicResize`); the released code used PIL's antialiased bicubic, which differs
   * at the image borders (PIL renormalises a truncated kernel, MATLAB mirrors) and rounds each
   * pass to 8 bits — pass a function to use another degradation.
   */
  downscale: 'matlab' | DicDownscaler;
  /** Round the LR image to 8 bits, as the released data (PIL images) are (default true). */
  quantizeLr: boolean;
  /** Gaussian sigma of the ground-truth heatmaps, in heatmap pixels (default 1). */
  heatmapSigma: number;
}

/** The data defaults: MATLAB-style bicubic 1/8, 8-bit LR, heatmap sigma 1. */
export const DEFAULT_DIC_DATA: Readonly<DicDataOptions> = Object.freeze({ downscale: 'matlab', quantizeLr: true, heatmapSigma: 1 });

/** A prepared batch: everything in the network's normalised space except the heatmaps. */
export interface DicBatch {
  /** [B, C, h, w] mean-subtracted LR images. */
  lr: Tensor;
  /** [B, C, H, W] mean-subtracted HR images. */
  hr: Tensor;
  /** [B, K, H/4, W/4] Gaussian heatmaps (peak 1), or null when the faces carry no landmarks. */
  heatmaps: Tensor | null;
  /** The landmarks of each face in HR pixels (after any flip), or null. */
  landmarks: Float32Array[] | null;
}

const DATA_KEYS = Object.keys(DEFAULT_DIC_DATA);

function dataOptions(fn: string, options: Partial<DicDataOptions>, extraKeys: readonly string[] = []): DicDataOptions {
  if (options === null || typeof options !== 'object') throw typeError(fn, 'options', 'an object', options);
  // A misspelt key (flip for flips) would otherwise be dropped without a word.
  checkKeys(fn, options, [...DATA_KEYS, ...extraKeys]);
  const o = { ...DEFAULT_DIC_DATA, ...options };
  if (o.downscale !== 'matlab' && typeof o.downscale !== 'function') throw typeError(fn, 'downscale', "'matlab' or a function (hr, scale) => lr", o.downscale);
  if (typeof o.quantizeLr !== 'boolean') throw typeError(fn, 'quantizeLr', 'a boolean', o.quantizeLr);
  if (!(typeof o.heatmapSigma === 'number' && o.heatmapSigma > 0)) throw rangeError(fn, 'heatmapSigma', '> 0', o.heatmapSigma);
  return o;
}

/** HR planes (CHW, [0, 1]) of a face image, mirrored when `flip`. */
function hrPlanes(fn: string, img: RawImage, channels: number, flip: boolean): Float32Array {
  const { width: w, height: h, data } = img;
  if (img.data instanceof Float32Array) checkUnitPixels(fn, 'faces', img.data);
  const scale = data instanceof Uint8Array ? 1 / 255 : 1;
  const out = new Float32Array(channels * w * h);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) out[c * w * h + y * w + x] = data[(y * w + (flip ? w - 1 - x : x)) * channels + c] * scale;
  return out;
}

/**
 * Prepares a batch from HR faces of one size (a multiple of 8 x the network's size multiple):
 * HR in [0, 1], LR by the degradation (rounded to 8 bits by default), both mean-subtracted;
 * ground-truth heatmaps at 1/4 of the HR size (coordinates divided by 4, as the released data
 * code). `flips[i]` mirrors face i (points re-indexed by the iBUG-68 mirror map, x -> W - 1 - x).
 */
export function dicBatch(net: Dic, faces: DicFace[], options: Partial<DicDataOptions> & { flips?: boolean[] } = {}): DicBatch {
  return makeDicBatch('dicBatch', net, faces, options);
}

/** {@link dicBatch} with errors naming the public function `fn` that called it. */
function makeDicBatch(fn: string, net: Dic, faces: DicFace[], options: Partial<DicDataOptions> & { flips?: boolean[] }): DicBatch {
  if (!(net instanceof Dic)) throw typeError(fn, 'net', 'a Dic', net);
  if (!Array.isArray(faces) || faces.length === 0) throw typeError(fn, 'faces', 'a non-empty array of { image, landmarks }', faces);
  const o = dataOptions(fn, options, ['flips']);
  const { flips } = options;
  if (flips !== undefined && (!Array.isArray(flips) || flips.some((f) => typeof f !== 'boolean')))
    throw typeError(fn, 'flips', 'an array of booleans (one per face)', flips);
  if (flips !== undefined && flips.length !== faces.length) throw rangeError(fn, 'flips', `one flag per face (${faces.length})`, `${flips.length} flags`, true);
  const c = net.config;
  const first = checkImage(fn, 'faces[0].image', faces[0]?.image);
  const { width: W, height: H } = first;
  const step = c.scale * net.sizeMultiple;
  if (W % step !== 0 || H % step !== 0 || W === 0 || H === 0) throw rangeError(fn, 'faces', `HR images whose sides are positive multiples of ${step}`, `${W}x${H}`, true);
  const withPoints = faces.every((f) => f?.landmarks != null);
  // Some faces with points and some without would silently make a batch without heatmaps.
  if (!withPoints && faces.some((f) => f?.landmarks != null))
    throw rangeError(fn, 'faces', 'faces that all carry landmarks or none does', `${faces.filter((f) => f?.landmarks != null).length} of ${faces.length} with landmarks`, true);
  const hr = new Float32Array(faces.length * c.outChannels * W * H);
  const landmarks: Float32Array[] = [];
  faces.forEach((f, i) => {
    const img = checkImage(fn, `faces[${i}].image`, f?.image);
    if (img.width !== W || img.height !== H) throw rangeError(fn, `faces[${i}].image`, `the size of faces[0] (${W}x${H})`, `${img.width}x${img.height}`, true);
    if (img.channels !== c.outChannels) throw rangeError(fn, `faces[${i}].image`, `${c.outChannels} channels`, `${img.channels}`, true);
    const flip = flips?.[i] ?? false;
    hr.set(hrPlanes(fn, img, c.outChannels, flip), i * c.outChannels * W * H);
    if (!withPoints) return;
    const pts = Float32Array.from(f.landmarks as ArrayLike<number>);
    if (pts.length !== 2 * c.numKeypoints) throw rangeError(fn, `faces[${i}].landmarks`, `${2 * c.numKeypoints} numbers (x, y per landmark)`, pts.length);
    // A NaN point would become an empty target map, teaching the hourglass that the point is absent.
    const bad = pts.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw rangeError(fn, `faces[${i}].landmarks`, 'finite coordinates (DIC has no unlabelled points)', `${pts[bad]} at index ${bad}`, true);
    if (flip) {
      if (c.numKeypoints !== 68) throw rangeError(fn, 'flips', 'unset for a network of other than 68 landmarks (no mirror map)', c.numKeypoints);
      for (let k = 0; k < pts.length; k += 2) pts[k] = W - 1 - pts[k];
      landmarks.push(permutePoints(pts, MIRROR_68, 2));
    } else landmarks.push(pts);
  });
  const planes = W * H;
  const lrData = ops.noGrad(() =>
    ops.scope(() => {
      const hr01 = tensor(hr, [faces.length, c.outChannels, H, W]);
      const lr = o.downscale === 'matlab' ? bicubicResize(hr01, { size: [H / c.scale, W / c.scale] }) : o.downscale(hr01, c.scale);
      const want = [faces.length, c.inChannels, H / c.scale, W / c.scale];
      if (!ops.isTensor(lr) || lr.shape.join(',') !== want.join(',')) throw rangeError(fn, 'downscale', `a function returning a [${want.join(',')}] tensor`, ops.isTensor(lr) ? `[${lr.shape.join(',')}]` : lr, true);
      return lr.data() as Float32Array;
    }),
  ).slice();
  const lrPlane = planes / (c.scale * c.scale);
  for (let i = 0; i < lrData.length; i++) {
    const v = o.quantizeLr ? Math.round(Math.min(1, Math.max(0, lrData[i])) * 255) / 255 : lrData[i];
    lrData[i] = v - c.rgbMean[Math.floor(i / lrPlane) % c.inChannels];
  }
  for (let i = 0; i < hr.length; i++) hr[i] -= c.rgbMean[Math.floor(i / planes) % c.outChannels];
  let heatmaps: Tensor | null = null;
  if (withPoints) {
    const [hh, hw] = [H / 4, W / 4];
    const maps = new Float32Array(faces.length * c.numKeypoints * hh * hw);
    landmarks.forEach((pts, i) => {
      // The released generate_gt: a Gaussian at (x / 4, y / 4) on the integer grid; gaussianHeatmaps
      // without an imageSize places points on the heatmap grid as given.
      const quarter = pts.map((v) => v / 4);
      maps.set(gaussianHeatmaps(quarter, { size: [hh, hw], sigma: o.heatmapSigma, background: false }), i * c.numKeypoints * hh * hw);
    });
    heatmaps = tensor(maps, [faces.length, c.numKeypoints, hh, hw]);
  }
  return {
    lr: tensor(lrData, [faces.length, c.inChannels, H / c.scale, W / c.scale]),
    hr: tensor(hr, [faces.length, c.outChannels, H, W]),
    heatmaps,
    landmarks: withPoints ? landmarks : null,
  };
}

/** Disposes a batch's tensors. */
export function disposeDicBatch(batch: DicBatch): void {
  batch.lr.dispose();
  batch.hr.dispose();
  batch.heatmaps?.dispose();
}

// ---------------------------------------------------------------------------------------------
// Losses

/**
 * Binary cross-entropy on logits against a constant label (torch's BCEWithLogitsLoss, mean):
 * max(x, 0) - x y + log(1 + exp(-|x|)), written for y in {0, 1} as relu(+-x) + log(1 + exp(-|x|)).
 */
export function bceWithLogits(logits: Tensor, target: 0 | 1): Tensor {
  if (!ops.isTensor(logits)) throw typeError('bceWithLogits', 'logits', 'a float32 tensor', logits);
  if (target !== 0 && target !== 1) throw rangeError('bceWithLogits', 'target', '0 or 1', target);
  return ops.scope(() => {
    const margin = ops.relu(target === 1 ? ops.neg(logits) : logits);
    const soft = ops.log(ops.affine(ops.exp(ops.neg(ops.abs(logits))), 1, 1));
    return ops.mean(ops.add(margin, soft));
  });
}

const DIC_LOSSES_OPTION_KEYS: Record<'lastStepPixelOnly', true> = { lastStepPixelOnly: true };

/** The per-step losses of a DIC forward: sum_t mean|SR_t - HR| and sum_t mean((heatmap_t - H)^2). */
export function dicLosses(out: DicOutput, hr: Tensor, heatmaps: Tensor, options: { lastStepPixelOnly?: boolean } = {}): { pixel: Tensor; align: Tensor } {
  checkKeys('dicLosses', options, DIC_LOSSES_OPTION_KEYS);
  return ops.scope(() => {
    const last = out.sr[out.sr.length - 1];
    // The released GAN solver's quirk: the pixel term of every step uses the last step's image.
    const pixelTerms = out.sr.map((s) => l1Loss(options.lastStepPixelOnly ? last : s, hr));
    const alignTerms = out.heatmaps.map((h) => mseLoss(h, heatmaps));
    const total = (ts: Tensor[]) => ts.reduce((a, b) => ops.add(a, b));
    return { pixel: total(pixelTerms), align: total(alignTerms) };
  });
}

// ---------------------------------------------------------------------------------------------
// Training

/** DIC's optimisation (released train_DIC_CelebA.json). */
export interface DicTrainConfig {
  /** Adam learning rate (1e-4). */
  lr: number;
  betas: [number, number];
  weightDecay: number;
  /** Steps at which the lr is multiplied by `gamma` (10k, 20k, 40k, 80k). */
  milestones: number[];
  gamma: number;
  /** Weight of the pixel loss (1). */
  pixelWeight: number;
  /** Weight eta of the alignment (heatmap) loss (0.1). */
  eta: number;
  /** Step from which the hourglass trains; before it its parameters stay fixed (2000 for CelebA, 20000 for Helen). */
  releaseHgStep: number;
}

/** The released DIC schedule (train_DIC_CelebA.json). */
export const DEFAULT_DIC_TRAIN: Readonly<DicTrainConfig> = Object.freeze({
  lr: 1e-4,
  betas: [0.9, 0.999] as [number, number],
  weightDecay: 0,
  milestones: [10000, 20000, 40000, 80000],
  gamma: 0.5,
  pixelWeight: 1,
  eta: 0.1,
  releaseHgStep: 2000,
});

function checkTrainConfig<T extends DicTrainConfig>(fn: string, defaults: Readonly<T>, config: Partial<T>): T {
  checkKeys(fn, config, defaults, 'config');
  const c = { ...defaults, ...config } as T;
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw rangeError(fn, k, 'a finite number >= 0', v);
  }
  if (!(c.lr > 0)) throw rangeError(fn, 'lr', '> 0', c.lr);
  if (!Array.isArray(c.milestones) || !c.milestones.every((m) => Number.isInteger(m) && m > 0)) throw rangeError(fn, 'milestones', 'positive integer steps', c.milestones);
  if (!Number.isInteger(c.releaseHgStep)) throw rangeError(fn, 'releaseHgStep', 'an integer >= 0', c.releaseHgStep);
  return c;
}

function checkBatch(fn: string, net: Dic, batch: DicBatch): Required<Pick<DicBatch, 'lr' | 'hr'>> & { heatmaps: Tensor } {
  if (!batch || typeof batch !== 'object' || !ops.isTensor(batch.lr) || !ops.isTensor(batch.hr)) throw typeError(fn, 'batch', 'a DicBatch (dicBatch())', batch);
  if (!batch.heatmaps) throw rangeError(fn, 'batch', 'a batch with ground-truth heatmaps (faces with landmarks)', 'no heatmaps', true);
  net.checkInput(batch.lr, fn);
  const [b, , h, w] = batch.lr.shape;
  const s = net.config.scale;
  const want = [b, net.config.outChannels, h * s, w * s];
  if (batch.hr.shape.join(',') !== want.join(',')) throw rangeError(fn, 'batch.hr', `shape [${want.join(',')}]`, `[${batch.hr.shape.join(',')}]`, true);
  const wantH = [b, net.config.numKeypoints, (h * s) / 4, (w * s) / 4];
  if (batch.heatmaps.shape.join(',') !== wantH.join(',')) throw rangeError(fn, 'batch.heatmaps', `shape [${wantH.join(',')}]`, `[${batch.heatmaps.shape.join(',')}]`, true);
  return batch as Required<Pick<DicBatch, 'lr' | 'hr'>> & { heatmaps: Tensor };
}

/** The losses of one training step (as numbers). */
export interface DicStepLosses {
  pixel: number;
  align: number;
  total: number;
  /** The lr the step used. */
  lr: number;
  /** Whether the hourglass was trained in this step. */
  hourglassTrained: boolean;
}

function setTrainable(m: Module, flag: boolean): void {
  for (const p of m.parameters()) p.requiresGrad = flag;
}

/** Wraps a checkpoint error so its message starts with the file. */
function checkpointError(file: string, err: unknown): Error {
  const msg = (err as Error).message ?? String(err);
  const e = new RangeError(msg.startsWith(file) ? msg : `${file}: ${msg}`, { cause: err });
  return e;
}

function checkSavable(fn: string, file: unknown, net: Dic): void {
  if (typeof file !== 'string' || file === '') throw typeError(fn, 'file', 'a non-empty path string', file);
  if (net.disposed) throw new Error(`${fn}: the DIC network was disposed`);
}


/**
 * Refuses, before anything is overwritten, a checkpoint of another trainer or of a network
 * configured otherwise: fields such as numSteps or rgbMean change no tensor shape, so the
 * weights would load and training would go on with another model than the one saved.
 */
function checkCheckpointFile(fn: string, file: unknown, net: Dic, arch: 'dic' | 'dicgan'): void {
  if (typeof file !== 'string' || file === '') throw typeError(fn, 'file', 'a non-empty path string', file);
  const extra = readCheckpointInfo(file)?.extra as { arch?: unknown; config?: unknown } | undefined;
  if (!extra || extra.arch === undefined) return;
  if (extra.arch !== arch) throw new RangeError(`${file}: holds a '${String(extra.arch)}' checkpoint, not '${arch}' (${arch === 'dic' ? 'DicTrainer' : 'DicGanTrainer'})`);
  const saved = extra.config as Record<string, unknown> | undefined;
  if (!saved || typeof saved !== 'object') return;
  const own = net.config as unknown as Record<string, unknown>;
  const differ = Object.keys(own).filter((k) => k in saved && JSON.stringify(saved[k]) !== JSON.stringify(own[k]));
  if (differ.length)
    throw new RangeError(`${file}: the checkpoint's network is configured otherwise than this trainer's (${differ.map((k) => `${k}: ${JSON.stringify(saved[k])} in the file, ${JSON.stringify(own[k])} here`).join('; ')}); build the Dic with the file's config`);
}

/**
 * The start of a DIC or DICGAN step: the batch checked, the hourglass fixed before
 * `releaseHgStep` and trained from it on, the network in training mode.
 */
function beginStep(fn: string, net: Dic, batch: DicBatch, step: number, releaseHgStep: number): { b: ReturnType<typeof checkBatch>; hourglassTrained: boolean } {
  const b = checkBatch(fn, net, batch);
  const hourglassTrained = step >= releaseHgStep;
  setTrainable(net.HG, hourglassTrained);
  net.train();
  return { b, hourglassTrained };
}

/** Trains a DIC: L = pixelWeight * sum_t L1(SR_t, HR) + eta * sum_t MSE(heatmap_t, H); Adam with x gamma milestones; the hourglass fixed before `releaseHgStep`. */
export class DicTrainer {
  readonly config: DicTrainConfig;
  readonly optimizer: Adam;
  readonly scheduler: MultiStepLR;
  /** Steps done. */
  step = 0;
  constructor(readonly net: Dic, config: Partial<DicTrainConfig> = {}) {
    if (!(net instanceof Dic)) throw typeError('DicTrainer', 'net', 'a Dic', net);
    this.config = checkTrainConfig('DicTrainer', DEFAULT_DIC_TRAIN, config);
    this.optimizer = new Adam(net.parameters(), { lr: this.config.lr, betas: this.config.betas, weightDecay: this.config.weightDecay });
    this.scheduler = new MultiStepLR(this.optimizer, this.config.milestones, this.config.gamma);
  }

  /** Whether the hourglass trains at the current step. */
  get hourglassTrained(): boolean {
    return this.step >= this.config.releaseHgStep;
  }

  /** One optimisation step on a batch (on the network's device). */
  trainStep(batch: DicBatch): DicStepLosses {
    const { b, hourglassTrained } = beginStep('DicTrainer.trainStep', this.net, batch, this.step, this.config.releaseHgStep);
    const lr = this.optimizer.paramGroups[0].lr;
    const device = this.net.device as DeviceSpec;
    const [pixel, align, total] = ops.scope(() => {
      this.optimizer.zeroGrad();
      const out = this.net.forward(b.lr.to(device));
      const l = dicLosses(out, b.hr.to(device), b.heatmaps.to(device));
      const loss = ops.add(ops.affine(l.pixel, this.config.pixelWeight), ops.affine(l.align, this.config.eta));
      loss.backward();
      return [l.pixel.item(), l.align.item(), loss.item()];
    });
    if (!Number.isFinite(total)) throw new Error(`DicTrainer.trainStep: the loss became ${total} at step ${this.step + 1} (lower 'lr')`);
    this.optimizer.step();
    this.scheduler.step();
    this.step++;
    return { pixel, align, total, lr, hourglassTrained };
  }

  /** Writes the network, Adam's state, the schedule and the step to a checkpoint atomically. */
  saveCheckpoint(file: string): void {
    checkSavable('DicTrainer.saveCheckpoint', file, this.net);
    saveCheckpoint(file, { model: this.net, optimizer: this.optimizer, scheduler: this.scheduler, step: this.step, extra: { arch: 'dic', config: this.net.config } });
  }

  /** Restores what {@link saveCheckpoint} wrote (errors name the file); returns the step. */
  loadCheckpoint(file: string): number {
    checkCheckpointFile('DicTrainer.loadCheckpoint', file, this.net, 'dic');
    try {
      this.step = loadCheckpoint(file, { model: this.net, optimizer: this.optimizer, scheduler: this.scheduler }).step;
    } catch (err) {
      throw checkpointError(file, err);
    }
    return this.step;
  }
}

// ---------------------------------------------------------------------------------------------
// DICGAN

/** Shape of the default discriminator. */
export interface LightCnnDiscriminatorConfig {
  /** Image channels (3). */
  inChannels: number;
  /** Square input side (128): the classifier reads 128 x ceil(side / 16)^2 features. */
  imageSize: number;
}

const LIGHT_CNN_DISCRIMINATOR_CONFIG_KEYS: Record<keyof LightCnnDiscriminatorConfig, true> = { inChannels: true, imageSize: true };

/**
 * The released DICGAN discriminator: LightCNN-9's trunk with an RGB input (MFM conv 5x5 ->
 * pool -> group -> pool -> group -> pool -> group x2 -> pool, pools 2x2 with ceil mode), then
 * MFM-fc(-> 256), LeakyReLU(0.2), Linear(256 -> 1). Returns logits [B, 1].
 */
export class LightCnnDiscriminator extends Module {
  declare features: Sequential;
  declare classifier: Sequential;
  readonly config: LightCnnDiscriminatorConfig;
  constructor(config: Partial<LightCnnDiscriminatorConfig> = {}) {
    super();
    checkKeys('LightCnnDiscriminator', config, LIGHT_CNN_DISCRIMINATOR_CONFIG_KEYS, 'config');
    const c = (this.config = { inChannels: 3, imageSize: 128, ...config });
    for (const k of ['inChannels', 'imageSize'] as const)
      if (!Number.isInteger(c[k]) || c[k] < 1) throw rangeError('LightCnnDiscriminator', k, 'an integer >= 1', c[k]);
    const pool = () => new MaxPool2d({ kernelSize: 2, stride: 2, ceilMode: true });
    this.registerModule(
      'features',
      new Sequential(
        new MFMConv2d(c.inChannels, 48, 5, { padding: 2 }),
        pool(),
        new MFMGroup(48, 96, 3, { padding: 1 }),
        pool(),
        new MFMGroup(96, 192, 3, { padding: 1 }),
        pool(),
        new MFMGroup(192, 128, 3, { padding: 1 }),
        new MFMGroup(128, 128, 3, { padding: 1 }),
        pool(),
      ),
    );
    let side = c.imageSize;
    for (let i = 0; i < 4; i++) side = Math.ceil(side / 2);
    this.registerModule('classifier', new Sequential(new MFMLinear(128 * side * side, 256), new LeakyReLU(0.2), new Linear(256, 1)));
    // The released solver's init of D: kaiming normal (fan in), zero biases.
    for (const [, m] of this.namedModules()) {
      const w = (m as unknown as { weight?: Tensor }).weight;
      const b = (m as unknown as { bias?: Tensor | null }).bias;
      if (w && w.rank >= 2) kaimingNormal_(w, { a: 0, mode: 'fan_in' });
      if (b) constant_(b, 0);
    }
  }
  forward(x: Tensor): Tensor {
    const { inChannels, imageSize } = this.config;
    if (!ops.isTensor(x) || x.rank !== 4 || x.shape[1] !== inChannels || x.shape[2] !== imageSize || x.shape[3] !== imageSize)
      throw rangeError('LightCnnDiscriminator.forward', 'x', `shape [B, ${inChannels}, ${imageSize}, ${imageSize}]`, ops.isTensor(x) ? `[${x.shape.join(',')}]` : x, ops.isTensor(x));
    return ops.scope(() => this.classifier.forward(ops.flatten(this.features.forward(x), 1)));
  }
}

/** DICGAN's optimisation (released train_DICGAN_CelebA.json). */
export interface DicGanTrainConfig extends DicTrainConfig {
  /** Discriminator Adam lr (1e-4); `lr` is the generator's. */
  lrD: number;
  /** Weight of the feature loss mean|Phi(SR_N) - Phi(HR)| (0.1; 0 or no extractor leaves it out). */
  featureWeight: number;
  /** Weight of the adversarial loss BCE(D(SR_N), 1) (0.005). */
  advWeight: number;
  /**
   * The released GAN solver's pixel term uses the last step's image at every step
   * (numSteps * L1(SR_N, HR)); false (default) gives each step its own term as the paper.
   */
  releasedPixelLossQuirk: boolean;
}

/** The released DICGAN schedule (train_DICGAN_CelebA.json). */
export const DEFAULT_DICGAN_TRAIN: Readonly<DicGanTrainConfig> = Object.freeze({
  ...DEFAULT_DIC_TRAIN,
  milestones: [10000, 20000, 40000],
  lrD: 1e-4,
  featureWeight: 0.1,
  advWeight: 0.005,
  // Released: release_HG_grad_step 2e6 > 80k iterations, i.e. the hourglass stays fixed.
  releaseHgStep: 2_000_000,
  releasedPixelLossQuirk: false,
});

/** The losses of one DICGAN step. */
export interface DicGanStepLosses extends DicStepLosses {
  feature: number;
  adversarial: number;
  discriminator: number;
}

const DIC_GAN_PART_KEYS: Record<'discriminator' | 'featureExtractor', true> = { discriminator: true, featureExtractor: true };

/**
 * DICGAN: generator loss pixelWeight * pix + eta * align + featureWeight * feat + advWeight *
 * BCE(D(SR_N), 1); discriminator loss BCE(D(HR), 1) + BCE(D(SR_N detached), 0), one Adam step
 * each per batch. `featureExtractor` (Phi, e.g. a pretrained LightCNN trunk returning one
 * tensor) is kept frozen; both it and D see the mean-subtracted images, as in the released code.
 */
export class DicGanTrainer {
  readonly config: DicGanTrainConfig;
  readonly discriminator: Module;
  readonly featureExtractor: Module | null;
  readonly optimizerG: Adam;
  readonly optimizerD: Adam;
  readonly schedulerG: MultiStepLR;
  readonly schedulerD: MultiStepLR;
  step = 0;
  constructor(readonly net: Dic, parts: { discriminator?: Module; featureExtractor?: Module | null } = {}, config: Partial<DicGanTrainConfig> = {}) {
    if (!(net instanceof Dic)) throw typeError('DicGanTrainer', 'net', 'a Dic', net);
    checkKeys('DicGanTrainer', parts, DIC_GAN_PART_KEYS, 'parts');
    if (parts.discriminator !== undefined && !(parts.discriminator instanceof Module)) throw typeError('DicGanTrainer', 'discriminator', 'a Module', parts.discriminator);
    if (parts.featureExtractor != null && !(parts.featureExtractor instanceof Module)) throw typeError('DicGanTrainer', 'featureExtractor', 'a Module or null', parts.featureExtractor);
    this.config = checkTrainConfig('DicGanTrainer', DEFAULT_DICGAN_TRAIN, config);
    if (!(this.config.lrD > 0)) throw rangeError('DicGanTrainer', 'lrD', '> 0', this.config.lrD);
    if (typeof this.config.releasedPixelLossQuirk !== 'boolean') throw typeError('DicGanTrainer', 'releasedPixelLossQuirk', 'a boolean', this.config.releasedPixelLossQuirk);
    this.discriminator = parts.discriminator ?? new LightCnnDiscriminator({ inChannels: net.config.outChannels });
    this.featureExtractor = parts.featureExtractor ?? null;
    if (this.featureExtractor) {
      setTrainable(this.featureExtractor, false);
      this.featureExtractor.eval();
    }
    const { betas, weightDecay } = this.config;
    this.optimizerG = new Adam(net.parameters(), { lr: this.config.lr, betas, weightDecay });
    this.optimizerD = new Adam(this.discriminator.parameters(), { lr: this.config.lrD, betas, weightDecay });
    this.schedulerG = new MultiStepLR(this.optimizerG, this.config.milestones, this.config.gamma);
    this.schedulerD = new MultiStepLR(this.optimizerD, this.config.milestones, this.config.gamma);
  }

  get hourglassTrained(): boolean {
    return this.step >= this.config.releaseHgStep;
  }

  /** One generator step then one discriminator step. */
  trainStep(batch: DicBatch): DicGanStepLosses {
    const c = this.config;
    const { b, hourglassTrained } = beginStep('DicGanTrainer.trainStep', this.net, batch, this.step, c.releaseHgStep);
    this.discriminator.train();
    const lr = this.optimizerG.paramGroups[0].lr;
    const device = this.net.device as DeviceSpec;
    const dParams = this.discriminator.parameters();
    const dTrainable = dParams.map((p) => p.requiresGrad);
    const result = ops.scope(() => {
      const lrImg = b.lr.to(device);
      const hr = b.hr.to(device);
      // Generator: D's parameters take no gradient here (they still pass it to the SR image).
      for (const p of dParams) p.requiresGrad = false;
      this.optimizerG.zeroGrad();
      const out = this.net.forward(lrImg);
      const last = out.sr[out.sr.length - 1];
      const l = dicLosses(out, hr, b.heatmaps.to(device), { lastStepPixelOnly: c.releasedPixelLossQuirk });
      let feature: Tensor | null = null;
      if (this.featureExtractor && c.featureWeight > 0) {
        const phi = (x: Tensor): Tensor => {
          const f = this.featureExtractor!.forward(x);
          if (!ops.isTensor(f)) throw typeError('DicGanTrainer.trainStep', 'featureExtractor', 'a Module whose forward returns one tensor', f);
          return f;
        };
        const target = ops.noGrad(() => phi(hr));
        feature = l1Loss(phi(last), target);
      }
      const adversarial = bceWithLogits(this.discriminator.forward(last) as Tensor, 1);
      let lossG = ops.add(ops.affine(l.pixel, c.pixelWeight), ops.affine(l.align, c.eta));
      if (feature) lossG = ops.add(lossG, ops.affine(feature, c.featureWeight));
      lossG = ops.add(lossG, ops.affine(adversarial, c.advWeight));
      lossG.backward();
      const g = { pixel: l.pixel.item(), align: l.align.item(), feature: feature ? feature.item() : 0, adversarial: adversarial.item(), total: lossG.item() };
      if (!Number.isFinite(g.total)) throw new Error(`DicGanTrainer.trainStep: the generator loss became ${g.total} at step ${this.step} (lower 'lr')`);
      this.optimizerG.step();
      // Discriminator on HR and the detached last SR image.
      dParams.forEach((p, i) => (p.requiresGrad = dTrainable[i]));
      this.optimizerD.zeroGrad();
      const fake = last.detach();
      const lossD = ops.add(bceWithLogits(this.discriminator.forward(hr) as Tensor, 1), bceWithLogits(this.discriminator.forward(fake) as Tensor, 0));
      lossD.backward();
      const discriminator = lossD.item();
      if (!Number.isFinite(discriminator)) throw new Error(`DicGanTrainer.trainStep: the discriminator loss became ${discriminator} at step ${this.step} (lower 'lrD')`);
      this.optimizerD.step();
      return { ...g, discriminator };
    });
    dParams.forEach((p, i) => (p.requiresGrad = dTrainable[i]));
    this.schedulerG.step();
    this.schedulerD.step();
    this.step++;
    return { ...result, lr, hourglassTrained };
  }

  /** Writes G, D, both optimisers and schedules and the step atomically. */
  saveCheckpoint(file: string): void {
    checkSavable('DicGanTrainer.saveCheckpoint', file, this.net);
    saveCheckpoint(file, {
      model: this.net,
      optimizer: this.optimizerG,
      scheduler: this.schedulerG,
      models: { discriminator: this.discriminator },
      optimizers: { discriminator: this.optimizerD },
      schedulers: { discriminator: this.schedulerD },
      step: this.step,
      extra: { arch: 'dicgan', config: this.net.config },
    });
  }

  /** Restores what {@link saveCheckpoint} wrote (errors name the file); returns the step. */
  loadCheckpoint(file: string): number {
    checkCheckpointFile('DicGanTrainer.loadCheckpoint', file, this.net, 'dicgan');
    try {
      this.step = loadCheckpoint(file, {
        model: this.net,
        optimizer: this.optimizerG,
        scheduler: this.schedulerG,
        models: { discriminator: this.discriminator },
        optimizers: { discriminator: this.optimizerD },
        schedulers: { discriminator: this.schedulerD },
      }).step;
    } catch (err) {
      throw checkpointError(file, err);
    }
    return this.step;
  }
}

// ---------------------------------------------------------------------------------------------
// Inference and evaluation

/**
 * Landmarks from heatmaps [B, K, h, w] as the released code decodes them: the first maximum of
 * each map (row-major), times `factor` (4: heatmap to HR pixels). One Float32Array of x, y pairs per face.
 */
export function decodeDicLandmarks(heatmaps: Tensor, factor = 4): Float32Array[] {
  if (!ops.isTensor(heatmaps) || heatmaps.dtype !== 'float32') throw typeError('decodeDicLandmarks', 'heatmaps', 'a float32 [B, K, h, w] tensor', heatmaps);
  if (heatmaps.rank !== 4) throw rangeError('decodeDicLandmarks', 'heatmaps', 'shape [B, K, h, w]', `[${heatmaps.shape.join(',')}]`, true);
  const [b, k, h, w] = heatmaps.shape;
  const idx = ops.noGrad(() => ops.scope(() => ops.argmax(ops.reshape(heatmaps, [b, k, h * w]), 2).data() as Int32Array)).slice();
  return Array.from({ length: b }, (_, i) => {
    const out = new Float32Array(2 * k);
    for (let j = 0; j < k; j++) {
      const p = idx[i * k + j];
      out[2 * j] = (p % w) * factor;
      out[2 * j + 1] = Math.floor(p / w) * factor;
    }
    return out;
  });
}

/** What {@link superResolveFace} returns. */
export interface DicFaceResult {
  /** The final step's image, 8-bit interleaved RGB (mean added back, clamped, rounded). */
  image: RawImage<Uint8Array>;
  /** The final step's 68 (numKeypoints) landmarks in HR pixels, x, y pairs. */
  landmarks: Float32Array;
}

/** An LR input as a mean-subtracted [1, C, h, w] tensor (RawImage 8-bit or float in [0, 1], or a tensor in [0, 1]). */
function lrTensor(fn: string, net: Dic, lr: RawImage | Tensor): Tensor {
  const c = net.config;
  let x: Tensor;
  if (ops.isTensor(lr)) {
    if (lr.dtype !== 'float32') throw typeError(fn, 'lr', 'a float32 tensor in [0, 1]', lr.dtype);
    if (!(lr.rank === 3 || (lr.rank === 4 && lr.shape[0] === 1))) throw rangeError(fn, 'lr', `shape [1, ${c.inChannels}, h, w] or [${c.inChannels}, h, w]`, `[${lr.shape.join(',')}]`, true);
    const data = lr.data() as Float32Array;
    checkUnitPixels(fn, 'lr', data, 'a uint8 tensor');
    const [ch, h, w] = lr.shape.slice(-3);
    x = tensor(data.slice(), [1, ch, h, w]);
  } else {
    const img = checkImage(fn, 'lr', lr);
    if (img.data instanceof Float32Array) checkUnitPixels(fn, 'lr', img.data);
    const { width: w, height: h, channels: ch } = img;
    if (ch !== c.inChannels) throw rangeError(fn, 'lr', `an image of ${c.inChannels} channels`, `${ch} channels`, true);
    x = tensor(hrPlanes(fn, img, ch, false), [1, ch, h, w]);
  }
  if (x.shape[1] !== c.inChannels) {
    const got = x.shape[1];
    x.dispose();
    throw rangeError(fn, 'lr', `${c.inChannels} channels`, `${got}`, true);
  }
  const mean = tensor(Float32Array.from(c.rgbMean), [1, c.inChannels, 1, 1]);
  const out = ops.sub(x, mean);
  x.dispose();
  mean.dispose();
  return out;
}

/** Runs the network in eval mode without gradients on a mean-subtracted batch; returns 8-bit images and decoded landmarks. */
function inferBatch(net: Dic, lr: Tensor): DicFaceResult[] {
  net.eval();
  const device = net.device as DeviceSpec;
  return ops.noGrad(() =>
    ops.scope(() => {
      const out = net.forward(lr.to(device));
      const last = out.sr[out.sr.length - 1];
      const c = net.config;
      const mean = tensor(Float32Array.from(c.rgbMean), [1, c.outChannels, 1, 1], 'float32', device);
      const rgb = ops.clamp(ops.add(last, mean), 0, 1).to('cpu');
      const points = decodeDicLandmarks(out.heatmaps[out.heatmaps.length - 1].to('cpu'));
      return points.map((landmarks, i) => ({ image: tensorToImage(ops.narrow(rgb, 0, i, 1)) as RawImage<Uint8Array>, landmarks }));
    }),
  );
}

/**
 * Super-resolves one LR face (RGB, sides multiples of the network's size multiple, 16x16 for
 * 128x128 output by default) with the final step's image and landmarks.
 */
export function superResolveFace(net: Dic, lr: RawImage | Tensor): DicFaceResult {
  if (!(net instanceof Dic)) throw typeError('superResolveFace', 'net', 'a Dic', net);
  if (net.disposed) throw new Error("superResolveFace: the DIC network ('net') was disposed");
  const x = lrTensor('superResolveFace', net, lr);
  try {
    net.checkInput(x, 'superResolveFace');
    return inferBatch(net, x)[0];
  } finally {
    x.dispose();
  }
}

/** Normaliser of the landmark error: 'inter-ocular' (outer eye corners, 0-based 36 and 45), 'width' (the GT points' x-extent), or 'released-eye-width' (|x37 - x46|, the released eval's 'eye_outer_width'). */
export type DicNmeNormalizer = 'inter-ocular' | 'width' | 'released-eye-width';

const NME_NORMALIZERS: readonly DicNmeNormalizer[] = ['inter-ocular', 'width', 'released-eye-width'];

/** Mean point-to-point error of `pred` against `gt` (x, y pairs) divided by the normaliser. */
export function landmarkNme(pred: ArrayLike<number>, gt: ArrayLike<number>, normalizer: DicNmeNormalizer = 'inter-ocular'): number {
  if (pred.length !== gt.length || gt.length % 2 !== 0) throw rangeError('landmarkNme', 'pred', `${gt.length} numbers (as 'gt')`, pred.length);
  for (const [name, pts] of [['pred', pred], ['gt', gt]] as const) {
    const bad = Array.prototype.findIndex.call(pts, (v: number) => !Number.isFinite(v));
    if (bad >= 0) throw rangeError('landmarkNme', name, 'finite coordinates', `${pts[bad]} at index ${bad}`, true);
  }
  const n = gt.length / 2;
  let err = 0;
  for (let k = 0; k < n; k++) err += Math.hypot(pred[2 * k] - gt[2 * k], pred[2 * k + 1] - gt[2 * k + 1]);
  let d: number;
  if (normalizer === 'width') {
    let lo = Infinity, hi = -Infinity;
    for (let k = 0; k < n; k++) [lo, hi] = [Math.min(lo, gt[2 * k]), Math.max(hi, gt[2 * k])];
    d = hi - lo;
  } else if (normalizer === 'inter-ocular' || normalizer === 'released-eye-width') {
    if (n !== 68) throw rangeError('landmarkNme', 'normalizer', "'width' for other than 68 points", normalizer);
    d = normalizer === 'inter-ocular' ? Math.hypot(gt[72] - gt[90], gt[73] - gt[91]) : Math.abs(gt[74] - gt[92]);
  } else throw rangeError('landmarkNme', 'normalizer', "'inter-ocular', 'width' or 'released-eye-width'", normalizer);
  if (!(d > 0)) throw rangeError('landmarkNme', 'gt', 'points with a non-zero normalising distance', d);
  return err / n / d;
}

/** Per-face and mean scores of {@link evaluateDic}. */
export interface DicEvaluation {
  psnr: number;
  ssim: number;
  /** Mean NME over the faces with landmarks (null when none has them). */
  nme: number | null;
  perFace: { psnr: number; ssim: number; nme: number | null }[];
}

/**
 * The DIC evaluation: each HR face degraded as in training, super-resolved, quantised to 8 bits,
 * PSNR / SSIM on the Y channel with a border of `scale` pixels (srScores); landmark NME of the
 * decoded final-step points against the face's landmarks when given.
 */
export function evaluateDic(net: Dic, faces: DicFace[], options: Partial<DicDataOptions> & { nmeNormalizer?: DicNmeNormalizer; batchSize?: number } = {}): DicEvaluation {
  if (!(net instanceof Dic)) throw typeError('evaluateDic', 'net', 'a Dic', net);
  if (net.disposed) throw new Error("evaluateDic: the DIC network ('net') was disposed");
  if (!Array.isArray(faces) || faces.length === 0) throw typeError('evaluateDic', 'faces', 'a non-empty array of { image, landmarks? }', faces);
  dataOptions('evaluateDic', options, ['nmeNormalizer', 'batchSize']);
  const { nmeNormalizer = 'inter-ocular', batchSize = 4, ...data } = options;
  if (!NME_NORMALIZERS.includes(nmeNormalizer)) throw rangeError('evaluateDic', 'nmeNormalizer', `one of ${NME_NORMALIZERS.map((n) => `'${n}'`).join(', ')}`, nmeNormalizer);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw rangeError('evaluateDic', 'batchSize', 'an integer >= 1', batchSize);
  // Checked before the network runs: a bad point list would otherwise fail only after the forward passes.
  faces.forEach((f, i) => {
    if (f?.landmarks == null) return;
    const bad = Array.prototype.findIndex.call(f.landmarks, (v: number) => !Number.isFinite(v));
    if (f.landmarks.length !== 2 * net.config.numKeypoints) throw rangeError('evaluateDic', `faces[${i}].landmarks`, `${2 * net.config.numKeypoints} numbers (x, y per landmark)`, f.landmarks.length);
    if (bad >= 0) throw rangeError('evaluateDic', `faces[${i}].landmarks`, 'finite coordinates', `${f.landmarks[bad]} at index ${bad}`, true);
  });
  const perFace: DicEvaluation['perFace'] = [];
  for (let i = 0; i < faces.length; i += batchSize) {
    const chunk = faces.slice(i, i + batchSize);
    const batch = makeDicBatch('evaluateDic', net, chunk.map((f) => ({ image: f?.image })), data);
    let results: DicFaceResult[];
    try {
      results = inferBatch(net, batch.lr);
    } finally {
      disposeDicBatch(batch);
    }
    results.forEach((r, j) => {
      const face = chunk[j];
      const hr8 = toUint8(face.image, face.image.data instanceof Uint8Array ? 1 : 255);
      const s = srScores(r.image, hr8, net.config.scale);
      const nme = face.landmarks ? landmarkNme(r.landmarks, face.landmarks, nmeNormalizer) : null;
      perFace.push({ ...s, nme });
    });
  }
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const nmes = perFace.map((p) => p.nme).filter((v): v is number => v !== null);
  return { psnr: mean(perFace.map((p) => p.psnr)), ssim: mean(perFace.map((p) => p.ssim)), nme: nmes.length ? mean(nmes) : null, perFace };
}

/** A seeded random choice of `count` faces and flips for one training batch (flips only when `flip`). */
export function sampleDicFaces(faces: DicFace[], count: number, rng: Rng, flip = false): { faces: DicFace[]; flips: boolean[] } {
  if (!Array.isArray(faces) || faces.length === 0) throw typeError('sampleDicFaces', 'faces', 'a non-empty array', faces);
  if (!Number.isInteger(count) || count < 1) throw rangeError('sampleDicFaces', 'count', 'an integer >= 1', count);
  const chosen: DicFace[] = [];
  const flips: boolean[] = [];
  for (let i = 0; i < count; i++) {
    chosen.push(faces[rng.int(faces.length)]);
    flips.push(flip && rng.chance(0.5));
  }
  return { faces: chosen, flips };
}
