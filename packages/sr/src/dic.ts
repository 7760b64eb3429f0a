// DIC (Ma et al., CVPR 2020): face super-resolution x8 in which an SR branch (SRFBN-style
// feedback blocks of dense up/down projections) and a landmark branch (a feedback hourglass)
// take turns for `numSteps` steps; from step 1 on, the landmark heatmaps of the previous step
// steer the SR features through a per-pixel attention over 5 facial components
// (design/models/03_dic_dicgan.md; the released code is authoritative). Module and parameter
// names follow the released PyTorch code, so its state dict keys are ours.
import { readFileSync } from 'node:fs';
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import {
  Conv2d,
  ConvTranspose2d,
  LeakyReLU,
  MaxPool2d,
  Module,
  ModuleList,
  PixelShuffle,
  PReLU,
  ReLU,
  Sequential,
  constant_,
  decodeSafetensors,
  encodeSafetensors,
  kaimingNormal_,
  writeFileAtomic,
} from '@lrface/nn';
import { WeightsFileError, sha256 } from './weights.js';

/** Kernel, stride and padding of a (transposed) convolution that scales by `stride` exactly. */
export interface ScalingConv {
  kernel: number;
  stride: number;
  padding: number;
}

/** Every hyper-parameter of DIC; the defaults are the released CelebA / Helen configuration. */
export interface DicConfig {
  /** Input image channels (3: RGB). */
  inChannels: number;
  /** Output image channels (3: RGB); the hourglass reads images of this many channels. */
  outChannels: number;
  /** Width of the SR branch (48). */
  numFeatures: number;
  /** SR / landmark iterations (4). */
  numSteps: number;
  /** Up/down projection groups per feedback block (6). */
  numGroups: number;
  /** Hourglass width f (256): its body has 2f channels, f for the heatmap head and f of hidden state. */
  hgNumFeature: number;
  /** Landmarks (heatmap channels) (68). */
  numKeypoints: number;
  /** Hourglass recursion depth (4). */
  hgDepth: number;
  /** Grouped residual blocks in the attentive fusion (7). */
  numFusionBlocks: number;
  /** Upscaling factor; only 8 is consistent with heatmaps at 1/4 of the HR size on the 2x LR feature grid. */
  scale: number;
  /** Stop gradients from the attention into the hourglass (released: false). */
  detachAttention: boolean;
  /** The up/down projections inside the feedback blocks (SRFBN's x8 setting, 12/8/2: internal maps 8x the feature size). */
  projection: ScalingConv;
  /** The reconstruction deconvolution from the 2x feature grid to HR (8/4/2). */
  outDeconv: ScalingConv;
  /** RGB mean subtracted from input and target images in [0, 1] (std 1). */
  rgbMean: [number, number, number];
  /** Landmark indices (0-based) summed into each attention component; default: the 5 iBUG-68 components. */
  landmarkGroups: number[][];
  /** Lower bound of each heatmap's spatial max when normalising heatmaps before merging (0.05). */
  heatmapMaxFloor: number;
  /** Initial slope of every PReLU (0.2). */
  preluInit: number;
  /** LeakyReLU slope in the fusion block (0.2). */
  fusionSlope: number;
  /**
   * Initialisation of the hourglass: 'pytorch' (default: PyTorch's layer defaults, kaiming
   * uniform with a = sqrt(5)) or 'kaiming' (the released init_weights: kaiming normal, fan in,
   * zero biases). The released training overwrites the hourglass with pretrained weights
   * (FB_HG_68_CelebA.pth), which are not available here; from scratch, 'kaiming' without batch
   * norm makes the heatmaps explode (RMS about 1e2 at step 0 and 1e11 at step 3 for the default
   * config), PyTorch's defaults keep them near 0.1-1.
   */
  hgInit: 'pytorch' | 'kaiming';
}

