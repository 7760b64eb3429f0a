// Softmax family, PReLU, LightCNN's max-feature-map, dropout and L2 normalisation.
import { attr, defineOp, normalizeAxis, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor } from './tensor-ref.js';
import { fillRandom } from '../random.js';
import { clamp, div, mul, sqrt } from './elementwise.js';
import { sum } from './reduce.js';
import { clone } from './shape.js';

const F32 = ['float32'] as const;
const softmaxDecl = defineOp('softmax', { x: { dtypes: F32, rank: [1, 8] } }, { axis: attr.int() });
const logSoftmaxDecl = defineOp('log_softmax', { x: { dtypes: F32, rank: [1, 8] } }, { axis: attr.int() });
const preluDecl = defineOp('prelu', { x: { dtypes: F32, rank: [1, 8] }, weight: { dtypes: F32, rank: 1 } });
const mfmDecl = defineOp('mfm', { x: { dtypes: F32, rank: [2, 8] } }, { axis: attr.int({ default: 1 }) });
const dropoutDecl = defineOp('dropout', { x: { dtypes: F32 } }, {
  p: attr.number({ min: 0, max: 1, default: 0.5 }),
  training: attr.bool({ default: true }),
  seed: { expected: 'a non-negative integer', parse: (op: string, name: string, v: unknown) => (v === undefined ? undefined : attr.int({ min: 0 }).parse(op, name, v)) },
});
const l2Decl = defineOp('l2_normalize', { x: { dtypes: F32, rank: [1, 8] } }, { axis: attr.int({ default: 1 }), eps: attr.number({ min: 0, exclusiveMin: true, default: 1e-12 }) });

function around(shape: readonly number[], axis: number): [number, number, number] {
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

function softmaxImpl(name: 'softmax' | 'log_softmax', x: Tensor, axis: number, log: boolean): Tensor {
  const ax = normalizeAxis(name, 'axis', axis, x.rank);
  const dims = around(x.shape, ax);
  if (dims[1] === 0) throw rangeError(name, 'axis', 'an axis of non-zero size', `axis ${ax} of ${formatShape(x.shape)}`, true);
  const y = empty(x.shape);
  if (y.size > 0) kernels.softmax(...ref(y), ...ref(x), dims, log);
  record(name, [x], y, { y }, { dims, log });
  return y;
}

/** exp(x) / sum(exp(x)) along `axis`, computed stably. */
export function softmax(x: Tensor, axis: number): Tensor {
  const { t, a } = softmaxDecl.parse({ x }, { axis });
  return softmaxImpl('softmax', t.x, a.axis, false);
}

/** log(softmax(x)) along `axis`, computed stably (x - logsumexp). */
export function logSoftmax(x: Tensor, axis: number): Tensor {
  const { t, a } = logSoftmaxDecl.parse({ x }, { axis });
  return softmaxImpl('log_softmax', t.x, a.axis, true);
}

const softmaxGrad = (ctx: Parameters<Parameters<typeof registerGradient>[1]>[0], g: Tensor) => {
  const gx = empty(g.shape);
  if (gx.size > 0) kernels.softmax_backward(...ref(gx), ...ref(ctx.saved.y), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.log as boolean);
  return [gx];
};
registerGradient('softmax', softmaxGrad);
registerGradient('log_softmax', softmaxGrad);

/** max(0, x) + weight * min(0, x), with one slope (weight [1]) or one per channel (axis 1). */
export function prelu(x: Tensor, weight: Tensor): Tensor {
  const op = 'prelu';
  const { t } = preluDecl.parse({ x, weight });
  const c = t.x.rank >= 2 ? t.x.shape[1] : 1;
  const shared = t.weight.size === 1;
  if (!shared && t.weight.size !== c) throw rangeError(op, 'weight', `1 or ${c} (channel) slopes`, `shape ${formatShape(t.weight.shape)}`, true);
  const dims = t.x.rank >= 2 ? [t.x.shape[0], c, shapeSize(t.x.shape.slice(2))] : [1, 1, t.x.size];
  const y = empty(t.x.shape);
  if (y.size > 0) kernels.prelu(...ref(y), ...ref(t.x), ...ref(t.weight), dims, shared);
  record(op, [t.x, t.weight], y, { x: t.x, weight: t.weight }, { dims, shared });
  return y;
}
registerGradient('prelu', (ctx, g) => {
  const { x, weight } = ctx.saved;
  const gx = ctx.needsGrad[0] ? empty(x.shape) : null;
  const gw = ctx.needsGrad[1] ? empty(weight.shape) : null;
  const opt = (t: Tensor | null) => (t ? ref(t) : [null, 0]);
  if (x.size > 0 || gw) kernels.prelu_backward(...opt(gx), ...opt(gw), ...ref(x), ...ref(weight), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.shared as boolean);
  return [gx, gw];
});

/** LightCNN's max-feature-map: the elementwise max of the two halves of `axis` (default channels). */
export function mfm(x: Tensor, options: { axis?: number } = {}): Tensor {
  const op = 'mfm';
  const { t, a } = mfmDecl.parse({ x }, options);
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const [outer, n, inner] = around(t.x.shape, ax);
  if (n % 2 !== 0 || n === 0) throw rangeError(op, 'x', `an even, non-zero size along axis ${ax}`, `shape ${formatShape(t.x.shape)}`, true);
  const shape = t.x.shape.map((d, k) => (k === ax ? n / 2 : d));
  const y = empty(shape);
  const dims = [outer, n / 2, inner];
  if (y.size > 0) kernels.mfm(...ref(y), ...ref(t.x), dims);
  record(op, [t.x], y, { x: t.x }, { dims });
  return y;
}
registerGradient('mfm', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0]);
  if (gx.size > 0) kernels.mfm_backward(...ref(gx), ...ref(ctx.saved.x), ...ref(g), ctx.attrs.dims as number[]);
  return [gx];
});

export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1). Default 0.5. */
  p?: number;
  /** Identity when false. Default true. */
  training?: boolean;
  /** Fixed seed for this call; by default drawn from the global generator (manualSeed). */
  seed?: number;
}

/** Inverted dropout: zeroes elements with probability p and scales the rest by 1/(1-p). */
export function dropout(x: Tensor, options: DropoutOptions = {}): Tensor {
  const op = 'dropout';
  const { t, a } = dropoutDecl.parse({ x }, options);
  if (a.p >= 1) throw rangeError(op, 'p', 'in [0, 1)', a.p);
  if (!a.training || a.p === 0) return clone(t.x);
  const mask = empty(t.x.shape);
  if (mask.size > 0) fillRandom(mask, 3, 1 - a.p, 1 / (1 - a.p), a.seed);
  const y = mul(t.x, mask);
  mask.dispose();
  return y;
}

/** x / max(||x||_2, eps) along `axis` (default 1, the feature axis). */
export function l2Normalize(x: Tensor, options: { axis?: number; eps?: number } = {}): Tensor {
  const op = 'l2_normalize';
  const { t, a } = l2Decl.parse({ x }, options);
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const sq = mul(t.x, t.x);
  const ss = sum(sq, { axis: ax, keepDims: true });
  const norm = sqrt(ss);
  const safe = clamp(norm, a.eps);
  const y = div(t.x, safe);
  [sq, ss, norm, safe].forEach((v) => v.dispose());
  return y;
}
