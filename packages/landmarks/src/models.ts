// The networks of the semi-supervised LR landmark method (Kumar & Chellappa, CVPR 2020):
// the U-Net heatmap generator G2 (also the HR landmark detector HR-LD and, with an image
// input beside the heatmaps, the autoencoder discriminator D2), the high-to-low generator G1
// with projected noise, and the spectrally normalised residual discriminator of D1 and D3.
// Channel widths, pooling positions and the upsampling op are not given in the paper: they are
// config fields here.
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { averagePoolDown } from './gan.js';
import { BatchNorm2d, Conv2d, convBatchNorm, DiscriminatorResBlock, Linear, MaxPool2d, Module, ModuleList, ResidualBlock, Sequential, spectralNorm } from '@lrface/nn';

function checkPositiveInt(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(fn, name, 'an integer >= 1', v);
  if (!Number.isInteger(v) || v < 1) throw rangeError(fn, name, 'an integer >= 1', v);
  return v;
}

function checkWidths(fn: string, name: string, v: unknown, length?: number): number[] {
  if (!Array.isArray(v)) throw typeError(fn, name, 'an array of channel counts', v);
  if (length !== undefined && v.length !== length) throw rangeError(fn, name, `an array of ${length} channel counts`, `${v.length} entries`, true);
  if (v.length === 0) throw rangeError(fn, name, 'a non-empty array of channel counts', v);
  v.forEach((c, i) => checkPositiveInt(fn, `${name}[${i}]`, c));
  return v as number[];
}

/** Checks an NCHW input: rank 4, the given channel count and (optionally) a side divisible by `divisor`. */
export function checkInput(fn: string, name: string, x: unknown, channels: number, divisor = 1): Tensor {
  if (!ops.isTensor(x)) throw typeError(fn, name, 'a Tensor', x);
  const t = x as Tensor;
  if (t.rank !== 4 || t.shape[1] !== channels) throw rangeError(fn, name, `an [N, ${channels}, H, W] tensor`, t);
  if (t.shape[2] % divisor || t.shape[3] % divisor) throw rangeError(fn, name, `a height and width divisible by ${divisor}`, t);
  return t;
}

/** conv3x3 -> BN -> ReLU: the channel-changing convolution after each residual block ("BatchNorm after every convolution"). */
export class ConvBnRelu extends Module {
  declare conv: Conv2d;
  declare bn: BatchNorm2d;
  constructor(inChannels: number, outChannels: number) {
    super();
    this.registerModule('conv', new Conv2d(inChannels, outChannels, 3, { padding: 1, bias: false }));
    this.registerModule('bn', new BatchNorm2d(outChannels));
  }
  forward(x: Tensor): Tensor {
    return convBatchNorm(x, this.conv, this.bn, { relu: true });
  }
}

/** A residual block (conv-BN-ReLU-conv-BN + identity) followed by a channel-changing conv-BN-ReLU. */
class ResidualStage extends Module {
  declare res: ResidualBlock;
  declare proj: ConvBnRelu;
  constructor(inChannels: number, outChannels: number) {
    super();
    this.registerModule('res', new ResidualBlock(inChannels, { batchNorm: true }));
    this.registerModule('proj', new ConvBnRelu(inChannels, outChannels));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => this.proj.forward(this.res.forward(x)));
  }
}

// ---------------------------------------------------------------------------------------------
// G2 / HR-LD / D2: the U-Net heatmap network

export interface HeatmapUNetConfig {
  /** Input channels: 3 for G2 (the image), 3 + N + 1 for D2 (image and heatmaps). */
  inChannels: number;
  /** Output maps: N + 1 (N landmarks plus the background). */
  outChannels: number;
  /**
   * Channels of the four encoder groups (two residual blocks each, max-pool halving after each
   * group); the decoder mirrors them. UNCERTAIN in the paper; default [16, 32, 32, 64].
   */
  widths?: number[];
  /** Residual blocks per group (the paper: 2, i.e. 8 in the encoder and 8 in the decoder). */
  blocksPerGroup?: number;
  /** How the decoder doubles the resolution (UNCERTAIN; default 'nearest'). */
  upsample?: 'nearest' | 'bilinear';
}
/** HeatmapUNetConfig's fields (a misspelt one is refused, not ignored). */
const HEATMAP_U_NET_CONFIG_KEYS: Record<keyof HeatmapUNetConfig, true> = { inChannels: true, outChannels: true, widths: true, blocksPerGroup: true, upsample: true };

