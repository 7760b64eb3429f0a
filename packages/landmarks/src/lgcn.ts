// LGCN: the fully-convolutional local-global context network of Merget, Rock and Rigoll (CVPR
// 2018). A plain fully-convolutional local-context subnet makes one heatmap per landmark at the
// input resolution; a fixed depth-wise Gaussian (the "kernel convolution") blurs them; a
// global-context subnet of dilated convolutions refines the blurred maps. Training uses a
// squared heatmap error masked per landmark, so unlabelled points do not contribute.
//
// The network definition is not public: every structural value below is a config field with a
// placeholder default (design note models/04_lgcn.md).
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { Adam, Conv2d, MultiStepLR, Module, ModuleList, SGD, clipGradNorm, kaimingNormal_, loadCheckpoint, readCheckpointInfo, saveCheckpoint } from '@lrface/nn';
import { Rng, heatmapTensor } from '@lrface/datasets';
import { DEFAULT_AUGMENT, type AugmentConfig } from './presets.js';
import { JsonLinesLog, labelledBatch, type LabelledFace } from './train.js';
import { AUGMENT_CONFIG_KEYS } from './config-keys.js';

/** Where the dropout of rate `dropoutRate` sits (the reference port only gives the rate). */
export type LgcnDropoutPosition = 'local-output' | 'global-output' | 'every-layer' | 'none';

/** How the local and global outputs are combined. */
export type LgcnCombination = 'refine-blurred' | 'sum';

/** LGCN's structure. Every field is UNCERTAIN in the sources; the defaults are placeholders. */
export interface LgcnConfig {
  /** Input side (grey, square): 96. Heatmaps come out at the same resolution. */
  inputSize?: number;
  /** Heatmaps (landmarks): 68. */
  numLandmarks?: number;
  /** Hidden convolutions of the local-context subnet, before its output conv (default 15). */
  localLayers?: number;
  /** Their channels (default 128). */
  localWidth?: number;
  /** Their (odd) kernel size, zero 'same' padding, no pooling (default 3). */
  localKernel?: number;
  /** Activation of the hidden convolutions of both subnets (default 'relu'; 'leaky-relu' has slope 0.01). */
  activation?: 'relu' | 'leaky-relu';
  /** Dropout rate (the reference port: 0.1). */
  dropoutRate?: number;
  /**
   * Where the dropout goes (default 'local-output'): before the local subnet's output conv,
   * before the global subnet's output conv, after every hidden activation, or nowhere.
   */
  dropoutPosition?: LgcnDropoutPosition;
  /** Sigma (pixels) of the frozen Gaussian kernel convolution (default 2). */
  kernelSigma?: number;
  /** Its odd size (default 2 * ceil(3 * kernelSigma) + 1). */
  kernelSize?: number;
  /**
   * Dilations of the global subnet's hidden 3x3 convolutions (default {@link defaultDilations}:
   * 1, 2, 4, ... until the subnet's receptive field covers the input); a 3x3 output conv follows.
   */
  globalDilations?: number[];
  /** Channels of the global subnet's hidden convolutions (default 128). */
  globalWidth?: number;
  /**
   * 'refine-blurred' (default): output = global(kernelConv(local)); 'sum': output =
   * kernelConv(local) + global(kernelConv(local)), the global subnet as a residual refinement.
   */
  combination?: LgcnCombination;
  /** Weight of the loss on the local subnet's output beside the final one (default 0: final output only). */
  localLossWeight?: number;
}

/** The defaults of {@link LgcnConfig} (globalDilations and kernelSize follow from the other fields). */
export const DEFAULT_LGCN: Readonly<Required<Omit<LgcnConfig, 'globalDilations' | 'kernelSize'>>> = Object.freeze({
  inputSize: 96,
  numLandmarks: 68,
  localLayers: 15,
  localWidth: 128,
  localKernel: 3,
  activation: 'relu',
  dropoutRate: 0.1,
  dropoutPosition: 'local-output',
  kernelSigma: 2,
  globalWidth: 128,
  combination: 'refine-blurred',
  localLossWeight: 0,
});

/**
 * Receptive field (pixels) of the global subnet: its hidden 3x3 convolutions with the given
 * dilations and the 3x3 output conv; 1 + 2 * (sum of dilations + 1).
 */
