// Softmax family, PReLU, LightCNN's max-feature-map, dropout and L2 normalisation.
// Axis ops view x as [outer, n, inner] around the axis; each op runs one kernel.
import { attr, defineOp, normalizeAxis, ref, type AttrSpec } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, uninitialized, type GradContext } from './tensor-ref.js';
import { reserveCounters } from '../random.js';
import { reshape } from './shape.js';

const F32 = ['float32'] as const;

/** An optional integer attribute: undefined stays undefined. */
function optionalInt(o: { min?: number; max?: number }): AttrSpec<number | undefined> {
  const spec = attr.int(o);
  return { expected: spec.expected, parse: (op, name, v) => (v === undefined ? undefined : spec.parse(op, name, v)) };
}

const softmaxDecl = defineOp('softmax', { x: { dtypes: F32, rank: [0, 8] } }, { axis: attr.int() });
const logSoftmaxDecl = defineOp('log_softmax', { x: { dtypes: F32, rank: [0, 8] } }, { axis: attr.int() });
const preluDecl = defineOp('prelu', { x: { dtypes: F32, rank: [0, 8] }, weight: { dtypes: F32, rank: [0, 1] } });
const mfmDecl = defineOp('mfm', { x: { dtypes: F32, rank: [1, 8] } }, { axis: attr.int({ default: 1 }) });
const dropoutDecl = defineOp('dropout', { x: { dtypes: F32 } }, {
  p: attr.number({ min: 0, max: 1, default: 0.5 }),
  training: attr.bool({ default: true }),
  seed: optionalInt({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});
const l2Decl = defineOp('l2_normalize', { x: { dtypes: F32, rank: [1, 8] } }, {
  axis: attr.int({ default: 1 }),
  eps: attr.number({ min: 0, exclusiveMin: true, default: 1e-12 }),
});

/** [outer, n, inner] around `axis` (a scalar is one lane of one element). */
function lanes(shape: readonly number[], axis: number): [number, number, number] {
  if (shape.length === 0) return [1, 1, 1];
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

function softmaxOp(decl: typeof softmaxDecl, x: Tensor, axis: number, log: boolean): Tensor {
  const { t, a } = decl.parse({ x }, { axis });
  const dims = lanes(t.x.shape, normalizeAxis(decl.name, 'axis', a.axis, t.x.rank));
  const y = uninitialized(t.x.shape, 'float32', t.x._deviceIndex); // every lane is normalised
  if (y.size > 0) kernels.softmax(...ref(y), ...ref(t.x), dims, log);
  record(decl.name, [t.x], y, { y }, { dims, log });
  return y;
}

/** exp(x) / sum(exp(x)) along `axis` (torch.softmax), shifted by the maximum for stability. */
export function softmax(x: Tensor, axis: number): Tensor {
  return softmaxOp(softmaxDecl, x, axis, false);
}

/** log(softmax(x)) along `axis`, computed as (x - max) - log(sum(exp(x - max))). */
export function logSoftmax(x: Tensor, axis: number): Tensor {
  return softmaxOp(logSoftmaxDecl, x, axis, true);
}

const softmaxGrad = (ctx: GradContext, g: Tensor) => {
  const gx = empty(g.shape, 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.softmax_backward(...ref(gx), ...ref(ctx.saved.y), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.log as boolean);
  return [gx];
};
registerGradient('softmax', softmaxGrad);
registerGradient('log_softmax', softmaxGrad);

/**
 * max(0, x) + weight * min(0, x) (F.prelu). `weight` holds one slope shared by every element
 * or one per channel (axis 1; an input of rank < 2 has one channel).
 */
export function prelu(x: Tensor, weight: Tensor): Tensor {
  const op = 'prelu';
  const { t } = preluDecl.parse({ x, weight });
  const channels = t.x.rank >= 2 ? t.x.shape[1] : 1;
  const shared = t.weight.size === 1;
  if (!shared && t.weight.size !== channels)
    throw rangeError(op, 'weight', `1 or ${channels} (channels of x ${formatShape(t.x.shape)}) slopes`, `shape ${formatShape(t.weight.shape)}`, true);
  const dims = t.x.rank >= 2 ? [t.x.shape[0], channels, shapeSize(t.x.shape.slice(2))] : [1, 1, t.x.size];
  const y = uninitialized(t.x.shape, 'float32', t.x._deviceIndex);
  if (y.size > 0) kernels.prelu(...ref(y), ...ref(t.x), ...ref(t.weight), dims, shared);
  record(op, [t.x, t.weight], y, { x: t.x, weight: t.weight }, { dims, shared });
  return y;
}
registerGradient('prelu', (ctx, g) => {
  const { x, weight } = ctx.saved;
  const gx = ctx.needsGrad[0] ? empty(x.shape, 'float32', x._deviceIndex) : null;
  const gw = ctx.needsGrad[1] ? empty(weight.shape, 'float32', x._deviceIndex) : null;
  const opt = (t: Tensor | null) => (t ? ref(t) : [null, 0]);
  // New tensors start zeroed, so an empty x leaves gw correctly at 0.
  if (x.size > 0 && (gx || gw)) kernels.prelu_backward(...opt(gx), ...opt(gw), ...ref(x), ...ref(weight), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.shared as boolean);
  return [gx, gw];
});

/**
 * LightCNN's max-feature-map: splits `axis` (default 1, channels) into two halves and keeps
 * their elementwise maximum, halving the axis. The gradient goes to the larger half (split
 * evenly on ties, as torch.max(a, b)).
 */
export function mfm(x: Tensor, options: { axis?: number } = {}): Tensor {
  const op = 'mfm';
  const { t, a } = mfmDecl.parse({ x }, options);
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const [outer, n, inner] = lanes(t.x.shape, ax);
  if (n % 2 !== 0 || n === 0) throw rangeError(op, 'x', `an even, non-zero size along axis ${ax}`, `shape ${formatShape(t.x.shape)}`, true);
  const dims = [outer, n / 2, inner];
  const y = empty(t.x.shape.map((d, k) => (k === ax ? n / 2 : d)), 'float32', t.x._deviceIndex);
  if (y.size > 0) kernels.mfm(...ref(y), ...ref(t.x), dims);
  record(op, [t.x], y, { x: t.x }, { dims });
  return y;
}
registerGradient('mfm', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.mfm_backward(...ref(gx), ...ref(ctx.saved.x), ...ref(g), ctx.attrs.dims as number[]);
  return [gx];
});

export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1). Default 0.5. */
  p?: number;
  /** When false the input passes through unchanged (as a view). Default true. */
  training?: boolean;
  /**
   * A fixed seed for this call (a stream of its own, separate from the global generator).
   * By default the mask is drawn from the global generator ({@link manualSeed}), advancing it.
   */
  seed?: number;
}

/** Stream ids of the native generator (native/cpu/random.h). */
const STREAM_GENERATOR = 0;
const STREAM_DROPOUT = 1;

/**
 * Inverted dropout (F.dropout): zeroes each element with probability p and scales the rest by
 * 1/(1-p). The mask comes from a counter-based generator, so it does not depend on the thread
 * count; the backward pass recomputes the same mask.
 */
export function dropout(x: Tensor, options: DropoutOptions = {}): Tensor {
  const op = 'dropout';
  const { t, a } = dropoutDecl.parse({ x }, options);
  if (a.p >= 1) throw rangeError(op, 'p', 'a number in [0, 1)', a.p);
  if (!a.training || a.p === 0) return reshape(t.x, t.x.shape);
  const n = t.x.size;
  const draw = a.seed === undefined ? { ...reserveCounters(op, n, 1), stream: STREAM_GENERATOR } : { seed: a.seed, offset: 0, stream: STREAM_DROPOUT };
  const attrs = { n, p: a.p, ...draw };
  const y = uninitialized(t.x.shape, 'float32', t.x._deviceIndex); // every element: kept and scaled, or 0
  if (n > 0) kernels.dropout(...ref(y), ...ref(t.x), n, a.p, draw.seed, draw.stream, draw.offset);
  record(op, [t.x], y, {}, attrs);
  return y;
}
registerGradient('dropout', (ctx, g) => {
  const { n, p, seed, stream, offset } = ctx.attrs as { n: number; p: number; seed: number; stream: number; offset: number };
  const gx = empty(g.shape, 'float32', g._deviceIndex);
  if (n > 0) kernels.dropout(...ref(gx), ...ref(g), n, p, seed, stream, offset);
  return [gx];
});

/** x / max(||x||_2, eps) along `axis` (F.normalize with p = 2; default axis 1, eps 1e-12). */
export function l2Normalize(x: Tensor, options: { axis?: number; eps?: number } = {}): Tensor {
  const op = 'l2_normalize';
  const { t, a } = l2Decl.parse({ x }, options);
  const dims = lanes(t.x.shape, normalizeAxis(op, 'axis', a.axis, t.x.rank));
  const y = uninitialized(t.x.shape, 'float32', t.x._deviceIndex); // every lane is scaled
  if (y.size > 0) kernels.l2_normalize(...ref(y), ...ref(t.x), dims, a.eps);
  record(op, [t.x], y, { x: t.x }, { dims, eps: a.eps });
  return y;
}
registerGradient('l2_normalize', (ctx, g) => {
  const gx = empty(g.shape, 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.l2_normalize_backward(...ref(gx), ...ref(ctx.saved.x), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.eps as number);
  return [gx];
});