/** Encoder group: a conv to the group width, then residual blocks. */
class UNetGroup extends Module {
  declare entry: ConvBnRelu;
  declare blocks: Sequential;
  constructor(inChannels: number, channels: number, blocks: number) {
    super();
    this.registerModule('entry', new ConvBnRelu(inChannels, channels));
    this.registerModule('blocks', new Sequential(...Array.from({ length: blocks }, () => new ResidualBlock(channels, { batchNorm: true }))));
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => this.blocks.forward(this.entry.forward(x)));
  }
}

/**
 * The U-Net heatmap generator of the paper (G2; HR-LD when trained on 128x128 faces; D2 with
 * image + heatmaps in and reconstructed heatmaps out): four encoder groups of residual blocks,
 * each followed by a 2x2 max-pool, four decoder groups that upsample, concatenate the encoder
 * features of the same resolution (skip connection) and run residual blocks, and a 1x1 conv to
 * the output maps. Input sides must be divisible by 16.
 */
export class HeatmapUNet extends Module {
  declare encoder: ModuleList;
  declare bottleneck: ConvBnRelu;
  declare decoder: ModuleList;
  declare head: Conv2d;
  readonly config: Required<HeatmapUNetConfig>;
  constructor(config: HeatmapUNetConfig) {
    super();
    checkKeys('HeatmapUNet', config, HEATMAP_U_NET_CONFIG_KEYS, 'config');
    const inChannels = checkPositiveInt('HeatmapUNet', 'inChannels', config.inChannels);
    const outChannels = checkPositiveInt('HeatmapUNet', 'outChannels', config.outChannels);
    const widths = checkWidths('HeatmapUNet', 'widths', config.widths ?? [16, 32, 32, 64], 4);
    const blocksPerGroup = checkPositiveInt('HeatmapUNet', 'blocksPerGroup', config.blocksPerGroup ?? 2);
    const upsample = config.upsample ?? 'nearest';
    if (upsample !== 'nearest' && upsample !== 'bilinear') throw rangeError('HeatmapUNet', 'upsample', "'nearest' or 'bilinear'", upsample);
    this.config = { inChannels, outChannels, widths: [...widths], blocksPerGroup, upsample };
    const enc: Module[] = [];
    let c = inChannels;
    for (const w of widths) {
      enc.push(new UNetGroup(c, w, blocksPerGroup));
      c = w;
    }
    this.registerModule('encoder', new ModuleList(enc));
    this.registerModule('bottleneck', new ConvBnRelu(c, c));
    const dec: Module[] = [];
    for (let g = widths.length - 1; g >= 0; g--) {
      // Upsampled deeper features concatenated with the encoder features of this resolution.
      dec.push(new UNetGroup(c + widths[g], widths[g], blocksPerGroup));
      c = widths[g];
    }
    this.registerModule('decoder', new ModuleList(dec));
    this.registerModule('head', new Conv2d(c, outChannels, 1));
    // Start from the empty-face prediction (point maps 0, background 1): a default-initialised
    // head makes maps of magnitude ~1 everywhere, which the heatmap loss then spends hundreds
    // of steps shrinking before any peak forms.
    this.head.weight.assign(new Float32Array(this.head.weight.size));
    const bias = new Float32Array(outChannels);
    bias[outChannels - 1] = 1;
    this.head.bias!.assign(bias);
  }
  forward(x: Tensor): Tensor {
    checkInput('HeatmapUNet.forward', 'x', x, this.config.inChannels, 16);
    return ops.scope(() => {
      const skips: Tensor[] = [];
      let h = x;
      for (let g = 0; g < this.encoder.length; g++) {
        h = (this.encoder.at(g) as UNetGroup).forward(h);
        skips.push(h);
        h = ops.maxPool2d(h, { kernelSize: 2 });
      }
      h = this.bottleneck.forward(h);
      for (let g = 0; g < this.decoder.length; g++) {
        const skip = skips[skips.length - 1 - g];
        h = ops.upsample(h, { size: [skip.shape[2], skip.shape[3]], mode: this.config.upsample });
        h = (this.decoder.at(g) as UNetGroup).forward(ops.concat([h, skip], 1));
      }
      return this.head.forward(h);
    });
  }
}

