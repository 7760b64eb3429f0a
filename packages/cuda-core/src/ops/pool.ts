// Pooling over the last two axes of NCHW tensors (PyTorch semantics).
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, shouldRecord, Tensor, uninitialized } from './tensor-ref.js';

const F32 = ['float32'] as const;

export interface MaxPool2dOptions {
  kernelSize: number | number[];
  /** Default: the kernel size. */
  stride?: number | number[];
  /** Implicit -infinity padding on both sides, at most half the kernel. Default 0. */
  padding?: number | number[];
  dilation?: number | number[];
  /** Round the output size up instead of down. Default false. */
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  kernelSize: number | number[];
  /** Default: the kernel size. */
  stride?: number | number[];
  /** Implicit zero padding on both sides, at most half the kernel. Default 0. */
  padding?: number | number[];
  /** Round the output size up instead of down. Default false. */
  ceilMode?: boolean;
  /** Count the zero padding in the divisor. Default true (as PyTorch). */
  countIncludePad?: boolean;
}

const poolAttrs = {
  kernelSize: attr.ints(2, { min: 1 }),
  stride: { expected: 'an integer or 2 integers >= 1', parse: (op: string, name: string, v: unknown) => (v === undefined ? undefined : attr.ints(2, { min: 1 }).parse(op, name, v)) },
  padding: attr.ints(2, { min: 0, default: 0 }),
  ceilMode: attr.bool({ default: false }),
};
const maxDecl = defineOp('max_pool2d', { x: { dtypes: F32, rank: 4 } }, { ...poolAttrs, dilation: attr.ints(2, { min: 1, default: 1 }) });
const avgDecl = defineOp('avg_pool2d', { x: { dtypes: F32, rank: 4 } }, { ...poolAttrs, countIncludePad: attr.bool({ default: true }) });
const adaptiveDecl = defineOp('adaptive_avg_pool2d', { x: { dtypes: F32, rank: 4 } }, { outputSize: attr.ints(2, { min: 1 }) });
const globalDecl = defineOp('global_avg_pool2d', { x: { dtypes: F32, rank: 4 } });

/** PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil mode the last window must start inside the input or its leading padding. */
function pooledSize(op: string, size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let out = Math.floor((size + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  if (out < 1) throw rangeError(op, 'kernelSize', `a window that fits the padded input (${size} + 2*${p})`, `extent ${d * (k - 1) + 1}`, true);
  return out;
}

/** [planes, h, w, kh, kw, sh, sw, pt, pl, dh, dw, outH, outW] for the kernels. */
function geometry(op: string, x: Tensor, k: number[], s: number[], p: number[], d: number[], ceil: boolean): number[] {
  const [n, c, h, w] = x.shape;
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'a non-empty spatial size', `shape ${formatShape(x.shape)}`, true);
  for (let i = 0; i < 2; i++)
    if (p[i] * 2 > k[i]) throw rangeError(op, 'padding', `at most half the kernel size [${k.join(',')}]`, `[${p.join(',')}]`, true);
  const oh = pooledSize(op, h, k[0], s[0], p[0], d[0], ceil);
  const ow = pooledSize(op, w, k[1], s[1], p[1], d[1], ceil);
  return [n * c, h, w, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], oh, ow];
}

/**
 * Max pooling over the last two axes of [N, C, H, W] (PyTorch's F.max_pool2d). Padding is
 * implicit -infinity. The gradient goes to the first maximal element of each window (a NaN
 * wins and propagates); a window lying wholly in the padding gives -infinity and no gradient.
 */
export function maxPool2d(x: Tensor, options: MaxPool2dOptions): Tensor {
  const op = 'max_pool2d';
  const { t, a } = maxDecl.parse({ x }, options);
  const geom = geometry(op, t.x, a.kernelSize, a.stride ?? a.kernelSize, a.padding, a.dilation, a.ceilMode);
  const [n, c] = t.x.shape;
  const out = uninitialized([n, c, geom[11], geom[12]], 'float32', t.x._deviceIndex); // every window is written
  // The argmax indices are only kept when a backward pass can need them.
  const index = shouldRecord([t.x]) ? empty(out.shape, 'int32', t.x._deviceIndex) : null;
  if (out.size > 0) kernels.max_pool2d(...ref(out), ...(index ? ref(index) : [null, 0]), ...ref(t.x), geom);
  if (index) {
    record(op, [t.x], out, { index }, { geom });
    index.dispose();
  }
  return out;
}
registerGradient('max_pool2d', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.max_pool2d_backward(...ref(gx), ...ref(g), ...ref(ctx.saved.index), ctx.attrs.geom as number[]);
  return [gx];
});

/** Average pooling over the last two axes of [N, C, H, W] (PyTorch's F.avg_pool2d). */
export function avgPool2d(x: Tensor, options: AvgPool2dOptions): Tensor {
  const op = 'avg_pool2d';
  const { t, a } = avgDecl.parse({ x }, options);
  const geom = geometry(op, t.x, a.kernelSize, a.stride ?? a.kernelSize, a.padding, [1, 1], a.ceilMode);
  const [n, c] = t.x.shape;
  const out = uninitialized([n, c, geom[11], geom[12]], 'float32', t.x._deviceIndex); // every window is averaged
  if (out.size > 0) kernels.avg_pool2d(...ref(out), ...ref(t.x), geom, a.countIncludePad, a.padding[0], a.padding[1]);
  record(op, [t.x], out, {}, { geom, countIncludePad: a.countIncludePad, padding: a.padding });
  return out;
}
registerGradient('avg_pool2d', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  const p = ctx.attrs.padding as number[];
  if (gx.size > 0) kernels.avg_pool2d_backward(...ref(gx), ...ref(g), ctx.attrs.geom as number[], ctx.attrs.countIncludePad as boolean, p[0], p[1]);
  return [gx];
});

/** Average pooling to a fixed [oh, ow] with PyTorch's adaptive windows [floor(i*H/oh), ceil((i+1)*H/oh)). */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | number[]): Tensor {
  const op = 'adaptive_avg_pool2d';
  const { t, a } = adaptiveDecl.parse({ x }, { outputSize });
  const [n, c, h, w] = t.x.shape;
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'a non-empty spatial size', `shape ${formatShape(t.x.shape)}`, true);
  const [oh, ow] = a.outputSize;
  const dims = [n * c, h, w, oh, ow];
  const out = uninitialized([n, c, oh, ow], 'float32', t.x._deviceIndex); // every window is averaged
  if (out.size > 0) kernels.adaptive_avg_pool2d(...ref(out), ...ref(t.x), dims);
  record(op, [t.x], out, {}, { dims });
  return out;
}
registerGradient('adaptive_avg_pool2d', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.adaptive_avg_pool2d_backward(...ref(gx), ...ref(g), ctx.attrs.dims as number[]);
  return [gx];
});

/** Mean over each channel's plane: [N, C, H, W] -> [N, C, 1, 1]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  const { t } = globalDecl.parse({ x });
  if (t.x.shape[2] === 0 || t.x.shape[3] === 0) throw rangeError('global_avg_pool2d', 'x', 'a non-empty spatial size', `shape ${formatShape(t.x.shape)}`, true);
  return adaptiveAvgPool2d(t.x, [1, 1]);
}
