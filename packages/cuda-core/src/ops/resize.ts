// Resizing NCHW images: nearest and bilinear as PyTorch's F.interpolate, bicubic as MATLAB's
// imresize (Keys a = -0.5, antialiased when shrinking) — the degradation SR papers use.
// Every mode is a pair of per-axis weight tables applied by one separable kernel (rows, then
// columns); the gradient is the same kernel with the transposed tables.
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, Tensor, typeError, uninitialized, type GradContext } from './tensor-ref.js';

const F32 = ['float32'] as const;
const f32 = Math.fround;

export type UpsampleMode = 'nearest' | 'bilinear' | 'bicubic';

export interface UpsampleOptions {
  /** Output [height, width] (or one number for both). Give this or scaleFactor. */
  size?: number | number[];
  /**
   * Scale per axis (or one number). The output size is floor(in * s) for 'nearest' and
   * 'bilinear' (PyTorch), ceil(in * s) for 'bicubic' (MATLAB); the scale itself, not the
   * rounded size ratio, places the samples (PyTorch with recompute_scale_factor off, MATLAB).
   */
  scaleFactor?: number | number[];
  /** Default 'nearest'. */
  mode?: UpsampleMode;
  /** Bilinear only: map the corner pixel centres onto each other. Default false. */
  alignCorners?: boolean;
  /** Bicubic only: widen the kernel by 1/scale when shrinking (MATLAB's default). Default true. */
  antialias?: boolean;
}

const scaleAttr = {
  expected: 'a positive number or 2 positive numbers',
  parse(op: string, name: string, value: unknown): number[] | undefined {
    if (value === undefined) return undefined;
    const list = typeof value === 'number' ? [value, value] : value;
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'number')) throw typeError(op, name, this.expected, value);
    if (list.length !== 2 || !list.every((v) => Number.isFinite(v) && v > 0)) throw rangeError(op, name, this.expected, `[${list.join(',')}]`, true);
    return list as number[];
  },
};
const sizeAttr = {
  expected: 'an integer or 2 integers >= 1',
  parse(op: string, name: string, value: unknown): number[] | undefined {
    return value === undefined ? undefined : attr.ints(2, { min: 1 }).parse(op, name, value);
  },
};
const optionalBool = {
  expected: 'a boolean',
  parse(op: string, name: string, value: unknown): boolean | undefined {
    return value === undefined ? undefined : attr.bool().parse(op, name, value);
  },
};
const upsampleDecl = defineOp('upsample', { x: { dtypes: F32, rank: 4 } }, {
  size: sizeAttr,
  scaleFactor: scaleAttr,
  mode: attr.oneOf(['nearest', 'bilinear', 'bicubic'] as const, { default: 'nearest' }),
  alignCorners: optionalBool,
  antialias: optionalBool,
});
const shuffleDecl = defineOp('pixel_shuffle', { x: { dtypes: F32, rank: 4 } }, { factor: attr.int({ min: 1 }) });
const unshuffleDecl = defineOp('pixel_unshuffle', { x: { dtypes: F32, rank: 4 } }, { factor: attr.int({ min: 1 }) });
const blurDecl = defineOp('gaussian_blur', { x: { dtypes: F32, rank: 4 } }, {
  sigma: attr.number({ min: 0, exclusiveMin: true }),
  kernelSize: { expected: 'an odd integer >= 1', parse: (op: string, name: string, v: unknown) => (v === undefined ? undefined : attr.int({ min: 1 }).parse(op, name, v)) },
  mode: attr.oneOf(['zeros', 'reflect', 'replicate'] as const, { default: 'zeros' }),
});

/** Resampling weights along one axis: out[i] = sum_t weight[i*taps+t] * in[index[i*taps+t]]. */
export interface ResampleTable {
  index: number[];
  weight: number[];
  taps: number;
}

/**
 * PyTorch's 'nearest' (upsample_nearest2d's nearest_idx), float32 arithmetic included: the
 * same size copies, exactly double size halves the index, otherwise
 * min(floor(i * scale), in - 1) with scale = float(1 / scaleFactor) or float(in / out).
 */
function nearestTable(inSize: number, outSize: number, scaleFactor?: number): ResampleTable {
  const scale = scaleFactor !== undefined ? f32(1 / scaleFactor) : f32(inSize / outSize);
  const index = Array.from({ length: outSize }, (_, i) => {
    if (outSize === inSize) return i;
    if (outSize === 2 * inSize) return i >> 1;
    return Math.min(Math.floor(f32(i * scale)), inSize - 1);
  });
  return { index, weight: new Array<number>(outSize).fill(1), taps: 1 };
}

