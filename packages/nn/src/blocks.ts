// Building blocks of the papers' networks, with the module names of their public PyTorch
// code so released weights load by name: LightCNN's max-feature-map units and the SN-ResNet
// discriminator block of the LR-landmark GAN (after the SN-GAN code Bulat et al. build on).
import * as ops from '@lrface/cuda-core';
import { checkKeys, type Tensor } from '@lrface/cuda-core';
import { Module, Sequential } from './module.js';
import { AvgPool2d, Conv2d, Linear, ReLU } from './layers.js';
import { xavierUniform_ } from './init.js';
import { SpectralNorm } from './spectral-norm.js';

const MFM_CONV_CONFIG_KEYS: Record<'stride' | 'padding', true> = { stride: true, padding: true };

/**
 * LightCNN's `mfm` unit with a convolution: `filter` makes 2 * outChannels maps, the output is
 * the element-wise max of the two halves.
 */
export class MFMConv2d extends Module {
  declare filter: Conv2d;
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize = 3, config: { stride?: number; padding?: number } = {}) {
    super();
    checkKeys('MFMConv2d', config, MFM_CONV_CONFIG_KEYS, 'config');
    const { stride = 1, padding = 1 } = config;
    this.registerModule('filter', new Conv2d(inChannels, 2 * outChannels, kernelSize, { stride, padding }));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => ops.mfm(this.filter.forward(x)));
  }
}

/** LightCNN's `mfm` unit with a fully connected layer (type 0): Linear to 2 * outFeatures, max of the halves. */
export class MFMLinear extends Module {
  declare filter: Linear;
  constructor(readonly inFeatures: number, readonly outFeatures: number) {
    super();
    this.registerModule('filter', new Linear(inFeatures, 2 * outFeatures));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => ops.mfm(this.filter.forward(x)));
  }
}

/** LightCNN's `group`: a 1x1 MFM unit (`conv_a`, in -> in) then a k x k one (`conv`, in -> out). */
export class MFMGroup extends Module {
  declare conv_a: MFMConv2d;
  declare conv: MFMConv2d;
  constructor(inChannels: number, outChannels: number, kernelSize = 3, config: { stride?: number; padding?: number } = {}) {
    super();
    checkKeys('MFMGroup', config, MFM_CONV_CONFIG_KEYS, 'config');
    this.registerModule('conv_a', new MFMConv2d(inChannels, inChannels, 1, { stride: 1, padding: 0 }));
    this.registerModule('conv', new MFMConv2d(inChannels, outChannels, kernelSize, config));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => this.conv.forward(this.conv_a.forward(x)));
  }
}

/** LightCNN's `resblock`: two 3x3 MFM units plus the identity, no batch norm. */
export class MFMResBlock extends Module {
  declare conv1: MFMConv2d;
  declare conv2: MFMConv2d;
  constructor(readonly channels: number) {
    super();
    this.registerModule('conv1', new MFMConv2d(channels, channels, 3, { stride: 1, padding: 1 }));
    this.registerModule('conv2', new MFMConv2d(channels, channels, 3, { stride: 1, padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => ops.add(this.conv2.forward(this.conv1.forward(x)), x));
  }
}

export interface DiscriminatorResBlockConfig {
  /** Halve the resolution with a 2x2 average pool (and project the shortcut with a 1x1 conv). */
  downsample?: boolean;
  /** The network's first block: no ReLU on the raw image, shortcut pools before its 1x1 conv. Always downsamples. */
  first?: boolean;
  /** Spectral normalisation on every convolution (default true). */
  spectral?: boolean;
}
/** DiscriminatorResBlockConfig's fields (a misspelt one is refused, not ignored). */
const DISCRIMINATOR_RES_BLOCK_CONFIG_KEYS: Record<keyof DiscriminatorResBlockConfig, true> = { downsample: true, first: true, spectral: true };

/**
 * The SN-ResNet discriminator block (Miyato et al.; the D1 form of the LR-landmark GAN):
 * model = [ReLU, conv1, ReLU, conv2, (AvgPool2)], shortcut = [conv1x1, AvgPool2] when
 * downsampling, else the identity; the first block is [conv1, ReLU, conv2, AvgPool2] with
 * shortcut [AvgPool2, conv1x1]. Xavier-uniform init, gain 1 (gain sqrt 2 on the shortcut).
 * Children carry the reference code's names (conv1, conv2, bypass_conv, model, bypass), the
 * convolutions appearing under both, as there.
 */
export class DiscriminatorResBlock extends Module {
  declare conv1: Conv2d;
  declare conv2: Conv2d;
  declare bypass_conv: Conv2d | null;
  declare model: Sequential;
  declare bypass: Sequential;
  constructor(readonly inChannels: number, readonly outChannels: number, config: DiscriminatorResBlockConfig = {}) {
    super();
    checkKeys('DiscriminatorResBlock', config, DISCRIMINATOR_RES_BLOCK_CONFIG_KEYS, 'config');
    const { first = false, spectral = true } = config;
    const downsample = first || (config.downsample ?? false);
    if (!downsample && inChannels !== outChannels)
      throw new RangeError(`DiscriminatorResBlock: 'outChannels' must equal inChannels (${inChannels}) without downsampling (identity shortcut), got ${outChannels}`);
    const sn = (m: Conv2d): Module => (spectral ? new SpectralNorm(m) : m);
    const conv1 = new Conv2d(inChannels, outChannels, 3, { padding: 1 });
    const conv2 = new Conv2d(outChannels, outChannels, 3, { padding: 1 });
    xavierUniform_(conv1.weight, 1);
    xavierUniform_(conv2.weight, 1);
    this.registerModule('conv1', conv1);
    this.registerModule('conv2', conv2);
    let bypassConv: Conv2d | null = null;
    if (downsample) {
      bypassConv = new Conv2d(inChannels, outChannels, 1);
      xavierUniform_(bypassConv.weight, Math.SQRT2);
    }
    if (first) this.registerModule('bypass_conv', bypassConv);
    // Wrap once: the same wrapper object sits in `model`, as one module in the reference code.
    const [w1, w2] = [sn(conv1), sn(conv2)];
    const wb = bypassConv ? sn(bypassConv) : null;
    const pool = () => new AvgPool2d({ kernelSize: 2, stride: 2 });
    if (first) this.registerModule('model', new Sequential(w1, new ReLU(), w2, pool()));
    else this.registerModule('model', new Sequential(...[new ReLU(), w1, new ReLU(), w2, ...(downsample ? [pool()] : [])]));
    if (first) this.registerModule('bypass', new Sequential(pool(), wb!));
    else this.registerModule('bypass', downsample ? new Sequential(wb!, pool()) : new Sequential());
    if (!first) this.registerModule('bypass_conv', bypassConv);
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => ops.add(this.model.forward(x), this.bypass.forward(x)));
  }
}
