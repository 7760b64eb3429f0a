// The losses of the two-stage LR landmark GAN (Kumar & Chellappa, eqs. 1-13): the high-to-low
// stage (hinge GAN + L2 pixel loss against the average-pooled HR image), the autoencoder
// heatmap discriminator D2 with the BEGAN balance k_t, the least-squares confidence
// discriminator D3 with its three input kinds, and the weighted generator loss of G2.
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { BeganBalance, hingeDiscriminatorLoss, hingeGeneratorLoss } from '@lrface/nn';

function checkTensor(fn: string, name: string, x: unknown): Tensor {
  if (!ops.isTensor(x)) throw typeError(fn, name, 'a Tensor', x);
  return x as Tensor;
}

function checkSameShape(fn: string, a: Tensor, aName: string, b: Tensor, bName: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw rangeError(fn, bName, `the shape of '${aName}' [${a.shape.join(',')}]`, b);
}

function checkWeight(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(fn, name, 'a number >= 0', v);
  if (!(v >= 0) || !Number.isFinite(v)) throw rangeError(fn, name, 'a finite number >= 0', v);
  return v;
}

/**
 * F of eq. 4: the HR image average-pooled down to the LR size (an integer factor, e.g. 128 ->
 * 32 is a 4x4 box average, the same as two 2x2 average-pooling layers).
 */
export function averagePoolDown(hr: Tensor, outputSize: number): Tensor {
  const fn = 'averagePoolDown';
  checkTensor(fn, 'hr', hr);
  if (hr.rank !== 4) throw rangeError(fn, 'hr', 'an [N, C, H, W] tensor', hr);
  const factor = hr.shape[2] / outputSize;
  if (!Number.isInteger(outputSize) || outputSize < 1 || !Number.isInteger(factor) || hr.shape[3] / outputSize !== factor)
    throw rangeError(fn, 'outputSize', `a size that divides the input side ${hr.shape[2]}x${hr.shape[3]} by an integer`, outputSize);
  return factor === 1 ? ops.clone(hr) : ops.avgPool2d(hr, { kernelSize: factor });
}

/** Eq. 4: mean squared difference between the G1 output and F(I_HR). */
export function pixelLoss(generated: Tensor, hr: Tensor): Tensor {
  checkTensor('pixelLoss', 'generated', generated);
  checkTensor('pixelLoss', 'hr', hr);
  if (generated.rank !== 4) throw rangeError('pixelLoss', 'generated', 'an [N, C, h, w] tensor', generated);
  return ops.scope(() => {
    const target = averagePoolDown(hr, generated.shape[2]);
    checkSameShape('pixelLoss', target, 'F(hr)', generated, 'generated');
    return ops.mean(ops.square(ops.sub(generated, target)));
  });
}

/** The weights of eq. 1 (UNCERTAIN in the paper; the text only asks alpha*l_GAN > beta*l_pixel). */
export interface HighToLowLossWeights {
  alpha: number;
  beta: number;
}

const HIGH_TO_LOW_LOSS_WEIGHT_KEYS: Record<keyof HighToLowLossWeights, true> = { alpha: true, beta: true };
const HEATMAP_LOSS_WEIGHT_KEYS: Record<keyof HeatmapGeneratorLossWeights, true> = { a: true, b: true, c: true };
const HEATMAP_LOSS_TERM_KEYS: Record<'mse' | 'kp' | 'conf', true> = { mse: true, kp: true, conf: true };

/** D1's hinge loss (eq. 2): E[max(0, 1 - D(real LR))] + E[max(0, 1 + D(G1(HR)))]. */
export function highToLowDiscriminatorLoss(realScores: Tensor, fakeScores: Tensor): Tensor {
  checkTensor('highToLowDiscriminatorLoss', 'realScores', realScores);
  checkTensor('highToLowDiscriminatorLoss', 'fakeScores', fakeScores);
  return hingeDiscriminatorLoss(realScores, fakeScores);
}

/** G1's loss (eq. 1): alpha * (-E[D1(G1(HR))]) + beta * l_pixel; also returns the two terms. */
export function highToLowGeneratorLoss(fakeScores: Tensor, generated: Tensor, hr: Tensor, weights: HighToLowLossWeights): { loss: Tensor; gan: Tensor; pixel: Tensor } {
  const fn = 'highToLowGeneratorLoss';
  checkTensor(fn, 'fakeScores', fakeScores);
  const alpha = checkWeight(fn, 'weights.alpha', weights?.alpha);
  const beta = checkWeight(fn, 'weights.beta', weights?.beta);
  checkKeys(fn, weights, HIGH_TO_LOW_LOSS_WEIGHT_KEYS, 'weights');
  const gan = hingeGeneratorLoss(fakeScores);
  const pixel = pixelLoss(generated, hr);
  const loss = ops.scope(() => ops.add(ops.affine(gan, alpha), ops.affine(pixel, beta)));
  return { loss, gan, pixel };
}