/** The 5 iBUG-68 components of the attention (0-based, released `merge_heatmap_5`): left eye, right eye, nose, mouth, silhouette with brows. */
export const DIC_68_LANDMARK_GROUPS: readonly (readonly number[])[] = [
  range(36, 42),
  range(42, 48),
  range(27, 36),
  range(48, 68),
  range(0, 27),
];

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** The released configuration (train_DIC_CelebA.json). */
export const DEFAULT_DIC_CONFIG: Readonly<DicConfig> = Object.freeze({
  inChannels: 3,
  outChannels: 3,
  numFeatures: 48,
  numSteps: 4,
  numGroups: 6,
  hgNumFeature: 256,
  numKeypoints: 68,
  hgDepth: 4,
  numFusionBlocks: 7,
  scale: 8,
  detachAttention: false,
  projection: { kernel: 12, stride: 8, padding: 2 },
  outDeconv: { kernel: 8, stride: 4, padding: 2 },
  rgbMean: [0.509, 0.424, 0.378],
  landmarkGroups: DIC_68_LANDMARK_GROUPS.map((g) => [...g]),
  heatmapMaxFloor: 0.05,
  preluInit: 0.2,
  fusionSlope: 0.2,
  hgInit: 'pytorch',
}) as Readonly<DicConfig>;

const CONFIG_KEYS = Object.keys(DEFAULT_DIC_CONFIG) as (keyof DicConfig)[];

function posInt(arg: string, v: unknown, min = 1): number {
  if (typeof v !== 'number') throw typeError('Dic', arg, `an integer >= ${min}`, v);
  if (!Number.isInteger(v) || v < min) throw rangeError('Dic', arg, `an integer >= ${min}`, v);
  return v;
}

function scalingConv(arg: string, v: unknown): ScalingConv {
  if (!v || typeof v !== 'object') throw typeError('Dic', arg, 'an object { kernel, stride, padding }', v);
  const s = v as ScalingConv;
  const kernel = posInt(`${arg}.kernel`, s.kernel);
  const stride = posInt(`${arg}.stride`, s.stride);
  const padding = posInt(`${arg}.padding`, s.padding, 0);
  // (L - 1) s - 2p + k = sL and floor((sL + 2p - k) / s) + 1 = L both need k - 2p = s.
  if (kernel - 2 * padding !== stride) throw rangeError('Dic', arg, 'kernel - 2 * padding = stride (an exact scaling)', `${kernel} - 2 * ${padding} vs stride ${stride}`, true);
  return { kernel, stride, padding };
}

