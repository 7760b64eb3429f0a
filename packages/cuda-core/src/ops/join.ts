// Joining and cutting along an axis: concat, stack, split, slice, narrow.
import { attr, defineOp, normalizeAxis, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, typeError } from './tensor-ref.js';
import { checkTensor } from './decl.js';
import { reshape } from './shape.js';

const ANY = ['float32', 'int32', 'uint8'] as const;
const concatDecl = defineOp('concat', {}, { axis: attr.int({ default: 0 }) });
const sliceDecl = defineOp('slice', { x: { dtypes: ANY, rank: [1, 8] } }, {
  axis: attr.int({ default: 0 }),
  start: { expected: 'an integer', parse: (op: string, name: string, v: unknown) => (v === undefined ? undefined : attr.int().parse(op, name, v)) },
  end: { expected: 'an integer', parse: (op: string, name: string, v: unknown) => (v === undefined ? undefined : attr.int().parse(op, name, v)) },
  step: attr.int({ min: 1, default: 1 }),
});
const narrowDecl = defineOp('narrow', { x: { dtypes: ANY, rank: [1, 8] } }, { axis: attr.int(), start: attr.int(), length: attr.int({ min: 0 }) });
const splitDecl = defineOp('split', { x: { dtypes: ANY, rank: [1, 8] } }, { axis: attr.int({ default: 0 }) });

function around(shape: readonly number[], axis: number): [number, number, number] {
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

/** Joins tensors of equal shape (except along `axis`) and dtype along `axis`. */
export function concat(tensors: Tensor[], axis = 0): Tensor {
  const op = 'concat';
  const { a } = concatDecl.parse({}, { axis });
  if (!Array.isArray(tensors)) throw typeError(op, 'tensors', 'an array of tensors', tensors);
  if (tensors.length === 0) throw rangeError(op, 'tensors', 'at least one tensor', 'an empty array', true);
  tensors.forEach((t, i) => checkTensor(op, `tensors[${i}]`, t, { dtypes: ANY, rank: [1, 8] }));
  const first = tensors[0];
  const ax = normalizeAxis(op, 'axis', a.axis, first.rank);
  tensors.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw typeError(op, `tensors[${i}]`, `of dtype ${first.dtype}`, t.dtype, true);
    if (t.rank !== first.rank || t.shape.some((d, k) => k !== ax && d !== first.shape[k]))
      throw rangeError(op, `tensors[${i}]`, `shape ${formatShape(first.shape.map((d, k) => (k === ax ? -1 : d)))} (-1: any)`, formatShape(t.shape), true);
  });
  const sizes = tensors.map((t) => t.shape[ax]);
  const total = sizes.reduce((p, q) => p + q, 0);
  const shape = first.shape.map((d, k) => (k === ax ? total : d));
  const [outer, , inner] = around(shape, ax);
  const out = empty(shape, first.dtype);
  if (out.size > 0) kernels.concat_axis(...ref(out), [outer, total, inner], sizes, ...tensors.flatMap((t) => ref(t)));
  if (first.dtype === 'float32') record(op, tensors, out, {}, { axis: ax, sizes });
  return out;
}
registerGradient('concat', (ctx, g) => {
  const ax = ctx.attrs.axis as number;
  const sizes = ctx.attrs.sizes as number[];
  let start = 0;
  return sizes.map((n, i) => {
    const piece = ctx.needsGrad[i] ? sliceCopy(g, ax, start, n, 1) : null;
    start += n;
    return piece;
  });
});

/** Stacks tensors of one shape along a new axis. */
export function stack(tensors: Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) return concat(tensors, axis);
  tensors.forEach((t, i) => checkTensor('stack', `tensors[${i}]`, t));
  const rank = tensors[0].rank + 1;
  const ax = normalizeAxis('stack', 'axis', axis, rank);
  const expanded = tensors.map((t) => reshape(t, [...t.shape.slice(0, ax), 1, ...t.shape.slice(ax)]));
  const out = concat(expanded, ax);
  expanded.forEach((t) => t.dispose());
  return out;
}

