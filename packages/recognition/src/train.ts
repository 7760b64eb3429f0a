// Training a recognition network on identity-labelled faces: softmax cross-entropy plus Wen et
// al.'s center loss, and for the joint model (Wu et al.) a pixel loss on the hallucinated face,
// all networks updated together. Batches come from face images with random crops, flips and
// (for the joint model) the bicubic low-resolution degradation.
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import {
  Adam,
  CenterLoss,
  SGD,
  crossEntropy,
  loadCheckpoint,
  mseLoss,
  saveCheckpoint,
  type Module,
  type Optimizer,
} from '@lrface/nn';
import { bicubicResize, checkBox, checkImage, randomAugmentation, rngFrom, type AugmentRanges, type Box, type RawImage, type Rng } from '@lrface/datasets';
import { writeFace } from './preprocess.js';
import { checkInt } from './checks.js';
import { RECOGNITION_ARCHS, type Hallucinator, type RecognitionNetwork } from './models.js';

/** One face of a training set: the image, the face in it (default: the whole image) and its identity index. */
export interface IdentityFace {
  image: RawImage;
  /** Class index in [0, numClasses). */
  identity: number;
  box?: Box;
}

export interface RecognitionBatch {
  /** The network's input [N, C, H, W] in [0, 1]: the faces, or for the joint model their bicubic-enlarged low-resolution versions. */
  images: Tensor;
  /** int32 identity indices [N]. */
  labels: Tensor;
  /** The joint model's pixel targets: the high-resolution faces [N, C, H, W]. */
  targets?: Tensor;
}

export interface IdentityBatchOptions {
  batchSize: number;
  /** [channels, height, width] of the recognition network's input (its `inputShape`). */
  inputShape: readonly [number, number, number];
  /** Random crop, rotation and flip ranges (default: scale 0.95-1.05, 5 degrees, 3 px, flip 0.5); null: none. */
  augment?: AugmentRanges | null;
  /** Margin around the face box, as a fraction of its side (default 0). */
  margin?: number;
  /**
   * Joint training: the input is the face shrunk by this factor (MATLAB bicubic) and enlarged
   * back; `targets` holds the face itself. Default: none (plain recognition batches).
   */
  lowResolutionScale?: number;
  /** Pixels the hallucinator loses per side (its `border`): the input is that much larger than the target. */
  border?: number;
  /** Shuffling and augmentation seed (each epoch draws new ones from the same generator). */
  seed?: number | Rng;
  /** Keep the last, smaller batch (default false). */
  keepPartial?: boolean;
}

const IDENTITY_BATCH_OPTION_KEYS: Record<keyof IdentityBatchOptions, true> = {
  batchSize: true, inputShape: true, augment: true, margin: true, lowResolutionScale: true, border: true, seed: true, keepPartial: true,
};
const AUGMENT_RANGE_KEYS: Record<keyof AugmentRanges, true> = { scale: true, rotation: true, translation: true, flip: true };

/**
 * Shuffled, augmented identity batches: each pass over the result is one epoch (the Trainer
 * iterates it once per epoch), reshuffled and re-augmented from `seed`'s generator.
 */