/**
 * PyTorch's 'bilinear' weights along one axis (area_pixel_compute_scale,
 * area_pixel_compute_source_index, guard_index_and_lambda), each step rounded to float32 as
 * ATen computes it for float tensors.
 */
function bilinearTable(inSize: number, outSize: number, alignCorners: boolean, scaleFactor?: number): ResampleTable {
  const index: number[] = [];
  const weight: number[] = [];
  let scale: number;
  if (alignCorners) scale = outSize > 1 ? f32((inSize - 1) / (outSize - 1)) : 0;
  else scale = scaleFactor !== undefined ? f32(1 / scaleFactor) : f32(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    if (outSize === inSize) {
      index.push(i, i);
      weight.push(1, 0);
      continue;
    }
    let src = alignCorners ? f32(scale * i) : f32(f32(scale * f32(i + 0.5)) - 0.5);
    if (!alignCorners && src < 0) src = 0;
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const l1 = Math.min(Math.max(f32(src - i0), 0), 1);
    index.push(i0, i0 < inSize - 1 ? i0 + 1 : i0);
    weight.push(f32(1 - l1), l1);
  }
  return { index, weight, taps: 2 };
}

/** Keys' cubic convolution kernel with a = -0.5, as MATLAB's imresize writes it. */
function cubic(x: number): number {
  const ax = Math.abs(x);
  const ax2 = ax * ax;
  const ax3 = ax2 * ax;
  if (ax <= 1) return 1.5 * ax3 - 2.5 * ax2 + 1;
  if (ax <= 2) return -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2;
  return 0;
}

/**
 * MATLAB imresize's contributions() for 'bicubic' along one axis, in double precision:
 * u = x/scale + 0.5*(1 - 1/scale) for 1-based output x, taps left = floor(u - width/2) ..
 * left + ceil(width) + 1, weights h(u - j) with h = scale * cubic(scale * .) and width 4/scale
 * when shrinking with antialiasing (else cubic and width 4), each row normalised to sum 1,
 * then indices mirrored into the input (aux = [1..n, n..1], index mod 2n).
 */
export function matlabBicubicTable(inSize: number, outSize: number, scale: number, antialias = true): ResampleTable {
  const shrink = scale < 1 && antialias;
  const kernelWidth = shrink ? 4 / scale : 4;
  const taps = Math.ceil(kernelWidth) + 2;
  const index: number[] = [];
  const weight: number[] = [];
  const period = 2 * inSize;
  for (let x = 1; x <= outSize; x++) {
    const u = x / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - kernelWidth / 2);
    const row: number[] = [];
    let total = 0;
    for (let t = 0; t < taps; t++) {
      const w = shrink ? scale * cubic(scale * (u - (left + t))) : cubic(u - (left + t));
      row.push(w);
      total += w;
    }
    for (let t = 0; t < taps; t++) {
      const m = (((left + t - 1) % period) + period) % period; // 0-based position in aux
      index.push(m < inSize ? m : period - 1 - m);
      weight.push(row[t] / total);
    }
  }
  return { index, weight, taps };
}

/**
 * The transpose of a table mapping `inSize` inputs to `outSize` outputs: a table mapping
 * `outSize` back to `inSize`, rows padded with zero weights to a common tap count.
 */
function transposeTable(table: ResampleTable, inSize: number): ResampleTable {
  const rows: [number, number][][] = Array.from({ length: inSize }, () => []);
  const outSize = table.index.length / table.taps;
  for (let i = 0; i < outSize; i++)
    for (let t = 0; t < table.taps; t++) {
      const w = table.weight[i * table.taps + t];
      if (w !== 0) rows[table.index[i * table.taps + t]].push([i, w]);
    }
  const taps = rows.reduce((m, r) => Math.max(m, r.length), 1);
  const index: number[] = [];
  const weight: number[] = [];
  for (const r of rows)
    for (let t = 0; t < taps; t++) {
      index.push(t < r.length ? r[t][0] : 0);
      weight.push(t < r.length ? r[t][1] : 0);
    }
  return { index, weight, taps };
}

/** Applies per-axis tables to [N, C, H, W] -> [N, C, oh, ow] with the one separable kernel. */
function resample(x: Tensor, tables: readonly [ResampleTable, ResampleTable], outH: number, outW: number): Tensor {
  const [n, c, h, w] = x.shape;
  const out = uninitialized([n, c, outH, outW], 'float32', x._deviceIndex); // every pixel is resampled
  const dims = [n * c, h, w, outH, outW, tables[0].taps, tables[1].taps];
  if (out.size > 0) kernels.resample2d(...ref(out), ...ref(x), dims, tables[0].index, tables[0].weight, tables[1].index, tables[1].weight);
  return out;
}

