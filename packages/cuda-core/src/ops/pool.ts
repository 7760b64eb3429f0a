// Pooling over the last two axes of NCHW tensors (PyTorch semantics).
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, Tensor } from './tensor-ref.js';

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
  stride?: number | number[];
  padding?: number | number[];
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

function pooledSize(op: string, size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = size + 2 * p - d * (k - 1) - 1;
  if (span < 0) throw rangeError(op, 'kernelSize', `a window that fits the padded input (${size} + 2*${p})`, d * (k - 1) + 1, true);
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // PyTorch: the last window must start inside the input or its left padding.
  if (ceil && (out - 1) * s >= size + p) out--;
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

/** Max pooling; the gradient goes to the first maximal element of each window. */
export function maxPool2d(x: Tensor, options: MaxPool2dOptions): Tensor {
  const op = 'max_pool2d';
  const { t, a } = maxDecl.parse({ x }, options);
  const geom = geometry(op, t.x, a.kernelSize, a.stride ?? a.kernelSize, a.padding, a.dilation, a.ceilMode);
  const [n, c] = t.x.shape;
  const out = empty([n, c, geom[11], geom[12]]);
  const index = empty(out.shape, 'int32');
  if (out.size > 0) kernels.max_pool2d(...ref(out), ...ref(index), ...ref(t.x), geom);
  record(op, [t.x], out, { index }, { geom });
  index.dispose();
  return out;
}
registerGradient('max_pool2d', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0]);
  if (gx.size > 0) kernels.max_pool2d_backward(...ref(gx), ...ref(g), ...ref(ctx.saved.index), ctx.attrs.geom as number[]);
  return [gx];
});

/** Average pooling. */
export function avgPool2d(x: Tensor, options: AvgPool2dOptions): Tensor {
  const op = 'avg_pool2d';
  const { t, a } = avgDecl.parse({ x }, options);
  const geom = geometry(op, t.x, a.kernelSize, a.stride ?? a.kernelSize, a.padding, [1, 1], a.ceilMode);
  const [n, c] = t.x.shape;
  const out = empty([n, c, geom[11], geom[12]]);
  if (out.size > 0) kernels.avg_pool2d(...ref(out), ...ref(t.x), geom, a.countIncludePad, a.padding[0], a.padding[1]);
  record(op, [t.x], out, {}, { geom, countIncludePad: a.countIncludePad, padding: a.padding });
  return out;
}
registerGradient('avg_pool2d', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0]);
  const p = ctx.attrs.padding as number[];
  if (gx.size > 0) kernels.avg_pool2d_backward(...ref(gx), ...ref(g), ctx.attrs.geom as number[], ctx.attrs.countIncludePad as boolean, p[0], p[1]);
  return [gx];
});

/** Average pooling to a fixed output size with PyTorch's adaptive windows. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | number[]): Tensor {
  const op = 'adaptive_avg_pool2d';
  const { t, a } = adaptiveDecl.parse({ x }, { outputSize });
  const [n, c, h, w] = t.x.shape;
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'a non-empty spatial size', `shape ${formatShape(t.x.shape)}`, true);
  const [oh, ow] = a.outputSize;
  const dims = [n * c, h, w, oh, ow];
  const out = empty([n, c, oh, ow]);
  if (out.size > 0) kernels.adaptive_avg_pool2d(...ref(out), ...ref(t.x), dims);
  record(op, [t.x], out, {}, { dims });
  return out;
}
registerGradient('adaptive_avg_pool2d', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0]);
  if (gx.size > 0) kernels.adaptive_avg_pool2d_backward(...ref(gx), ...ref(g), ctx.attrs.dims as number[]);
  return [gx];
});

/** Mean over each channel's plane: [N, C, H, W] -> [N, C, 1, 1]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  return adaptiveAvgPool2d(x, [1, 1]);
}
