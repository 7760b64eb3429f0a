// Losses as PyTorch (and the papers) define them. Each returns a scalar tensor unless
// reduction is 'none'. Constant factors go in as ops.affine's scale, not as number operands of
// mul (each would be a one-element tensor copied from the host on a device; add and sub turn
// a number operand into an affine pass themselves).
import * as ops from '@lrface/cuda-core';
import { checkKeys, noGrad, tensor, zeros, type DeviceSpec, type Tensor } from '@lrface/cuda-core';
import { Module } from './module.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(name: string, t: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return t;
  if (reduction === 'mean') return ops.mean(t);
  if (reduction === 'sum') return ops.sum(t);
  throw new RangeError(`${name}: 'reduction' must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
}

function sameShape(name: string, a: Tensor, b: Tensor): void {
  if (a.shape.join(',') !== b.shape.join(','))
    throw new RangeError(`${name}: 'target' must have the shape of 'input' [${a.shape.join(',')}], got [${b.shape.join(',')}]`);
}

/** Mean squared error. */
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  sameShape('mseLoss', input, target);
  return ops.scope(() => reduce('mseLoss', ops.square(ops.sub(input, target)), reduction));
}

/** Mean absolute error. */
export function l1Loss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  sameShape('l1Loss', input, target);
  return ops.scope(() => reduce('l1Loss', ops.abs(ops.sub(input, target)), reduction));
}

const CHARBONNIER_OPTION_KEYS: Record<'eps' | 'reduction', true> = { eps: true, reduction: true };
const CROSS_ENTROPY_OPTION_KEYS: Record<'reduction' | 'labelSmoothing', true> = { reduction: true, labelSmoothing: true };

/** Charbonnier (smooth L1) loss sqrt((x - y)^2 + eps^2), as in LapSRN / DIC. */
export function charbonnierLoss(input: Tensor, target: Tensor, options: { eps?: number; reduction?: Reduction } = {}): Tensor {
  checkKeys('charbonnierLoss', options, CHARBONNIER_OPTION_KEYS);
  const { eps = 1e-3, reduction = 'mean' } = options;
  if (!(eps > 0)) throw new RangeError(`charbonnierLoss: 'eps' must be > 0, got ${eps}`);
  sameShape('charbonnierLoss', input, target);
  return ops.scope(() => reduce('charbonnierLoss', ops.sqrt(ops.affine(ops.square(ops.sub(input, target)), 1, eps * eps)), reduction));
}

/** One-hot float32 rows [N, classes] from int32 labels [N], on the labels' device. */
export function oneHot(labels: Tensor, classes: number): Tensor {
  if (labels.dtype !== 'int32' || labels.rank !== 1) throw new TypeError(`oneHot: 'labels' must be a 1-D int32 tensor, got ${labels.dtype} [${labels.shape.join(',')}]`);
  const ids = labels.data();
  const out = new Float32Array(ids.length * classes);
  ids.forEach((c, i) => {
    if (c < 0 || c >= classes) throw new RangeError(`oneHot: 'labels' must be in [0, ${classes}), got ${c} at index ${i}`);
    out[i * classes + c] = 1;
  });
  return tensor(out, [ids.length, classes], 'float32', labels.deviceId as DeviceSpec);
}

/**
 * Cross-entropy of logits [N, C] against int32 class indices [N] (log-softmax + negative
 * log-likelihood), with optional label smoothing.
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: { reduction?: Reduction; labelSmoothing?: number } = {}): Tensor {
  checkKeys('crossEntropy', options, CROSS_ENTROPY_OPTION_KEYS);
  const { reduction = 'mean', labelSmoothing = 0 } = options;
  if (logits.rank !== 2) throw new RangeError(`crossEntropy: 'logits' must be rank 2 [N, C], got rank ${logits.rank}`);
  if (target.dtype !== 'int32') throw new TypeError(`crossEntropy: 'target' must be int32 class indices, got ${target.dtype}`);
  if (target.rank !== 1 || target.shape[0] !== logits.shape[0]) throw new RangeError(`crossEntropy: 'target' must have shape [${logits.shape[0]}], got [${target.shape.join(',')}]`);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new RangeError(`crossEntropy: 'labelSmoothing' must be in [0, 1], got ${labelSmoothing}`);
  const classes = logits.shape[1];
  return ops.scope(() => {
    let weights = oneHot(target, classes);
    if (labelSmoothing > 0) weights = ops.affine(weights, 1 - labelSmoothing, labelSmoothing / classes);
    const perSample = ops.neg(ops.sum(ops.mul(ops.logSoftmax(logits, 1), weights), { axis: 1 }));
    return reduce('crossEntropy', perSample, reduction);
  });
}

/** Mean squared error between predicted and target heatmaps [N, K, H, W], optionally weighted per landmark [N, K]. */
export function heatmapMseLoss(pred: Tensor, target: Tensor, weight?: Tensor): Tensor {
  sameShape('heatmapMseLoss', pred, target);
  return ops.scope(() => {
    let sq = ops.square(ops.sub(pred, target));
    if (weight) sq = ops.mul(sq, ops.reshape(weight, [...weight.shape, 1, 1]));
    return ops.mean(sq);
  });
}

/** Hinge GAN loss for the discriminator: mean(relu(1 - D(real))) + mean(relu(1 + D(fake))). */
export function hingeDiscriminatorLoss(realScores: Tensor, fakeScores: Tensor): Tensor {
  return ops.scope(() => ops.add(ops.mean(ops.relu(ops.affine(realScores, -1, 1))), ops.mean(ops.relu(ops.affine(fakeScores, 1, 1)))));
}

/** Hinge GAN loss for the generator: -mean(D(fake)). */
export function hingeGeneratorLoss(fakeScores: Tensor): Tensor {
  return ops.scope(() => ops.neg(ops.mean(fakeScores)));
}

/** Least-squares GAN (Mao et al.): D: 0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2]. */
export function lsganDiscriminatorLoss(realScores: Tensor, fakeScores: Tensor): Tensor {
  return ops.scope(() => ops.affine(ops.add(ops.mean(ops.square(ops.affine(realScores, 1, -1))), ops.mean(ops.square(fakeScores))), 0.5));
}

/** Least-squares GAN: G: 0.5 E[(D(G(z)) - 1)^2]. */
export function lsganGeneratorLoss(fakeScores: Tensor): Tensor {
  return ops.scope(() => ops.affine(ops.mean(ops.square(ops.affine(fakeScores, 1, -1))), 0.5));
}

/** BEGAN's autoencoder energy L(v) = mean |v - D(v)|. */
export function beganEnergy(input: Tensor, reconstruction: Tensor): Tensor {
  return l1Loss(reconstruction, input);
}

/**
 * BEGAN's equilibrium control (Berthelot et al.): L_D = L(x) - k_t L(G(z)), L_G = L(G(z)),
 * k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1).
 */
export class BeganBalance {
  k: number;
  constructor(readonly gamma = 0.5, readonly lambdaK = 0.001, initialK = 0) {
    if (!(gamma > 0 && gamma <= 1)) throw new RangeError(`BeganBalance: 'gamma' must be in (0, 1], got ${gamma}`);
    this.k = initialK;
  }
  /** The discriminator loss for this step's energies. */
  discriminatorLoss(realEnergy: Tensor, fakeEnergy: Tensor): Tensor {
    return ops.scope(() => ops.sub(realEnergy, ops.affine(fakeEnergy, this.k)));
  }
  generatorLoss(fakeEnergy: Tensor): Tensor {
    return ops.affine(fakeEnergy, 1);
  }
  /** Updates k_t and returns the convergence measure M = L(x) + |gamma L(x) - L(G(z))|. */
  update(realEnergy: number, fakeEnergy: number): number {
    const balance = this.gamma * realEnergy - fakeEnergy;
    this.k = Math.min(Math.max(this.k + this.lambdaK * balance, 0), 1);
    return realEnergy + Math.abs(balance);
  }
}

/**
 * Center loss (Wen et al. 2016): 0.5 * mean_i ||x_i - c_{y_i}||^2, with the centres updated
 * by c_j -= alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j) (call {@link CenterLoss.updateCenters}).
 */
export class CenterLoss extends Module {
  /** The class centres [numClasses, featureDim]: a buffer, so checkpoints carry them. */
  declare centers: Tensor;
  constructor(readonly numClasses: number, readonly featureDim: number, readonly alpha = 0.5) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`CenterLoss: 'numClasses' must be an integer >= 1, got ${numClasses}`);
    if (!Number.isInteger(featureDim) || featureDim < 1) throw new RangeError(`CenterLoss: 'featureDim' must be an integer >= 1, got ${featureDim}`);
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`CenterLoss: 'alpha' must be in (0, 1], got ${alpha}`);
    this.registerBuffer('centers', zeros([numClasses, featureDim]));
  }
  private check(features: Tensor, labels: Tensor): void {
    if (features.rank !== 2 || features.shape[1] !== this.featureDim)
      throw new RangeError(`CenterLoss: 'features' must have shape [N, ${this.featureDim}], got [${features.shape.join(',')}]`);
    if (labels.rank !== 1 || labels.shape[0] !== features.shape[0])
      throw new RangeError(`CenterLoss: 'labels' must have shape [${features.shape[0]}], got [${labels.shape.join(',')}]`);
  }
  forward(features: Tensor, labels: Tensor): Tensor {
    this.check(features, labels);
    return ops.scope(() => {
      const batchCenters = ops.matmul(oneHot(labels, this.numClasses), this.centers);
      const diff = ops.sub(features, batchCenters);
      return ops.affine(ops.mean(ops.sum(ops.square(diff), { axis: 1 })), 0.5);
    });
  }
  /** Wen et al.'s centre update from this batch (no gradient). */
  updateCenters(features: Tensor, labels: Tensor): void {
    this.check(features, labels);
    noGrad(() =>
      ops.scope(() => {
        const hot = oneHot(labels, this.numClasses); // [N, K]
        const counts = ops.sum(hot, { axis: 0 }); // [K]
        const sums = ops.matmul(ops.transpose(hot), features); // [K, D] sum of x_i per class
        // sum_i (c_j - x_i) = n_j c_j - sum x_i
        const delta = ops.div(ops.sub(ops.mul(this.centers, ops.reshape(counts, [this.numClasses, 1])), sums), ops.reshape(ops.affine(counts, 1, 1), [this.numClasses, 1]));
        this.centers.assign(ops.sub(this.centers, ops.affine(delta, this.alpha)));
      }),
    );
  }
}