export function identityBatches(faces: readonly IdentityFace[], options: IdentityBatchOptions): Iterable<RecognitionBatch> {
  const fn = 'identityBatches';
  checkKeys(fn, options, IDENTITY_BATCH_OPTION_KEYS);
  // Here, not at the first batch (where randomAugmentation would refuse it under its own name).
  if (options.augment != null) checkKeys(fn, options.augment, AUGMENT_RANGE_KEYS, 'options.augment');
  if (!Array.isArray(faces) || faces.length === 0) throw typeError(fn, 'faces', 'a non-empty array of { image, identity }', faces);
  faces.forEach((f, i) => {
    if (f === null || typeof f !== 'object') throw typeError(fn, `faces[${i}]`, 'an object { image, identity }', f);
    checkImage(fn, `faces[${i}].image`, f.image);
    checkInt(fn, `faces[${i}].identity`, f.identity, 0);
    if (f.box !== undefined) checkBox(fn, `faces[${i}].box`, f.box, f.image);
  });
  const batchSize = checkInt(fn, 'batchSize', options.batchSize, 1);
  const shape = options.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3) throw typeError(fn, 'inputShape', '[channels, height, width]', shape);
  const [c, h, w] = shape.map((v, i) => checkInt(fn, `inputShape[${i}]`, v, 1));
  const margin = options.margin ?? 0;
  if (typeof margin !== 'number' || !(margin >= 0)) throw rangeError(fn, 'margin', '>= 0', margin);
  const scale = options.lowResolutionScale;
  if (scale !== undefined) checkInt(fn, 'lowResolutionScale', scale, 2);
  const border = checkInt(fn, 'border', options.border ?? 0, 0);
  if (border > 0 && scale === undefined) throw rangeError(fn, 'border', '0 unless lowResolutionScale is given', border);
  const augment = options.augment === null ? null : { scale: [0.95, 1.05] as [number, number], rotation: 5, translation: 3, flip: 0.5, ...options.augment };
  const rng = rngFrom(options.seed ?? 0);
  const keepPartial = options.keepPartial ?? false;
  // The joint model sees a larger window when the hallucinator crops a border.
  const [inH, inW] = [h + 2 * border, w + 2 * border];
  return {
    *[Symbol.iterator]() {
      const order = rng.permutation(faces.length);
      for (let start = 0; start < faces.length; start += batchSize) {
        const n = Math.min(batchSize, faces.length - start);
        if (n < batchSize && !keepPartial && start > 0) break;
        const pixels = new Float32Array(n * c * inH * inW);
        const labels = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const face = faces[order[start + i]];
          writeFace(face.image, face.box, c, inH, inW, margin, augment ? randomAugmentation(rng, augment) : undefined, pixels, i * c * inH * inW);
          labels[i] = face.identity;
        }
        const faceTensor = ops.tensor(pixels, [n, c, inH, inW]);
        const labelTensor = ops.tensor(labels, [n], 'int32');
        if (scale === undefined) {
          yield { images: faceTensor, labels: labelTensor };
          continue;
        }
        const images = ops.scope(() => {
          const small = bicubicResize(faceTensor, { size: [Math.max(1, Math.round(inH / scale)), Math.max(1, Math.round(inW / scale))] });
          return ops.clamp(bicubicResize(small, { size: [inH, inW] }), 0, 1);
        });
        let targets = faceTensor;
        if (border > 0) {
          targets = ops.scope(() => ops.narrow(ops.narrow(faceTensor, 2, border, h), 3, border, w));
          faceTensor.dispose();
        }
        yield { images, labels: labelTensor, targets };
      }
    },
  };
}

export interface RecognitionTrainerConfig {
  /** The joint model's super-resolution network, trained with the recogniser on the pixel loss. */
  hallucinator?: Hallucinator;
  /** 'sgd' (caffe-face and LightCNN, default) or 'adam'. */
  optimizer?: 'sgd' | 'adam';
  /** Default 0.01 with SGD, 1e-3 with Adam. */
  lr?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Default 5e-4 (caffe-face). */
  weightDecay?: number;
  /** λ of the center loss (caffe-face's prototxt: 0.008; Wen et al.'s paper: 0.003; UNCERTAIN for Wu et al.). 0: softmax only. */
  centerLossWeight?: number;
  /** α of the centre update (Wen et al.: 0.5). */
  centerAlpha?: number;
  /** Weight of the joint model's pixel loss (mean squared error per pixel) against the identity losses (UNCERTAIN in Wu et al.; default 1). */
  pixelLossWeight?: number;
}
/** RecognitionTrainerConfig's fields (a misspelt one is refused, not ignored). */
const RECOGNITION_TRAINER_CONFIG_KEYS: Record<keyof RecognitionTrainerConfig, true> = { hallucinator: true, optimizer: true, lr: true, momentum: true, weightDecay: true, centerLossWeight: true, centerAlpha: true, pixelLossWeight: true };

export interface RecognitionStepResult {
  /** The total loss. */
  loss: number;
  softmax: number;
  center: number;
  /** The joint model's pixel loss (0 without a hallucinator). */
  pixel: number;
  /** Fraction of the batch the classifier got right. */
  accuracy: number;
  samples: number;
}

/**
 * One training step at a time of a recognition network (and, for the joint model, its
 * hallucinator): zero the gradients, the losses, backward, the optimiser's update, then the
 * centre update. Feed `trainStep` to @lrface/nn's Trainer for epochs, checkpoints and logs, with
 * `models` and `optimizer` from here.
 */