export function globalReceptiveField(dilations: readonly number[]): number {
  return 1 + 2 * (dilations.reduce((a, b) => a + b, 0) + 1);
}

/** Dilations 1, 2, 4, ... until {@link globalReceptiveField} reaches `inputSize`. */
export function defaultDilations(inputSize: number): number[] {
  const out: number[] = [];
  while (globalReceptiveField(out) < inputSize) out.push(2 ** out.length);
  return out;
}

function positiveInt(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(fn, name, 'an integer >= 1', v);
  if (!Number.isInteger(v) || v < 1) throw rangeError(fn, name, 'an integer >= 1', v);
  return v;
}

function finiteNumber(fn: string, name: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number') throw typeError(fn, name, expected, v);
  if (!Number.isFinite(v) || !ok(v)) throw rangeError(fn, name, expected, v);
  return v;
}

function oneOf<T extends string>(fn: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string') throw typeError(fn, name, allowed.map((a) => `'${a}'`).join(' or '), v);
  if (!allowed.includes(v as T)) throw rangeError(fn, name, allowed.map((a) => `'${a}'`).join(' or '), v);
  return v as T;
}

/** Validates a config and fills in the defaults. */
export function resolveLgcnConfig(config: LgcnConfig = {}, fn = 'Lgcn'): Required<LgcnConfig> {
  checkKeys(fn, config, [...Object.keys(DEFAULT_LGCN), 'globalDilations', 'kernelSize'], 'config');
  const c = { ...DEFAULT_LGCN, ...config };
  const inputSize = positiveInt(fn, 'inputSize', c.inputSize);
  const numLandmarks = positiveInt(fn, 'numLandmarks', c.numLandmarks);
  const localLayers = positiveInt(fn, 'localLayers', c.localLayers);
  const localWidth = positiveInt(fn, 'localWidth', c.localWidth);
  const localKernel = positiveInt(fn, 'localKernel', c.localKernel);
  if (localKernel % 2 !== 1) throw rangeError(fn, 'localKernel', "an odd integer (zero 'same' padding)", localKernel);
  const activation = oneOf(fn, 'activation', c.activation, ['relu', 'leaky-relu'] as const);
  const dropoutRate = finiteNumber(fn, 'dropoutRate', c.dropoutRate, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const dropoutPosition = oneOf(fn, 'dropoutPosition', c.dropoutPosition, ['local-output', 'global-output', 'every-layer', 'none'] as const);
  const kernelSigma = finiteNumber(fn, 'kernelSigma', c.kernelSigma, (x) => x > 0, 'a number > 0');
  const kernelSize = config.kernelSize ?? 2 * Math.ceil(3 * kernelSigma) + 1;
  positiveInt(fn, 'kernelSize', kernelSize);
  if (kernelSize % 2 !== 1) throw rangeError(fn, 'kernelSize', 'an odd integer', kernelSize);
  const globalDilations = config.globalDilations ?? defaultDilations(inputSize);
  if (!Array.isArray(globalDilations)) throw typeError(fn, 'globalDilations', 'an array of integers >= 1', globalDilations);
  globalDilations.forEach((d, i) => positiveInt(fn, `globalDilations[${i}]`, d));
  const globalWidth = positiveInt(fn, 'globalWidth', c.globalWidth);
  const combination = oneOf(fn, 'combination', c.combination, ['refine-blurred', 'sum'] as const);
  const localLossWeight = finiteNumber(fn, 'localLossWeight', c.localLossWeight, (x) => x >= 0, 'a number >= 0');
  return {
    inputSize, numLandmarks, localLayers, localWidth, localKernel, activation, dropoutRate, dropoutPosition,
    kernelSigma, kernelSize, globalDilations: [...globalDilations], globalWidth, combination, localLossWeight,
  };
}

/** The 2-D Gaussian (outer product of cuda-core's gaussianKernel1d with itself), row-major size x size. */
export function gaussianKernel2d(size: number, sigma: number): Float32Array {
  const k = ops.gaussianKernel1d(size, sigma);
  const out = new Float32Array(size * size);
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) out[i * size + j] = k[i] * k[j];
  return out;
}

