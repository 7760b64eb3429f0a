// Matrix products: matmul with broadcast batch dimensions (torch.matmul) and linear.
import { defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shapeSize, Tensor, type Shape } from './tensor-ref.js';
import { sum, sumToShape } from './reduce.js';
import { reshape } from './shape.js';
import { broadcastShapes } from './elementwise.js';

const F32 = ['float32'] as const;
const matmulDecl = defineOp('matmul', { a: { dtypes: F32, rank: [1, 8] }, b: { dtypes: F32, rank: [1, 8] } });
const bmmDecl = defineOp('bmm', { a: { dtypes: F32, rank: 3 }, b: { dtypes: F32, rank: 3 } });
const linearDecl = defineOp('linear', { input: { dtypes: F32, rank: [1, 8] }, weight: { dtypes: F32, rank: 2 }, bias: { dtypes: F32, rank: 1, optional: true } });

/** Element offsets of each batch matrix of a [...batch, rows, cols] operand broadcast to `batch`. */
function batchOffsets(shape: Shape, batch: readonly number[], matrixSize: number): number[] {
  const own = shape.slice(0, -2);
  const lead = batch.length - own.length;
  const strides = new Array<number>(own.length);
  let s = matrixSize;
  for (let k = own.length - 1; k >= 0; k--) {
    strides[k] = own[k] === 1 ? 0 : s;
    s *= own[k];
  }
  const total = shapeSize(batch);
  const out = new Array<number>(total);
  for (let i = 0; i < total; i++) {
    let r = i;
    let off = 0;
    for (let k = batch.length - 1; k >= 0; k--) {
      const idx = r % batch[k];
      r = Math.floor(r / batch[k]);
      if (k >= lead) off += idx * strides[k - lead];
    }
    out[i] = off;
  }
  return out;
}

/** C = op(A) @ op(B) over broadcast batches, A as [..., M, K] (or [..., K, M] when transA). */
function batchedProduct(op: string, a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [k2, n] = transB ? [bc, br] : [br, bc];
  if (k !== k2) throw rangeError(op, 'b', `${k} rows to match 'a' ${formatShape(a.shape)}`, `shape ${formatShape(b.shape)}`, true);
  const batch = broadcastShapes(op, a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = empty([...batch, m, n], 'float32', a._deviceIndex);
  if (out.size > 0)
    kernels.matmul(...ref(out), ...ref(a), ...ref(b), null, 0, [m, n, k], transA, transB, batchOffsets(a.shape, batch, m * k), batchOffsets(b.shape, batch, k * n));
  return out;
}

/**
 * Matrix product with torch.matmul semantics: 1-D operands are vectors, leading dimensions
 * are batch dimensions and broadcast.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const op = 'matmul';
  const { t } = matmulDecl.parse({ a, b });
  // Promote vectors to matrices, multiply, then drop the added axes.
  const a2 = t.a.rank === 1 ? reshape(t.a, [1, t.a.shape[0]]) : t.a;
  const b2 = t.b.rank === 1 ? reshape(t.b, [t.b.shape[0], 1]) : t.b;
  if (a2.shape[a2.rank - 1] !== b2.shape[b2.rank - 2])
    throw rangeError(op, 'b', `${a2.shape[a2.rank - 1]} rows to match 'a' ${formatShape(t.a.shape)}`, `shape ${formatShape(t.b.shape)}`, true);
  const full = batchedProduct(op, a2, b2, false, false);
  record('matmul', [a2, b2], full, { a: a2, b: b2 });
  let out = full;
  if (t.a.rank === 1 || t.b.rank === 1) {
    const shape = full.shape.filter((_, k) => !((t.a.rank === 1 && k === full.rank - 2) || (t.b.rank === 1 && k === full.rank - 1)));
    out = reshape(full, shape);
    full.dispose();
  }
  if (a2 !== t.a) a2.dispose();
  if (b2 !== t.b) b2.dispose();
  return out;
}

registerGradient('matmul', (ctx, g) => {
  const { a, b } = ctx.saved;
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    const full = batchedProduct('matmul', g, b, false, true); // g @ b^T
    ga = sumToShape(full, a.shape);
    full.dispose();
  }
  if (ctx.needsGrad[1]) {
    const full = batchedProduct('matmul', a, g, true, false); // a^T @ g
    gb = sumToShape(full, b.shape);
    full.dispose();
  }
  return [ga, gb];
});

/** Batched matrix product of a [B, M, K] and b [B, K, N] (torch.bmm): no broadcasting. */
export function bmm(a: Tensor, b: Tensor): Tensor {
  const op = 'bmm';
  const { t } = bmmDecl.parse({ a, b });
  if (t.b.shape[0] !== t.a.shape[0]) throw rangeError(op, 'b', `batch ${t.a.shape[0]} to match 'a' ${formatShape(t.a.shape)}`, `shape ${formatShape(t.b.shape)}`, true);
  if (t.b.shape[1] !== t.a.shape[2]) throw rangeError(op, 'b', `${t.a.shape[2]} rows to match 'a' ${formatShape(t.a.shape)}`, `shape ${formatShape(t.b.shape)}`, true);
  return matmul(t.a, t.b);
}

/** y = x @ weight^T + bias for x [..., in], weight [out, in], bias [out] (torch.nn.functional.linear). */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const op = 'linear';
  const { t } = linearDecl.parse({ input, weight, bias });
  const [outF, inF] = t.weight.shape;
  const k = t.input.shape[t.input.rank - 1];
  if (k !== inF) throw rangeError(op, 'weight', `[out, ${k}] to match the input's last dimension`, `shape ${formatShape(t.weight.shape)}`, true);
  if (t.bias && t.bias.shape[0] !== outF) throw rangeError(op, 'bias', `shape [${outF}]`, `shape ${formatShape(t.bias.shape)}`, true);
  const rows = shapeSize(t.input.shape.slice(0, -1));
  const out = empty([...t.input.shape.slice(0, -1), outF], 'float32', t.input._deviceIndex);
  if (out.size > 0) kernels.matmul(...ref(out), ...ref(t.input), ...ref(t.weight), ...(t.bias ? ref(t.bias) : [null, 0]), [rows, outF, k], false, true, [0], [0]);
  record('linear', [t.input, t.weight, t.bias], out, { input: t.input, weight: t.weight }, { rows });
  return out;
}

registerGradient('linear', (ctx, g) => {
  const { input, weight } = ctx.saved;
  const [outF, inF] = weight.shape;
  const rows = ctx.attrs.rows as number;
  let gx: Tensor | null = null;
  let gw: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    gx = empty(input.shape, 'float32', g._deviceIndex);
    kernels.matmul(...ref(gx), ...ref(g), ...ref(weight), null, 0, [rows, inF, outF], false, false, [0], [0]);
  }
  if (ctx.needsGrad[1]) {
    gw = empty(weight.shape, 'float32', g._deviceIndex);
    kernels.matmul(...ref(gw), ...ref(g), ...ref(input), null, 0, [outF, inF, rows], true, false, [0], [0]);
  }
  let gb: Tensor | null = null;
  if (ctx.needsGrad[2]) {
    const flat = reshape(g, [rows, outF]);
    gb = sum(flat, { axis: 0 });
    flat.dispose();
  }
  return [gx, gw, gb];
});
