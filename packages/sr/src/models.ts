// The super-resolution networks: SRCNN, SRNET, VDSR, DRCN and SRINC (SRINC-F is SRINC trained on
// a set of scales). All are "pre-upsampled" models: input and output have the size of the
// bicubic-enlarged image, values in [0, 1]. Architecture values the sources leave open are
// config fields (design/models/01, 02, 06).
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { Conv2d, Module, ModuleList, chain, kaimingNormal_, normal_, constant_ } from '@lrface/nn';

/** 'same': zero padding keeps the size (inference, VDSR-style training); 'valid': no padding (SRCNN's training). */
export type PaddingMode = 'same' | 'valid';

/** What every SR network declares about itself, used by the pipeline, tiler and trainer. */
export interface SrNetwork extends Module {
  /** Registry name of the architecture ('srcnn', 'vdsr', ...). */
  readonly arch: string;
  /** 1: Y only, 3: RGB. */
  readonly channels: number;
  /** Pixels lost on each side by the forward pass in the current padding mode (0 with 'same'). */
  readonly border: number;
  /** Receptive-field radius: how far an output pixel sees (the tiler's safe margin). */
  readonly receptiveRadius: number;
  /** The JSON config that rebuilds this network (stored in weight files). */
  readonly config: object;
  forward(x: Tensor): Tensor;
  /** Switches between 'same' and 'valid' padding when the architecture supports both. */
  setPadding?(mode: PaddingMode): void;
}

function checkPositiveInt(fn: string, arg: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(fn, arg, 'an integer', v);
  if (v < 1) throw rangeError(fn, arg, '>= 1', v);
  return v;
}

function checkOddKernel(fn: string, arg: string, v: unknown): number {
  const k = checkPositiveInt(fn, arg, v);
  if (k % 2 !== 1) throw rangeError(fn, arg, 'an odd kernel size', k);
  return k;
}

function checkPadding(fn: string, v: unknown): PaddingMode {
  if (v !== 'same' && v !== 'valid') throw typeError(fn, 'padding', "'same' or 'valid'", v);
  return v;
}

function checkInput(fn: string, x: unknown, channels: number): Tensor {
  const t = x as Tensor;
  if (!ops.isTensor(t) || t.dtype !== 'float32') throw typeError(fn, 'x', 'a float32 [N, C, H, W] tensor', x);
  if (t.rank !== 4 || t.shape[1] !== channels) throw rangeError(fn, 'x', `shape [N, ${channels}, H, W]`, `[${t.shape.join(',')}]`, true);
  return t;
}

/** Crops `b` pixels from each side of an NCHW tensor (the region a valid-padded net predicts). */
export function cropBorder(x: Tensor, b: number): Tensor {
  if (b === 0) return x;
  const [, , h, w] = x.shape;
  if (h <= 2 * b || w <= 2 * b) throw rangeError('cropBorder', 'x', `larger than ${2 * b}x${2 * b}`, `${h}x${w}`, true);
  return ops.narrow(ops.narrow(x, 2, b, h - 2 * b), 3, b, w - 2 * b);
}

// ---------------------------------------------------------------------------------------------
// SRCNN (Dong et al.)

/** The kernel sizes and widths of a three-layer SRCNN-style network, checked. */
function threeLayerShape(
  fn: string,
  config: { kernels?: [number, number, number]; features?: [number, number] },
  defaultKernels: [number, number, number],
): { kernels: [number, number, number]; features: [number, number] } {
  const kernels = config.kernels ?? defaultKernels;
  if (!Array.isArray(kernels) || kernels.length !== 3) throw typeError(fn, 'kernels', 'three kernel sizes [f1, f2, f3]', kernels);
  kernels.forEach((k, i) => checkOddKernel(fn, `kernels[${i}]`, k));
  const features = config.features ?? [64, 32];
  if (!Array.isArray(features) || features.length !== 2) throw typeError(fn, 'features', 'two widths [n1, n2]', features);
  features.forEach((n, i) => checkPositiveInt(fn, `features[${i}]`, n));
  return { kernels, features };
}

