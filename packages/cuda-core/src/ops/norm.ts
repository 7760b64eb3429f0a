// Batch normalisation over the channel axis of NCHW (or NC) tensors.
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, uninitialized } from './tensor-ref.js';

const F32 = ['float32'] as const;
const bnDecl = defineOp(
  'batch_norm',
  {
    x: { dtypes: F32, rank: [2, 5] },
    runningMean: { dtypes: F32, rank: 1, optional: true },
    runningVar: { dtypes: F32, rank: 1, optional: true },
    weight: { dtypes: F32, rank: 1, optional: true },
    bias: { dtypes: F32, rank: 1, optional: true },
  },
  { training: attr.bool({ default: true }), momentum: attr.number({ min: 0, max: 1, default: 0.1 }), eps: attr.number({ min: 0, exclusiveMin: true, default: 1e-5 }) },
);

export interface BatchNormOptions {
  /** Batch statistics (and running-statistics update) when true, running statistics when false. Default true. */
  training?: boolean;
  /** Running-statistics update rate: running = (1 - momentum) * running + momentum * batch. Default 0.1. */
  momentum?: number;
  /** Added to the variance. Default 1e-5. */
  eps?: number;
}

/**
 * Batch normalisation (PyTorch's F.batch_norm) over axis 1 of x [N, C, ...]:
 * y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.
 *
 * Training mode normalises with the batch mean and biased variance and, for each of
 * `runningMean` / `runningVar` that is given, updates it IN PLACE in the same kernel:
 * running = (1 - momentum) * running + momentum * batch, with the unbiased variance
 * (N*H*W / (N*H*W - 1) times the biased one), as PyTorch. The update is not recorded by
 * autograd. Eval mode normalises with the running statistics (both required) and leaves them.
 *
 * Gradients flow to x, weight and bias: through the batch statistics in training mode, with
 * the statistics as constants in eval mode.
 */
export function batchNorm2d(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight?: Tensor | null, bias?: Tensor | null, options?: BatchNormOptions): Tensor {
  const op = 'batch_norm';
  const { t, a } = bnDecl.parse({ x, runningMean, runningVar, weight, bias }, options);
  const [n, c] = t.x.shape;
  if (c === 0) throw rangeError(op, 'x', 'at least one channel', `shape ${formatShape(t.x.shape)}`, true);
  const hw = shapeSize(t.x.shape.slice(2));
  for (const [name, v] of [['runningMean', t.runningMean], ['runningVar', t.runningVar], ['weight', t.weight], ['bias', t.bias]] as const)
    if (v && v.shape[0] !== c) throw rangeError(op, name, `shape [${c}] (the channels of x ${formatShape(t.x.shape)})`, `shape ${formatShape(v.shape)}`, true);
  if (!a.training && (!t.runningMean || !t.runningVar))
    throw rangeError(op, t.runningMean ? 'runningVar' : 'runningMean', 'a tensor in eval mode (the running statistics normalise)', 'null', true);
  if (a.training && n * hw <= 1) throw rangeError(op, 'x', 'more than one value per channel in training mode', `shape ${formatShape(t.x.shape)}`, true);
  const y = uninitialized(t.x.shape, 'float32', t.x._deviceIndex); // every element is normalised
  const mean = empty([c], 'float32', t.x._deviceIndex);
  const invstd = empty([c], 'float32', t.x._deviceIndex);
  const opt = (v: Tensor | undefined) => (v ? ref(v) : [null, 0]);
  kernels.batch_norm(...ref(y), ...ref(t.x), ...opt(t.weight), ...opt(t.bias), ...opt(t.runningMean), ...opt(t.runningVar), ...ref(mean), ...ref(invstd), [n, c, hw], a.training, a.momentum, a.eps);
  const saved: Record<string, Tensor> = { x: t.x, mean, invstd };
  if (t.weight) saved.weight = t.weight;
  record(op, [t.x, null, null, t.weight, t.bias], y, saved, { dims: [n, c, hw], training: a.training, eps: a.eps });
  mean.dispose();
  invstd.dispose();
  return y;
}

registerGradient('batch_norm', (ctx, g) => {
  const { x, mean, invstd, weight } = ctx.saved;
  const c = mean.shape[0];
  const gx = ctx.needsGrad[0] ? empty(x.shape, 'float32', g._deviceIndex) : null;
  const gw = ctx.needsGrad[3] ? empty([c], 'float32', g._deviceIndex) : null;
  const gb = ctx.needsGrad[4] ? empty([c], 'float32', g._deviceIndex) : null;
  const opt = (v: Tensor | null | undefined) => (v ? ref(v) : [null, 0]);
  kernels.batch_norm_backward(...opt(gx), ...opt(gw), ...opt(gb), ...ref(x), ...ref(g), ...opt(weight), ...ref(mean), ...ref(invstd), ctx.attrs.dims as number[], ctx.attrs.training as boolean, ctx.attrs.eps as number);
  return [gx, null, null, gw, gb];
});
