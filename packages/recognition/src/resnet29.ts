// dlib's face recognition ResNet (Davis King's dlib_face_recognition_resnet_model_v1: 29
// convolutions, a 128-d feature, 99.38 % on LFW), as @vladmandic/face-api ships it
// (FaceRecognitionNet, TensorFlow.js weights, uint8-quantised). Our layers reproduce face-api's
// forward pass: valid-padded stride-2 convolutions, a shortcut that average-pools and pads
// channels with zeros, and a residual branch padded at the bottom and right where it comes out
// one pixel smaller than the shortcut. Each conv + "scale layer" pair is one convolution here
// (the scale is folded in when the weights are read), so the network also trains and fine-tunes.
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, type Tensor } from '@lrface/cuda-core';
import { Conv2d, Linear, Module, convBatchNorm, faceApiModelDir, readTfjsWeights } from '@lrface/nn';
import { join } from 'node:path';
import { checkNetworkInput, type RecognitionNetwork } from './models.js';

/** face-api's per-channel mean on the 8-bit scale; inputs are (255 x - mean) / 255. */
const MEAN_RGB = [122.782, 117.001, 104.298];

/** x + conv2(relu(conv1(x))), then ReLU; 3x3 'same' convolutions. */
class ResidualUnit extends Module {
  declare conv1: Conv2d;
  declare conv2: Conv2d;
  constructor(channels: number) {
    super();
    this.registerModule('conv1', new Conv2d(channels, channels, 3, { padding: 1, activation: 'relu' }));
    this.registerModule('conv2', new Conv2d(channels, channels, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    // The identity and the ReLU join inside the second convolution (conv2dAddRelu).
    return convBatchNorm(this.conv1.forward(x), this.conv2, null, { relu: true, residual: x });
  }
}

/**
 * The down-sampling unit: conv2(relu(conv1 stride 2, valid)) added to the 2x2 average pool of x
 * with zero channels appended, then ReLU. Where the branch's valid convolution leaves no pixel
 * (a 2x2 input), face-api's branch is all zeros; so is ours.
 */
class ResidualDownUnit extends Module {
  declare conv1: Conv2d;
  declare conv2: Conv2d;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly inputSize: [number, number]) {
    super();
    this.registerModule('conv1', new Conv2d(inChannels, outChannels, 3, { stride: 2, padding: 0, activation: 'relu' }));
    this.registerModule('conv2', new Conv2d(outChannels, outChannels, 3, { padding: 1 }));
  }
  /** [height, width] of the output: the pooled size. */
  get outputSize(): [number, number] {
    return [Math.floor(this.inputSize[0] / 2), Math.floor(this.inputSize[1] / 2)];
  }
  forward(x: Tensor): Tensor {
    return ops.scope(() => {
      const [n, c, h, w] = x.shape;
      let shortcut = ops.avgPool2d(x, { kernelSize: 2, stride: 2 });
      const [ph, pw] = [shortcut.shape[2], shortcut.shape[3]];
      if (this.outChannels > c)
        shortcut = ops.concat([shortcut, ops.zeros([n, this.outChannels - c, ph, pw], 'float32', x.deviceId as ops.DeviceSpec)], 1);
      if (h < 3 || w < 3) return ops.relu(shortcut);
      const branch = this.conv2.forward(this.conv1.forward(x));
      const [bh, bw] = [branch.shape[2], branch.shape[3]];
      const padded = bh === ph && bw === pw ? branch : ops.pad(branch, [0, pw - bw, 0, ph - bh]);
      return ops.relu(ops.add(shortcut, padded));
    });
  }
}

export interface ResNet29Config {
  /** Input side (default 150, what face-api resizes faces to). */
  inputSize?: number;
  /** Identities of a training head `head` (0: none), to fine-tune the feature, e.g. on low-resolution faces. */
  numClasses?: number;
}
/** ResNet29Config's fields (a misspelt one is refused, not ignored). */
const RES_NET29_CONFIG_KEYS: Record<keyof ResNet29Config, true> = { inputSize: true, numClasses: true };

const STAGES: [name: string, inChannels: number, outChannels: number, down: boolean][] = [
  ['conv32_1', 32, 32, false],
  ['conv32_2', 32, 32, false],
  ['conv32_3', 32, 32, false],
  ['conv64_down', 32, 64, true],
  ['conv64_1', 64, 64, false],
  ['conv64_2', 64, 64, false],
  ['conv64_3', 64, 64, false],
  ['conv128_down', 64, 128, true],
  ['conv128_1', 128, 128, false],
  ['conv128_2', 128, 128, false],
  ['conv256_down', 128, 256, true],
  ['conv256_1', 256, 256, false],
  ['conv256_2', 256, 256, false],
  ['conv256_down_out', 256, 256, true],
];

export class ResNet29 extends Module implements RecognitionNetwork {
  readonly arch = 'resnet29';
  readonly config: Required<ResNet29Config>;
  readonly inputShape: readonly [number, number, number];
  readonly embeddingDim = 128;
  readonly numClasses: number;
  declare conv32_down: Conv2d;
  declare fc: Linear;
  declare head: Linear | null;
  declare mean: Tensor;
  private readonly units: Module[] = [];