/**
 * The kernel convolution: a depth-wise convolution of every channel with the same fixed,
 * normalised 2-D Gaussian, zero 'same' padding. Its kernel is a buffer (saved and loaded with
 * the state dict, never a parameter), so no optimiser sees it.
 */
export class KernelConvolution extends Module {
  declare weight: Tensor;
  constructor(readonly channels: number, readonly size: number, readonly sigma: number) {
    super();
    positiveInt('KernelConvolution', 'channels', channels);
    positiveInt('KernelConvolution', 'size', size);
    if (size % 2 !== 1) throw rangeError('KernelConvolution', 'size', 'an odd integer', size);
    finiteNumber('KernelConvolution', 'sigma', sigma, (x) => x > 0, 'a number > 0');
    const k = gaussianKernel2d(size, sigma);
    const w = new Float32Array(channels * size * size);
    for (let c = 0; c < channels; c++) w.set(k, c * size * size);
    this.registerBuffer('weight', ops.tensor(w, [channels, 1, size, size]));
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, undefined, { padding: (this.size - 1) / 2, groups: this.channels });
  }
}

/** The three outputs of {@link Lgcn.forward}, each [N, numLandmarks, S, S]. */
export interface LgcnOutput {
  /** The local-context subnet's heatmaps. */
  local: Tensor;
  /** The same after the kernel convolution. */
  blurred: Tensor;
  /** The network output (the global subnet's refinement). */
  output: Tensor;
}

/**
 * LGCN: grey faces [N, 1, S, S] -> 68 heatmaps [N, 68, S, S] at the input resolution. The
 * local-context subnet (plain convolutions, no pooling), the frozen Gaussian kernel
 * convolution, and the global-context subnet of dilated 3x3 convolutions.
 */
export class Lgcn extends Module {
  declare localLayers: ModuleList;
  declare localOutput: Conv2d;
  declare kernelConv: KernelConvolution;
  declare globalLayers: ModuleList;
  declare globalOutput: Conv2d;
  readonly config: Required<LgcnConfig>;
  constructor(config: LgcnConfig = {}) {
    super();
    const c = (this.config = resolveLgcnConfig(config));
    const relu = c.activation === 'relu';
    const hidden = (inC: number, outC: number, k: number, dilation: number): Conv2d => {
      const conv = new Conv2d(inC, outC, k, { padding: (dilation * (k - 1)) / 2, dilation, activation: relu ? 'relu' : 'none' });
      // He initialisation: PyTorch's default shrinks the signal through 15+ plain ReLU layers.
      kaimingNormal_(conv.weight, { nonlinearity: relu ? 'relu' : 'leaky_relu', a: relu ? 0 : 0.01 });
      conv.bias!.assign(new Float32Array(outC));
      return conv;
    };
    const local: Conv2d[] = [];
    let ch = 1;
    for (let i = 0; i < c.localLayers; i++) {
      local.push(hidden(ch, c.localWidth, c.localKernel, 1));
      ch = c.localWidth;
    }
    this.registerModule('localLayers', new ModuleList(local));
    this.registerModule('localOutput', new Conv2d(ch, c.numLandmarks, c.localKernel, { padding: (c.localKernel - 1) / 2 }));
    this.registerModule('kernelConv', new KernelConvolution(c.numLandmarks, c.kernelSize, c.kernelSigma));
    const global: Conv2d[] = [];
    ch = c.numLandmarks;
    for (const d of c.globalDilations) {
      global.push(hidden(ch, c.globalWidth, 3, d));
      ch = c.globalWidth;
    }
    this.registerModule('globalLayers', new ModuleList(global));
    this.registerModule('globalOutput', new Conv2d(ch, c.numLandmarks, 3, { padding: 1 }));
    // The network starts from empty maps (near the mean target, which is almost all zeros): with
    // random output convs the first summed squared errors are hundreds of times the target energy
    // and momentum SGD diverges. Gradients still reach everything through the local output.
    this.globalOutput.weight.assign(new Float32Array(this.globalOutput.weight.size));
    this.globalOutput.bias!.assign(new Float32Array(c.numLandmarks));
  }

