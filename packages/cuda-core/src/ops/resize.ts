// Resizing NCHW images: nearest and bilinear as PyTorch's F.interpolate, bicubic as MATLAB's
// imresize (Keys a = -0.5, antialiased when shrinking) — the degradation SR papers use.
// All are separable weight tables applied by one kernel; the gradient is their transpose.
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, Tensor, typeError } from './tensor-ref.js';
import { permute, reshape } from './shape.js';

const F32 = ['float32'] as const;

export type UpsampleMode = 'nearest' | 'bilinear' | 'bicubic';

export interface UpsampleOptions {
  /** Output [height, width] (or one number for both). Give this or scaleFactor. */
  size?: number | number[];
  /** Scale per axis (or one number); the output size is floor(in * s) (ceil for 'bicubic', as MATLAB). */
  scaleFactor?: number | number[];
  /** Default 'nearest'. */
  mode?: UpsampleMode;
  /** Bilinear only: map corner pixel centres onto each other. Default false. */
  alignCorners?: boolean;
  /** Bicubic only: widen the kernel when shrinking (MATLAB's default). Default true. */
  antialias?: boolean;
}

const scaleAttr = {
  expected: 'a positive number or 2 positive numbers',
  parse(op: string, name: string, value: unknown): number[] | undefined {
    if (value === undefined) return undefined;
    const list = typeof value === 'number' ? [value, value] : value;
    if (!Array.isArray(list) || list.length !== 2 || !list.every((v) => typeof v === 'number')) throw typeError(op, name, this.expected, value);
    if (!list.every((v) => Number.isFinite(v) && v > 0)) throw rangeError(op, name, this.expected, `[${list.join(',')}]`, true);
    return list as number[];
  },
};
const sizeAttr = {
  expected: 'an integer or 2 integers >= 1',
  parse(op: string, name: string, value: unknown): number[] | undefined {
    return value === undefined ? undefined : attr.ints(2, { min: 1 }).parse(op, name, value);
  },
};
const upsampleDecl = defineOp('upsample', { x: { dtypes: F32, rank: 4 } }, {
  size: sizeAttr,
  scaleFactor: scaleAttr,
  mode: attr.oneOf(['nearest', 'bilinear', 'bicubic'] as const, { default: 'nearest' }),
  alignCorners: attr.bool({ default: false }),
  antialias: attr.bool({ default: true }),
});
const shuffleDecl = defineOp('pixel_shuffle', { x: { dtypes: F32, rank: 4 } }, { factor: attr.int({ min: 1 }) });
const unshuffleDecl = defineOp('pixel_unshuffle', { x: { dtypes: F32, rank: 4 } }, { factor: attr.int({ min: 1 }) });

/** Resampling weights along one axis: out[i] = sum_t weight[i*taps+t] * in[index[i*taps+t]]. */
export interface ResampleTable {
  index: number[];
  weight: number[];
  taps: number;
}

function nearestTable(inSize: number, outSize: number, scale: number): ResampleTable {
  const index = Array.from({ length: outSize }, (_, i) => Math.min(Math.floor(i * scale), inSize - 1));
  return { index, weight: new Array(outSize).fill(1), taps: 1 };
}

function bilinearTable(inSize: number, outSize: number, scale: number, alignCorners: boolean): ResampleTable {
  const index: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < outSize; i++) {
    let src = alignCorners ? (outSize > 1 ? (i * (inSize - 1)) / (outSize - 1) : 0) : Math.max((i + 0.5) * scale - 0.5, 0);
    src = Math.min(src, inSize - 1);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const l = src - i0;
    index.push(i0, i1);
    weight.push(1 - l, l);
  }
  return { index, weight, taps: 2 };
}

/** Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic'). */
function cubic(x: number): number {
  const ax = Math.abs(x);
  if (ax <= 1) return 1.5 * ax ** 3 - 2.5 * ax ** 2 + 1;
  if (ax <= 2) return -0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2;
  return 0;
}

/** MATLAB imresize's contributions(): weights, then mirrored indices, rows normalised to sum 1. */
export function matlabBicubicTable(inSize: number, outSize: number, scale: number, antialias = true): ResampleTable {
  const shrink = scale < 1 && antialias;
  const kernelWidth = shrink ? 4 / scale : 4;
  const taps = Math.ceil(kernelWidth) + 2;
  const index: number[] = [];
  const weight: number[] = [];
  for (let x = 1; x <= outSize; x++) {
    const u = x / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - kernelWidth / 2);
    const row: number[] = [];
    let total = 0;
    for (let t = 0; t < taps; t++) {
      const j = left + t; // 1-based, before mirroring
      const w = shrink ? scale * cubic(scale * (u - j)) : cubic(u - j);
      row.push(w);
      total += w;
    }
    for (let t = 0; t < taps; t++) {
      const j = left + t - 1; // 0-based
      // Symmetric extension: aux = [0..in-1, in-1..0], indexed modulo 2*in.
      const period = 2 * inSize;
      let m = ((j % period) + period) % period;
      if (m >= inSize) m = period - 1 - m;
      index.push(m);
      weight.push(total !== 0 ? row[t] / total : 0);
    }
  }
  return { index, weight, taps };
}