/** Fills in defaults and checks a DIC config (TypeError / RangeError naming 'Dic' and the field). */
export function resolveDicConfig(config: Partial<DicConfig> = {}): DicConfig {
  checkKeys('Dic', config, CONFIG_KEYS, 'config');
  const c = { ...DEFAULT_DIC_CONFIG, ...config } as DicConfig;
  for (const k of ['inChannels', 'outChannels', 'numFeatures', 'numSteps', 'numGroups', 'hgNumFeature', 'numKeypoints', 'hgDepth'] as const) posInt(k, c[k]);
  posInt('numFusionBlocks', c.numFusionBlocks, 0);
  if (c.hgNumFeature % 4 !== 0) throw rangeError('Dic', 'hgNumFeature', 'a multiple of 4 (the hourglass stem has hgNumFeature / 4 channels)', c.hgNumFeature);
  if (typeof c.detachAttention !== 'boolean') throw typeError('Dic', 'detachAttention', 'a boolean', c.detachAttention);
  const projection = scalingConv('projection', c.projection);
  const outDeconv = scalingConv('outDeconv', c.outDeconv);
  posInt('scale', c.scale);
  if (c.scale !== 8) throw rangeError('Dic', 'scale', '8 (heatmaps at 1/4 of the HR size must match the 2x LR feature grid)', c.scale);
  if (2 * outDeconv.stride !== c.scale) throw rangeError('Dic', 'outDeconv.stride', `scale / 2 = ${c.scale / 2} (pixel shuffle x2, then the deconvolution)`, outDeconv.stride);
  if (!Array.isArray(c.rgbMean) || c.rgbMean.length !== c.inChannels || c.rgbMean.some((m) => typeof m !== 'number' || !Number.isFinite(m)))
    throw typeError('Dic', 'rgbMean', `${c.inChannels} finite numbers`, c.rgbMean);
  if (c.inChannels !== c.outChannels) throw rangeError('Dic', 'outChannels', `inChannels (${c.inChannels}): the global skip adds the upsampled input`, c.outChannels);
  if (!Array.isArray(c.landmarkGroups) || c.landmarkGroups.length === 0) throw typeError('Dic', 'landmarkGroups', 'a non-empty array of index arrays', c.landmarkGroups);
  c.landmarkGroups.forEach((g, i) => {
    if (!Array.isArray(g) || g.length === 0) throw typeError('Dic', `landmarkGroups[${i}]`, 'a non-empty array of landmark indices', g);
    for (const j of g) if (!Number.isInteger(j) || j < 0 || j >= c.numKeypoints) throw rangeError('Dic', `landmarkGroups[${i}]`, `indices in [0, ${c.numKeypoints})`, j);
  });
  if (!(typeof c.heatmapMaxFloor === 'number' && c.heatmapMaxFloor > 0)) throw rangeError('Dic', 'heatmapMaxFloor', '> 0', c.heatmapMaxFloor);
  for (const k of ['preluInit', 'fusionSlope'] as const) if (typeof c[k] !== 'number' || !Number.isFinite(c[k])) throw typeError('Dic', k, 'a finite number', c[k]);
  if (c.hgInit !== 'pytorch' && c.hgInit !== 'kaiming') throw rangeError('Dic', 'hgInit', "'pytorch' or 'kaiming'", c.hgInit);
  return { ...c, projection, outDeconv, rgbMean: [...c.rgbMean] as [number, number, number], landmarkGroups: c.landmarkGroups.map((g) => [...g]) };
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/** conv (+ PReLU): the released `ConvBlock` without normalisation, children '0' (conv) and '1' (act). */
function convBlock(inCh: number, outCh: number, kernel: number, preluInit: number | null, options: { stride?: number; padding?: number } = {}): Sequential {
  const conv = new Conv2d(inCh, outCh, kernel, { stride: options.stride ?? 1, padding: options.padding ?? (kernel - 1) >> 1 });
  return preluInit === null ? new Sequential(conv) : new Sequential(conv, new PReLU(1, preluInit));
}

function deconvBlock(inCh: number, outCh: number, s: ScalingConv, preluInit: number): Sequential {
  return new Sequential(new ConvTranspose2d(inCh, outCh, s.kernel, { stride: s.stride, padding: s.padding }), new PReLU(1, preluInit));
}

/**
 * Normalises each heatmap by its spatial max (clamped to >= `floor`) and sums the maps of each
 * landmark group: [B, K, H, W] -> [B, groups.length, H, W] (released `merge_heatmap_5`).
 */
export function mergeHeatmaps(heatmaps: Tensor, groups: readonly (readonly number[])[], floor = 0.05): Tensor {
  if (!ops.isTensor(heatmaps) || heatmaps.dtype !== 'float32') throw typeError('mergeHeatmaps', 'heatmaps', 'a float32 [B, K, H, W] tensor', heatmaps);
  if (heatmaps.rank !== 4) throw rangeError('mergeHeatmaps', 'heatmaps', 'shape [B, K, H, W]', `[${heatmaps.shape.join(',')}]`, true);
  const k = heatmaps.shape[1];
  for (const g of groups) for (const j of g) if (!Number.isInteger(j) || j < 0 || j >= k) throw rangeError('mergeHeatmaps', 'groups', `indices in [0, ${k})`, j);
  return ops.scope(() => {
    const peak = ops.clamp(ops.max(heatmaps, { axis: [2, 3], keepDims: true }), floor);
    const normalised = ops.div(heatmaps, peak);
    const merged = groups.map((g) => {
      // Sum over contiguous runs of indices (one narrow each), then over the runs.
      const sorted = [...g].sort((a, b) => a - b);
      let acc: Tensor | null = null;
      for (let i = 0; i < sorted.length; ) {
        let j = i + 1;
        while (j < sorted.length && sorted[j] === sorted[j - 1] + 1) j++;
        const part = ops.sum(ops.narrow(normalised, 1, sorted[i], j - i), { axis: 1, keepDims: true });
        acc = acc ? ops.add(acc, part) : part;
        i = j;
      }
      return acc!;
    });
    return merged.length === 1 ? merged[0] : ops.concat(merged, 1);
  });
}

/** The fusion's residual block: x + conv(act(conv(x))), both grouped 3x3 (released `ResBlock`, children res.0 / res.2). */
export class GroupedResBlock extends Module {
  declare res: Sequential;
  constructor(channels: number, groups: number, slope: number) {
    super();
    const conv = () => new Conv2d(channels, channels, 3, { padding: 1, groups });
    this.registerModule('res', new Sequential(conv(), new LeakyReLU(slope), conv()));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => ops.add(x, this.res.forward(x)));
  }
}