  private activate(h: Tensor): Tensor {
    let out = this.config.activation === 'relu' ? h : ops.leakyRelu(h, 0.01);
    if (this.config.dropoutPosition === 'every-layer') out = this.dropout(out);
    return out;
  }

  private dropout(h: Tensor): Tensor {
    return this.config.dropoutRate > 0 ? ops.dropout(h, { p: this.config.dropoutRate, training: this.training }) : h;
  }

  /** `x` [N, 1, S, S] grey faces (S = inputSize) -> the local, blurred and final heatmaps. */
  forward(x: Tensor): LgcnOutput {
    const fn = 'Lgcn.forward';
    const S = this.config.inputSize;
    // Freed weights would otherwise surface inside the first convolution, naming only the op.
    if (this.disposed) throw new Error(`${fn}: the LGCN network was disposed`);
    if (!ops.isTensor(x)) throw typeError(fn, 'x', `a Tensor [N, 1, ${S}, ${S}]`, x);
    if (x.dtype !== 'float32') throw typeError(fn, 'x', `a float32 tensor [N, 1, ${S}, ${S}] (grey in [-1, 1])`, `a ${x.dtype} tensor`, true);
    if (x.rank !== 4 || x.shape[1] !== 1 || x.shape[2] !== S || x.shape[3] !== S || x.shape[0] < 1) throw rangeError(fn, 'x', `a grey batch [N, 1, ${S}, ${S}]`, x);
    const { dropoutPosition, combination } = this.config;
    return ops.scope(() => {
      let h = x;
      for (const layer of this.localLayers) h = this.activate((layer as Conv2d).forward(h));
      if (dropoutPosition === 'local-output') h = this.dropout(h);
      const local = this.localOutput.forward(h);
      const blurred = this.kernelConv.forward(local);
      h = blurred;
      for (const layer of this.globalLayers) h = this.activate((layer as Conv2d).forward(h));
      if (dropoutPosition === 'global-output') h = this.dropout(h);
      const refined = this.globalOutput.forward(h);
      const output = combination === 'sum' ? ops.add(blurred, refined) : refined;
      return { local, blurred, output };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Loss

/**
 * Squared heatmap error with a per-sample, per-landmark mask: for each map with mask 1, the
 * squared error summed over its pixels; the mean of those over the labelled maps (maps with
 * mask 0 contribute nothing and get no gradient; with no labelled map the loss is 0).
 * `pred` and `target` [N, K, H, W]; `mask` [N, K] of 0 / 1 (or non-negative weights).
 */
export function maskedHeatmapLoss(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  const fn = 'maskedHeatmapLoss';
  for (const [name, t] of [['pred', pred], ['target', target], ['mask', mask]] as const) if (!ops.isTensor(t)) throw typeError(fn, name, 'a Tensor', t);
  if (pred.rank !== 4) throw rangeError(fn, 'pred', 'an [N, K, H, W] tensor', pred);
  if (target.shape.join(',') !== pred.shape.join(',')) throw rangeError(fn, 'target', `the shape of 'pred' [${pred.shape.join(',')}]`, target);
  if (mask.rank !== 2 || mask.shape[0] !== pred.shape[0] || mask.shape[1] !== pred.shape[1]) throw rangeError(fn, 'mask', `an [${pred.shape[0]}, ${pred.shape[1]}] tensor`, mask);
  const m = mask.data() as Float32Array;
  let labelled = 0;
  for (const v of m) {
    if (!(v >= 0) || !Number.isFinite(v)) throw rangeError(fn, 'mask', 'finite values >= 0', v);
    labelled += v;
  }
  return ops.scope(() => {
    const perMap = ops.sum(ops.square(ops.sub(pred, target)), { axis: [2, 3] });
    const total = ops.sum(ops.mul(perMap, mask.to(perMap.deviceId as ops.DeviceSpec)));
    return ops.mul(total, labelled > 0 ? 1 / labelled : 0);
  });
}

/** Per face and landmark, 1 where the point is labelled (both coordinates finite), else 0: [N, K]. */
export function landmarkMask(landmarks: ArrayLike<number>[], points: number): Tensor {
  const out = new Float32Array(landmarks.length * points);
  landmarks.forEach((lm, i) => {
    if (!lm || lm.length !== 2 * points) throw rangeError('landmarkMask', `landmarks[${i}]`, `${2 * points} values`, lm ? `${lm.length} values` : lm, true);
    for (let k = 0; k < points; k++) out[i * points + k] = Number.isFinite(lm[2 * k]) && Number.isFinite(lm[2 * k + 1]) ? 1 : 0;
  });
  return ops.tensor(out, [landmarks.length, points]);
}

/** RGB [N, 3, H, W] -> grey [N, 1, H, W] with MATLAB's rgb2gray weights (as @lrface/datasets' rgbToGrayPixels). */
export function rgbToGreyTensor(rgb: Tensor): Tensor {
  if (!ops.isTensor(rgb)) throw typeError('rgbToGreyTensor', 'rgb', 'a Tensor [N, 3, H, W]', rgb);
  if (rgb.rank !== 4 || rgb.shape[1] !== 3) throw rangeError('rgbToGreyTensor', 'rgb', 'an [N, 3, H, W] tensor', rgb);
  return ops.scope(() => ops.conv2d(rgb, ops.tensor(new Float32Array([0.298936021293775, 0.587043074451121, 0.114020904255103]), [1, 3, 1, 1], 'float32', rgb.deviceId as ops.DeviceSpec)));
}

// ---------------------------------------------------------------------------------------------
// Training

/** LGCN's optimiser: momentum SGD as the reference (CNTK momentum_sgd), or Adam. Values UNCERTAIN. */
export interface LgcnOptimizerConfig {
  /** Default 'sgd'. */
  kind?: 'sgd' | 'adam';
  /** Default 1e-5 (SGD; larger rates diverged on the default network with the per-map summed error) / 1e-4 (Adam). */
  lr?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Adam betas (default [0.9, 0.999]). */
  betas?: [number, number];
  /** L2 weight decay (default 0). */
  weightDecay?: number;
  /** Steps at which the learning rate is multiplied by `decay` (default none). */
  milestones?: number[];
  /** Default 0.1. */
  decay?: number;
}

const TRAINER_KEYS = ['network', 'optimizer', 'heatmapSigma', 'augment', 'clipGradNorm'];
const OPTIMIZER_KEYS = ['kind', 'lr', 'momentum', 'betas', 'weightDecay', 'milestones', 'decay'];

/**
 * Training images are grey in [-1, 1] (as `batch` makes them); 8-bit values or other scales
 * would train without a sign of trouble. Bicubic overshoot (about 0.28 of the 0..1 range, so 0.56
 * here) is accepted.
 */
function checkInputRange(fn: string, images: Tensor): void {
  const data = images.dtype === 'float32' ? (images.data() as Float32Array) : null;
  if (!data) return;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= -1.6 && v <= 1.6)) throw rangeError(fn, 'images', 'grey pixels in [-1, 1] (as LgcnTrainer.batch makes them)', `${v} at index ${i}`, true);
  }
}


/** Everything {@link LgcnTrainer} needs. */
export interface LgcnTrainerConfig {
  network?: LgcnConfig;
  optimizer?: LgcnOptimizerConfig;
  /** Sigma (input pixels) of the ground-truth Gaussians (UNCERTAIN; default 2). */
  heatmapSigma?: number;
  /** Augmentation of the labelled faces (default DEFAULT_AUGMENT; null for none). */
  augment?: AugmentConfig | null;
  /** Clip the gradient norm to this (default 0: no clipping). */
  clipGradNorm?: number;
}

/** A grey training batch at the network input size: images [N, 1, S, S] in [-1, 1] and points in input pixels (NaN = unlabelled). */
export interface LgcnBatch {
  images: Tensor;
  landmarks: Float32Array[];
}

/** The losses of one step (the mean over labelled maps of the per-map summed squared error). */
export interface LgcnStepResult {
  step: number;
  /** outputLoss + localLossWeight * localLoss, minimised. */
  loss: number;
  outputLoss: number;
  localLoss: number;
  lr: number;
}

/**
 * LGCN's training loop: per step, Gaussian target maps at the input resolution for the labelled
 * points, the masked squared error on the final output (plus, weighted, on the local output),
 * one optimiser step. Checkpoints hold the network, the optimiser, the schedule and the step.
 */
export class LgcnTrainer {
  readonly network: Lgcn;
  readonly optimizer: SGD | Adam;
  readonly scheduler: MultiStepLR;
  readonly heatmapSigma: number;
  readonly augment: AugmentConfig | null;
  readonly clipNorm: number;
  /** Where each step's losses go as a JSON line (null: not logged). */
  readonly log: JsonLinesLog | null;
  step = 0;
  /** `options.log`: a file that gets one JSON line per step (step, losses, learning rate). */
  constructor(readonly config: LgcnTrainerConfig = {}, options: { log?: string } = {}) {
    const fn = 'LgcnTrainer';
    // A misspelt key (networks, learningRate) would otherwise train with the defaults without a word.
    checkKeys(fn, config, TRAINER_KEYS, 'config');
    checkKeys(fn, options, ['log']);
    if (config.optimizer != null && typeof config.optimizer === 'object') checkKeys(fn, config.optimizer, OPTIMIZER_KEYS, 'optimizer');
    if (config.augment != null && typeof config.augment === 'object') checkKeys(fn, config.augment, AUGMENT_CONFIG_KEYS, 'augment');
    this.log = options.log === undefined ? null : new JsonLinesLog(options.log);
    this.network = new Lgcn(config.network ?? {});
    this.heatmapSigma = finiteNumber(fn, 'heatmapSigma', config.heatmapSigma ?? 2, (x) => x > 0, 'a number > 0');
    this.augment = config.augment === undefined ? DEFAULT_AUGMENT : config.augment;
    this.clipNorm = finiteNumber(fn, 'clipGradNorm', config.clipGradNorm ?? 0, (x) => x >= 0, 'a number >= 0');
    const o = config.optimizer ?? {};
    if (o === null || typeof o !== 'object') throw typeError(fn, 'optimizer', 'an object', o);
    const kind = oneOf(fn, 'optimizer.kind', o.kind ?? 'sgd', ['sgd', 'adam'] as const);
    const lr = finiteNumber(fn, 'optimizer.lr', o.lr ?? (kind === 'sgd' ? 1e-5 : 1e-4), (x) => x > 0, 'a number > 0');
    const weightDecay = finiteNumber(fn, 'optimizer.weightDecay', o.weightDecay ?? 0, (x) => x >= 0, 'a number >= 0');
    // Only the parameters: the kernel convolution's Gaussian is a buffer and stays fixed.
    const params = this.network.parameters();
    if (kind === 'sgd') {
      const momentum = finiteNumber(fn, 'optimizer.momentum', o.momentum ?? 0.9, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
      this.optimizer = new SGD(params, { lr, momentum, weightDecay });
    } else {
      const betas = o.betas ?? [0.9, 0.999];
      if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1))
        throw rangeError(fn, 'optimizer.betas', 'two numbers in [0, 1)', betas);
      this.optimizer = new Adam(params, { lr, betas, weightDecay });
    }
    this.scheduler = new MultiStepLR(this.optimizer, o.milestones ?? [], finiteNumber(fn, 'optimizer.decay', o.decay ?? 0.1, (x) => x > 0, 'a number > 0'));
  }

