// SR metrics as the literature computes them (07_evaluation_protocols §1): on the BT.601 Y
// channel (MATLAB rgb2ycbcr) of 8-bit images, `scale` pixels shaved from each side; PSNR in
// float64; SSIM of Wang et al. (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, L 255, 'valid'
// filtering, mean of the map), as MATLAB ssim / the SR benchmark code.
import { psnr, checkImage, checkKeys, rangeError, typeError, type RawImage } from '@lrface/datasets';

export interface SsimOptions {
  /** Pixels removed from each side before comparing. Default 0. */
  border?: number;
  /** Dynamic range L (default 255). */
  peak?: number;
  /** Gaussian window side (default 11) and sigma (default 1.5). */
  windowSize?: number;
  sigma?: number;
  k1?: number;
  k2?: number;
}

const SSIM_OPTION_KEYS: Record<keyof SsimOptions, true> = { border: true, peak: true, windowSize: true, sigma: true, k1: true, k2: true };

/** Normalised 2-D Gaussian window (separable weights, outer product). */
export function gaussianWindow(size: number, sigma: number): Float64Array {
  const g = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) s += g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) g[i] /= s;
  return g;
}

function plane(fn: string, arg: string, img: unknown): RawImage {
  const i = checkImage(fn, arg, img);
  if (i.channels !== 1) throw rangeError(fn, arg, 'a single-channel (Y) image', `${i.channels} channels`, true);
  return i;
}

/**
 * SSIM between two single-channel images on the 0..255 scale (uint8 or float). Separable
 * Gaussian filtering over the 'valid' region, mean of the SSIM map.
 */
export function ssim(a: RawImage, b: RawImage, options: SsimOptions = {}): number {
  checkKeys('ssim', options, SSIM_OPTION_KEYS);
  const A = plane('ssim', 'a', a);
  const B = plane('ssim', 'b', b);
  if (A.width !== B.width || A.height !== B.height) throw rangeError('ssim', 'b', `the size of 'a' (${A.width}x${A.height})`, `${B.width}x${B.height}`, true);
  const border = options.border ?? 0;
  if (!Number.isInteger(border) || border < 0) throw rangeError('ssim', 'border', 'an integer >= 0', border);
  const win = options.windowSize ?? 11;
  if (!Number.isInteger(win) || win < 1 || win % 2 === 0) throw rangeError('ssim', 'windowSize', 'an odd integer >= 1', win);
  const sigma = options.sigma ?? 1.5;
  if (!(typeof sigma === 'number' && sigma > 0)) throw rangeError('ssim', 'sigma', '> 0', sigma);
  const L = options.peak ?? 255;
  const c1 = ((options.k1 ?? 0.01) * L) ** 2;
  const c2 = ((options.k2 ?? 0.03) * L) ** 2;
  const w = A.width - 2 * border;
  const h = A.height - 2 * border;
  if (w < win || h < win) throw rangeError('ssim', 'a', `at least ${win}x${win} after removing a border of ${border}`, `${w}x${h}`, true);
  const g = gaussianWindow(win, sigma);
  const n = w * h;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      const src = (r + border) * A.width + c + border;
      x[r * w + c] = A.data[src];
      y[r * w + c] = B.data[src];
    }
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  // 'valid' separable filtering: rows then columns.
  const ow = w - win + 1;
  const oh = h - win + 1;
  const filter = (src: Float64Array): Float64Array => {
    const tmp = new Float64Array(h * ow);
    for (let r = 0; r < h; r++)
      for (let c = 0; c < ow; c++) {
        let s = 0;
        for (let k = 0; k < win; k++) s += g[k] * src[r * w + c + k];
        tmp[r * ow + c] = s;
      }
    const out = new Float64Array(oh * ow);
    for (let r = 0; r < oh; r++)
      for (let c = 0; c < ow; c++) {
        let s = 0;
        for (let k = 0; k < win; k++) s += g[k] * tmp[(r + k) * ow + c];
        out[r * ow + c] = s;
      }
    return out;
  };
  const mx = filter(x);
  const my = filter(y);
  const sxx = filter(xx);
  const syy = filter(yy);
  const sxy = filter(xy);
  let total = 0;
  for (let i = 0; i < mx.length; i++) {
    const vx = sxx[i] - mx[i] * mx[i];
    const vy = syy[i] - my[i] * my[i];
    const cxy = sxy[i] - mx[i] * my[i];
    total += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
  }
  return total / mx.length;
}

/**
 * MATLAB rgb2ycbcr's Y of 8-bit RGB pixels, rounded to 8 bits as MATLAB returns it for uint8
 * input. A one-channel image is returned as it is (already Y).
 */
export function lumaUint8(img: RawImage): RawImage<Uint8Array> {
  const i = checkImage('lumaUint8', 'img', img);
  if (i.channels === 1) {
    if (i.data instanceof Uint8Array) return i as RawImage<Uint8Array>;
    throw typeError('lumaUint8', 'img', 'an 8-bit image', i.data);
  }
  if (i.channels !== 3) throw rangeError('lumaUint8', 'img', 'a 1- or 3-channel image', `${i.channels} channels`, true);
  if (!(i.data instanceof Uint8Array)) throw typeError('lumaUint8', 'img', 'an 8-bit image', i.data);
  const n = i.width * i.height;
  const out = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const r = i.data[3 * p], g = i.data[3 * p + 1], b = i.data[3 * p + 2];
    out[p] = Math.round(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255);
  }
  return { data: out, width: i.width, height: i.height, channels: 1 };
}

export interface SrScores {
  psnr: number;
  ssim: number;
}

/**
 * PSNR and SSIM of a super-resolved image against the ground truth, both 8-bit (RGB or Y), on
 * their 8-bit Y channels with `border` (= the scale) pixels shaved from each side.
 */
export function srScores(sr: RawImage, hr: RawImage, border: number): SrScores {
  const a = lumaUint8(sr);
  const b = lumaUint8(hr);
  if (a.width !== b.width || a.height !== b.height) throw rangeError('srScores', 'hr', `the size of 'sr' (${a.width}x${a.height})`, `${b.width}x${b.height}`, true);
  return { psnr: psnr(a, b, { border }), ssim: ssim(a, b, { border }) };
}
