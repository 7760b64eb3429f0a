// Joining and cutting along an axis: concat, stack, split, slice, narrow. The kernels see a
// tensor as [outer, n, inner] around the axis and work for every dtype; gradients (float32)
// copy each piece's gradient back into its region of a zeroed input gradient.
import { attr, checkSameDevice, checkTensor, defineOp, normalizeAxis, ref, type AttrSpec } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, typeError, uninitialized } from './tensor-ref.js';

const ANY = ['float32', 'int32', 'uint8'] as const;

function optionalInt(): AttrSpec<number | undefined> {
  const spec = attr.int();
  return { expected: spec.expected, parse: (op, name, v) => (v === undefined ? undefined : spec.parse(op, name, v)) };
}

const concatDecl = defineOp('concat', {}, { axis: attr.int({ default: 0 }) });
const stackDecl = defineOp('stack', {}, { axis: attr.int({ default: 0 }) });
const sliceDecl = defineOp('slice', { x: { dtypes: ANY, rank: [1, 8] } }, {
  axis: attr.int({ default: 0 }),
  start: optionalInt(),
  end: optionalInt(),
  step: attr.int({ min: 1, default: 1 }),
});
const narrowDecl = defineOp('narrow', { x: { dtypes: ANY, rank: [1, 8] } }, { axis: attr.int(), start: attr.int(), length: attr.int({ min: 0 }) });
const splitDecl = defineOp('split', { x: { dtypes: ANY, rank: [1, 8] } }, { axis: attr.int({ default: 0 }) });

/** [outer, n, inner] around `axis`. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

/** Checks a non-empty array of live tensors of one dtype and rank; returns it typed. */
function checkTensorList(op: string, tensors: unknown, rank: readonly [number, number]): Tensor[] {
  if (!Array.isArray(tensors)) throw typeError(op, 'tensors', 'an array of tensors', tensors);
  if (tensors.length === 0) throw rangeError(op, 'tensors', 'at least one tensor', 'an empty array', true);
  const list = tensors.map((t, i) => checkTensor(op, `tensors[${i}]`, t, { dtypes: ANY, rank })!);
  checkSameDevice(op, Object.fromEntries(list.map((t, i) => [`tensors[${i}]`, t])));
  const first = list[0];
  list.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw typeError(op, `tensors[${i}]`, `of dtype ${first.dtype} (as tensors[0])`, t.dtype, true);
    if (t.rank !== first.rank) throw rangeError(op, `tensors[${i}]`, `rank ${first.rank} (as tensors[0])`, `rank ${t.rank} ${formatShape(t.shape)}`, true);
  });
  return list;
}

/** Joins tensors along an existing axis (torch.cat); all other sizes and the dtype must match. */
export function concat(tensors: Tensor[], axis = 0): Tensor {
  const op = 'concat';
  const { a } = concatDecl.parse({}, { axis });
  const list = checkTensorList(op, tensors, [1, 8]);
  const first = list[0];
  const ax = normalizeAxis(op, 'axis', a.axis, first.rank);
  list.forEach((t, i) => {
    if (t.shape.some((d, k) => k !== ax && d !== first.shape[k]))
      throw rangeError(op, `tensors[${i}]`, `shape [${first.shape.map((d, k) => (k === ax ? '*' : d)).join(',')}] (* any)`, formatShape(t.shape), true);
  });
  const sizes = list.map((t) => t.shape[ax]);
  const total = sizes.reduce((p, q) => p + q, 0);
  const shape = first.shape.map((d, k) => (k === ax ? total : d));
  const [outer, , inner] = around(shape, ax);
  const out = uninitialized(shape, first.dtype, first._deviceIndex); // every row is copied in
  if (out.size > 0) kernels.concat_axis(...ref(out), [outer, total, inner], sizes, ...list.flatMap((t) => ref(t)));
  record(op, list, out, {}, { outer, total, inner, sizes });
  return out;
}
registerGradient('concat', (ctx, g) => {
  const { outer, total, inner, sizes } = ctx.attrs as { outer: number; total: number; inner: number; sizes: number[] };
  let start = 0;
  return sizes.map((m, i) => {
    const gi = ctx.needsGrad[i] ? empty(ctx.inputShapes[i], 'float32', g._deviceIndex) : null;
    if (gi && gi.size > 0) kernels.slice_axis(...ref(gi), ...ref(g), [outer, total, m, inner, start, 1]);
    start += m;
    return gi;
  });
});

/** Joins tensors of one shape along a new axis (torch.stack); `axis` may be up to their rank. */
export function stack(tensors: Tensor[], axis = 0): Tensor {
  const op = 'stack';
  const { a } = stackDecl.parse({}, { axis });
  const list = checkTensorList(op, tensors, [0, 7]);
  const first = list[0];
  const ax = normalizeAxis(op, 'axis', a.axis, first.rank + 1);
  list.forEach((t, i) => {
    if (t.shape.some((d, k) => d !== first.shape[k])) throw rangeError(op, `tensors[${i}]`, `shape ${formatShape(first.shape)} (as tensors[0])`, formatShape(t.shape), true);
  });
  const k = list.length;
  const shape = [...first.shape.slice(0, ax), k, ...first.shape.slice(ax)];
  // Stacking is a concat of [outer, 1, inner] blocks.
  const [outer, , inner] = around(shape, ax);
  const out = uninitialized(shape, first.dtype, first._deviceIndex); // every row is copied in
  if (out.size > 0) kernels.concat_axis(...ref(out), [outer, k, inner], new Array(k).fill(1), ...list.flatMap((t) => ref(t)));
  record(op, list, out, {}, { outer, k, inner });
  return out;
}
registerGradient('stack', (ctx, g) => {
  const { outer, k, inner } = ctx.attrs as { outer: number; k: number; inner: number };
  return ctx.needsGrad.map((needed, i) => {
    if (!needed) return null;
    const gi = empty(ctx.inputShapes[i], 'float32', g._deviceIndex);
    if (gi.size > 0) kernels.slice_axis(...ref(gi), ...ref(g), [outer, k, 1, inner, i, 1]);
    return gi;
  });
});

