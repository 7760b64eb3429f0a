// The recognition networks: FRNET (the center-loss "Face-ResNet" that Wu et al. put behind
// their hallucination net), LightCNN-9 and LightCNN-29 (max-feature-map units), and the joint
// hallucination + recognition model. Module names follow the public code (caffe-face's layer
// names for FRNET, light_cnn.py for LightCNN) so released weights load by name. Values the
// sources leave open (input size, pool positions for tiny inputs) are config fields
// (design/models/06).
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import {
  Conv2d,
  Dropout,
  Identity,
  Linear,
  MaxPool2d,
  MFMConv2d,
  MFMGroup,
  MFMLinear,
  MFMResBlock,
  Module,
  PReLU,
  ResidualBlock,
  Sequential,
  chain,
  constant_,
  normal_,
  xavierUniform_,
} from '@lrface/nn';
import { ResNet29, type ResNet29Config } from './resnet29.js';
import { checkInt } from './checks.js';

export type RecognitionArch = 'frnet' | 'lightcnn9' | 'lightcnn29' | 'resnet29';
export const RECOGNITION_ARCHS: readonly RecognitionArch[] = ['frnet', 'lightcnn9', 'lightcnn29', 'resnet29'];

/** What every recognition network declares about itself, used by the trainer, the recogniser and weight files. */
export interface RecognitionNetwork extends Module {
  readonly arch: RecognitionArch;
  /** The JSON config that rebuilds this network (stored in weight files). */
  readonly config: object;
  /** [channels, height, width] of the input it takes, values in [0, 1]. */
  readonly inputShape: readonly [number, number, number];
  /** Length of the face feature (the embedding compared between faces). */
  readonly embeddingDim: number;
  /** Identities of the classification head used in training; 0: no head. */
  readonly numClasses: number;
  /** The face features [N, embeddingDim] of images [N, C, H, W] in [0, 1]. */
  forward(x: Tensor): Tensor;
  /** Classification logits [N, numClasses] from features (dropout first where the network has it, in training). */
  classify(features: Tensor): Tensor;
}

function checkIntList(fn: string, arg: string, v: unknown, length: number, min: number): number[] {
  if (!Array.isArray(v) || v.length !== length) throw typeError(fn, arg, `an array of ${length} integers`, v);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw typeError(fn, `${arg}[${i}]`, 'an integer', x);
    if (x < min) throw rangeError(fn, `${arg}[${i}]`, `>= ${min}`, x);
  });
  return [...v];
}

/** [height, width] from a number (square) or a pair. */
function checkSize(fn: string, arg: string, v: unknown): [number, number] {
  const pair = typeof v === 'number' ? [v, v] : v;
  const [h, w] = checkIntList(fn, arg, pair, 2, 1);
  return [h, w];
}

/** Checks a network input: float32 [N, C, H, W] with the network's C, H and W. */
export function checkNetworkInput(fn: string, x: unknown, shape: readonly [number, number, number]): Tensor {
  const t = x as Tensor;
  if (!ops.isTensor(t) || t.dtype !== 'float32') throw typeError(fn, 'x', 'a float32 [N, C, H, W] tensor', x);
  const [c, h, w] = shape;
  if (t.rank !== 4 || t.shape[1] !== c || t.shape[2] !== h || t.shape[3] !== w)
    throw rangeError(fn, 'x', `shape [N, ${c}, ${h}, ${w}]`, `[${t.shape.join(',')}]`, true);
  return t;
}