/**
 * The heatmap energy of eqs. 5, 6, 10, 11: the squared error summed over the N+1 maps,
 * averaged over pixels and images (sum / (N * H * W)). With `foregroundWeight` w > 0 each
 * squared error is weighted by (1 + w * target): the plain error is almost satisfied by empty
 * maps, and a weighted one makes the peaks worth learning (used for eq. 10's supervised term).
 */
export function heatmapEnergy(target: Tensor, prediction: Tensor, foregroundWeight = 0): Tensor {
  const fn = 'heatmapEnergy';
  checkTensor(fn, 'target', target);
  checkTensor(fn, 'prediction', prediction);
  if (target.rank !== 4) throw rangeError(fn, 'target', 'an [N, K, H, W] tensor', target);
  checkSameShape(fn, target, 'target', prediction, 'prediction');
  if (typeof foregroundWeight !== 'number') throw typeError(fn, 'foregroundWeight', 'a number', foregroundWeight);
  if (!(foregroundWeight >= 0 && Number.isFinite(foregroundWeight))) throw rangeError(fn, 'foregroundWeight', 'a finite number >= 0', foregroundWeight);
  const [n, , h, w] = target.shape;
  return ops.scope(() => {
    const squared = ops.square(ops.sub(target, prediction));
    const weighted = foregroundWeight === 0 ? squared : ops.mul(squared, ops.affine(target, foregroundWeight, 1));
    return ops.affine(ops.sum(weighted), 1 / (n * h * w));
  });
}

export interface HeatmapBalanceConfig {
  /** Diversity ratio gamma of eq. 8 (UNCERTAIN; default 0.5, BEGAN's). */
  gamma?: number;
  /** Proportional gain lambda_k of eq. 8 (UNCERTAIN; default 0.001, BEGAN's). */
  lambdaK?: number;
  /** k_t is updated every `period` iterations from the energies averaged over them (UNCERTAIN t; default 1). */
  period?: number;
  /** k_0 (default 0). */
  initialK?: number;
}
/** HeatmapBalanceConfig's fields (a misspelt one is refused, not ignored). */
const HEATMAP_BALANCE_CONFIG_KEYS: Record<keyof HeatmapBalanceConfig, true> = { gamma: true, lambdaK: true, period: true, initialK: true };

/**
 * The BEGAN balance of D2 (eqs. 7, 8): l_D^kp = l_real - k_t l_fake, with
 * k_{t+1} = clip(k_t + lambda_k (gamma l_real - l_fake), 0, 1) applied every `period`
 * iterations on the energies averaged since the last update.
 */
export class HeatmapBalance {
  private readonly balance: BeganBalance;
  readonly period: number;
  private realSum = 0;
  private fakeSum = 0;
  private pending = 0;
  constructor(config: HeatmapBalanceConfig = {}) {
    const fn = 'HeatmapBalance';
    checkKeys(fn, config, HEATMAP_BALANCE_CONFIG_KEYS, 'config');
    const { gamma = 0.5, lambdaK = 0.001, period = 1, initialK = 0 } = config;
    if (typeof gamma !== 'number' || !(gamma > 0 && gamma <= 1)) throw rangeError(fn, 'gamma', 'a number in (0, 1]', gamma);
    if (typeof lambdaK !== 'number' || !(lambdaK >= 0) || !Number.isFinite(lambdaK)) throw rangeError(fn, 'lambdaK', 'a finite number >= 0', lambdaK);
    if (!Number.isInteger(period) || period < 1) throw rangeError(fn, 'period', 'an integer >= 1', period);
    if (typeof initialK !== 'number' || !(initialK >= 0 && initialK <= 1)) throw rangeError(fn, 'initialK', 'a number in [0, 1]', initialK);
    this.balance = new BeganBalance(gamma, lambdaK, initialK);
    this.period = period;
  }
  get k(): number {
    return this.balance.k;
  }
  set k(value: number) {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw rangeError('HeatmapBalance.k', 'value', 'a number in [0, 1]', value);
    this.balance.k = value;
  }
  get gamma(): number {
    return this.balance.gamma;
  }
  get lambdaK(): number {
    return this.balance.lambdaK;
  }
  /** Eq. 7 with the current k_t. */
  discriminatorLoss(realEnergy: Tensor, fakeEnergy: Tensor): Tensor {
    checkTensor('HeatmapBalance.discriminatorLoss', 'realEnergy', realEnergy);
    checkTensor('HeatmapBalance.discriminatorLoss', 'fakeEnergy', fakeEnergy);
    return this.balance.discriminatorLoss(realEnergy, fakeEnergy);
  }
  /**
   * Records one iteration's energies; every `period`-th call applies eq. 8 to their averages.
   * Returns whether k_t was updated.
   */
  observe(realEnergy: number, fakeEnergy: number): boolean {
    if (!Number.isFinite(realEnergy)) throw rangeError('HeatmapBalance.observe', 'realEnergy', 'a finite number', realEnergy);
    if (!Number.isFinite(fakeEnergy)) throw rangeError('HeatmapBalance.observe', 'fakeEnergy', 'a finite number', fakeEnergy);
    this.realSum += realEnergy;
    this.fakeSum += fakeEnergy;
    if (++this.pending < this.period) return false;
    this.balance.update(this.realSum / this.pending, this.fakeSum / this.pending);
    this.realSum = this.fakeSum = 0;
    this.pending = 0;
    return true;
  }
}

