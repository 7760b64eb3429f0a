// Degradations that make low-resolution training and test inputs from high-resolution faces:
// MATLAB-compatible bicubic resizing (the SR benchmark protocol), Gaussian blur followed by
// average pooling (the LR-landmark paper's sub-sampling), JPEG at a given quality, and
// Gaussian noise. Tensor functions take float32 [N, C, H, W]; every random one takes a seed.
import { avgPool2d, clone, gaussianBlur, narrow, tensor, upsample, type Tensor } from '@lrface/cuda-core';
import { checkInt, checkKeys, checkNumber, checkOneOf, rangeError, typeError } from './errors.js';
import { decodeImage, encodeImage, imageToTensor, tensorToImage, type RawImage } from './image.js';
import { rngFrom, type Rng } from './random.js';

function checkNCHW(fn: string, x: unknown): Tensor {
  const t = x as Tensor;
  if (!t || typeof t !== 'object' || !Array.isArray(t.shape) || t.shape.length !== 4 || t.dtype !== 'float32')
    throw typeError(fn, 'x', 'a float32 [N, C, H, W] tensor', x);
  return t;
}

/** The largest top-left region whose sides are multiples of `scale` (MATLAB's modcrop). */
export function modcrop<T extends RawImage>(img: T, scale: number): T;
export function modcrop(img: Tensor, scale: number): Tensor;
export function modcrop(img: RawImage | Tensor, scale: number): RawImage | Tensor {
  checkInt('modcrop', 'scale', scale, 1);
  if ('shape' in img) {
    const t = checkNCHW('modcrop', img);
    const [, , h, w] = t.shape;
    const hh = h - (h % scale);
    const ww = w - (w % scale);
    if (hh === h && ww === w) return t;
    // Rows (H) are an outer axis after reshaping; columns need an explicit copy.
    const src = t.data();
    const [n, c] = t.shape;
    const out = new Float32Array(n * c * hh * ww);
    for (let p = 0; p < n * c; p++)
      for (let y = 0; y < hh; y++) out.set(src.subarray(p * h * w + y * w, p * h * w + y * w + ww) as Float32Array, (p * hh + y) * ww);
    return tensor(out, [n, c, hh, ww]);
  }
  const { width, height, channels, data } = img;
  const w = width - (width % scale);
  const h = height - (height % scale);
  if (w === width && h === height) return img;
  const out = data instanceof Uint8Array ? new Uint8Array(w * h * channels) : new Float32Array(w * h * channels);
  for (let y = 0; y < h; y++) out.set(data.subarray(y * width * channels, (y * width + w) * channels), y * w * channels);
  return { data: out, width: w, height: h, channels };
}

export interface BicubicOptions {
  /** Output [height, width]. Give this or `scale`. */
  size?: [number, number];
  /** Scale factor (0.25 shrinks 4x); the output is ceil(in * scale) and the kernel uses this scale, as MATLAB's imresize(x, scale). */
  scale?: number;
  /** Widen the kernel when shrinking (MATLAB's default: true). */
  antialias?: boolean;
}

/** MATLAB imresize(x, ..., 'bicubic') on [N, C, H, W] (through the engine's upsample). */
export function bicubicResize(x: Tensor, options: BicubicOptions): Tensor {
  checkKeys('bicubicResize', options, ['size', 'scale', 'antialias']);
  const t = checkNCHW('bicubicResize', x);
  if ((options.size === undefined) === (options.scale === undefined)) throw typeError('bicubicResize', 'size', 'given, or scale given (exactly one)', options.size === undefined ? 'neither' : 'both', true);
  const antialias = options.antialias ?? true;
  if (options.size) return upsample(t, { size: options.size, mode: 'bicubic', antialias });
  // As imresize(x, scale): output ceil(in * scale) computed in double, kernel scaled by `scale` itself.
  const s = checkNumber('bicubicResize', 'scale', options.scale, Number.MIN_VALUE);
  return upsample(t, { scaleFactor: s, mode: 'bicubic', antialias });
}

/**
 * The super-resolution benchmark degradation: modcrop to a multiple of `scale`, then bicubic
 * down-sampling by 1/scale with antialiasing. Returns [hr (cropped), lr].
 */
