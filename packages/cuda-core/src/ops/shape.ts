// Shape ops: reshape/flatten (views), permute/transpose (copies), cast.
import { attr, defineOp, normalizeAxes, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, type Shape } from './tensor-ref.js';
import type { DType } from '../dtype.js';

const ANY = ['float32', 'int32', 'uint8'] as const;
const reshapeDecl = defineOp('reshape', { x: { dtypes: ANY } }, { shape: attr.intList({ min: -1 }) });
const permuteDecl = defineOp('permute', { x: { dtypes: ANY } }, { perm: attr.intList() });
const castDecl = defineOp('cast', { x: { dtypes: ANY } }, { dtype: attr.oneOf(ANY) });

/** A view with a new shape of the same size; one entry may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const { t, a } = reshapeDecl.parse({ x }, { shape });
  const dims = [...a.shape!];
  const unknown = dims.indexOf(-1);
  if (unknown !== dims.lastIndexOf(-1)) throw rangeError('reshape', 'shape', 'at most one -1', formatShape(dims), true);
  if (unknown >= 0) {
    const known = shapeSize(dims.filter((d) => d !== -1));
    if (known === 0 || t.x.size % known !== 0)
      throw rangeError('reshape', 'shape', `a shape of ${t.x.size} elements`, formatShape(dims), true);
    dims[unknown] = t.x.size / known;
  }
  if (shapeSize(dims) !== t.x.size)
    throw rangeError('reshape', 'shape', `a shape of ${t.x.size} elements (input ${formatShape(t.x.shape)})`, formatShape(dims), true);
  const out = t.x._view(t.x._offset, dims);
  record('reshape', [t.x], out);
  return out;
}
registerGradient('reshape', (ctx, g) => [g._view(g._offset, ctx.inputShapes[0])]);

/** Collapses axes startAxis..endAxis (inclusive) into one; by default all but the first. */
export function flatten(x: Tensor, startAxis = 1, endAxis = -1): Tensor {
  if (!(x instanceof Tensor)) return reshape(x, []);
  const rank = Math.max(x.rank, 1);
  const [s, e] = normalizeAxes('flatten', 'startAxis', [startAxis], rank).concat(normalizeAxes('flatten', 'endAxis', [endAxis], rank));
  if (s > e) throw rangeError('flatten', 'endAxis', `>= startAxis (${s})`, e);
  const shape = [...x.shape.slice(0, s), shapeSize(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** Reorders axes: out.shape[k] = x.shape[perm[k]]. Copies. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const { t, a } = permuteDecl.parse({ x }, { perm });
  if (a.perm!.length !== t.x.rank) throw rangeError('permute', 'perm', `${t.x.rank} axes`, `[${a.perm!.join(',')}]`, true);
  const p = normalizeAxes('permute', 'perm', a.perm!, t.x.rank);
  const out = empty(p.map((k) => t.x.shape[k]), t.x.dtype, t.x._deviceIndex);
  kernels.permute(...ref(out), ...ref(t.x), [...t.x.shape], p);
  record('permute', [t.x], out, {}, { perm: p });
  return out;
}
registerGradient('permute', (ctx, g) => {
  const perm = ctx.attrs.perm as number[];
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, k) => (inverse[p] = k));
  return [permute(g, inverse)];
});

/** Swaps two axes (the last two by default). Copies. */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  if (!(x instanceof Tensor)) return permute(x, []);
  const [a0, a1] = normalizeAxes('transpose', 'axis0', [axis0], x.rank).concat(normalizeAxes('transpose', 'axis1', [axis1], x.rank));
  const perm = [...Array(x.rank).keys()];
  perm[a0] = a1;
  perm[a1] = a0;
  return permute(x, perm);
}

/** Converts to another dtype (float -> int truncates; float -> uint8 rounds and saturates). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const { t, a } = castDecl.parse({ x }, { dtype });
  const out = empty(t.x.shape, a.dtype, t.x._deviceIndex);
  kernels.cast(...ref(out), ...ref(t.x), t.x.size);
  if (a.dtype === 'float32' && t.x.dtype === 'float32') record('cast', [t.x], out);
  return out;
}
registerGradient('cast', (_ctx, g) => [g._view(g._offset, g.shape)]);

/** A copy with its own memory. */
export function clone(x: Tensor): Tensor {
  return cast(x, x instanceof Tensor ? x.dtype : 'float32');
}

export type { Shape };