/**
 * Attentive fusion (released `FeatureHeatmapFusingBlock`): features -> conv1x1 to C*K +
 * LeakyReLU -> grouped residual blocks (K groups: one C-channel feature set per component) ->
 * sum over components weighted by the per-pixel softmax of the K merged heatmaps.
 */
export class FeatureHeatmapFusion extends Module {
  declare conv_in: Sequential;
  declare resnet: Sequential;
  constructor(readonly channels: number, readonly components: number, blocks: number, slope: number) {
    super();
    const wide = channels * components;
    this.registerModule('conv_in', new Sequential(new Conv2d(channels, wide, 1), new LeakyReLU(slope)));
    this.registerModule('resnet', new Sequential(...Array.from({ length: blocks }, () => new GroupedResBlock(wide, components, slope))));
  }
  /** `feature` [B, C, H, W], `merged` [B, K, H, W] (raw merged heatmaps; the softmax is taken here). */
  forward(feature: Tensor, merged: Tensor): Tensor {
    const [b, , h, w] = feature.shape;
    if (merged.rank !== 4 || merged.shape[0] !== b || merged.shape[1] !== this.components || merged.shape[2] !== h || merged.shape[3] !== w)
      throw rangeError('FeatureHeatmapFusion.forward', 'merged', `shape [${b},${this.components},${h},${w}]`, `[${merged.shape.join(',')}]`, true);
    return ops.scope(() => {
      const f = this.resnet.length ? this.resnet.forward(this.conv_in.forward(feature)) : this.conv_in.forward(feature);
      const attention = ops.softmax(merged, 1);
      const weighted = ops.mul(ops.reshape(f, [b, this.components, this.channels, h, w]), ops.reshape(attention, [b, this.components, 1, h, w]));
      return ops.sum(weighted, { axis: 1 });
    });
  }
}

/**
 * SRFBN's feedback block of dense up/down projection groups. The first block of DIC reads the
 * LR features alone; the attentive one reads concat(features, hidden) and fuses the heatmap
 * attention before the projections.
 */