export function bicubicDownsample(x: Tensor, scale: number): [Tensor, Tensor] {
  checkInt('bicubicDownsample', 'scale', scale, 1);
  const hr = modcrop(checkNCHW('bicubicDownsample', x), scale);
  const [, , h, w] = hr.shape;
  return [hr, upsample(hr, { size: [h / scale, w / scale], mode: 'bicubic' })];
}

/**
 * Bicubic down- then up-sampling by `scale` (the input SRCNN / VDSR / SRINC see). The output
 * has the modcropped size. Returns [hr (cropped), degraded].
 */
export function bicubicDegrade(x: Tensor, scale: number): [Tensor, Tensor] {
  const [hr, lr] = bicubicDownsample(x, scale);
  const [, , h, w] = hr.shape;
  const up = upsample(lr, { size: [h, w], mode: 'bicubic' });
  lr.dispose();
  return [hr, up];
}

export interface BlurPoolOptions {
  /** Down-sampling factor: the average-pooling window and stride. */
  factor: number;
  /** Gaussian standard deviation in input pixels; 0 skips the blur. Default: factor / 2. */
  sigma?: number;
  /** Blur border handling (default 'replicate'). */
  border?: 'zeros' | 'reflect' | 'replicate';
}

/** Gaussian blur, then factor x factor average pooling with stride factor (H, W cropped to multiples). */
export function blurPool(x: Tensor, options: BlurPoolOptions): Tensor {
  checkKeys('blurPool', options, ['factor', 'sigma', 'border']);
  const t0 = checkNCHW('blurPool', x);
  const factor = checkInt('blurPool', 'factor', options.factor, 1);
  const sigma = checkNumber('blurPool', 'sigma', options.sigma ?? factor / 2, 0);
  const border = checkOneOf('blurPool', 'border', options.border ?? 'replicate', ['zeros', 'reflect', 'replicate'] as const);
  const t = modcrop(t0, factor);
  if (t.shape[2] === 0 || t.shape[3] === 0) throw rangeError('blurPool', 'x', `at least ${factor}x${factor} pixels`, `shape [${t0.shape.join(',')}]`, true);
  const blurred = sigma > 0 ? gaussianBlur(t, { sigma, mode: border }) : t;
  const out = factor === 1 ? (blurred === t0 ? clone(blurred) : blurred) : avgPool2d(blurred, { kernelSize: factor });
  if (blurred !== t && blurred !== out) blurred.dispose();
  if (t !== t0 && t !== out) t.dispose();
  return out;
}

export interface NoiseOptions {
  /** Standard deviation in the tensor's units (e.g. 5/255 for values in [0, 1]). */
  std: number;
  /** Seed or generator (default: a random seed). */
  seed?: number | Rng;
  /** Clamp the result to [min, max] (default: no clamp). */
  clamp?: [number, number];
}

