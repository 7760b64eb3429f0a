// Layers with PyTorch's names, parameter names and default initialisation, so PyTorch
// state dicts load into them.
import * as ops from '@lrface/cuda-core';
import { checkKeys, zeros, ones, full, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { Module } from './module.js';
import { kaimingUniform_, uniform_ } from './init.js';

/** A size for both axes, or [height, width]. */
export type Pair = number | [number, number];

export interface Conv2dConfig {
  stride?: Pair;
  /** One number, [ph, pw] or [top, bottom, left, right]. */
  padding?: number | number[];
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  /**
   * 'relu' applies ReLU inside the convolution (cuda-core's conv2dRelu: no second tensor, no
   * second pass), equal to ReLU after the layer, gradients included. Default 'none'.
   */
  activation?: 'none' | 'relu';
}
/** Conv2dConfig's fields (a misspelt one is refused, not ignored). */
const CONV2D_CONFIG_KEYS: Record<keyof Conv2dConfig, true> = { stride: true, padding: true, dilation: true, groups: true, bias: true, activation: true };

function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

// Constructor checks: without them a bad size reaches the tensor factories and fails there
// with a message about 'shape' or 'low' that does not say which layer argument was wrong.

/** `value` must be an integer >= min (channels, features, counts). */
function checkInt(layer: string, arg: string, value: unknown, min: number): void {
  const expected = `an integer >= ${min}`;
  if (typeof value !== 'number') throw typeError(layer, arg, expected, value);
  if (!Number.isInteger(value) || value < min) throw rangeError(layer, arg, expected, value);
}

/** `value` must be an integer >= min or a pair [h, w] of them (kernel size, stride, dilation). */
function checkPair(layer: string, arg: string, value: unknown, min: number): void {
  checkInts(layer, arg, value, min, [2], `an integer >= ${min} or a pair [h, w] of them`);
}

/** `value` must be an integer >= 0, [ph, pw] or [top, bottom, left, right] of them (as conv2d takes it). */
function checkPadding(layer: string, value: unknown): void {
  checkInts(layer, 'padding', value, 0, [1, 2, 4], 'an integer >= 0, [ph, pw] or [top, bottom, left, right] of them');
}

function checkInts(layer: string, arg: string, value: unknown, min: number, lengths: number[], expected: string): void {
  if (Array.isArray(value)) {
    if (!lengths.includes(value.length)) throw rangeError(layer, arg, expected, `[${value.join(',')}]`, true);
    if (value.some((v) => typeof v !== 'number')) throw typeError(layer, arg, expected, `[${value.map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v))).join(',')}]`, true);
    if (value.some((v) => !Number.isInteger(v) || v < min)) throw rangeError(layer, arg, expected, `[${value.join(',')}]`, true);
    return;
  }
  if (typeof value !== 'number') throw typeError(layer, arg, expected, value);
  if (!Number.isInteger(value) || value < min) throw rangeError(layer, arg, expected, value);
}

/** The checks Conv2d and ConvTranspose2d share. */
function checkConvArgs(layer: string, inChannels: number, outChannels: number, kernelSize: Pair, stride: unknown, padding: unknown, dilation: unknown): void {
  checkInt(layer, 'inChannels', inChannels, 1);
  checkInt(layer, 'outChannels', outChannels, 1);
  checkPair(layer, 'kernelSize', kernelSize, 1);
  checkPair(layer, 'stride', stride, 1);
  checkPadding(layer, padding);
  checkPair(layer, 'dilation', dilation, 1);
}

/** PyTorch's default: kaiming_uniform(a = sqrt(5)) weights, uniform(+-1/sqrt(fan_in)) bias. */
function resetConvLike(weight: Tensor, bias: Tensor | null, fanIn: number): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound + 1e-30);
  }
}