/** D2: the U-Net on [image, heatmaps] reconstructing the heatmaps (an autoencoder discriminator). */
export class HeatmapAutoencoderDiscriminator extends Module {
  declare net: HeatmapUNet;
  readonly imageChannels: number;
  readonly maps: number;
  constructor(config: { imageChannels?: number; maps: number; widths?: number[]; blocksPerGroup?: number; upsample?: 'nearest' | 'bilinear' }) {
    super();
    checkKeys('HeatmapAutoencoderDiscriminator', config, ['imageChannels', 'maps', 'widths', 'blocksPerGroup', 'upsample'], 'config');
    this.imageChannels = checkPositiveInt('HeatmapAutoencoderDiscriminator', 'imageChannels', config.imageChannels ?? 3);
    this.maps = checkPositiveInt('HeatmapAutoencoderDiscriminator', 'maps', config.maps);
    this.registerModule('net', new HeatmapUNet({ inChannels: this.imageChannels + this.maps, outChannels: this.maps, widths: config.widths, blocksPerGroup: config.blocksPerGroup, upsample: config.upsample }));
  }
  /** Reconstructed heatmaps of `heatmaps` given their image. */
  forward(image: Tensor, heatmaps: Tensor): Tensor {
    checkInput('HeatmapAutoencoderDiscriminator.forward', 'image', image, this.imageChannels);
    checkInput('HeatmapAutoencoderDiscriminator.forward', 'heatmaps', heatmaps, this.maps);
    if (image.shape[0] !== heatmaps.shape[0] || image.shape[2] !== heatmaps.shape[2] || image.shape[3] !== heatmaps.shape[3])
      throw rangeError('HeatmapAutoencoderDiscriminator.forward', 'heatmaps', `the batch size and spatial size of 'image' [${image.shape.join(',')}]`, heatmaps);
    return ops.scope(() => this.net.forward(ops.concat([image, heatmaps], 1)));
  }
}

// ---------------------------------------------------------------------------------------------
// G1: the high-to-low generator

export interface HighToLowGeneratorConfig {
  /** HR input side (default 128). */
  inputSize?: number;
  /** LR output side (default 32). */
  outputSize?: number;
  /** Noise vector length, projected by a Linear to inputSize^2 and concatenated as a channel (default 64). */
  noiseDim?: number;
  /** Stem conv width (UNCERTAIN; default 16). */
  stemWidth?: number;
  /** Output channels of the 8 encoder stages (residual block + channel-increasing conv). UNCERTAIN; default [16, 16, 32, 32, 32, 32, 32, 32]. */
  encoderWidths?: number[];
  /** Encoder stages followed by a 2x2 max-pool; the paper pools 128x128 down to 4x4 (5 pools). Default [0, 1, 2, 3, 4]. */
  encoderPoolAfter?: number[];
  /** Output channels of the 6 decoder stages (residual unit + channel-reducing conv). UNCERTAIN; default [32, 32, 32, 16, 16, 16]. */
  decoderWidths?: number[];
  /** Decoder stages followed by a 2x nearest upsampling, back up to outputSize (UNCERTAIN; default [0, 1, 2]: 4 -> 32). */
  decoderUpsampleAfter?: number[];
  /**
   * Output = the HR image average-pooled to outputSize + the network's (zero-initialised) last
   * conv, clipped to [-1, 1], instead of tanh(last conv) (default false, the paper). G1 then
   * starts as the plain downscaling and learns the degradation as a change to it, which a short
   * training keeps a face; not in the paper.
   */
  residual?: boolean;
}
/** HighToLowGeneratorConfig's fields (a misspelt one is refused, not ignored). */
const HIGH_TO_LOW_GENERATOR_CONFIG_KEYS: Record<keyof HighToLowGeneratorConfig, true> = { inputSize: true, outputSize: true, noiseDim: true, stemWidth: true, encoderWidths: true, encoderPoolAfter: true, decoderWidths: true, decoderUpsampleAfter: true, residual: true };

/**
 * G1 (high-to-low generator): [HR image, Linear(noise) reshaped to one HxW channel] -> stem
 * conv -> 8 encoder stages (residual block + channel-increasing conv, BN after every conv,
 * max-pool after the configured stages) -> 6 decoder stages (residual unit + channel-reducing
 * conv, upsampling after the configured stages) -> conv to 3 channels -> tanh. Images in [-1, 1].
 */