/**
 * D3's least-squares loss (eq. 9): E[(D3(gen LR, GT) - 1)^2] + E[D3(gen LR, predicted)^2]
 * + E[D3(real LR, predicted)^2]; the last term is left out when no real LR batch is given.
 */
export function confidenceDiscriminatorLoss(groundTruthScores: Tensor, generatedScores: Tensor, realLrScores?: Tensor): Tensor {
  const fn = 'confidenceDiscriminatorLoss';
  checkTensor(fn, 'groundTruthScores', groundTruthScores);
  checkTensor(fn, 'generatedScores', generatedScores);
  if (realLrScores !== undefined) checkTensor(fn, 'realLrScores', realLrScores);
  return ops.scope(() => {
    let loss = ops.add(ops.mean(ops.square(ops.affine(groundTruthScores, 1, -1))), ops.mean(ops.square(generatedScores)));
    if (realLrScores) loss = ops.add(loss, ops.mean(ops.square(realLrScores)));
    return loss;
  });
}

/** Eq. 12: E[(D3(x) - 1)^2] over every predicted-heatmap input (generated and real LR). */
export function confidenceGeneratorLoss(...predictedScores: Tensor[]): Tensor {
  if (predictedScores.length === 0) throw rangeError('confidenceGeneratorLoss', 'predictedScores', 'at least one score tensor', 0);
  predictedScores.forEach((s, i) => checkTensor('confidenceGeneratorLoss', `predictedScores[${i}]`, s));
  return ops.scope(() => ops.mean(ops.square(ops.affine(ops.concat(predictedScores.map((s) => ops.reshape(s, [s.size])), 0), 1, -1))));
}

/** The weights of eq. 13 (UNCERTAIN; the paper only asks a*l_MSE > b*l_kp > c*l_conf). */
export interface HeatmapGeneratorLossWeights {
  a: number;
  b: number;
  c: number;
}

/** Eq. 13: a * l_MSE + b * l_kp + c * l_conf; a term may be absent (its setting does not use it). */
export function heatmapGeneratorLoss(terms: { mse: Tensor; kp?: Tensor; conf?: Tensor }, weights: HeatmapGeneratorLossWeights): Tensor {
  const fn = 'heatmapGeneratorLoss';
  if (terms === null || typeof terms !== 'object') throw typeError(fn, 'terms', 'an object', terms);
  checkKeys(fn, terms, HEATMAP_LOSS_TERM_KEYS, 'terms');
  checkTensor(fn, 'terms.mse', terms.mse);
  const a = checkWeight(fn, 'weights.a', weights?.a);
  const b = checkWeight(fn, 'weights.b', weights?.b);
  const c = checkWeight(fn, 'weights.c', weights?.c);
  checkKeys(fn, weights, HEATMAP_LOSS_WEIGHT_KEYS, 'weights');
  return ops.scope(() => {
    let loss = ops.affine(terms.mse, a);
    if (terms.kp) loss = ops.add(loss, ops.affine(checkTensor(fn, 'terms.kp', terms.kp), b));
    if (terms.conf) loss = ops.add(loss, ops.affine(checkTensor(fn, 'terms.conf', terms.conf), c));
    return loss;
  });
}