export class Conv2d extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly options: Required<Omit<Conv2dConfig, 'bias' | 'activation'>>;
  readonly activation: 'none' | 'relu';
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, config: Conv2dConfig = {}) {
    super();
    checkKeys('Conv2d', config, CONV2D_CONFIG_KEYS, 'config');
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, activation = 'none' } = config;
    checkConvArgs('Conv2d', inChannels, outChannels, kernelSize, stride, padding, dilation);
    if (activation !== 'none' && activation !== 'relu')
      throw new RangeError(`Conv2d: 'activation' must be 'none' or 'relu', got ${JSON.stringify(activation)}`);
    this.activation = activation;
    const [kh, kw] = pair(kernelSize);
    if (!Number.isInteger(groups) || groups < 1 || inChannels % groups || outChannels % groups)
      throw new RangeError(`Conv2d: 'groups' must divide inChannels (${inChannels}) and outChannels (${outChannels}), got ${groups}`);
    this.options = { stride, padding, dilation, groups };
    this.registerParameter('weight', zeros([outChannels, inChannels / groups, kh, kw]));
    this.registerParameter('bias', bias ? zeros([outChannels]) : null);
    resetConvLike(this.weight, this.bias, (inChannels / groups) * kh * kw);
  }
  forward(x: Tensor): Tensor {
    const conv = this.activation === 'relu' ? ops.conv2dRelu : ops.conv2d;
    return conv(x, this.weight, this.bias ?? undefined, this.options);
  }
}

export interface ConvTranspose2dConfig extends Omit<Conv2dConfig, 'activation'> {
  outputPadding?: Pair;
}
/** ConvTranspose2dConfig's fields (a misspelt one is refused, not ignored). */
const CONV_TRANSPOSE2D_CONFIG_KEYS: Record<keyof ConvTranspose2dConfig, true> = { stride: true, padding: true, dilation: true, groups: true, bias: true, outputPadding: true };

export class ConvTranspose2d extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly options: Required<Omit<ConvTranspose2dConfig, 'bias'>>;
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, config: ConvTranspose2dConfig = {}) {
    super();
    checkKeys('ConvTranspose2d', config, CONV_TRANSPOSE2D_CONFIG_KEYS, 'config');
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, outputPadding = 0 } = config;
    checkConvArgs('ConvTranspose2d', inChannels, outChannels, kernelSize, stride, padding, dilation);
    checkPair('ConvTranspose2d', 'outputPadding', outputPadding, 0);
    const [kh, kw] = pair(kernelSize);
    if (!Number.isInteger(groups) || groups < 1 || inChannels % groups || outChannels % groups)
      throw new RangeError(`ConvTranspose2d: 'groups' must divide inChannels (${inChannels}) and outChannels (${outChannels}), got ${groups}`);
    this.options = { stride, padding, dilation, groups, outputPadding };
    this.registerParameter('weight', zeros([inChannels, outChannels / groups, kh, kw]));
    this.registerParameter('bias', bias ? zeros([outChannels]) : null);
    // PyTorch computes fan_in from weight.size(1) for transposed convolutions too.
    resetConvLike(this.weight, this.bias, (outChannels / groups) * kh * kw);
  }
  forward(x: Tensor): Tensor {
    return ops.convTranspose2d(x, this.weight, this.bias ?? undefined, this.options);
  }
}

const LINEAR_CONFIG_KEYS: Record<'bias', true> = { bias: true };

export class Linear extends Module {
  declare weight: Tensor;
  declare bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, config: { bias?: boolean } = {}) {
    super();
    checkKeys('Linear', config, LINEAR_CONFIG_KEYS, 'config');
    checkInt('Linear', 'inFeatures', inFeatures, 1);
    checkInt('Linear', 'outFeatures', outFeatures, 1);
    this.registerParameter('weight', zeros([outFeatures, inFeatures]));
    this.registerParameter('bias', config.bias === false ? null : zeros([outFeatures]));
    resetConvLike(this.weight, this.bias, inFeatures);
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias ?? undefined);
  }
}

export interface BatchNormConfig {
  eps?: number;
  /** Running-statistics momentum; null for a cumulative average over all batches seen (PyTorch's momentum=None). */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}
/** BatchNormConfig's fields (a misspelt one is refused, not ignored). */
const BATCH_NORM_CONFIG_KEYS: Record<keyof BatchNormConfig, true> = { eps: true, momentum: true, affine: true, trackRunningStats: true };

