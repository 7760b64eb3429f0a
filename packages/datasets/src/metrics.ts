// PSNR as the super-resolution benchmarks compute it (07_evaluation_protocols §1): optionally on
// MATLAB's Y channel, after removing `border` pixels on each side, in float64.
import type { Tensor } from '@lrface/cuda-core';
import { checkInt, checkKeys, checkNumber, rangeError, typeError } from './errors.js';
import { rgbToYPixels } from './color.js';
import { checkImage, type RawImage } from './image.js';

export interface PsnrOptions {
  /** Pixels removed from each side before comparing (the benchmarks use the scale). Default 0. */
  border?: number;
  /** Peak value: 255 for 8-bit images (default), 1 for [0, 1] tensors. */
  peak?: number;
  /** Compare MATLAB's Y channel of 3-channel RGB inputs (values on the peak's scale). Default false. */
  y?: boolean;
}

function planes(x: RawImage | Tensor, peak: number, y: boolean, fn: string, arg: string): { data: ArrayLike<number>; w: number; h: number; c: number; hwc: boolean } {
  if ('shape' in x) {
    const t = x as Tensor;
    if (t.shape.length !== 4 || t.shape[0] !== 1) throw rangeError(fn, arg, 'a [1, C, H, W] tensor', `shape [${t.shape.join(',')}]`, true);
    const [, c, h, w] = t.shape;
    let data: ArrayLike<number> = t.data();
    if (y) {
      if (c !== 3) throw rangeError(fn, arg, 'an RGB tensor (3 channels) with y: true', `${c} channels`, true);
      // Interleave, convert at 8-bit scale as float, back to the peak's scale.
      const plane = h * w;
      const rgb = new Float32Array(plane * 3);
      for (let p = 0; p < plane; p++) for (let k = 0; k < 3; k++) rgb[3 * p + k] = (data[k * plane + p] as number) / peak;
      const yy = rgbToYPixels(rgb, plane);
      for (let p = 0; p < plane; p++) yy[p] *= peak;
      return { data: yy, w, h, c: 1, hwc: true };
    }
    return { data, w, h, c, hwc: false };
  }
  const img = checkImage(fn, arg, x);
  if (y) {
    if (img.channels !== 3) throw rangeError(fn, arg, 'an RGB image (3 channels) with y: true', `${img.channels} channels`, true);
    if (img.data instanceof Uint8Array) {
      // MATLAB's rgb2ycbcr on uint8 without rounding: evaluate in float at 8-bit scale.
      const f = new Float32Array(img.data.length);
      for (let i = 0; i < f.length; i++) f[i] = img.data[i] / 255;
      const yy = rgbToYPixels(f, img.width * img.height);
      for (let i = 0; i < yy.length; i++) yy[i] *= 255;
      return { data: yy, w: img.width, h: img.height, c: 1, hwc: true };
    }
    const f = new Float32Array(img.data.length);
    for (let i = 0; i < f.length; i++) f[i] = img.data[i] / peak;
    const yy = rgbToYPixels(f, img.width * img.height);
    for (let i = 0; i < yy.length; i++) yy[i] *= peak;
    return { data: yy, w: img.width, h: img.height, c: 1, hwc: true };
  }
  return { data: img.data, w: img.width, h: img.height, c: img.channels, hwc: true };
}

/** Mean squared error between two images of the same size, `border` pixels removed on each side. */
export function mse(a: RawImage | Tensor, b: RawImage | Tensor, options: PsnrOptions = {}): number {
  checkKeys('mse', options, ['border', 'peak', 'y']);
  const border = checkInt('mse', 'border', options.border ?? 0, 0);
  const peak = checkNumber('mse', 'peak', options.peak ?? 255, Number.MIN_VALUE);
  if (a === undefined || b === undefined) throw typeError('mse', a === undefined ? 'a' : 'b', 'an image or tensor', undefined);
  const A = planes(a, peak, options.y ?? false, 'psnr', 'a');
  const B = planes(b, peak, options.y ?? false, 'psnr', 'b');
  if (A.w !== B.w || A.h !== B.h || A.c !== B.c) throw rangeError('psnr', 'b', `the size of 'a' (${A.w}x${A.h}x${A.c})`, `${B.w}x${B.h}x${B.c}`, true);
  if (A.w <= 2 * border || A.h <= 2 * border) throw rangeError('psnr', 'border', `smaller than half the image (${A.w}x${A.h})`, border);
  const { w, h, c } = A;
  let se = 0;
  let n = 0;
  for (let y = border; y < h - border; y++)
    for (let x = border; x < w - border; x++)
      for (let k = 0; k < c; k++) {
        const ia = A.hwc ? (y * w + x) * c + k : k * w * h + y * w + x;
        const ib = B.hwc ? (y * w + x) * c + k : k * w * h + y * w + x;
        const d = (A.data[ia] as number) - (B.data[ib] as number);
        se += d * d;
        n++;
      }
  return se / n;
}

/** PSNR = 10 log10(peak^2 / MSE) in dB (Infinity for identical images). */
export function psnr(a: RawImage | Tensor, b: RawImage | Tensor, options: PsnrOptions = {}): number {
  const peak = options.peak ?? 255;
  const e = mse(a, b, options);
  return e === 0 ? Infinity : 10 * Math.log10((peak * peak) / e);
}
