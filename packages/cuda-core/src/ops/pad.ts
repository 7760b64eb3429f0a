// Padding of the last two axes, and the depthwise Gaussian blur built on it.
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, Tensor } from './tensor-ref.js';
import { conv2d } from './conv.js';
import { tensor } from '../tensor.js';

const F32 = ['float32'] as const;
const MODES = ['constant', 'reflect', 'replicate'] as const;
export type PadMode = 'constant' | 'reflect' | 'replicate';

const padDecl = defineOp('pad', { x: { dtypes: F32, rank: [1, 8] } }, {
  pad: attr.intList({ min: 0 }),
  mode: attr.oneOf(MODES, { default: 'constant' }),
  value: attr.number({ default: 0 }),
});
const blurDecl = defineOp('gaussian_blur', { x: { dtypes: F32, rank: 4 } }, {
  sigma: attr.number({ min: 0, exclusiveMin: true }),
  kernelSize: { expected: 'an odd integer >= 1', parse: (op: string, name: string, v: unknown) => (v === undefined ? undefined : attr.int({ min: 1 }).parse(op, name, v)) },
  mode: attr.oneOf(['zeros', 'reflect', 'replicate'] as const, { default: 'zeros' }),
});

export interface PadOptions {
  mode?: PadMode;
  /** Fill value for 'constant'. Default 0. */
  value?: number;
}

/**
 * Pads the last axis by [left, right], or the last two by [left, right, top, bottom]
 * (F.pad's order). 'reflect' needs each pad smaller than the axis.
 */
export function pad(x: Tensor, padding: number[], options?: PadOptions): Tensor {
  const op = 'pad';
  const { t, a } = padDecl.parse({ x }, { pad: padding, ...options });
  const p = a.pad!;
  if (p.length !== 2 && p.length !== 4) throw rangeError(op, 'pad', '[left, right] or [left, right, top, bottom]', `[${p.join(',')}]`, true);
  if (p.length === 4 && t.x.rank < 2) throw rangeError(op, 'pad', '2 entries for a 1-D input', `[${p.join(',')}]`, true);
  const [pl, pr, pt, pb] = [p[0], p[1], p[2] ?? 0, p[3] ?? 0];
  const rank = t.x.rank;
  const h = p.length === 4 ? t.x.shape[rank - 2] : 1;
  const w = t.x.shape[rank - 1];
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'non-empty padded axes', `shape ${formatShape(t.x.shape)}`, true);
  if (a.mode === 'reflect' && (pl >= w || pr >= w || pt >= h || pb >= h))
    throw rangeError(op, 'pad', `smaller than the padded axes (${p.length === 4 ? `${h}x` : ''}${w}) for 'reflect'`, `[${p.join(',')}]`, true);
  const planes = t.x.size / (h * w);
  const outShape = [...t.x.shape];
  outShape[rank - 1] += pl + pr;
  if (p.length === 4) outShape[rank - 2] += pt + pb;
  const mode = MODES.indexOf(a.mode as PadMode);
  const dims = [planes, h, w, pt, pb, pl, pr];
  const out = empty(outShape);
  if (out.size > 0) kernels.pad2d(...ref(out), ...ref(t.x), dims, mode, a.value);
  record(op, [t.x], out, {}, { dims, mode });
  return out;
}

registerGradient('pad', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0]);
  if (gx.size > 0) kernels.pad2d_backward(...ref(gx), ...ref(g), ctx.attrs.dims as number[], ctx.attrs.mode as number);
  return [gx];
});

export interface GaussianBlurOptions {
  /** Standard deviation in pixels. */
  sigma: number;
  /** Odd kernel size; default 2*ceil(3*sigma)+1. */
  kernelSize?: number;
  /** Border handling: 'zeros' (default), 'reflect' or 'replicate'. */
  mode?: 'zeros' | 'reflect' | 'replicate';
}

/** The normalised 1-D Gaussian of the given size and sigma. */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float32Array {
  const half = (kernelSize - 1) / 2;
  const k = new Float32Array(kernelSize);
  let total = 0;
  for (let i = 0; i < kernelSize; i++) {
    k[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
    total += k[i];
  }
  for (let i = 0; i < kernelSize; i++) k[i] /= total;
  return k;
}

/** Blurs each channel of [N, C, H, W] with a normalised Gaussian (a depthwise convolution), same size out. */
export function gaussianBlur(x: Tensor, options: GaussianBlurOptions): Tensor {
  const op = 'gaussian_blur';
  const { t, a } = blurDecl.parse({ x }, options);
  const size = a.kernelSize ?? 2 * Math.ceil(3 * a.sigma) + 1;
  if (size % 2 !== 1) throw rangeError(op, 'kernelSize', 'an odd integer', size);
  const c = t.x.shape[1];
  if (c === 0) throw rangeError(op, 'x', 'at least one channel', `shape ${formatShape(t.x.shape)}`, true);
  const k1 = gaussianKernel1d(size, a.sigma);
  const k2 = new Float32Array(c * size * size);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) k2[(ch * size + i) * size + j] = k1[i] * k1[j];
  const weight = tensor(k2, [c, 1, size, size]);
  const half = (size - 1) / 2;
  let out: Tensor;
  if (a.mode === 'zeros') out = conv2d(t.x, weight, undefined, { padding: half, groups: c });
  else {
    if (a.mode === 'reflect' && (half >= t.x.shape[2] || half >= t.x.shape[3]))
      throw rangeError(op, 'kernelSize', `at most ${2 * Math.min(t.x.shape[2], t.x.shape[3]) - 1} for 'reflect' on this input`, size);
    const padded = pad(t.x, [half, half, half, half], { mode: a.mode as PadMode });
    out = conv2d(padded, weight, undefined, { groups: c });
    padded.dispose();
  }
  weight.dispose();
  return out;
}