function sliceCopy(x: Tensor, axis: number, start: number, count: number, step: number): Tensor {
  const [outer, n, inner] = around(x.shape, axis);
  const out = empty(x.shape.map((d, k) => (k === axis ? count : d)), x.dtype);
  const dims = [outer, n, count, inner, start, step];
  if (out.size > 0) kernels.slice_axis(...ref(out), ...ref(x), dims);
  if (x.dtype === 'float32') record('slice', [x], out, {}, { dims });
  return out;
}
registerGradient('slice', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0]);
  if (gx.size > 0) kernels.slice_axis_backward(...ref(gx), ...ref(g), ctx.attrs.dims as number[]);
  return [gx];
});

export interface SliceOptions {
  axis?: number;
  /** First index (negative counts from the end). Default 0. */
  start?: number;
  /** One past the last index (negative counts from the end). Default the axis size. */
  end?: number;
  /** Default 1. */
  step?: number;
}

/** x[start:end:step] along `axis`, Python-style (indices clamp to the axis). Copies. */
export function slice(x: Tensor, options: SliceOptions = {}): Tensor {
  const op = 'slice';
  const { t, a } = sliceDecl.parse({ x }, options);
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const n = t.x.shape[ax];
  const resolve = (v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const r = v < 0 ? v + n : v;
    return Math.min(Math.max(r, 0), n);
  };
  const start = resolve(a.start, 0);
  const end = resolve(a.end, n);
  const count = end > start ? Math.ceil((end - start) / a.step) : 0;
  return sliceCopy(t.x, ax, start, count, a.step);
}

/**
 * x[start:start+length] along `axis`. A zero-copy view when every axis before `axis` has
 * size 1 (e.g. a batch range); a copy otherwise.
 */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const op = 'narrow';
  const { t, a } = narrowDecl.parse({ x }, { axis, start, length });
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const n = t.x.shape[ax];
  const s = a.start < 0 ? a.start + n : a.start;
  if (s < 0 || s > n) throw rangeError(op, 'start', `in [${-n}, ${n}]`, a.start);
  if (s + a.length > n) throw rangeError(op, 'length', `at most ${n - s} (axis ${ax} has ${n}, start ${s})`, a.length);
  const outerIsOne = t.x.shape.slice(0, ax).every((d) => d === 1);
  if (!outerIsOne) return sliceCopy(t.x, ax, s, a.length, 1);
  const inner = shapeSize(t.x.shape.slice(ax + 1));
  const out = t.x._view(t.x._offset + s * inner, t.x.shape.map((d, k) => (k === ax ? a.length : d)));
  if (t.x.dtype === 'float32') record('slice', [t.x], out, {}, { dims: [1, n, a.length, inner, s, 1] });
  return out;
}

/**
 * Cuts x along `axis` into pieces of the given sizes, or into `sections` equal pieces
 * (the last smaller when the axis does not divide).
 */
export function split(x: Tensor, sizesOrSections: number | number[], axis = 0): Tensor[] {
  const op = 'split';
  const { t, a } = splitDecl.parse({ x }, { axis });
  const ax = normalizeAxis(op, 'axis', a.axis, t.x.rank);
  const n = t.x.shape[ax];
  let sizes: number[];
  if (typeof sizesOrSections === 'number') {
    if (!Number.isInteger(sizesOrSections) || sizesOrSections < 1) throw rangeError(op, 'sizesOrSections', 'a positive integer or an array of sizes', sizesOrSections);
    const chunk = Math.ceil(n / sizesOrSections);
    sizes = [];
    for (let left = n; left > 0; left -= chunk) sizes.push(Math.min(chunk, left));
    if (sizes.length === 0) sizes = [0];
  } else if (Array.isArray(sizesOrSections) && sizesOrSections.every((v) => Number.isInteger(v) && v >= 0)) {
    sizes = sizesOrSections;
    const total = sizes.reduce((p, q) => p + q, 0);
    if (total !== n) throw rangeError(op, 'sizesOrSections', `sizes adding up to ${n} (axis ${ax})`, `[${sizes.join(',')}]`, true);
  } else throw typeError(op, 'sizesOrSections', 'a positive integer or an array of non-negative integers', sizesOrSections);
  let start = 0;
  return sizes.map((len) => {
    const piece = narrow(t.x, ax, start, len);
    start += len;
    return piece;
  });
}