/** Resamples x by the tables and records op `name`, whose gradient is the transposed resampling. */
function applyResample(name: string, x: Tensor, tables: readonly [ResampleTable, ResampleTable], outH: number, outW: number): Tensor {
  const out = resample(x, tables, outH, outW);
  record(name, [x], out, {}, { tables });
  return out;
}

function resampleGradient(ctx: GradContext, g: Tensor): (Tensor | null)[] {
  const [, , h, w] = ctx.inputShapes[0];
  let transposed = ctx.attrs.transposed as [ResampleTable, ResampleTable] | undefined;
  if (!transposed) {
    const tables = ctx.attrs.tables as [ResampleTable, ResampleTable];
    transposed = [transposeTable(tables[0], h), transposeTable(tables[1], w)];
    ctx.attrs.transposed = transposed; // reused by later passes over a retained graph
  }
  return [resample(g, transposed, h, w)];
}

/**
 * Resizes [N, C, H, W] images. 'nearest' and 'bilinear' follow PyTorch's F.interpolate
 * (recompute_scale_factor off, antialias off); 'bicubic' is MATLAB's imresize (antialiased when
 * shrinking), the standard super-resolution degradation: Keys' cubic with a = -0.5, kernel
 * widened by 1/scale when shrinking, u = x/scale + 0.5*(1 - 1/scale), mirrored borders, rows
 * then columns.
 */
export function upsample(x: Tensor, options: UpsampleOptions): Tensor {
  const op = 'upsample';
  const { t, a } = upsampleDecl.parse({ x }, options);
  if ((a.size === undefined) === (a.scaleFactor === undefined)) throw typeError(op, 'size', 'given, or scaleFactor given (exactly one of them)', a.size === undefined ? 'neither' : 'both', true);
  if (a.alignCorners && a.mode !== 'bilinear') throw rangeError(op, 'alignCorners', `false for mode '${a.mode}' (it applies to 'bilinear')`, true);
  if (a.antialias && a.mode !== 'bicubic') throw rangeError(op, 'antialias', `false for mode '${a.mode}' (it applies to 'bicubic')`, true);
  const [, , h, w] = t.x.shape;
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'a non-empty spatial size', `shape ${formatShape(t.x.shape)}`, true);
  const inSize = [h, w];
  let outSize: number[];
  if (a.size) outSize = a.size;
  else {
    const s = a.scaleFactor!;
    // PyTorch: floor(in * s) in double; MATLAB: ceil(in * s).
    outSize = inSize.map((v, i) => (a.mode === 'bicubic' ? Math.ceil(v * s[i]) : Math.floor(v * s[i])));
    if (outSize[0] < 1 || outSize[1] < 1) throw rangeError(op, 'scaleFactor', `large enough for a non-empty output from ${h}x${w}`, `[${s.join(',')}]`, true);
  }
  const tables = [0, 1].map((axis) => {
    const inS = inSize[axis];
    const outS = outSize[axis];
    const sf = a.scaleFactor?.[axis];
    if (a.mode === 'nearest') return nearestTable(inS, outS, sf);
    if (a.mode === 'bilinear') return bilinearTable(inS, outS, a.alignCorners ?? false, sf);
    return matlabBicubicTable(inS, outS, sf ?? outS / inS, a.antialias ?? true);
  }) as [ResampleTable, ResampleTable];
  return applyResample(op, t.x, tables, outSize[0], outSize[1]);
}
registerGradient('upsample', resampleGradient);

/** [N, C*r*r, H, W] -> [N, C, H*r, W*r]: out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w] (sub-pixel convolution's rearrangement). */
export function pixelShuffle(x: Tensor, factor: number): Tensor {
  const op = 'pixel_shuffle';
  const { t, a } = shuffleDecl.parse({ x }, { factor });
  const [n, crr, h, w] = t.x.shape;
  const r = a.factor;
  if (crr % (r * r) !== 0) throw rangeError(op, 'factor', `r with r*r dividing the channels (${crr})`, r);
  const c = crr / (r * r);
  const out = uninitialized([n, c, h * r, w * r], 'float32', t.x._deviceIndex); // a permutation: every element moves
  const dims = [n, c, h, w, r];
  if (out.size > 0) kernels.pixel_shuffle(...ref(out), ...ref(t.x), dims, false);
  record(op, [t.x], out, {}, { dims });
  return out;
}
registerGradient('pixel_shuffle', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.pixel_shuffle(...ref(gx), ...ref(g), ctx.attrs.dims as number[], true);
  return [gx];
});