  constructor(config: ResNet29Config = {}) {
    super();
    checkKeys('ResNet29', config, RES_NET29_CONFIG_KEYS, 'config');
    const inputSize = config.inputSize ?? 150;
    if (!Number.isInteger(inputSize)) throw rangeError('ResNet29', 'inputSize', 'an integer', inputSize);
    const numClasses = config.numClasses ?? 0;
    if (!Number.isInteger(numClasses) || numClasses < 0) throw rangeError('ResNet29', 'numClasses', 'an integer >= 0', numClasses);
    // 7x7 stride-2 valid conv, then a 3x3 stride-2 max pool; four halvings follow.
    const stem = Math.floor((Math.floor((inputSize - 7) / 2) + 1 - 3) / 2) + 1;
    if (!(stem >= 16)) throw rangeError('ResNet29', 'inputSize', 'at least 71 (the four down-sampling units need 16 pixels after the stem)', inputSize);
    this.config = { inputSize, numClasses };
    this.inputShape = [3, inputSize, inputSize];
    this.numClasses = numClasses;
    this.registerBuffer('mean', ops.tensor(new Float32Array(MEAN_RGB.map((m) => m / 255)), [1, 3, 1, 1]), { persistent: false });
    this.registerModule('conv32_down', new Conv2d(3, 32, 7, { stride: 2, padding: 0, activation: 'relu' }));
    let size: [number, number] = [stem, stem];
    for (const [name, inCh, outCh, down] of STAGES) {
      const unit = down ? new ResidualDownUnit(inCh, outCh, size) : new ResidualUnit(outCh);
      if (unit instanceof ResidualDownUnit) size = unit.outputSize;
      this.registerModule(name, unit);
      this.units.push(unit);
    }
    this.registerModule('fc', new Linear(256, 128, { bias: false }));
    this.registerModule('head', numClasses > 0 ? new Linear(128, numClasses) : null);
  }

  forward(x: Tensor): Tensor {
    checkNetworkInput('ResNet29.forward', x, this.inputShape);
    return ops.scope(() => {
      let h = this.conv32_down.forward(ops.sub(x, this.mean));
      h = ops.maxPool2d(h, { kernelSize: 3, stride: 2 });
      for (const unit of this.units) h = unit.forward(h) as Tensor;
      return this.fc.forward(ops.flatten(ops.globalAvgPool2d(h), 1));
    });
  }

  classify(features: Tensor): Tensor {
    if (!this.head) throw new Error('ResNet29.classify: the network has no classification head (construct it with numClasses >= 1)');
    return this.head.forward(features);
  }
}

/**
 * face-api's trained FaceRecognitionNet weights (from the installed @vladmandic/face-api, or
 * `modelDir`) as a ResNet29 state dict: filters from TF's [kh, kw, in, out] to [out, in, kh, kw],
 * each scale layer folded into its convolution (w * s, b * s + t), fc transposed.
 */
export async function readFaceApiRecognitionWeights(modelDir?: string, caller = 'readFaceApiRecognitionWeights'): Promise<Map<string, Tensor>> {
  const dir = modelDir ?? faceApiModelDir(caller);
  const file = join(dir, 'face_recognition_model-weights_manifest.json');
  const weights = await readTfjsWeights(file);
  const get = (name: string, rank: number) => {
    const w = weights.get(name);
    if (!w) throw new Error(`${file}: no weight '${name}' (not face-api's face recognition model)`);
    if (w.shape.length !== rank) throw new Error(`${file}: weight '${name}' has shape [${w.shape.join(', ')}], expected rank ${rank}`);
    return w;
  };
  const state = new Map<string, Tensor>();
  const conv = (prefix: string, target: string) => {
    const f = get(`${prefix}/conv/filters`, 4);
    const [kh, kw, ci, co] = f.shape;
    const bias = get(`${prefix}/conv/bias`, 1).data;
    const scale = get(`${prefix}/scale/weights`, 1).data;
    const shift = get(`${prefix}/scale/biases`, 1).data;
    const w = new Float32Array(co * ci * kh * kw);
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) w[((o * ci + i) * kh + y) * kw + x] = f.data[((y * kw + x) * ci + i) * co + o] * scale[o];
    state.set(`${target}.weight`, ops.tensor(w, [co, ci, kh, kw]));
    state.set(`${target}.bias`, ops.tensor(Float32Array.from(bias, (b, o) => b * scale[o] + shift[o]), [co]));
  };
  conv('conv32_down', 'conv32_down');
  for (const [name] of STAGES) {
    conv(`${name}/conv1`, `${name}.conv1`);
    conv(`${name}/conv2`, `${name}.conv2`);
  }
  const fc = get('fc', 2);
  const [fin, fout] = fc.shape;
  const t = new Float32Array(fin * fout);
  for (let i = 0; i < fin; i++) for (let o = 0; o < fout; o++) t[o * fin + i] = fc.data[i * fout + o];
  state.set('fc.weight', ops.tensor(t, [fout, fin]));
  return state;
}

const LOAD_FACE_API_RES_NET29_OPTION_KEYS: Record<'modelDir' | 'numClasses', true> = { modelDir: true, numClasses: true };

/** A ResNet29 with face-api's trained weights (the HR face recogniser; 128-d features compared by distance < 0.6 in face-api). */
export async function loadFaceApiResNet29(options: { modelDir?: string; numClasses?: number } = {}, caller = 'loadFaceApiResNet29'): Promise<ResNet29> {
  checkKeys(caller, options, LOAD_FACE_API_RES_NET29_OPTION_KEYS);
  const state = await readFaceApiRecognitionWeights(options.modelDir, caller);
  const net = new ResNet29({ numClasses: options.numClasses ?? 0 });
  try {
    net.loadStateDict(state, { strict: !options.numClasses });
  } finally {
    for (const t of state.values()) t.dispose();
  }
  return net;
}