function checkFeatures(fn: string, features: unknown, dim: number, numClasses: number): Tensor {
  const t = features as Tensor;
  if (!ops.isTensor(t) || t.dtype !== 'float32') throw typeError(fn, 'features', `a float32 [N, ${dim}] tensor`, features);
  if (t.rank !== 2 || t.shape[1] !== dim) throw rangeError(fn, 'features', `shape [N, ${dim}]`, `[${t.shape.join(',')}]`, true);
  if (numClasses === 0) throw new Error(`${fn}: the network has no classification head (construct it with numClasses >= 1)`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// FRNET (Wen et al.'s center-loss network, as Wu et al. use it): a two-conv stem, then four
// stages of [3x3 valid conv + PReLU, 2x2 max pool] each followed by residual units
// x + PReLU(conv(PReLU(conv(x)))), and fc5 to the 512-d feature. 112x96 input.

export interface FrnetConfig {
  /** 3 (RGB, the paper) or 1. */
  inChannels?: number;
  /** [height, width] (default [112, 96], what fc5's 10240 inputs follow from). */
  inputSize?: number | [number, number];
  /** Channels of conv1a, conv1b (= res2), conv2 (= res3), conv3 (= res4), conv4 (= res5). Default [32, 64, 128, 256, 512]. */
  channels?: number[];
  /** Residual units after each of the four pools. Default [1, 2, 5, 3]. */
  units?: number[];
  /** The feature length, fc5's outputs (default 512). */
  embeddingDim?: number;
  /** Identities of the training head fc6 (0: none). */
  numClasses?: number;
  /** Input normalisation on the 8-bit scale: (255 x - mean) * scale (caffe-face: 127.5, 1/128). */
  mean?: number;
  scale?: number;
}
/** FrnetConfig's fields (a misspelt one is refused, not ignored). */
const FRNET_CONFIG_KEYS: Record<keyof FrnetConfig, true> = { inChannels: true, inputSize: true, channels: true, units: true, embeddingDim: true, numClasses: true, mean: true, scale: true };

export class Frnet extends Module implements RecognitionNetwork {
  readonly arch = 'frnet';
  readonly config: Required<Omit<FrnetConfig, 'inputSize'>> & { inputSize: [number, number] };
  readonly inputShape: readonly [number, number, number];
  readonly embeddingDim: number;
  readonly numClasses: number;
  /** [height, width] of res5's maps, flattened into fc5. */
  readonly featureMapSize: [number, number];
  declare conv1a: Conv2d;
  declare prelu1a: PReLU;
  declare conv1b: Conv2d;
  declare prelu1b: PReLU;
  declare res2: Sequential;
  declare conv2: Conv2d;
  declare prelu2: PReLU;
  declare res3: Sequential;
  declare conv3: Conv2d;
  declare prelu3: PReLU;
  declare res4: Sequential;
  declare conv4: Conv2d;
  declare prelu4: PReLU;
  declare res5: Sequential;
  declare fc5: Linear;
  declare fc6: Linear | null;

  constructor(config: FrnetConfig = {}) {
    super();
    const fn = 'Frnet';
    checkKeys(fn, config, FRNET_CONFIG_KEYS, 'config');
    const inChannels = checkInt(fn, 'inChannels', config.inChannels ?? 3, 1);
    const inputSize = checkSize(fn, 'inputSize', config.inputSize ?? [112, 96]);
    const channels = checkIntList(fn, 'channels', config.channels ?? [32, 64, 128, 256, 512], 5, 1);
    const units = checkIntList(fn, 'units', config.units ?? [1, 2, 5, 3], 4, 0);
    const embeddingDim = checkInt(fn, 'embeddingDim', config.embeddingDim ?? 512, 1);
    const numClasses = checkInt(fn, 'numClasses', config.numClasses ?? 0, 0);
    const mean = config.mean ?? 127.5;
    const scale = config.scale ?? 1 / 128;
    if (typeof mean !== 'number' || !Number.isFinite(mean)) throw typeError(fn, 'mean', 'a finite number', mean);
    if (typeof scale !== 'number' || !(scale > 0)) throw rangeError(fn, 'scale', '> 0', scale);
    // Two valid 3x3 convs then a pool; then per stage one valid 3x3 conv and a pool (floor).
    const shrink = (s: number) => {
      let v = Math.floor((s - 4) / 2);
      for (let stage = 0; stage < 3; stage++) v = Math.floor((v - 2) / 2);
      return v;
    };
    this.featureMapSize = [shrink(inputSize[0]), shrink(inputSize[1])];
    if (this.featureMapSize[0] < 1 || this.featureMapSize[1] < 1)
      throw rangeError(fn, 'inputSize', 'at least 48 x 48 (four valid convs and pools must leave a map)', `[${inputSize.join(', ')}]`, true);
    this.config = { inChannels, inputSize, channels, units, embeddingDim, numClasses, mean, scale };
    this.inputShape = [inChannels, inputSize[0], inputSize[1]];
    this.embeddingDim = embeddingDim;
    this.numClasses = numClasses;

    const transition = (name: string, inCh: number, outCh: number) => {
      const conv = new Conv2d(inCh, outCh, 3);
      xavierUniform_(conv.weight);
      constant_(conv.bias!, 0);
      this.registerModule(`conv${name}`, conv);
      this.registerModule(`prelu${name}`, new PReLU(outCh));
    };
    const residual = (name: string, ch: number, count: number) => {
      const blocks = Array.from({ length: count }, () => {
        const block = new ResidualBlock(ch, { activation: new PReLU(ch), postActivation: new PReLU(ch) });
        // caffe-face: residual convs Gaussian(0.01), biases 0.
        for (const conv of [block.conv1, block.conv2]) {
          normal_(conv.weight, 0, 0.01);
          constant_(conv.bias!, 0);
        }
        return block;
      });
      this.registerModule(name, new Sequential(...blocks));
    };
    transition('1a', inChannels, channels[0]);
    transition('1b', channels[0], channels[1]);
    residual('res2', channels[1], units[0]);
    transition('2', channels[1], channels[2]);
    residual('res3', channels[2], units[1]);
    transition('3', channels[2], channels[3]);
    residual('res4', channels[3], units[2]);
    transition('4', channels[3], channels[4]);
    residual('res5', channels[4], units[3]);
    const fc5 = new Linear(channels[4] * this.featureMapSize[0] * this.featureMapSize[1], embeddingDim);
    xavierUniform_(fc5.weight);
    constant_(fc5.bias!, 0);
    this.registerModule('fc5', fc5);
    this.registerModule('fc6', numClasses > 0 ? new Linear(embeddingDim, numClasses) : null);
  }

  forward(x: Tensor): Tensor {
    checkNetworkInput('Frnet.forward', x, this.inputShape);
    const { mean, scale } = this.config;
    const pool = (h: Tensor) => ops.maxPool2d(h, { kernelSize: 2, stride: 2 });
    return chain(x, [
      (h) => ops.affine(h, 255 * scale, -mean * scale),
      this.conv1a,
      this.prelu1a,
      this.conv1b,
      this.prelu1b,
      pool,
      this.res2,
      this.conv2,
      this.prelu2,
      pool,
      this.res3,
      this.conv3,
      this.prelu3,
      pool,
      this.res4,
      this.conv4,
      this.prelu4,
      pool,
      this.res5,
      (h) => ops.flatten(h, 1),
      this.fc5,
    ]);
  }

  classify(features: Tensor): Tensor {
    checkFeatures('Frnet.classify', features, this.embeddingDim, this.numClasses);
    return this.fc6!.forward(features);
  }
}

// ---------------------------------------------------------------------------------------------
// LightCNN (Wu, He, Sun and Tan): max-feature-map convolutions, 2x2 ceil-mode max pools, an
// MFM fully connected feature (256-d) and the fc2 training head. 128x128 grayscale input.

/** Whether each of LightCNN's four pools runs. */
export type Pools = [boolean, boolean, boolean, boolean];

export interface LightCnnConfig {
  /** 1 (grayscale, the released models) or 3. */
  inChannels?: number;
  /** [height, width] (default 128). */
  inputSize?: number | [number, number];
  /**
   * Which of the four 2x2 pools run (default all). Tiny inputs (32x32) may drop pool3 and pool4
   * to keep 8x8 maps; which variant LR papers used is not settled (design/models/06), so it is a setting.
   */
  pools?: Pools;
  /** The feature length, fc's outputs (default 256). */
  embeddingDim?: number;
  /** Identities of the training head fc2 (0: none). */
  numClasses?: number;
  /** Dropout between the feature and fc2 in training (light_cnn.py: 0.5). */
  dropout?: number;
}
/** LightCnnConfig's fields (a misspelt one is refused, not ignored). */
const LIGHT_CNN_CONFIG_KEYS: Record<keyof LightCnnConfig, true> = { inChannels: true, inputSize: true, pools: true, embeddingDim: true, numClasses: true, dropout: true };

const pool2 = () => new MaxPool2d({ kernelSize: 2, stride: 2, ceilMode: true });

function lightCnnConfig(fn: string, config: LightCnnConfig): Required<Omit<LightCnnConfig, 'inputSize'>> & { inputSize: [number, number] } {
  checkKeys(fn, config, LIGHT_CNN_CONFIG_KEYS, 'config');
  const inChannels = checkInt(fn, 'inChannels', config.inChannels ?? 1, 1);
  const inputSize = checkSize(fn, 'inputSize', config.inputSize ?? 128);
  const pools = config.pools ?? [true, true, true, true];
  if (!Array.isArray(pools) || pools.length !== 4 || pools.some((p) => typeof p !== 'boolean'))
    throw typeError(fn, 'pools', 'an array of 4 booleans', pools);
  const embeddingDim = checkInt(fn, 'embeddingDim', config.embeddingDim ?? 256, 1);
  const numClasses = checkInt(fn, 'numClasses', config.numClasses ?? 0, 0);
  const dropout = config.dropout ?? 0.5;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw rangeError(fn, 'dropout', 'in [0, 1)', dropout);
  return { inChannels, inputSize, pools: [...pools] as Pools, embeddingDim, numClasses, dropout };
}

/** The map size after the enabled ceil-mode 2x2 pools. */
function pooledSize(size: [number, number], pools: boolean[]): [number, number] {
  const halvings = pools.filter(Boolean).length;
  let [h, w] = size;
  for (let i = 0; i < halvings; i++) [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
  return [h, w];
}

abstract class LightCnnBase extends Module implements RecognitionNetwork {
  abstract readonly arch: RecognitionArch;
  readonly config: ReturnType<typeof lightCnnConfig>;
  readonly inputShape: readonly [number, number, number];
  readonly embeddingDim: number;
  readonly numClasses: number;
  /** [height, width] of the last maps, flattened into the feature layer. */
  readonly featureMapSize: [number, number];
  declare drop: Dropout;
  declare fc2: Linear | null;
  constructor(fn: string, config: LightCnnConfig) {
    super();
    this.config = lightCnnConfig(fn, config);
    const { inChannels, inputSize, pools, embeddingDim, numClasses, dropout } = this.config;
    this.inputShape = [inChannels, inputSize[0], inputSize[1]];
    this.embeddingDim = embeddingDim;
    this.numClasses = numClasses;
    this.featureMapSize = pooledSize(inputSize, pools);
    this.registerModule('drop', new Dropout(dropout));
  }
  protected addHead(): void {
    this.registerModule('fc2', this.numClasses > 0 ? new Linear(this.embeddingDim, this.numClasses) : null);
  }
  /** A pool, or the identity where the config drops it (so module indices stay those of light_cnn.py). */
  protected pool(index: number): Module {
    return this.config.pools[index] ? pool2() : new Identity();
  }
  classify(features: Tensor): Tensor {
    checkFeatures(`${this.constructor.name}.classify`, features, this.embeddingDim, this.numClasses);
    return ops.scope(() => this.fc2!.forward(this.drop.forward(features)));
  }
  abstract override forward(x: Tensor): Tensor;
}

/** LightCNN-9 (light_cnn.py `network_9layers`): `features` (conv1, four groups, four pools), `fc1`, `fc2`. */
export class LightCnn9 extends LightCnnBase {
  readonly arch = 'lightcnn9';
  declare features: Sequential;
  declare fc1: MFMLinear;
  constructor(config: LightCnnConfig = {}) {
    super('LightCnn9', config);
    const { inChannels, embeddingDim } = this.config;
    this.registerModule(
      'features',
      new Sequential(
        new MFMConv2d(inChannels, 48, 5, { stride: 1, padding: 2 }),
        this.pool(0),
        new MFMGroup(48, 96, 3, { stride: 1, padding: 1 }),
        this.pool(1),
        new MFMGroup(96, 192, 3, { stride: 1, padding: 1 }),
        this.pool(2),
        new MFMGroup(192, 128, 3, { stride: 1, padding: 1 }),
        new MFMGroup(128, 128, 3, { stride: 1, padding: 1 }),
        this.pool(3),
      ),
    );
    this.registerModule('fc1', new MFMLinear(128 * this.featureMapSize[0] * this.featureMapSize[1], embeddingDim));
    this.addHead();
  }
  forward(x: Tensor): Tensor {
    checkNetworkInput('LightCnn9.forward', x, this.inputShape);
    return chain(x, [this.features, (h) => ops.flatten(h, 1), this.fc1]);
  }
}

/** LightCNN-29 (light_cnn.py `network_29layers`, residual blocks [1, 2, 3, 4]). */
export class LightCnn29 extends LightCnnBase {
  readonly arch = 'lightcnn29';
  declare conv1: MFMConv2d;
  declare pool1: Module;
  declare block1: Sequential;
  declare group1: MFMGroup;
  declare pool2: Module;
  declare block2: Sequential;
  declare group2: MFMGroup;
  declare pool3: Module;
  declare block3: Sequential;
  declare group3: MFMGroup;
  declare block4: Sequential;
  declare group4: MFMGroup;
  declare pool4: Module;
  declare fc: MFMLinear;
  constructor(config: LightCnnConfig = {}) {
    super('LightCnn29', config);
    const { inChannels, embeddingDim } = this.config;
    const blocks = (count: number, ch: number) => new Sequential(...Array.from({ length: count }, () => new MFMResBlock(ch)));
    const group = (inCh: number, outCh: number) => new MFMGroup(inCh, outCh, 3, { stride: 1, padding: 1 });
    this.registerModule('conv1', new MFMConv2d(inChannels, 48, 5, { stride: 1, padding: 2 }));
    this.registerModule('pool1', this.pool(0));
    this.registerModule('block1', blocks(1, 48));
    this.registerModule('group1', group(48, 96));
    this.registerModule('pool2', this.pool(1));
    this.registerModule('block2', blocks(2, 96));
    this.registerModule('group2', group(96, 192));
    this.registerModule('pool3', this.pool(2));
    this.registerModule('block3', blocks(3, 192));
    this.registerModule('group3', group(192, 128));
    this.registerModule('block4', blocks(4, 128));
    this.registerModule('group4', group(128, 128));
    this.registerModule('pool4', this.pool(3));
    this.registerModule('fc', new MFMLinear(128 * this.featureMapSize[0] * this.featureMapSize[1], embeddingDim));
    this.addHead();
  }
  forward(x: Tensor): Tensor {
    checkNetworkInput('LightCnn29.forward', x, this.inputShape);
    return chain(x, [
      this.conv1, this.pool1, this.block1, this.group1, this.pool2, this.block2, this.group2, this.pool3,
      this.block3, this.group3, this.block4, this.group4, this.pool4, (h) => ops.flatten(h, 1), this.fc,
    ]);
  }
}

/** Builds a network from its registry name and JSON config (what weight files record). */
export function createRecognitionNetwork(arch: RecognitionArch, config: Record<string, unknown> = {}): RecognitionNetwork {
  switch (arch) {
    case 'frnet':
      return new Frnet(config as FrnetConfig);
    case 'lightcnn9':
      return new LightCnn9(config as LightCnnConfig);
    case 'lightcnn29':
      return new LightCnn29(config as LightCnnConfig);
    case 'resnet29':
      return new ResNet29(config as ResNet29Config);
    default:
      throw rangeError('createRecognitionNetwork', 'arch', `one of ${RECOGNITION_ARCHS.join(', ')}`, arch);
  }
}

// ---------------------------------------------------------------------------------------------
// Joint hallucination + recognition (Wu et al.): a super-resolution network turns the
// bicubic-enlarged low-resolution face into a high-resolution estimate, which the recognition
// network reads; both train together on a pixel loss and the identity losses.

/** The parts of a super-resolution network the joint model relies on (any @lrface/sr network fits). */
export interface Hallucinator extends Module {
  /** Pixels lost on each side by its forward pass (0 with 'same' padding). */
  readonly border?: number;
  forward(x: Tensor): Tensor;
}

export interface JointOutput {
  /** The high-resolution estimate [N, C, H, W], values in [0, 1]. */
  hallucinated: Tensor;
  /** The recognition network's features of it [N, embeddingDim]. */
  features: Tensor;
}

export class JointHallucinationRecognition extends Module {
  declare hallucinator: Hallucinator;
  declare recognizer: RecognitionNetwork;
  constructor(hallucinator: Hallucinator, recognizer: RecognitionNetwork) {
    super();
    if (!(hallucinator instanceof Module)) throw typeError('JointHallucinationRecognition', 'hallucinator', 'a Module', hallucinator);
    if (!(recognizer instanceof Module) || !RECOGNITION_ARCHS.includes((recognizer as RecognitionNetwork).arch))
      throw typeError('JointHallucinationRecognition', 'recognizer', 'a recognition network (Frnet, LightCnn9, LightCnn29, ResNet29)', recognizer);
    this.registerModule('hallucinator', hallucinator);
    this.registerModule('recognizer', recognizer);
  }
  /** The input size the hallucinator must be given so its output is the recogniser's input. */
  get inputShape(): readonly [number, number, number] {
    const [c, h, w] = this.recognizer.inputShape;
    const b = this.hallucinator.border ?? 0;
    return [c, h + 2 * b, w + 2 * b];
  }
  /** Hallucinates `x` (bicubic-enlarged low-resolution faces in [0, 1]) and describes the result. */
  forward(x: Tensor): JointOutput {
    checkNetworkInput('JointHallucinationRecognition.forward', x, this.inputShape);
    const hallucinated = this.hallucinator.forward(x);
    const features = this.recognizer.forward(hallucinated);
    return { hallucinated, features };
  }
}