export class DicFeedbackBlock extends Module {
  declare compress_in: Sequential;
  declare upBlocks: ModuleList;
  declare downBlocks: ModuleList;
  declare uptranBlocks: ModuleList;
  declare downtranBlocks: ModuleList;
  declare compress_out: Sequential;
  declare fusion_block: FeatureHeatmapFusion | null;
  constructor(readonly numFeatures: number, readonly numGroups: number, inChannels: number, projection: ScalingConv, preluInit: number, fusion: FeatureHeatmapFusion | null) {
    super();
    const nf = numFeatures;
    this.registerModule('compress_in', convBlock(inChannels, nf, 1, preluInit));
    this.registerModule('upBlocks', new ModuleList(Array.from({ length: numGroups }, () => deconvBlock(nf, nf, projection, preluInit))));
    this.registerModule(
      'downBlocks',
      new ModuleList(Array.from({ length: numGroups }, () => convBlock(nf, nf, projection.kernel, preluInit, { stride: projection.stride, padding: projection.padding }))),
    );
    this.registerModule('uptranBlocks', new ModuleList(Array.from({ length: numGroups - 1 }, (_, i) => convBlock(nf * (i + 2), nf, 1, preluInit))));
    this.registerModule('downtranBlocks', new ModuleList(Array.from({ length: numGroups - 1 }, (_, i) => convBlock(nf * (i + 2), nf, 1, preluInit))));
    this.registerModule('compress_out', convBlock(numGroups * nf, nf, 1, preluInit));
    this.registerModule('fusion_block', fusion);
  }
  /** `x` the LR features; `hidden` (attentive block) its previous output; `merged` the merged heatmaps. */
  forward(x: Tensor, hidden?: Tensor, merged?: Tensor): Tensor {
    return ops.scope(() => {
      let h = this.compress_in.forward(hidden ? ops.concat([x, hidden], 1) : x);
      if (this.fusion_block) h = this.fusion_block.forward(h, merged!);
      const lr: Tensor[] = [h];
      const hr: Tensor[] = [];
      for (let g = 0; g < this.numGroups; g++) {
        let l = g === 0 ? lr[0] : (this.uptranBlocks.at(g - 1) as Sequential).forward(ops.concat(lr, 1));
        hr.push((this.upBlocks.at(g) as Sequential).forward(l));
        const hh = g === 0 ? hr[0] : (this.downtranBlocks.at(g - 1) as Sequential).forward(ops.concat(hr, 1));
        l = (this.downBlocks.at(g) as Sequential).forward(hh);
        lr.push(l);
      }
      return this.compress_out.forward(ops.concat(lr.slice(1), 1));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Landmark branch: the feedback hourglass (no batch norm)

/**
 * The hourglass residual without batch norm, as the released code writes it: conv1x1 in->out/2,
 * ReLU, conv3x3, conv1x1 out/2->out (no ReLU after the 3x3), plus the input (conv1x1 when the
 * widths differ).
 */
export class HourglassResidual extends Module {
  declare conv_block: Sequential;
  declare skip_layer: Conv2d | null;
  constructor(readonly inChannels: number, readonly outChannels: number) {
    super();
    const mid = outChannels >> 1;
    this.registerModule('conv_block', new Sequential(new Conv2d(inChannels, mid, 1), new ReLU(), new Conv2d(mid, mid, 3, { padding: 1 }), new Conv2d(mid, outChannels, 1)));
    this.registerModule('skip_layer', inChannels === outChannels ? null : new Conv2d(inChannels, outChannels, 1));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => ops.add(this.skip_layer ? this.skip_layer.forward(x) : x, this.conv_block.forward(x)));
  }
}

/** Hourglass(n, f): up1 = Res(x); low = Res(pool(x)); low = Hourglass(n-1) or Res; out = up1 + bilinear x2 (align corners) of Res(low). */
export class Hourglass extends Module {
  constructor(readonly depth: number, readonly features: number) {
    super();
    for (let n = depth; n >= 1; n--) {
      this.registerModule(`res${n}_1`, new HourglassResidual(features, features));
      this.registerModule(`pool${n}_1`, new MaxPool2d({ kernelSize: 2, stride: 2 }));
      this.registerModule(`res${n}_2`, new HourglassResidual(features, features));
      this.registerModule(`res${n}_3`, new HourglassResidual(features, features));
    }
    this.registerModule('res_center', new HourglassResidual(features, features));
  }
  private level(x: Tensor, n: number): Tensor {
    const m = (name: string) => (this as unknown as Record<string, Module>)[name];
    return ops.scope(() => {
      const up1 = m(`res${n}_1`).forward(x) as Tensor;
      const low1 = m(`res${n}_2`).forward(m(`pool${n}_1`).forward(x)) as Tensor;
      const low2 = n > 1 ? this.level(low1, n - 1) : (m('res_center').forward(low1) as Tensor);
      const low3 = m(`res${n}_3`).forward(low2) as Tensor;
      return ops.add(up1, ops.upsample(low3, { scaleFactor: 2, mode: 'bilinear', alignCorners: true }));
    });
  }
  forward(x: Tensor): Tensor {
    return this.level(x, this.depth);
  }
}

/** Released `FeedbackHourGlass`: stem, compress_in over concat(feature, hidden), hourglass on 2f channels, heatmap head on the first f. */
export class FeedbackHourglass extends Module {
  declare pre_conv_block: Sequential;
  declare compress_in: Conv2d;
  declare hg: Hourglass;
  declare hg_conv_out: Sequential;
  constructor(readonly numFeature: number, readonly numKeypoints: number, depth: number, imageChannels: number) {
    super();
    const f = numFeature;
    this.registerModule(
      'pre_conv_block',
      new Sequential(
        new Conv2d(imageChannels, f / 4, 7, { stride: 2, padding: 3 }),
        new ReLU(),
        new HourglassResidual(f / 4, f / 2),
        new MaxPool2d({ kernelSize: 2, stride: 2 }),
        new HourglassResidual(f / 2, f / 2),
        new HourglassResidual(f / 2, f),
      ),
    );
    this.registerModule('compress_in', new Conv2d(2 * f, 2 * f, 1));
    this.registerModule('hg', new Hourglass(depth, 2 * f));
    // Released `Lin` without batch norm is Sequential(conv1x1, ReLU) under the name conv_block.
    const lin = new LinBlock(f);
    this.registerModule('hg_conv_out', new Sequential(new HourglassResidual(f, f), lin, new Conv2d(f, numKeypoints, 1)));
  }
  /** Heatmaps [B, K, H/4, W/4] and the hidden state for the next step (hidden := the stem's features at step 0). */
  forward(image: Tensor, hidden: Tensor | null = null): { heatmap: Tensor; hidden: Tensor } {
    return ops.scope(() => {
      const feature = this.pre_conv_block.forward(image);
      const body = this.hg.forward(this.compress_in.forward(ops.concat([feature, hidden ?? feature], 1)));
      const f = this.numFeature;
      return { heatmap: this.hg_conv_out.forward(ops.narrow(body, 1, 0, f)), hidden: ops.narrow(body, 1, f, f) };
    });
  }
}

/** Released `Lin` (no batch norm): conv1x1 + ReLU, child conv_block. */
class LinBlock extends Module {
  declare conv_block: Sequential;
  constructor(f: number) {
    super();
    this.registerModule('conv_block', new Sequential(new Conv2d(f, f, 1), new ReLU()));
  }
  forward(x: Tensor): Tensor {
    return this.conv_block.forward(x);
  }
}

// ---------------------------------------------------------------------------------------------
// DIC

/** What {@link Dic.forward} returns: one SR image and one heatmap stack per step. */
export interface DicOutput {
  /** [B, C, 8H, 8W] per step, in the normalised (mean-subtracted) space. */
  sr: Tensor[];
  /** [B, K, 2H, 2W] per step (1/4 of the HR size). */
  heatmaps: Tensor[];
}

/** DIC: iterative collaboration of attentive SR and landmark estimation (x8). */
export class Dic extends Module {
  readonly arch = 'dic';
  readonly config: DicConfig;
  declare conv_in: Sequential;
  declare feat_in: PixelShuffle;
  declare first_block: DicFeedbackBlock;
  declare block: DicFeedbackBlock;
  declare out: Sequential;
  declare conv_out: Sequential;
  declare HG: FeedbackHourglass;
  constructor(config: Partial<DicConfig> = {}) {
    super();
    const c = (this.config = resolveDicConfig(config));
    const nf = c.numFeatures;
    this.registerModule('conv_in', convBlock(c.inChannels, 4 * nf, 3, c.preluInit));
    this.registerModule('feat_in', new PixelShuffle(2));
    this.registerModule('first_block', new DicFeedbackBlock(nf, c.numGroups, nf, c.projection, c.preluInit, null));
    const fusion = new FeatureHeatmapFusion(nf, c.landmarkGroups.length, c.numFusionBlocks, c.fusionSlope);
    this.registerModule('block', new DicFeedbackBlock(nf, c.numGroups, 2 * nf, c.projection, c.preluInit, fusion));
    this.registerModule('out', deconvBlock(nf, nf, c.outDeconv, c.preluInit));
    this.registerModule('conv_out', convBlock(nf, c.outChannels, 3, null));
    this.registerModule('HG', new FeedbackHourglass(c.hgNumFeature, c.numKeypoints, c.hgDepth, c.outChannels));
    // The released init: kaiming normal (fan in, a = 0) for every (transposed) convolution, zero
    // biases; the hourglass keeps PyTorch's defaults unless hgInit is 'kaiming'.
    const hgModules = new Set(c.hgInit === 'kaiming' ? [] : [...this.HG.namedModules()].map(([, m]) => m));
    for (const [, m] of this.namedModules())
      if ((m instanceof Conv2d || m instanceof ConvTranspose2d) && !hgModules.has(m)) {
        kaimingNormal_(m.weight, { a: 0, mode: 'fan_in' });
        if (m.bias) constant_(m.bias, 0);
      }
  }

  /** LR sides must be multiples of this (the hourglass halves the 2x feature grid `hgDepth` times). */
  get sizeMultiple(): number {
    return 2 ** Math.max(0, this.config.hgDepth - 1);
  }

  /** Checks an LR batch: float32 [B, inChannels, h, w], h and w multiples of {@link sizeMultiple}. */
  checkInput(x: unknown, fn = 'Dic.forward'): Tensor {
    // Freed weights would otherwise surface inside the first convolution, naming only the op.
    if (this.disposed) throw new Error(`${fn}: the DIC network was disposed`);
    const t = x as Tensor;
    if (!ops.isTensor(t) || t.dtype !== 'float32') throw typeError(fn, 'lr', `a float32 [B, ${this.config.inChannels}, h, w] tensor`, x);
    if (t.rank !== 4 || t.shape[1] !== this.config.inChannels) throw rangeError(fn, 'lr', `shape [B, ${this.config.inChannels}, h, w]`, `[${t.shape.join(',')}]`, true);
    const m = this.sizeMultiple;
    const [, , h, w] = t.shape;
    if (h < m || w < m || h % m !== 0 || w % m !== 0) throw rangeError(fn, 'lr', `a size h x w with h and w positive multiples of ${m} (hourglass depth ${this.config.hgDepth})`, `${h}x${w}`, true);
    return t;
  }

  /** The bilinear x8 enlargement of the LR input (align corners false): the global skip every step adds. */
  globalSkip(lr: Tensor): Tensor {
    return ops.upsample(lr, { scaleFactor: this.config.scale, mode: 'bilinear', alignCorners: false });
  }

  /** Runs the numSteps iterations on a mean-subtracted LR batch. */
  forward(lr: Tensor): DicOutput {
    this.checkInput(lr);
    const c = this.config;
    return ops.scope(() => {
      const interRes = this.globalSkip(lr);
      const feat = this.feat_in.forward(this.conv_in.forward(lr));
      const sr: Tensor[] = [];
      const heatmaps: Tensor[] = [];
      let hidden: Tensor | null = null;
      let hgHidden: Tensor | null = null;
      for (let t = 0; t < c.numSteps; t++) {
        let fb: Tensor;
        if (t === 0) fb = this.first_block.forward(feat);
        else {
          let merged = mergeHeatmaps(heatmaps[t - 1], c.landmarkGroups, c.heatmapMaxFloor);
          if (c.detachAttention) merged = merged.detach();
          fb = this.block.forward(feat, hidden!, merged);
        }
        hidden = fb;
        const image = ops.add(interRes, this.conv_out.forward(this.out.forward(fb)));
        const hg: { heatmap: Tensor; hidden: Tensor } = this.HG.forward(image, hgHidden);
        hgHidden = hg.hidden;
        sr.push(image);
        heatmaps.push(hg.heatmap);
      }
      return { sr, heatmaps };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Weights

const SAVE_DIC_META_KEYS: Record<'note', true> = { note: true };

/** Writes a DIC's weights with its config in the metadata (.safetensors, atomically); returns the sha256. */
export function saveDicWeights(file: string, net: Dic, meta: { note?: string } = {}): string {
  if (typeof file !== 'string' || file === '') throw typeError('saveDicWeights', 'file', 'a non-empty path string', file);
  if (!(net instanceof Dic)) throw typeError('saveDicWeights', 'net', 'a Dic', net);
  checkKeys('saveDicWeights', meta, SAVE_DIC_META_KEYS, 'meta');
  if (net.disposed) throw new Error("saveDicWeights: the DIC network ('net') was disposed");
  const metadata: Record<string, string> = { format: 'lrface-sr-1', arch: 'dic', config: JSON.stringify(net.config), scales: JSON.stringify([net.config.scale]) };
  if (meta.note) metadata.note = meta.note;
  const bytes = encodeSafetensors(net.stateDict(), metadata);
  writeFileAtomic(file, bytes, 'saveDicWeights');
  return sha256(bytes);
}

/**
 * Builds the DIC a weights file describes and loads it. A file that cannot be read, is corrupt,
 * holds another architecture or tensors that do not fit is a {@link WeightsFileError} naming
 * the file.
 */
export function loadDicWeights(file: string): Dic {
  if (typeof file !== 'string' || file === '') throw typeError('loadDicWeights', 'file', 'a non-empty path string', file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new WeightsFileError(file, `cannot read weights (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  let decoded: { tensors: Map<string, Tensor>; metadata: Record<string, string> };
  try {
    decoded = decodeSafetensors(bytes, file);
  } catch (err) {
    throw new WeightsFileError(file, `corrupt weights (${(err as Error).message.replace(`${file}: `, '')})`, { cause: err });
  }
  const { tensors, metadata } = decoded;
  try {
    if (metadata.arch !== 'dic') throw new WeightsFileError(file, `holds ${metadata.arch ? `'${metadata.arch}'` : 'unlabelled'} weights, not 'dic'`);
    let config: Partial<DicConfig>;
    try {
      config = JSON.parse(metadata.config ?? '{}');
    } catch (err) {
      throw new WeightsFileError(file, `bad metadata (config: ${(err as Error).message})`, { cause: err });
    }
    let net: Dic;
    try {
      net = new Dic(config);
    } catch (err) {
      throw new WeightsFileError(file, `its config does not build a 'dic' network (${(err as Error).message})`, { cause: err });
    }
    try {
      net.loadStateDict(tensors);
    } catch (err) {
      net.dispose();
      throw new WeightsFileError(file, `weights do not fit the 'dic' network (${(err as Error).message.replace(/^loadStateDict: 'state' does not fit the module \((.*)\)$/s, '$1')})`, { cause: err });
    }
    net.eval();
    return net;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