export class BatchNorm2d extends Module {
  declare weight: Tensor | null;
  declare bias: Tensor | null;
  declare running_mean: Tensor | null;
  declare running_var: Tensor | null;
  declare num_batches_tracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;
  constructor(readonly numFeatures: number, config: BatchNormConfig = {}) {
    super();
    checkKeys('BatchNorm2d', config, BATCH_NORM_CONFIG_KEYS, 'config');
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true } = config;
    checkInt('BatchNorm2d', 'numFeatures', numFeatures, 1);
    if (momentum !== null && !(momentum >= 0 && momentum <= 1)) throw new RangeError(`BatchNorm2d: 'momentum' must be in [0, 1] or null, got ${momentum}`);
    if (!(eps > 0)) throw new RangeError(`BatchNorm2d: 'eps' must be > 0, got ${eps}`);
    this.eps = eps;
    this.momentum = momentum;
    this.registerParameter('weight', affine ? ones([numFeatures]) : null);
    this.registerParameter('bias', affine ? zeros([numFeatures]) : null);
    this.registerBuffer('running_mean', trackRunningStats ? zeros([numFeatures]) : null);
    this.registerBuffer('running_var', trackRunningStats ? ones([numFeatures]) : null);
    // A 0-dim counter, as PyTorch's (int64 there), so state dicts match shape for shape.
    this.registerBuffer('num_batches_tracked', trackRunningStats ? zeros([], 'int32') : null);
  }
  protected override optionalStateKeys(): string[] {
    return ['num_batches_tracked'];
  }
  forward(x: Tensor): Tensor {
    const training = this.training || !this.running_mean;
    let momentum = this.momentum ?? 0;
    if (this.training && this.num_batches_tracked) {
      const counter = this.num_batches_tracked;
      if (this.momentum === null || counter.device === 'cpu') {
        // On the host, and where the cumulative average needs the count there.
        const seen = counter.item() + 1;
        counter.assign(new Int32Array([seen]));
        if (this.momentum === null) momentum = 1 / seen;
      } else {
        // Counted on the device (through float32: exact up to 2^24 batches): reading it back
        // would wait for all the device's queued work at every layer.
        ops.noGrad(() => ops.scope(() => counter.assign(ops.affine(ops.cast(counter, 'float32'), 1, 1))));
      }
    }
    return ops.batchNorm2d(x, this.running_mean, this.running_var, this.weight, this.bias, { training, momentum, eps: this.eps });
  }
}

/** Output values (images x channels x pixels, at the input's size) from which convBatchNorm folds by default. */
const FOLD_MIN_OUTPUTS = 1 << 17;

/** Options of {@link convBatchNorm}. */
export interface ConvBatchNormOptions {
  /** ReLU after the batch norm (inside the convolution when folded). Default false. */
  relu?: boolean;
  /**
   * Fold an eval-mode batch norm into the convolution: 'auto' (default) where the output has at
   * least 2^17 values (images x channels x pixels), true always, false never.
   */
  fold?: boolean | 'auto';
  /** Added after the batch norm, before the ReLU (a residual connection); the output's shape. */
  residual?: Tensor;
}
const CONV_BATCH_NORM_OPTION_KEYS: Record<keyof ConvBatchNormOptions, true> = { relu: true, fold: true, residual: true };

/**
 * `bn(conv(x))` (plus `residual`), then ReLU with `relu`. Where `bn` normalises with its running statistics (eval
 * mode), folded into one convolution whose weights and bias carry the normalisation,
 *   w' = w * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps) per output channel,
 * with the ReLU inside it (cuda-core's conv2dRelu): no pass over the activations for the
 * normalisation and none for the ReLU. Equal to the two layers up to rounding, gradients
 * included (the folded weights are built with ops). Folding is a handful of small ops on the
 * weights while the passes it saves scale with the activations, so by default it folds from
 * 2^17 output values (lr68 on one face and its mirror image: 4.8 ms folded, 4.1 not; on 32
 * faces 22.6 against 24.8). With no `bn`, one convolution with the residual and the ReLU inside
 * it (conv2dAdd / conv2dAddRelu, or conv2dRelu). In training mode, or after a conv with its own
 * fused ReLU, the layers as they are.
 */