/** The inverse of pixelShuffle: [N, C, H*r, W*r] -> [N, C*r*r, H, W]. */
export function pixelUnshuffle(x: Tensor, factor: number): Tensor {
  const op = 'pixel_unshuffle';
  const { t, a } = unshuffleDecl.parse({ x }, { factor });
  const [n, c, hr, wr] = t.x.shape;
  const r = a.factor;
  if (hr % r !== 0 || wr % r !== 0) throw rangeError(op, 'factor', `a divisor of the height and width (${hr}x${wr})`, r);
  const out = uninitialized([n, c * r * r, hr / r, wr / r], 'float32', t.x._deviceIndex); // a permutation
  const dims = [n, c, hr / r, wr / r, r];
  if (out.size > 0) kernels.pixel_shuffle(...ref(out), ...ref(t.x), dims, true);
  record(op, [t.x], out, {}, { dims });
  return out;
}
registerGradient('pixel_unshuffle', (ctx, g) => {
  const gx = empty(ctx.inputShapes[0], 'float32', g._deviceIndex);
  if (gx.size > 0) kernels.pixel_shuffle(...ref(gx), ...ref(g), ctx.attrs.dims as number[], false);
  return [gx];
});

export type BlurBorder = 'zeros' | 'reflect' | 'replicate';

export interface GaussianBlurOptions {
  /** Standard deviation in pixels (> 0). */
  sigma: number;
  /** Odd kernel size; default 2*ceil(3*sigma)+1. */
  kernelSize?: number;
  /**
   * Border: 'zeros' (default; zero 'same' padding, as a depthwise convolution), 'reflect'
   * (mirror without repeating the edge, as pad's 'reflect'; needs (kernelSize-1)/2 smaller
   * than the height and width) or 'replicate'.
   */
  mode?: BlurBorder;
}

/** The normalised 1-D Gaussian exp(-d^2 / (2 sigma^2)), d = -(size-1)/2 .. (size-1)/2, summing to 1. */
export function gaussianKernel1d(kernelSize: number, sigma: number): number[] {
  const half = (kernelSize - 1) / 2;
  const k = Array.from({ length: kernelSize }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const total = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / total);
}

/** Convolution of a length-n axis with the odd kernel k, 'same' size, as a resampling table. */
function blurTable(n: number, k: readonly number[], border: BlurBorder): ResampleTable {
  const half = (k.length - 1) / 2;
  const index: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < n; i++)
    for (let t = 0; t < k.length; t++) {
      const j = i - half + t;
      const inside = j >= 0 && j < n;
      let src = j;
      if (!inside) {
        if (border === 'replicate' || border === 'zeros') src = j < 0 ? 0 : n - 1;
        else src = j < 0 ? -j : 2 * (n - 1) - j;
      }
      index.push(src);
      weight.push(inside || border !== 'zeros' ? k[t] : 0);
    }
  return { index, weight, taps: k.length };
}

/**
 * Blurs each channel of [N, C, H, W] with a normalised 2-D Gaussian (the depthwise
 * convolution LGCN applies to heatmaps), same size out. The 2-D kernel is the outer product
 * of {@link gaussianKernel1d} with itself, applied separably (rows, then columns).
 */
export function gaussianBlur(x: Tensor, options: GaussianBlurOptions): Tensor {
  const op = 'gaussian_blur';
  const { t, a } = blurDecl.parse({ x }, options);
  const size = a.kernelSize ?? 2 * Math.ceil(3 * a.sigma) + 1;
  if (size % 2 !== 1) throw rangeError(op, 'kernelSize', 'an odd integer', size);
  const [, , h, w] = t.x.shape;
  if (h === 0 || w === 0) throw rangeError(op, 'x', 'a non-empty spatial size', `shape ${formatShape(t.x.shape)}`, true);
  const half = (size - 1) / 2;
  if (a.mode === 'reflect' && (half >= h || half >= w)) {
    const arg = a.kernelSize === undefined ? 'sigma' : 'kernelSize';
    throw rangeError(op, arg, `small enough for 'reflect' on ${h}x${w}: a kernel size of at most ${2 * Math.min(h, w) - 1}`, `kernel size ${size}`, true);
  }
  const k = gaussianKernel1d(size, a.sigma);
  return applyResample(op, t.x, [blurTable(h, k, a.mode as BlurBorder), blurTable(w, k, a.mode as BlurBorder)], h, w);
}
registerGradient('gaussian_blur', resampleGradient);