export class HighToLowGenerator extends Module {
  declare noiseProjection: Linear;
  declare stem: ConvBnRelu;
  declare encoder: ModuleList;
  declare decoder: ModuleList;
  declare output: Conv2d;
  readonly config: Required<HighToLowGeneratorConfig>;
  constructor(config: HighToLowGeneratorConfig = {}) {
    super();
    checkKeys('HighToLowGenerator', config, HIGH_TO_LOW_GENERATOR_CONFIG_KEYS, 'config');
    const fn = 'HighToLowGenerator';
    const inputSize = checkPositiveInt(fn, 'inputSize', config.inputSize ?? 128);
    const outputSize = checkPositiveInt(fn, 'outputSize', config.outputSize ?? 32);
    const noiseDim = checkPositiveInt(fn, 'noiseDim', config.noiseDim ?? 64);
    const stemWidth = checkPositiveInt(fn, 'stemWidth', config.stemWidth ?? 16);
    const encoderWidths = checkWidths(fn, 'encoderWidths', config.encoderWidths ?? [16, 16, 32, 32, 32, 32, 32, 32]);
    const decoderWidths = checkWidths(fn, 'decoderWidths', config.decoderWidths ?? [32, 32, 32, 16, 16, 16]);
    const encoderPoolAfter = config.encoderPoolAfter ?? [0, 1, 2, 3, 4];
    const decoderUpsampleAfter = config.decoderUpsampleAfter ?? [0, 1, 2];
    for (const [name, list, n] of [['encoderPoolAfter', encoderPoolAfter, encoderWidths.length], ['decoderUpsampleAfter', decoderUpsampleAfter, decoderWidths.length]] as const) {
      if (!Array.isArray(list)) throw typeError(fn, name, 'an array of stage indices', list);
      if (!list.every((i) => Number.isInteger(i) && i >= 0 && i < n) || new Set(list).size !== list.length)
        throw rangeError(fn, name, `distinct stage indices in [0, ${n - 1}]`, `[${list.join(', ')}]`, true);
    }
    const bottom = inputSize / 2 ** encoderPoolAfter.length;
    if (!Number.isInteger(bottom)) throw rangeError(fn, 'inputSize', `divisible by 2^${encoderPoolAfter.length} (one halving per encoder pool)`, inputSize);
    if (bottom * 2 ** decoderUpsampleAfter.length !== outputSize)
      throw rangeError(fn, 'decoderUpsampleAfter', `as many upsamplings as take the ${bottom}x${bottom} bottleneck to outputSize ${outputSize}`, `${decoderUpsampleAfter.length}`, true);
    const residual = config.residual ?? false;
    if (typeof residual !== 'boolean') throw typeError(fn, 'residual', 'a boolean', residual);
    if (residual && !Number.isInteger(inputSize / outputSize)) throw rangeError(fn, 'outputSize', `a divisor of inputSize ${inputSize} (residual G1 average-pools by an integer factor)`, outputSize);
    this.config = { inputSize, outputSize, noiseDim, stemWidth, encoderWidths: [...encoderWidths], encoderPoolAfter: [...encoderPoolAfter], decoderWidths: [...decoderWidths], decoderUpsampleAfter: [...decoderUpsampleAfter], residual };
    this.registerModule('noiseProjection', new Linear(noiseDim, inputSize * inputSize));
    this.registerModule('stem', new ConvBnRelu(4, stemWidth));
    let c = stemWidth;
    const enc: Module[] = [];
    for (const w of encoderWidths) {
      enc.push(new ResidualStage(c, w));
      c = w;
    }
    this.registerModule('encoder', new ModuleList(enc));
    const dec: Module[] = [];
    for (const w of decoderWidths) {
      dec.push(new ResidualStage(c, w));
      c = w;
    }
    this.registerModule('decoder', new ModuleList(dec));
    this.registerModule('output', new Conv2d(c, 3, 3, { padding: 1 }));
    if (residual) {
      this.output.weight.assign(new Float32Array(this.output.weight.size));
      this.output.bias!.assign(new Float32Array(3));
    }
  }
  /** `hr` [N, 3, inputSize, inputSize] in [-1, 1], `noise` [N, noiseDim] -> [N, 3, outputSize, outputSize] in [-1, 1]. */
  forward(hr: Tensor, noise: Tensor): Tensor {
    const fn = 'HighToLowGenerator.forward';
    const { inputSize, noiseDim } = this.config;
    checkInput(fn, 'hr', hr, 3);
    if (hr.shape[2] !== inputSize || hr.shape[3] !== inputSize) throw rangeError(fn, 'hr', `an [N, 3, ${inputSize}, ${inputSize}] tensor`, hr);
    if (!ops.isTensor(noise)) throw typeError(fn, 'noise', 'a Tensor', noise);
    if (noise.rank !== 2 || noise.shape[0] !== hr.shape[0] || noise.shape[1] !== noiseDim) throw rangeError(fn, 'noise', `an [${hr.shape[0]}, ${noiseDim}] tensor`, noise);
    return ops.scope(() => {
      const n = hr.shape[0];
      const noiseMap = ops.reshape(this.noiseProjection.forward(noise), [n, 1, inputSize, inputSize]);
      let h = this.stem.forward(ops.concat([hr, noiseMap], 1));
      this.encoder.children().forEach((stage, i) => {
        h = (stage as ResidualStage).forward(h);
        if (this.config.encoderPoolAfter.includes(i)) h = ops.maxPool2d(h, { kernelSize: 2 });
      });
      this.decoder.children().forEach((stage, i) => {
        h = (stage as ResidualStage).forward(h);
        if (this.config.decoderUpsampleAfter.includes(i)) h = ops.upsample(h, { scaleFactor: 2, mode: 'nearest' });
      });
      if (!this.config.residual) return ops.tanh(this.output.forward(h));
      return ops.clamp(ops.add(averagePoolDown(hr, this.config.outputSize), this.output.forward(h)), -1, 1);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// D1 / D3: the residual discriminator

export interface ResidualDiscriminatorConfig {
  /** Input channels: 3 for D1 (LR image), 3 + N + 1 for D3 (LR image and heatmaps). */
  inChannels: number;
  /** Output channels of the stages (residual block + channel-increasing conv). UNCERTAIN; default [16, 32, 32, 64]. */
  widths?: number[];
  /**
   * Max-pool only after the last `poolCount` stages (the paper's text says three, its figure
   * caption two: UNCERTAIN; default 3).
   */
  poolCount?: number;
  /** Spectral normalisation on every conv and the final linear layer (default true; the paper uses it on D1). */
  spectral?: boolean;
}
/** ResidualDiscriminatorConfig's fields (a misspelt one is refused, not ignored). */
const RESIDUAL_DISCRIMINATOR_CONFIG_KEYS: Record<keyof ResidualDiscriminatorConfig, true> = { inChannels: true, widths: true, poolCount: true, spectral: true };

/**
 * D1 / D3: a stem conv, then stages of [SN-ResNet block (ReLU-conv-ReLU-conv + identity),
 * spectrally normalised channel-increasing conv, ReLU], max-pooling after the last
 * `poolCount` stages, global average pool and a linear layer to one score per image.
 */
export class ResidualDiscriminator extends Module {
  declare stem: Conv2d;
  declare stages: ModuleList;
  declare score: Linear;
  readonly config: Required<ResidualDiscriminatorConfig>;
  constructor(config: ResidualDiscriminatorConfig) {
    super();
    const fn = 'ResidualDiscriminator';
    checkKeys(fn, config, RESIDUAL_DISCRIMINATOR_CONFIG_KEYS, 'config');
    const inChannels = checkPositiveInt(fn, 'inChannels', config.inChannels);
    const widths = checkWidths(fn, 'widths', config.widths ?? [16, 32, 32, 64]);
    const poolCount = config.poolCount ?? 3;
    if (!Number.isInteger(poolCount) || poolCount < 0 || poolCount > widths.length) throw rangeError(fn, 'poolCount', `an integer in [0, ${widths.length}]`, poolCount);
    const spectral = config.spectral ?? true;
    if (typeof spectral !== 'boolean') throw typeError(fn, 'spectral', 'a boolean', spectral);
    this.config = { inChannels, widths: [...widths], poolCount, spectral };
    const sn = <M extends Module>(m: M): M => (spectral ? spectralNorm(m) : m);
    this.registerModule('stem', sn(new Conv2d(inChannels, widths[0], 3, { padding: 1 })));
    let c = widths[0];
    const stages: Module[] = [];
    widths.forEach((w, i) => {
      const pool = i >= widths.length - poolCount;
      stages.push(new Sequential(
        new DiscriminatorResBlock(c, c, { spectral }),
        sn(new Conv2d(c, w, 3, { padding: 1, activation: 'relu' })),
        ...(pool ? [new MaxPool2d({ kernelSize: 2 })] : []),
      ));
      c = w;
    });
    this.registerModule('stages', new ModuleList(stages));
    this.registerModule('score', sn(new Linear(c, 1)));
  }
  /** Scores [N] for `x` [N, inChannels, H, W]. */
  forward(x: Tensor): Tensor {
    checkInput('ResidualDiscriminator.forward', 'x', x, this.config.inChannels, 2 ** this.config.poolCount);
    return ops.scope(() => {
      let h = this.stem.forward(x);
      for (const s of this.stages.children()) h = (s as Sequential).forward(h);
      h = ops.flatten(ops.globalAvgPool2d(ops.relu(h)));
      return ops.reshape(this.score.forward(h), [x.shape[0]]);
    });
  }
}