export function convBatchNorm(x: Tensor, conv: Conv2d, bn: BatchNorm2d | null, options: ConvBatchNormOptions = {}): Tensor {
  const fn = 'convBatchNorm';
  checkKeys(fn, options, CONV_BATCH_NORM_OPTION_KEYS);
  const { relu = false, fold = 'auto', residual } = options;
  if (typeof relu !== 'boolean') throw typeError(fn, 'relu', 'a boolean', relu);
  if (fold !== true && fold !== false && fold !== 'auto') throw typeError(fn, 'fold', "true, false or 'auto'", fold);
  if (residual !== undefined && !(residual instanceof ops.Tensor)) throw typeError(fn, 'residual', 'a Tensor', residual);
  return ops.scope(() => {
    const foldable = bn !== null && !bn.training && bn.running_mean !== null && bn.running_var !== null && conv.activation === 'none';
    // (A malformed x goes to the convolution, which names what is wrong with it.)
    const outputs = Array.isArray(x?.shape) && x.shape.length === 4 ? x.shape[0] * conv.outChannels * x.shape[2] * x.shape[3] : 0;
    // Without a batch norm to run between them, the residual and the ReLU join inside the convolution.
    if (!bn && conv.activation === 'none') {
      const bias = conv.bias ?? undefined;
      if (residual) return (relu ? ops.conv2dAddRelu : ops.conv2dAdd)(x, conv.weight, bias, residual, conv.options);
      return (relu ? ops.conv2dRelu : ops.conv2d)(x, conv.weight, bias, conv.options);
    }
    if (!foldable || fold === false || (fold === 'auto' && outputs < FOLD_MIN_OUTPUTS)) {
      let h = conv.forward(x);
      if (bn) h = bn.forward(h);
      if (residual) h = ops.add(h, residual);
      return relu ? ops.relu(h) : h;
    }
    const o = conv.outChannels;
    const std = ops.sqrt(ops.affine(bn.running_var!, 1, bn.eps));
    const scale = ops.div(bn.weight ?? ones([o], 'float32', conv.weight.device as ops.DeviceSpec), std);
    // As [O, rest] x [O, 1]: broadcast over the 3-wide last axis of [O, C, kh, kw] the product
    // runs row by row of 3 (a tenth of a single-face lr68 detection).
    const weight = ops.reshape(ops.mul(ops.reshape(conv.weight, [o, -1]), ops.reshape(scale, [o, 1])), conv.weight.shape);
    let bias = ops.mul(conv.bias ? ops.sub(conv.bias, bn.running_mean!) : ops.neg(bn.running_mean!), scale);
    if (bn.bias) bias = ops.add(bias, bn.bias);
    if (residual) return (relu ? ops.conv2dAddRelu : ops.conv2dAdd)(x, weight, bias, residual, conv.options);
    return (relu ? ops.conv2dRelu : ops.conv2d)(x, weight, bias, conv.options);
  });
}

// Checked when the layer is built, not at its first forward.
const MAX_POOL2D_OPTION_KEYS: Record<keyof ops.MaxPool2dOptions, true> = { kernelSize: true, stride: true, padding: true, dilation: true, ceilMode: true };
const AVG_POOL2D_OPTION_KEYS: Record<keyof ops.AvgPool2dOptions, true> = { kernelSize: true, stride: true, padding: true, ceilMode: true, countIncludePad: true };

export class MaxPool2d extends Module {
  constructor(readonly options: ops.MaxPool2dOptions) {
    super();
    checkKeys('MaxPool2d', options, MAX_POOL2D_OPTION_KEYS);
  }
  forward(x: Tensor): Tensor {
    return ops.maxPool2d(x, this.options);
  }
}

export class AvgPool2d extends Module {
  constructor(readonly options: ops.AvgPool2dOptions) {
    super();
    checkKeys('AvgPool2d', options, AVG_POOL2D_OPTION_KEYS);
  }
  forward(x: Tensor): Tensor {
    return ops.avgPool2d(x, this.options);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: number | [number, number]) {
    super();
    checkPair('AdaptiveAvgPool2d', 'outputSize', outputSize, 1);
  }
  forward(x: Tensor): Tensor {
    return ops.adaptiveAvgPool2d(x, this.outputSize);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.leakyRelu(x, this.negativeSlope);
  }
}

export class PReLU extends Module {
  declare weight: Tensor;
  constructor(numParameters = 1, init = 0.25) {
    super();
    checkInt('PReLU', 'numParameters', numParameters, 1);
    if (typeof init !== 'number') throw typeError('PReLU', 'init', 'a finite number', init);
    if (!Number.isFinite(init)) throw rangeError('PReLU', 'init', 'a finite number', init);
    this.registerParameter('weight', full([numParameters], init));
  }
  forward(x: Tensor): Tensor {
    return ops.prelu(x, this.weight);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return ops.sigmoid(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return ops.tanh(x);
  }
}

/** LightCNN's max-feature-map over channels. */
export class MFM extends Module {
  forward(x: Tensor): Tensor {
    return ops.mfm(x);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: 'p' must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, { p: this.p, training: this.training });
  }
}