/** Rows start, start+step, ... (count of them) of `axis`, copied. */
function sliceCopy(x: Tensor, axis: number, start: number, count: number, step: number): Tensor {
  const [outer, n, inner] = around(x.shape, axis);
  const out = empty(x.shape.map((d, k) => (k === axis ? count : d)), x.dtype, x._deviceIndex);
  const dims = [outer, n, count, inner, start, step];
  if (out.size > 0) kernels.slice_axis(...ref(out), ...ref(x), dims);
  record('slice', [x], out, {}, { dims });
  return out;
}
registerGradient('slice', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.slice_axis_backward(...ref(gx), ...ref(g), ctx.attrs.dims as number[]);
  return [gx];
});

/**
 * Rows [start, start+length) of `axis`: a view sharing x's memory when the rows are contiguous
 * in memory (every axis before `axis` has size 1, or the whole axis is taken), else a copy.
 */
function narrowImpl(x: Tensor, axis: number, start: number, length: number): Tensor {
  const [, n, inner] = around(x.shape, axis);
  const contiguous = x.shape.slice(0, axis).every((d) => d === 1) || (start === 0 && length === n);
  if (!contiguous) return sliceCopy(x, axis, start, length, 1);
  const out = x._view(x._offset + start * inner, x.shape.map((d, k) => (k === axis ? length : d)));
  record('slice', [x], out, {}, { dims: [shapeSize(x.shape.slice(0, axis)), n, length, inner, start, 1] });
  return out;
}

export interface SliceOptions {
  /** Default 0. Negative counts from the last axis. */
  axis?: number;
  /** First index; negative counts from the end. Default 0. */
  start?: number;
  /** One past the last index; negative counts from the end. Default the axis size. */
  end?: number;
  /** A positive stride. Default 1. */
  step?: number;
}

/** x[start:end:step] along `axis` with Python's rules (out-of-range indices clamp). Always a copy. */
export function slice(x: Tensor, options: SliceOptions = {}): Tensor {
  const op = 'slice';
  const { t, a } = sliceDecl.parse({ x }, options);
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const n = t.x.shape[ax];
  const resolve = (v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    return Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  };
  const start = resolve(a.start, 0);
  const end = resolve(a.end, n);
  const count = end > start ? Math.ceil((end - start) / a.step) : 0;
  return sliceCopy(t.x, ax, count > 0 ? start : 0, count, a.step);
}

/**
 * x[start:start+length] along `axis` (torch.narrow; a negative start counts from the end).
 * A zero-copy view when the axis is the outermost one larger than 1 (e.g. a range of the
 * batch), else a copy. Differentiable either way.
 */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const op = 'narrow';
  const { t, a } = narrowDecl.parse({ x }, { axis, start, length });
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const n = t.x.shape[ax];
  if (a.start < -n || a.start > n) throw rangeError(op, 'start', `an integer in [${-n}, ${n}] (axis ${ax} has size ${n})`, a.start);
  const s = a.start < 0 ? a.start + n : a.start;
  if (s + a.length > n) throw rangeError(op, 'length', `at most ${n - s} (axis ${ax} has size ${n}, start ${s})`, a.length);
  return narrowImpl(t.x, ax, s, a.length);
}

/**
 * Cuts x along `axis` into pieces: of the given sizes (adding up to the axis size), or into
 * `sections` pieces (torch.tensor_split): the first (size % sections) pieces get one row more,
 * and pieces may be empty when sections > size. Pieces are views where {@link narrow} gives views.
 */
export function split(x: Tensor, sizesOrSections: number | readonly number[], axis = 0): Tensor[] {
  const op = 'split';
  const arg = 'sizesOrSections';
  const { t, a } = splitDecl.parse({ x }, { axis });
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const n = t.x.shape[ax];
  let sizes: number[];
  if (typeof sizesOrSections === 'number') {
    if (!Number.isInteger(sizesOrSections)) throw typeError(op, arg, 'a section count (integer >= 1) or an array of sizes', sizesOrSections);
    if (sizesOrSections < 1) throw rangeError(op, arg, 'a section count >= 1', sizesOrSections);
    const k = sizesOrSections;
    sizes = Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
  } else if (Array.isArray(sizesOrSections)) {
    sizesOrSections.forEach((v) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(op, arg, 'an array of integer sizes', `[${sizesOrSections.join(',')}]`, true);
      if (v < 0) throw rangeError(op, arg, 'non-negative sizes', `[${sizesOrSections.join(',')}]`, true);
    });
    sizes = [...sizesOrSections];
    const total = sizes.reduce((p, q) => p + q, 0);
    if (sizes.length === 0 || total !== n) throw rangeError(op, arg, `sizes adding up to ${n} (axis ${ax} of ${formatShape(t.x.shape)})`, `[${sizes.join(',')}]`, true);
  } else throw typeError(op, arg, 'a section count or an array of sizes', sizesOrSections);
  let start = 0;
  return sizes.map((len) => {
    const piece = narrowImpl(t.x, ax, start, len);
    start += len;
    return piece;
  });
}