/**
 * Resizes [N, C, H, W] images. 'nearest' and 'bilinear' follow PyTorch's F.interpolate;
 * 'bicubic' is MATLAB's imresize (antialiased when shrinking), the standard SR degradation.
 */
export function upsample(x: Tensor, options: UpsampleOptions): Tensor {
  const op = 'upsample';
  const { t, a } = upsampleDecl.parse({ x }, options);
  if ((a.size === undefined) === (a.scaleFactor === undefined)) throw typeError(op, 'size', 'given, or scaleFactor given (exactly one of them)', a.size === undefined ? 'neither' : 'both', true);
  const [n, c, h, w] = t.x.shape;
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'a non-empty spatial size', `shape ${formatShape(t.x.shape)}`, true);
  let outSize: number[];
  let scale: number[]; // output / input, per axis
  if (a.size) {
    outSize = a.size;
    scale = [outSize[0] / h, outSize[1] / w];
  } else {
    scale = a.scaleFactor!;
    // Tolerate float error in products like 3 * (1 / 3).
    const round = a.mode === 'bicubic' ? (v: number) => Math.ceil(v - 1e-6) : (v: number) => Math.floor(v + 1e-6);
    outSize = [round(h * scale[0]), round(w * scale[1])];
    if (outSize[0] < 1 || outSize[1] < 1) throw rangeError(op, 'scaleFactor', 'large enough for a non-empty output', `[${scale.join(',')}]`, true);
  }
  const tables = [0, 1].map((axis) => {
    const inS = axis === 0 ? h : w;
    const outS = outSize[axis];
    if (a.mode === 'nearest') return nearestTable(inS, outS, 1 / scale[axis]);
    if (a.mode === 'bilinear') return bilinearTable(inS, outS, 1 / scale[axis], a.alignCorners);
    return matlabBicubicTable(inS, outS, scale[axis], a.antialias);
  });
  const out = empty([n, c, outSize[0], outSize[1]]);
  const dims = [n * c, h, w, outSize[0], outSize[1], tables[0].taps, tables[1].taps];
  if (out.size > 0) kernels.resample2d(...ref(out), ...ref(t.x), dims, tables[0].index, tables[0].weight, tables[1].index, tables[1].weight, false);
  record(op, [t.x], out, {}, { dims, tables });
  return out;
}

registerGradient('upsample', (ctx, g) => {
  const dims = ctx.attrs.dims as number[];
  const tables = ctx.attrs.tables as ResampleTable[];
  const gx = empty(ctx.inputShapes[0]);
  if (gx.size > 0) kernels.resample2d(...ref(gx), ...ref(g), dims, tables[0].index, tables[0].weight, tables[1].index, tables[1].weight, true);
  return [gx];
});

/** [N, C*r*r, H, W] -> [N, C, H*r, W*r] (sub-pixel convolution's rearrangement). */
export function pixelShuffle(x: Tensor, factor: number): Tensor {
  const op = 'pixel_shuffle';
  const { t, a } = shuffleDecl.parse({ x }, { factor });
  const [n, cr, h, w] = t.x.shape;
  const r = a.factor;
  if (cr % (r * r) !== 0) throw rangeError(op, 'factor', `r with r*r dividing the channels (${cr})`, r);
  const c = cr / (r * r);
  const v = reshape(t.x, [n, c, r, r, h, w]);
  const p = permute(v, [0, 1, 4, 2, 5, 3]);
  v.dispose();
  const out = reshape(p, [n, c, h * r, w * r]);
  p.dispose();
  return out;
}

/** The inverse of pixelShuffle: [N, C, H*r, W*r] -> [N, C*r*r, H, W]. */
export function pixelUnshuffle(x: Tensor, factor: number): Tensor {
  const op = 'pixel_unshuffle';
  const { t, a } = unshuffleDecl.parse({ x }, { factor });
  const [n, c, hr, wr] = t.x.shape;
  const r = a.factor;
  if (hr % r !== 0 || wr % r !== 0) throw rangeError(op, 'factor', `a divisor of the height and width (${hr}x${wr})`, r);
  const v = reshape(t.x, [n, c, hr / r, r, wr / r, r]);
  const p = permute(v, [0, 1, 3, 5, 2, 4]);
  v.dispose();
  const out = reshape(p, [n, c * r * r, hr / r, wr / r]);
  p.dispose();
  return out;
}