const UPSAMPLE_OPTION_KEYS: Record<keyof ops.UpsampleOptions, true> = { size: true, scaleFactor: true, mode: true, alignCorners: true, antialias: true };

export class Upsample extends Module {
  constructor(readonly options: ops.UpsampleOptions) {
    super();
    checkKeys('Upsample', options, UPSAMPLE_OPTION_KEYS);
  }
  forward(x: Tensor): Tensor {
    return ops.upsample(x, this.options);
  }
}

export class PixelShuffle extends Module {
  constructor(readonly upscaleFactor: number) {
    super();
    checkInt('PixelShuffle', 'upscaleFactor', upscaleFactor, 1);
  }
  forward(x: Tensor): Tensor {
    return ops.pixelShuffle(x, this.upscaleFactor);
  }
}

export class Flatten extends Module {
  constructor(readonly startAxis = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.flatten(x, this.startAxis);
  }
}

/** The identity, for optional slots. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return ops.reshape(x, x.shape as number[]);
  }
}

export interface ResidualBlockConfig {
  kernelSize?: number;
  /** BatchNorm2d after each convolution (SRResNet, Bulat's high-to-low generator). */
  batchNorm?: boolean;
  /** Convolution biases; default: only without batch norm. */
  bias?: boolean;
  /** Between the convolutions. Default ReLU. */
  activation?: Module;
  /** After the second convolution, before the addition (FRNET's PReLU); a module of its own. */
  postActivation?: Module;
  residualScale?: number;
}
/** ResidualBlockConfig's fields (a misspelt one is refused, not ignored). */
const RESIDUAL_BLOCK_CONFIG_KEYS: Record<keyof ResidualBlockConfig, true> = { kernelSize: true, batchNorm: true, bias: true, activation: true, postActivation: true, residualScale: true };

/**
 * The residual unit of the papers: x + scale * post(bn2(conv2(act(bn1(conv1(x)))))), each part
 * optional: EDSR/SRResNet (batchNorm, no post activation), Bulat's generator (batchNorm),
 * FRNET / SphereFace (activation and postActivation PReLU, no batch norm).
 */
export class ResidualBlock extends Module {
  declare conv1: Conv2d;
  declare conv2: Conv2d;
  declare bn1: BatchNorm2d | null;
  declare bn2: BatchNorm2d | null;
  declare act: Module;
  declare post: Module | null;
  private readonly residualScale: number;
  constructor(readonly channels: number, config: ResidualBlockConfig = {}) {
    super();
    checkKeys('ResidualBlock', config, RESIDUAL_BLOCK_CONFIG_KEYS, 'config');
    const { kernelSize = 3, batchNorm = false, activation = new ReLU(), postActivation = null, residualScale = 1 } = config;
    const bias = config.bias ?? !batchNorm;
    checkInt('ResidualBlock', 'channels', channels, 1);
    if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) throw new RangeError(`ResidualBlock: 'kernelSize' must be an odd integer >= 1, got ${kernelSize}`);
    const pad = Math.floor(kernelSize / 2);
    this.registerModule('conv1', new Conv2d(channels, channels, kernelSize, { padding: pad, bias }));
    this.registerModule('bn1', batchNorm ? new BatchNorm2d(channels) : null);
    this.registerModule('act', activation);
    this.registerModule('conv2', new Conv2d(channels, channels, kernelSize, { padding: pad, bias }));
    this.registerModule('bn2', batchNorm ? new BatchNorm2d(channels) : null);
    this.registerModule('post', postActivation);
    this.residualScale = residualScale;
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => {
      // A ReLU between the convolutions goes inside the first (with its batch norm folded in, in eval mode).
      const relu = this.act.constructor === ReLU;
      let h = convBatchNorm(x, this.conv1, this.bn1, { relu });
      if (!relu) h = this.act.forward(h) as Tensor;
      // The identity joins inside the second convolution where nothing comes between them.
      if (!this.post && this.residualScale === 1) return convBatchNorm(h, this.conv2, this.bn2, { residual: x });
      h = convBatchNorm(h, this.conv2, this.bn2);
      if (this.post) h = this.post.forward(h) as Tensor;
      return ops.add(x, this.residualScale === 1 ? h : ops.affine(h, this.residualScale));
    });
  }
}