/** x + N(0, std^2) per element, drawn from a seeded generator. */
export function gaussianNoise(x: Tensor, options: NoiseOptions): Tensor {
  checkKeys('gaussianNoise', options, ['std', 'seed', 'clamp']);
  const t = checkNCHW('gaussianNoise', x);
  const std = checkNumber('gaussianNoise', 'std', options.std, 0);
  const rng = rngFrom(options.seed);
  const src = t.data();
  const out = new Float32Array(src.length);
  const [lo, hi] = options.clamp ?? [-Infinity, Infinity];
  for (let i = 0; i < out.length; i++) {
    const v = src[i] + std * rng.normal();
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return tensor(out, t.shape);
}

/** Adds Gaussian noise to 8-bit (or float) pixels, rounding and clamping 8-bit results. */
export function noiseImage(img: RawImage, options: { std: number; seed?: number | Rng }): RawImage {
  const std = checkNumber('noiseImage', 'std', options.std, 0);
  const rng = rngFrom(options.seed);
  if (img.data instanceof Uint8Array) {
    const out = new Uint8Array(img.data.length);
    for (let i = 0; i < out.length; i++) {
      const v = Math.round(img.data[i] + std * rng.normal());
      out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    return { ...img, data: out };
  }
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i] + std * rng.normal();
  return { ...img, data: out };
}

/** JPEG round trip of 8-bit pixels at a quality (1..100): encode with libjpeg, decode again. */
export async function jpegImage(img: RawImage, quality: number): Promise<RawImage<Uint8Array>> {
  checkInt('jpegImage', 'quality', quality, 1, 100);
  const buf = await encodeImage(img, { format: 'jpeg', quality });
  const out = await decodeImage(buf, { color: 'rgb' });
  if (img.channels === 1) {
    // A grey JPEG decodes to three equal channels; keep one.
    const g = new Uint8Array(out.width * out.height);
    for (let i = 0; i < g.length; i++) g[i] = out.data[3 * i];
    return { data: g, width: out.width, height: out.height, channels: 1 };
  }
  return out;
}

/** JPEG round trip of a [N, C, H, W] tensor with values in [0, 1] (C = 1 or 3), quantised to 8 bits. */
export async function jpegTensor(x: Tensor, quality: number): Promise<Tensor> {
  const t = checkNCHW('jpegTensor', x);
  checkInt('jpegTensor', 'quality', quality, 1, 100);
  const [n] = t.shape;
  const parts: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const one = narrow(t, 0, i, 1);
    const img = tensorToImage(one);
    one.dispose();
    const back = imageToTensor(await jpegImage(img, quality));
    parts.push(back.data() as Float32Array);
    back.dispose();
  }
  const out = new Float32Array(t.size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return tensor(out, t.shape);
}

/** One step of a degradation pipeline (see {@link degrade}). */
export type DegradeStep =
  | { op: 'bicubic'; scale: number }
  | { op: 'blurPool'; factor: number; sigma?: number }
  | { op: 'noise'; std: number }
  | { op: 'jpeg'; quality: number }
  | { op: 'upsample'; scale: number };

/** Each op's step fields, so that a misspelt one (sigm for sigma) is refused rather than ignored. */
const DEGRADE_STEP_KEYS: { [Op in DegradeStep['op']]: Record<keyof Extract<DegradeStep, { op: Op }>, true> } = {
  bicubic: { op: true, scale: true },
  blurPool: { op: true, factor: true, sigma: true },
  noise: { op: true, std: true },
  jpeg: { op: true, quality: true },
  upsample: { op: true, scale: true },
};

/**
 * Applies steps in order to [N, C, H, W] values in [0, 1]: 'bicubic' shrinks by 1/scale
 * (MATLAB imresize), 'blurPool' blurs and average-pools, 'noise' adds Gaussian noise (clamped to
 * [0, 1]), 'jpeg' round-trips through JPEG, 'upsample' enlarges with bicubic. Random steps draw
 * from the one seed, so a pipeline with a seed is reproducible.
 */
export async function degrade(x: Tensor, steps: DegradeStep[], seed?: number | Rng): Promise<Tensor> {
  if (!Array.isArray(steps)) throw typeError('degrade', 'steps', 'an array of steps', steps);
  const rng = rngFrom(seed);
  let cur = checkNCHW('degrade', x);
  for (const [i, step] of steps.entries()) {
    const known = Object.hasOwn(DEGRADE_STEP_KEYS, step?.op) ? DEGRADE_STEP_KEYS[step.op] : null;
    if (known) checkKeys('degrade', step, known, `steps[${i}]`);
    let next: Tensor;
    switch (step?.op) {
      case 'bicubic': next = bicubicResize(cur, { scale: 1 / checkNumber('degrade', `steps[${i}].scale`, step.scale, 1) }); break;
      case 'upsample': next = bicubicResize(cur, { scale: checkNumber('degrade', `steps[${i}].scale`, step.scale, 1) }); break;
      case 'blurPool': next = blurPool(cur, { factor: step.factor, ...(step.sigma !== undefined ? { sigma: step.sigma } : {}) }); break;
      case 'noise': next = gaussianNoise(cur, { std: step.std, seed: rng.fork(), clamp: [0, 1] }); break;
      case 'jpeg': next = await jpegTensor(cur, step.quality); break;
      default: throw typeError('degrade', `steps[${i}].op`, "one of 'bicubic', 'blurPool', 'noise', 'jpeg', 'upsample'", (step as { op?: unknown })?.op);
    }
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur === x ? clone(x) : cur;
}