export class RecognitionTrainer {
  readonly network: RecognitionNetwork;
  readonly hallucinator: Hallucinator | null;
  readonly centerLoss: CenterLoss;
  readonly optimizer: Optimizer;
  readonly config: Required<Omit<RecognitionTrainerConfig, 'hallucinator'>>;
  step = 0;
  constructor(network: RecognitionNetwork, config: RecognitionTrainerConfig = {}) {
    const fn = 'RecognitionTrainer';
    checkKeys(fn, config, RECOGNITION_TRAINER_CONFIG_KEYS, 'config');
    if (network === null || typeof network !== 'object' || !RECOGNITION_ARCHS.includes(network.arch))
      throw typeError(fn, 'network', 'a recognition network (Frnet, LightCnn9, LightCnn29, ResNet29)', network);
    if (network.numClasses < 1) throw rangeError(fn, 'network', 'a network with a classification head (numClasses >= 1)', 0);
    if (config === null || typeof config !== 'object') throw typeError(fn, 'config', 'an object', config);
    const kind = config.optimizer ?? 'sgd';
    if (kind !== 'sgd' && kind !== 'adam') throw typeError(fn, 'optimizer', "'sgd' or 'adam'", kind);
    const nonNegative = (arg: string, v: unknown) => {
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw rangeError(fn, arg, 'a finite number >= 0', v);
      return v;
    };
    this.config = {
      optimizer: kind,
      lr: nonNegative('lr', config.lr ?? (kind === 'sgd' ? 0.01 : 1e-3)),
      momentum: nonNegative('momentum', config.momentum ?? 0.9),
      weightDecay: nonNegative('weightDecay', config.weightDecay ?? 5e-4),
      centerLossWeight: nonNegative('centerLossWeight', config.centerLossWeight ?? 0.008),
      centerAlpha: config.centerAlpha ?? 0.5,
      pixelLossWeight: nonNegative('pixelLossWeight', config.pixelLossWeight ?? 1),
    };
    this.network = network;
    this.hallucinator = config.hallucinator ?? null;
    this.centerLoss = new CenterLoss(network.numClasses, network.embeddingDim, this.config.centerAlpha).to(network.device as ops.DeviceSpec);
    const params = [...network.parameters(), ...(this.hallucinator?.parameters() ?? [])];
    const { lr, momentum, weightDecay } = this.config;
    this.optimizer = kind === 'sgd' ? new SGD(params, { lr, momentum, weightDecay }) : new Adam(params, { lr, weightDecay });
  }

  /** The modules a checkpoint must hold beside the network. */
  get models(): Record<string, Module> {
    return this.hallucinator ? { centerLoss: this.centerLoss, hallucinator: this.hallucinator } : { centerLoss: this.centerLoss };
  }

  trainStep(batch: RecognitionBatch): RecognitionStepResult {
    const fn = 'RecognitionTrainer.trainStep';
    if (batch === null || typeof batch !== 'object' || !ops.isTensor(batch.images) || !ops.isTensor(batch.labels))
      throw typeError(fn, 'batch', '{ images, labels[, targets] } tensors', batch);
    if (this.hallucinator && !ops.isTensor(batch.targets)) throw typeError(fn, 'batch.targets', 'the high-resolution faces (joint training)', batch.targets);
    const device = this.network.device as ops.DeviceSpec;
    this.network.train();
    this.hallucinator?.train();
    const { centerLossWeight, pixelLossWeight } = this.config;
    const result = ops.scope(() => {
      this.optimizer.zeroGrad();
      const images = batch.images.to(device);
      const labels = batch.labels.to(device);
      let pixel: Tensor | null = null;
      let input = images;
      if (this.hallucinator) {
        input = this.hallucinator.forward(images);
        const target = batch.targets!.to(device);
        if (input.shape.join() !== target.shape.join())
          throw rangeError(fn, 'batch.targets', `the hallucinator's output shape [${input.shape.join(', ')}]`, `[${target.shape.join(',')}]`, true);
        pixel = mseLoss(input, target);
      }
      const features = this.network.forward(input);
      const logits = this.network.classify(features);
      const softmax = crossEntropy(logits, labels);
      const center = this.centerLoss.forward(features, labels);
      let total = centerLossWeight > 0 ? ops.add(softmax, ops.affine(center, centerLossWeight)) : softmax;
      if (pixel) total = ops.add(total, ops.affine(pixel, pixelLossWeight));
      total.backward();
      this.optimizer.step();
      this.centerLoss.updateCenters(features.detach(), labels);
      const predicted = ops.argmax(logits.detach(), 1).data() as Int32Array;
      const truth = labels.to('cpu').data() as Int32Array;
      let right = 0;
      predicted.forEach((p, i) => {
        if (p === truth[i]) right++;
      });
      return {
        loss: total.item(),
        softmax: softmax.item(),
        center: center.item(),
        pixel: pixel ? pixel.item() : 0,
        accuracy: right / truth.length,
        samples: truth.length,
      };
    });
    for (const [k, v] of Object.entries(result))
      if (!Number.isFinite(v)) throw new RangeError(`${fn}: the loss term '${k}' became ${v} at step ${this.step + 1}; training stopped`);
    this.step++;
    return result;
  }

  /** Saves network, centres, hallucinator and optimiser atomically. */
  save(path: string, extra: Record<string, unknown> = {}): void {
    saveCheckpoint(path, { model: this.network, models: this.models, optimizer: this.optimizer, step: this.step, extra });
  }

  /** Restores what `save` wrote; returns its extras. */
  load(path: string): Record<string, unknown> | undefined {
    const r = loadCheckpoint(path, { model: this.network, models: this.models, optimizer: this.optimizer });
    this.step = r.step;
    return r.extra;
  }
}