export interface SrcnnConfig {
  /** Kernel sizes [f1, f2, f3]: 9-1-5 (default) or 9-5-5. */
  kernels?: [number, number, number];
  /** [n1, n2] feature maps (default [64, 32]). */
  features?: [number, number];
  /** 1 (Y, default) or 3. */
  channels?: number;
  /** 'valid' (the paper's training) or 'same' (inference; the default). */
  padding?: PaddingMode;
  /** Std of the Gaussian weight init (paper: 0.001). */
  initStd?: number;
}
/** SrcnnConfig's fields (a misspelt one is refused, not ignored). */
const SRCNN_CONFIG_KEYS: Record<keyof SrcnnConfig, true> = { kernels: true, features: true, channels: true, padding: true, initStd: true };

export class Srcnn extends Module implements SrNetwork {
  readonly arch = 'srcnn';
  readonly channels: number;
  readonly config: Required<SrcnnConfig>;
  declare conv1: Conv2d;
  declare conv2: Conv2d;
  declare conv3: Conv2d;
  private padding: PaddingMode;
  constructor(config: SrcnnConfig = {}) {
    super();
    checkKeys('Srcnn', config, SRCNN_CONFIG_KEYS, 'config');
    const { kernels, features } = threeLayerShape('Srcnn', config, [9, 1, 5]);
    this.channels = checkPositiveInt('Srcnn', 'channels', config.channels ?? 1);
    this.padding = checkPadding('Srcnn', config.padding ?? 'same');
    const initStd = config.initStd ?? 0.001;
    this.config = { kernels, features, channels: this.channels, padding: this.padding, initStd };
    const [f1, f2, f3] = kernels;
    const [n1, n2] = features;
    this.registerModule('conv1', new Conv2d(this.channels, n1, f1, { activation: 'relu' }));
    this.registerModule('conv2', new Conv2d(n1, n2, f2, { activation: 'relu' }));
    this.registerModule('conv3', new Conv2d(n2, this.channels, f3));
    for (const c of [this.conv1, this.conv2, this.conv3]) {
      normal_(c.weight, 0, initStd);
      constant_(c.bias!, 0);
    }
  }
  get border(): number {
    return this.padding === 'valid' ? (this.config.kernels[0] + this.config.kernels[1] + this.config.kernels[2] - 3) / 2 : 0;
  }
  get receptiveRadius(): number {
    return (this.config.kernels[0] + this.config.kernels[1] + this.config.kernels[2] - 3) / 2;
  }
  setPadding(mode: PaddingMode): void {
    this.padding = checkPadding('Srcnn.setPadding', mode);
  }
  forward(x: Tensor): Tensor {
    checkInput('Srcnn.forward', x, this.channels);
    const pad = (c: Conv2d) => (this.padding === 'same' ? (c.weight.shape[2] - 1) / 2 : 0);
    return ops.scope(() => {
      const h1 = ops.conv2dRelu(x, this.conv1.weight, this.conv1.bias!, { padding: pad(this.conv1) });
      const h2 = ops.conv2dRelu(h1, this.conv2.weight, this.conv2.bias!, { padding: pad(this.conv2) });
      return ops.conv2d(h2, this.conv3.weight, this.conv3.bias!, { padding: pad(this.conv3) });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// SRNET (Wu et al., Table 1): an SRCNN-like RGB net on faces normalised as (x - 127.5) / 128.

export interface SrnetConfig {
  /** Kernel sizes [9, 1, 1] as Table 1 of the paper states; the design notes argue 5 for the last (UNCERTAIN). */
  kernels?: [number, number, number];
  features?: [number, number];
  /** 3 (RGB, the paper) or 1. */
  channels?: number;
  padding?: PaddingMode;
  /** Input normalisation mean and scale on the 8-bit scale: (255 x - mean) * scale (paper: 127.5, 1/128). */
  mean?: number;
  scale?: number;
}
/** SrnetConfig's fields (a misspelt one is refused, not ignored). */
const SRNET_CONFIG_KEYS: Record<keyof SrnetConfig, true> = { kernels: true, features: true, channels: true, padding: true, mean: true, scale: true };

export class Srnet extends Module implements SrNetwork {
  readonly arch = 'srnet';
  readonly channels: number;
  readonly config: Required<SrnetConfig>;
  declare conv1: Conv2d;
  declare conv2: Conv2d;
  declare conv3: Conv2d;
  private padding: PaddingMode;
  constructor(config: SrnetConfig = {}) {
    super();
    checkKeys('Srnet', config, SRNET_CONFIG_KEYS, 'config');
    const { kernels, features } = threeLayerShape('Srnet', config, [9, 1, 1]);
    this.channels = checkPositiveInt('Srnet', 'channels', config.channels ?? 3);
    this.padding = checkPadding('Srnet', config.padding ?? 'same');
    const mean = config.mean ?? 127.5;
    const scale = config.scale ?? 1 / 128;
    if (!(typeof scale === 'number' && scale > 0)) throw rangeError('Srnet', 'scale', '> 0', scale);
    this.config = { kernels, features, channels: this.channels, padding: this.padding, mean, scale };
    this.registerModule('conv1', new Conv2d(this.channels, features[0], kernels[0], { activation: 'relu' }));
    this.registerModule('conv2', new Conv2d(features[0], features[1], kernels[1], { activation: 'relu' }));
    this.registerModule('conv3', new Conv2d(features[1], this.channels, kernels[2]));
  }
  get border(): number {
    return this.padding === 'valid' ? this.receptiveRadius : 0;
  }
  get receptiveRadius(): number {
    return (this.config.kernels[0] + this.config.kernels[1] + this.config.kernels[2] - 3) / 2;
  }
  setPadding(mode: PaddingMode): void {
    this.padding = checkPadding('Srnet.setPadding', mode);
  }
  forward(x: Tensor): Tensor {
    checkInput('Srnet.forward', x, this.channels);
    const { mean, scale } = this.config;
    const pad = (c: Conv2d) => (this.padding === 'same' ? (c.weight.shape[2] - 1) / 2 : 0);
    return ops.scope(() => {
      const normalised = ops.affine(x, 255 * scale, -mean * scale);
      const h1 = ops.conv2dRelu(normalised, this.conv1.weight, this.conv1.bias!, { padding: pad(this.conv1) });
      const h2 = ops.conv2dRelu(h1, this.conv2.weight, this.conv2.bias!, { padding: pad(this.conv2) });
      const out = ops.conv2d(h2, this.conv3.weight, this.conv3.bias!, { padding: pad(this.conv3) });
      // Back to [0, 1] so every model shares one output convention.
      return ops.affine(out, 1 / (255 * scale), mean / 255);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// VDSR (Kim et al.): d 3x3 convs, 64 channels, global residual. Module names follow the public
// PyTorch implementation so its checkpoint loads as is.

export interface VdsrConfig {
  /** Number of conv layers d (default 20). */
  depth?: number;
  /** Feature maps (default 64). */
  features?: number;
  channels?: number;
  /** Conv biases (the PyTorch port has none; the paper's Caffe model had them). */
  bias?: boolean;
}
/** VdsrConfig's fields (a misspelt one is refused, not ignored). */
const VDSR_CONFIG_KEYS: Record<keyof VdsrConfig, true> = { depth: true, features: true, channels: true, bias: true };

class ConvRelu extends Module {
  declare conv: Conv2d;
  constructor(inCh: number, outCh: number, kernel: number, bias: boolean) {
    super();
    this.registerModule('conv', new Conv2d(inCh, outCh, kernel, { padding: (kernel - 1) / 2, bias, activation: 'relu' }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

export class Vdsr extends Module implements SrNetwork {
  readonly arch = 'vdsr';
  readonly channels: number;
  readonly border = 0;
  readonly config: Required<VdsrConfig>;
  declare input: Conv2d;
  declare residual_layer: ModuleList;
  declare output: Conv2d;
  constructor(config: VdsrConfig = {}) {
    super();
    checkKeys('Vdsr', config, VDSR_CONFIG_KEYS, 'config');
    const depth = checkPositiveInt('Vdsr', 'depth', config.depth ?? 20);
    if (depth < 2) throw rangeError('Vdsr', 'depth', '>= 2', depth);
    const features = checkPositiveInt('Vdsr', 'features', config.features ?? 64);
    this.channels = checkPositiveInt('Vdsr', 'channels', config.channels ?? 1);
    const bias = config.bias ?? false;
    this.config = { depth, features, channels: this.channels, bias };
    this.registerModule('input', new Conv2d(this.channels, features, 3, { padding: 1, bias, activation: 'relu' }));
    this.registerModule('residual_layer', new ModuleList(Array.from({ length: depth - 2 }, () => new ConvRelu(features, features, 3, bias))));
    this.registerModule('output', new Conv2d(features, this.channels, 3, { padding: 1, bias }));
    // He (MSRA) init as the paper.
    for (const p of this.parameters()) if (p.rank === 4) kaimingNormal_(p, { nonlinearity: 'relu' });
  }
  get receptiveRadius(): number {
    return this.config.depth;
  }
  forward(x: Tensor): Tensor {
    checkInput('Vdsr.forward', x, this.channels);
    return ops.scope(() => ops.add(chain(x, [this.input, ...this.residual_layer.children(), this.output]), x));
  }
}

// ---------------------------------------------------------------------------------------------
// DRCN (Kim et al.): embedding, one conv applied D times with shared weights, a shared
// reconstruction net, skip from the input to every intermediate prediction, and a learnt
// weighted average of the D predictions.

export interface DrcnConfig {
  /** Recursions D (default 16). */
  recursions?: number;
  /** Feature maps (default 256). */
  features?: number;
  channels?: number;
}
/** DrcnConfig's fields (a misspelt one is refused, not ignored). */
const DRCN_CONFIG_KEYS: Record<keyof DrcnConfig, true> = { recursions: true, features: true, channels: true };

export class Drcn extends Module implements SrNetwork {
  readonly arch = 'drcn';
  readonly channels: number;
  readonly border = 0;
  readonly config: Required<DrcnConfig>;
  declare embed1: Conv2d;
  declare embed2: Conv2d;
  declare recursive: Conv2d;
  declare reconstruct1: Conv2d;
  declare reconstruct2: Conv2d;
  declare ensemble_weights: Tensor;
  constructor(config: DrcnConfig = {}) {
    super();
    checkKeys('Drcn', config, DRCN_CONFIG_KEYS, 'config');
    const recursions = checkPositiveInt('Drcn', 'recursions', config.recursions ?? 16);
    const features = checkPositiveInt('Drcn', 'features', config.features ?? 256);
    this.channels = checkPositiveInt('Drcn', 'channels', config.channels ?? 1);
    this.config = { recursions, features, channels: this.channels };
    const conv = (i: number, o: number, relu: boolean) => new Conv2d(i, o, 3, { padding: 1, activation: relu ? 'relu' : 'none' });
    this.registerModule('embed1', conv(this.channels, features, true));
    this.registerModule('embed2', conv(features, features, true));
    this.registerModule('recursive', conv(features, features, true));
    this.registerModule('reconstruct1', conv(features, features, true));
    this.registerModule('reconstruct2', conv(features, this.channels, false));
    for (const c of [this.embed1, this.embed2, this.reconstruct1, this.reconstruct2]) {
      kaimingNormal_(c.weight, { nonlinearity: 'relu' });
      constant_(c.bias!, 0);
    }
    // The paper's init of the recursive conv: identity (centre tap of each self-connection), zero elsewhere.
    const w = new Float32Array(features * features * 9);
    for (let c = 0; c < features; c++) w[(c * features + c) * 9 + 4] = 1;
    this.recursive.weight.assign(w);
    constant_(this.recursive.bias!, 0);
    this.registerParameter('ensemble_weights', ops.full([recursions], 1 / recursions));
  }
  get receptiveRadius(): number {
    return 4 + this.config.recursions;
  }
  /** The D intermediate predictions f3(H_d) + x. */
  intermediate(x: Tensor): Tensor[] {
    checkInput('Drcn.intermediate', x, this.channels);
    const outs: Tensor[] = [];
    // H_d is disposed once H_{d+1} is made, so the D feature maps are not all held at once;
    // the predictions (image-sized) are.
    let h = chain(x, [this.embed1, this.embed2]);
    for (let d = 0; d < this.config.recursions; d++) {
      const next = this.recursive.forward(h);
      h.dispose();
      h = next;
      outs.push(ops.add(chain(h, [this.reconstruct1, this.reconstruct2]), x));
    }
    h.dispose();
    return outs;
  }
  /** Weighted average of the intermediate predictions with the learnt weights. */
  combine(outs: Tensor[]): Tensor {
    const stacked = ops.stack(outs, 0); // [D, N, C, H, W]
    const w = ops.reshape(this.ensemble_weights, [outs.length, 1, 1, 1, 1]);
    return ops.sum(ops.mul(stacked, w), { axis: 0 });
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => this.combine(this.intermediate(x)));
  }
}

// ---------------------------------------------------------------------------------------------
// SRINC (Knoche et al.): conv 128x3x3, 19 inception modules, conv to one channel, global
// residual. The module internals are not published in a form we could read, so the branch
// table is data (01_srinc.md); the default is the design notes' placeholder.

/** One step of an inception branch: a conv (ReLU after it) or a stride-1 max-pool. */
export type InceptionOp = { conv: number; out: number } | { maxPool: number };
/** A branch: ops applied in order; branches are concatenated on channels. */
export type InceptionBranch = InceptionOp[];

/** The design notes' placeholder module (GoogLeNet-v1 style, 4 x 32 = 128 channels). Not the paper's (UNCERTAIN). */
export const PLACEHOLDER_INCEPTION: InceptionBranch[] = [
  [{ conv: 1, out: 32 }],
  [{ conv: 1, out: 32 }, { conv: 3, out: 32 }],
  [{ conv: 1, out: 32 }, { conv: 5, out: 32 }],
  [{ maxPool: 3 }, { conv: 1, out: 32 }],
];

function checkBranches(fn: string, branches: unknown): InceptionBranch[] {
  if (!Array.isArray(branches) || branches.length === 0) throw typeError(fn, 'module', 'a non-empty array of branches', branches);
  branches.forEach((b, i) => {
    if (!Array.isArray(b) || b.length === 0) throw typeError(fn, `module[${i}]`, 'a non-empty array of ops', b);
    b.forEach((op, j) => {
      const where = `module[${i}][${j}]`;
      if (op && typeof op === 'object' && 'conv' in op) {
        checkOddKernel(fn, `${where}.conv`, op.conv);
        checkPositiveInt(fn, `${where}.out`, op.out);
      } else if (op && typeof op === 'object' && 'maxPool' in op) checkOddKernel(fn, `${where}.maxPool`, op.maxPool);
      else throw typeError(fn, where, '{ conv, out } or { maxPool }', op);
    });
    if (!b.some((op) => 'conv' in op)) throw rangeError(fn, `module[${i}]`, 'a branch with at least one conv', 'pooling only', true);
  });
  return branches as InceptionBranch[];
}

export class InceptionModule extends Module {
  readonly outChannels: number;
  /** Receptive-field radius added by the widest branch. */
  readonly radius: number;
  declare branches: ModuleList;
  private readonly plan: InceptionBranch[];
  constructor(inChannels: number, plan: InceptionBranch[]) {
    super();
    this.plan = plan;
    const branchLists: Module[] = [];
    let out = 0;
    let radius = 0;
    for (const branch of plan) {
      const convs: Module[] = [];
      let ch = inChannels;
      let r = 0;
      for (const op of branch) {
        if ('conv' in op) {
          const c = new Conv2d(ch, op.out, op.conv, { padding: (op.conv - 1) / 2, activation: 'relu' });
          kaimingNormal_(c.weight, { nonlinearity: 'relu' });
          constant_(c.bias!, 0);
          convs.push(c);
          ch = op.out;
          r += (op.conv - 1) / 2;
        } else r += (op.maxPool - 1) / 2;
      }
      branchLists.push(new ModuleList(convs));
      out += ch;
      radius = Math.max(radius, r);
    }
    this.outChannels = out;
    this.radius = radius;
    this.registerModule('branches', new ModuleList(branchLists));
  }
  forward(x: Tensor): Tensor {
    // Scoped like nn's blocks: the branch outputs die with the concat instead of living
    // until the caller's scope ends (19 modules' worth of them would not fit in cache).
    return ops.scope(() => this.forwardBranches(x));
  }
  private forwardBranches(x: Tensor): Tensor {
    const outs = this.plan.map((branch, i) => {
      const convs = this.branches.at(i) as ModuleList;
      let h = x;
      let k = 0;
      for (const op of branch) {
        if ('conv' in op) h = (convs.at(k++) as Conv2d).forward(h);
        else h = ops.maxPool2d(h, { kernelSize: op.maxPool, stride: 1, padding: (op.maxPool - 1) / 2 });
      }
      return h;
    });
    return outs.length === 1 ? outs[0] : ops.concat(outs, 1);
  }
}

export interface SrincConfig {
  /** Filters of the first conv (128 in the paper). */
  features?: number;
  /** Inception modules (19 in the paper). */
  modules?: number;
  /** The inception branch table (UNCERTAIN: the placeholder by default). */
  module?: InceptionBranch[];
  /** Kernel of the last conv (UNCERTAIN: 3 by default, the VDSR/DRCN convention). */
  lastKernel?: number;
  channels?: number;
  /** Scale factors the network is trained for (one for SRINC, a set for SRINC-F). */
  scales?: number[];
}
/** SrincConfig's fields (a misspelt one is refused, not ignored). */
const SRINC_CONFIG_KEYS: Record<keyof SrincConfig, true> = { features: true, modules: true, module: true, lastKernel: true, channels: true, scales: true };

export class Srinc extends Module implements SrNetwork {
  readonly arch: 'srinc' | 'srinc-f';
  readonly channels: number;
  readonly border = 0;
  readonly config: Required<SrincConfig>;
  declare first: Conv2d;
  declare inception: ModuleList;
  declare last: Conv2d;
  private readonly radius: number;
  constructor(config: SrincConfig = {}) {
    super();
    checkKeys('Srinc', config, SRINC_CONFIG_KEYS, 'config');
    const features = checkPositiveInt('Srinc', 'features', config.features ?? 128);
    const modules = checkPositiveInt('Srinc', 'modules', config.modules ?? 19);
    const plan = checkBranches('Srinc', config.module ?? PLACEHOLDER_INCEPTION);
    const lastKernel = checkOddKernel('Srinc', 'lastKernel', config.lastKernel ?? 3);
    this.channels = checkPositiveInt('Srinc', 'channels', config.channels ?? 1);
    const scales = config.scales ?? [4];
    if (!Array.isArray(scales) || scales.length === 0) throw typeError('Srinc', 'scales', 'a non-empty array of integer scales', scales);
    scales.forEach((s, i) => checkPositiveInt('Srinc', `scales[${i}]`, s));
    this.arch = scales.length > 1 ? 'srinc-f' : 'srinc';
    this.config = { features, modules, module: plan, lastKernel, channels: this.channels, scales };
    this.registerModule('first', new Conv2d(this.channels, features, 3, { padding: 1, activation: 'relu' }));
    kaimingNormal_(this.first.weight, { nonlinearity: 'relu' });
    constant_(this.first.bias!, 0);
    const list: InceptionModule[] = [];
    let ch = features;
    let radius = 1 + (lastKernel - 1) / 2;
    for (let i = 0; i < modules; i++) {
      const m = new InceptionModule(ch, plan);
      list.push(m);
      ch = m.outChannels;
      radius += m.radius;
    }
    this.radius = radius;
    this.registerModule('inception', new ModuleList(list));
    this.registerModule('last', new Conv2d(ch, this.channels, lastKernel, { padding: (lastKernel - 1) / 2 }));
    kaimingNormal_(this.last.weight, { nonlinearity: 'linear' });
    constant_(this.last.bias!, 0);
  }
  get receptiveRadius(): number {
    return this.radius;
  }
  forward(x: Tensor): Tensor {
    checkInput('Srinc.forward', x, this.channels);
    // ReLU between layers (inside each branch conv), none after the last conv or the addition.
    return ops.scope(() => ops.add(chain(x, [this.first, ...this.inception.children(), this.last]), x));
  }
}

/** Bicubic interpolation as a "network": the identity on the bicubic-enlarged input. */
export class BicubicIdentity extends Module implements SrNetwork {
  readonly arch = 'bicubic';
  readonly border = 0;
  readonly receptiveRadius = 0;
  readonly config: { channels: number };
  constructor(readonly channels = 1) {
    super();
    this.config = { channels };
  }
  forward(x: Tensor): Tensor {
    checkInput('BicubicIdentity.forward', x, this.channels);
    return ops.clone(x);
  }
}

export type ArchName = 'bicubic' | 'srcnn' | 'srnet' | 'vdsr' | 'drcn' | 'srinc' | 'srinc-f';
export const ARCHS: readonly ArchName[] = ['bicubic', 'srcnn', 'srnet', 'vdsr', 'drcn', 'srinc', 'srinc-f'];

/** Builds a network from its architecture name and config (as stored in weight files). */
export function createNetwork(arch: ArchName, config: Record<string, unknown> = {}): SrNetwork {
  switch (arch) {
    case 'bicubic':
      return new BicubicIdentity((config.channels as number) ?? 1);
    case 'srcnn':
      return new Srcnn(config as SrcnnConfig);
    case 'srnet':
      return new Srnet(config as SrnetConfig);
    case 'vdsr':
      return new Vdsr(config as VdsrConfig);
    case 'drcn':
      return new Drcn(config as DrcnConfig);
    case 'srinc':
      return new Srinc(config as SrincConfig);
    case 'srinc-f':
      return new Srinc({ scales: [2, 3, 4], ...(config as SrincConfig) });
    default:
      throw rangeError('createNetwork', 'arch', `one of ${ARCHS.join(', ')}`, arch);
  }
}