  /** Labelled faces (the corpus' 128 crops) augmented and resized to the input size, grey, in [-1, 1]. */
  batch(faces: LabelledFace[], rng: Rng, batchSize: number): LgcnBatch {
    const S = this.network.config.inputSize;
    const b = labelledBatch(faces, rng, batchSize, S, this.augment);
    const images = rgbToGreyTensor(b.images);
    b.images.dispose();
    return { images, landmarks: b.landmarks };
  }

  /** Ground-truth maps [N, K, S, S] for points in input pixels (zero maps for unlabelled points). */
  targets(landmarks: Float32Array[]): Tensor {
    const S = this.network.config.inputSize;
    return heatmapTensor(landmarks, { size: [S, S], sigma: this.heatmapSigma, background: false });
  }

  /** One optimiser step on `images` [N, 1, S, S] with their points in input pixels (NaN = unlabelled). */
  trainStep(images: Tensor, landmarks: Float32Array[]): LgcnStepResult {
    const fn = 'LgcnTrainer.trainStep';
    const { numLandmarks: K, localLossWeight } = this.network.config;
    if (!ops.isTensor(images)) throw typeError(fn, 'images', 'a Tensor', images);
    if (!Array.isArray(landmarks) || landmarks.length !== images.shape[0]) throw rangeError(fn, 'landmarks', `one point array per image (${images.shape[0]})`, landmarks);
    landmarks.forEach((lm, i) => {
      if (!lm || typeof lm !== 'object' || typeof lm.length !== 'number') throw typeError(fn, `landmarks[${i}]`, `${2 * K} numbers (x, y per point, NaN = unlabelled)`, lm);
      if (lm.length !== 2 * K) throw rangeError(fn, `landmarks[${i}]`, `${2 * K} numbers (x, y per point, NaN = unlabelled)`, `${lm.length} numbers`, true);
    });
    checkInputRange(fn, images);
    this.network.train();
    const lr = this.optimizer.paramGroups[0].lr;
    const result = ops.scope(() => {
      const device = this.network.device as ops.DeviceSpec;
      const mask = landmarkMask(landmarks, K).to(device);
      const target = this.targets(landmarks).to(device);
      this.optimizer.zeroGrad();
      const out = this.network.forward(images);
      const outputLoss = maskedHeatmapLoss(out.output, target, mask);
      // Unweighted, the local loss is only reported: no graph is recorded for it.
      const localLoss = maskedHeatmapLoss(localLossWeight > 0 ? out.local : out.local.detach(), target, mask);
      const loss = localLossWeight > 0 ? ops.add(outputLoss, ops.mul(localLoss, localLossWeight)) : outputLoss;
      loss.backward();
      if (this.clipNorm > 0) clipGradNorm(this.network.parameters(), this.clipNorm);
      this.optimizer.step();
      return { loss: loss.item(), outputLoss: outputLoss.item(), localLoss: localLoss.item() };
    });
    for (const [k, v] of Object.entries(result)) if (!Number.isFinite(v)) throw new RangeError(`${fn}: the loss term '${k}' became ${v}; training stopped`);
    this.scheduler.step();
    this.step++;
    const record = { step: this.step, ...result, lr };
    this.log?.write(record);
    return record;
  }

