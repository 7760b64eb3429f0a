// Reductions over axes: sum, mean, max, min, argmax; and sumToShape for broadcasting gradients.
import { attr, defineOp, normalizeAxes, ref } from './decl.js';
import { checkKeys, empty, kernels, record, registerGradient, shapeSize, Tensor, type Shape } from './tensor-ref.js';

const F32 = ['float32'] as const;
const REDUCE_CODES = { sum: 0, mean: 1, max: 2, min: 3 } as const;
type ReduceName = keyof typeof REDUCE_CODES;

const reduceAttrs = { axis: attr.axes({ optional: true }), keepDims: attr.bool({ default: false }) };
const decls = {
  sum: defineOp('sum', { x: { dtypes: F32 } }, reduceAttrs),
  mean: defineOp('mean', { x: { dtypes: F32 } }, reduceAttrs),
  max: defineOp('max', { x: { dtypes: F32 } }, reduceAttrs),
  min: defineOp('min', { x: { dtypes: F32 } }, reduceAttrs),
  argmax: defineOp('argmax', { x: { dtypes: F32 } }, { axis: attr.int(), keepDims: attr.bool({ default: false }) }),
};

export interface ReduceOptions {
  /** Axis or axes to reduce; all axes when left out. Negative axes count from the end. */
  axis?: number | number[];
  /** Keep reduced axes as size 1. */
  keepDims?: boolean;
}

function split(shape: Shape, axis: number): [number, number, number] {
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

/** Reduces one axis, keeping it as size 1. Records the op for autograd. */
function reduceOne(name: ReduceName, x: Tensor, axis: number): Tensor {
  const [outer, n, inner] = split(x.shape, axis);
  const shape = x.shape.map((d, k) => (k === axis ? 1 : d));
  const out = empty(shape, 'float32', x._deviceIndex);
  if (n === 0) {
    if (name === 'max' || name === 'min') throw new RangeError(`${name}: cannot reduce axis ${axis} of size 0`);
    if (name === 'mean' && out.size > 0) out._storage(name).write(new Float32Array(out.size).fill(NaN), out._offset);
    record(name, [x], out, {}, { axis });
    return out;
  }
  if (name === 'max' || name === 'min') {
    const index = empty(shape, 'int32', x._deviceIndex);
    kernels.reduce_axis(REDUCE_CODES[name], ...ref(out), ...ref(index), ...ref(x), outer, n, inner);
    record(name, [x], out, { index }, { axis });
    index.dispose();
  } else {
    kernels.reduce_axis(REDUCE_CODES[name], ...ref(out), null, 0, ...ref(x), outer, n, inner);
    record(name, [x], out, {}, { axis });
  }
  return out;
}

function reduce(name: ReduceName, x: Tensor, options?: ReduceOptions): Tensor {
  const { t, a } = decls[name].parse({ x }, options);
  const rank = t.x.rank;
  const axes = a.axis === undefined ? [...Array(rank).keys()] : normalizeAxes(name, 'axis', a.axis, rank);
  const finalShape = a.keepDims ? t.x.shape.map((d, k) => (axes.includes(k) ? 1 : d)) : t.x.shape.filter((_, k) => !axes.includes(k));
  let current = t.x;
  // Largest axis first keeps the [outer, n, inner] view valid; mean of means is the mean.
  for (const axis of [...axes].sort((p, q) => q - p)) {
    const next = reduceOne(name, current, axis);
    if (current !== t.x) current.dispose();
    current = next;
  }
  if (current === t.x) return reshape(t.x, finalShape);
  const out = reshape(current, finalShape);
  current.dispose();
  return out;
}

/** Sum over axes (all by default). */
export const sum = (x: Tensor, options?: ReduceOptions): Tensor => reduce('sum', x, options);
/** Mean over axes (all by default). */
export const mean = (x: Tensor, options?: ReduceOptions): Tensor => reduce('mean', x, options);
/** Maximum over axes; the gradient goes to the first maximal element. */
export const max = (x: Tensor, options?: ReduceOptions): Tensor => reduce('max', x, options);
/** Minimum over axes; the gradient goes to the first minimal element. */
export const min = (x: Tensor, options?: ReduceOptions): Tensor => reduce('min', x, options);

// 'axis' is an argument of argmax, not an option: spread over it, it would replace the argument.
const ARGMAX_OPTION_KEYS: Record<'keepDims', true> = { keepDims: true };

/** Index (int32) of the first maximum along `axis`. */
export function argmax(x: Tensor, axis: number, options: { keepDims?: boolean } = {}): Tensor {
  checkKeys('argmax', options, ARGMAX_OPTION_KEYS);
  const { t, a } = decls.argmax.parse({ x }, { axis, ...options });
  const ax = normalizeAxes('argmax', 'axis', [a.axis], t.x.rank)[0];
  const [outer, n, inner] = split(t.x.shape, ax);
  if (n === 0) throw new RangeError(`argmax: cannot reduce 'axis' ${ax} of size 0`);
  const shape = a.keepDims ? t.x.shape.map((d, k) => (k === ax ? 1 : d)) : t.x.shape.filter((_, k) => k !== ax);
  const out = empty(shape, 'int32', t.x._deviceIndex);
  const values = empty(shape, 'float32', t.x._deviceIndex);
  kernels.reduce_axis(REDUCE_CODES.max, ...ref(values), ...ref(out), ...ref(t.x), outer, n, inner);
  values.dispose();
  return out;
}

registerGradient('sum', (ctx, g) => [expandAlong(g, ctx.inputShapes[0], ctx.attrs.axis as number, 1)]);
registerGradient('mean', (ctx, g) => {
  const axis = ctx.attrs.axis as number;
  return [expandAlong(g, ctx.inputShapes[0], axis, 1 / ctx.inputShapes[0][axis])];
});
const scatterGrad = (ctx: Parameters<Parameters<typeof registerGradient>[1]>[0], g: Tensor) => {
  const axis = ctx.attrs.axis as number;
  const [outer, n, inner] = split(ctx.inputShapes[0], axis);
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  kernels.scatter_axis(...ref(gx), ...ref(g), ...ref(ctx.saved.index), outer, n, inner);
  return [gx];
};
registerGradient('max', scatterGrad);
registerGradient('min', scatterGrad);

/** g (size 1 along `axis`) repeated to `shape`, times `scale`. */
function expandAlong(g: Tensor, shape: Shape, axis: number, scale: number): Tensor {
  const out = empty(shape, 'float32', g._deviceIndex);
  if (out.size === 0) return out;
  const gShape = shape.map((d, k) => (k === axis ? 1 : d));
  const scaleT = empty([], 'float32', g._deviceIndex);
  scaleT._storage('sum').write(new Float32Array([scale]), scaleT._offset);
  // out = g * scale, broadcast along the axis (code 2: multiply)
  kernels.binary(2, ...ref(out), ...ref(g), ...ref(scaleT), [...shape], gShape, shape.map(() => 1));
  scaleT.dispose();
  return out;
}

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let k = 0; k < g.rank; k++) if (k < lead || (shape[k - lead] === 1 && g.shape[k] !== 1)) axes.push(k);
  if (axes.length === 0) return reshape(g, shape);
  const s = sum(g, { axis: axes, keepDims: true });
  const out = reshape(s, shape);
  s.dispose();
  return out;
}

// reshape lives in shape.ts; imported late to avoid a cycle at load time.
import { reshape } from './shape.js';