  /** Writes a resumable checkpoint (atomically). */
  save(path: string, extra: Record<string, unknown> = {}): void {
    if (typeof path !== 'string' || path === '') throw typeError('LgcnTrainer.save', 'path', 'a file path', path);
    saveCheckpoint(path, { model: this.network, optimizer: this.optimizer, scheduler: this.scheduler, step: this.step, extra: { ...extra, lgcn: this.network.config } });
  }

  /** Restores a checkpoint written by save (the network config must match). */
  load(path: string): Record<string, unknown> | undefined {
    const fn = 'LgcnTrainer.load';
    if (typeof path !== 'string' || path === '') throw typeError(fn, 'path', 'a file path', path);
    // Checked before anything is overwritten: fields such as kernelSigma, dropout or the
    // combination change no tensor shape, so such a checkpoint would load into another model.
    const extra = readCheckpointInfo(path)?.extra ?? null;
    if (extra && !('lgcn' in extra)) throw new RangeError(`${path}: holds a checkpoint of another model (no LGCN config in it), not one LgcnTrainer.save wrote`);
    const saved = extra?.lgcn as Record<string, unknown> | undefined;
    if (saved && typeof saved === 'object') {
      const own = this.network.config as unknown as Record<string, unknown>;
      const differ = Object.keys(own).filter((k) => k in saved && JSON.stringify(saved[k]) !== JSON.stringify(own[k]));
      if (differ.length)
        throw new RangeError(`${path}: the checkpoint's LGCN is configured otherwise than this trainer's network (${differ.map((k) => `${k}: ${JSON.stringify(saved[k])} in the file, ${JSON.stringify(own[k])} here`).join('; ')})`);
    }
    let r: { step: number; extra?: Record<string, unknown> };
    try {
      r = loadCheckpoint(path, { model: this.network, optimizer: this.optimizer, scheduler: this.scheduler });
    } catch (err) {
      const msg = (err as Error).message;
      throw new RangeError(msg.startsWith(path) ? msg : `${path}: ${msg}`, { cause: err });
    }
    this.step = r.step;
    return r.extra;
  }
}

