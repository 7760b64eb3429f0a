// Gaussian landmark heatmaps: one map per point with an unnormalised Gaussian (peak 1) at the
// point, plus an optional background channel = 1 - max over the point maps (the LR-landmark
// paper's N+1 outputs). Any resolution: landmarks are given in image pixels and mapped onto the
// heatmap grid with pixel centres aligned.
import { tensor, type Tensor } from '@lrface/cuda-core';
import { checkInt, checkKeys, checkNumber, rangeError, typeError } from './errors.js';

export interface HeatmapOptions {
  /** Heatmap [height, width]. */
  size: [number, number];
  /** The [height, width] of the image the landmarks are in (default: the heatmap size). */
  imageSize?: [number, number];
  /** Standard deviation in heatmap pixels (default 2). */
  sigma?: number;
  /** Per point: 0 gives an all-zero map (invisible or missing points). */
  visibility?: ArrayLike<number>;
  /** Append the background channel 1 - max_k map_k (default true). */
  background?: boolean;
}

/** Writes heatmaps for one face into `out` at `offset`: (K [+1]) x H x W floats. */
export function writeHeatmaps(landmarks: ArrayLike<number>, options: HeatmapOptions, out: Float32Array, offset = 0): void {
  const [H, W] = options.size;
  const [ih, iw] = options.imageSize ?? options.size;
  const sigma = options.sigma ?? 2;
  const k = landmarks.length / 2;
  const plane = H * W;
  const sx = W / iw;
  const sy = H / ih;
  const gx = new Float64Array(W);
  const gy = new Float64Array(H);
  const inv = -1 / (2 * sigma * sigma);
  for (let p = 0; p < k; p++) {
    const base = offset + p * plane;
    out.fill(0, base, base + plane);
    const x = landmarks[2 * p];
    const y = landmarks[2 * p + 1];
    if (options.visibility && !options.visibility[p]) continue;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    // Pixel-centre alignment: image pixel centre i maps to (i + 0.5) * s - 0.5.
    const hx = (x + 0.5) * sx - 0.5;
    const hy = (y + 0.5) * sy - 0.5;
    for (let i = 0; i < W; i++) gx[i] = Math.exp((i - hx) * (i - hx) * inv);
    for (let j = 0; j < H; j++) gy[j] = Math.exp((j - hy) * (j - hy) * inv);
    for (let j = 0; j < H; j++) {
      const g = gy[j];
      if (g < 1e-12) continue;
      const row = base + j * W;
      for (let i = 0; i < W; i++) out[row + i] = g * gx[i];
    }
  }
  if (options.background ?? true) {
    const bg = offset + k * plane;
    for (let q = 0; q < plane; q++) {
      let m = 0;
      for (let p = 0; p < k; p++) {
        const v = out[offset + p * plane + q];
        if (v > m) m = v;
      }
      out[bg + q] = 1 - m;
    }
  }
}

function checkHeatmapOptions(fn: string, options: HeatmapOptions): void {
  checkKeys(fn, options, ['size', 'imageSize', 'sigma', 'visibility', 'background']);
  if (!Array.isArray(options.size) || options.size.length !== 2) throw typeError(fn, 'size', 'a [height, width] pair', options.size);
  options.size.forEach((v) => checkInt(fn, 'size', v, 1));
  if (options.imageSize !== undefined) {
    if (!Array.isArray(options.imageSize) || options.imageSize.length !== 2) throw typeError(fn, 'imageSize', 'a [height, width] pair', options.imageSize);
    options.imageSize.forEach((v) => checkNumber(fn, 'imageSize', v, Number.MIN_VALUE));
  }
  checkNumber(fn, 'sigma', options.sigma ?? 2, Number.MIN_VALUE);
}

/** Heatmaps of one face as a Float32Array of (K [+1]) x H x W. */
export function gaussianHeatmaps(landmarks: ArrayLike<number>, options: HeatmapOptions): Float32Array {
  checkHeatmapOptions('gaussianHeatmaps', options);
  if (!landmarks || landmarks.length % 2 !== 0) throw rangeError('gaussianHeatmaps', 'landmarks', 'x, y pairs (an even length)', landmarks?.length);
  if (options.visibility && options.visibility.length !== landmarks.length / 2)
    throw rangeError('gaussianHeatmaps', 'visibility', `one entry per point (${landmarks.length / 2})`, options.visibility.length);
  const [H, W] = options.size;
  const out = new Float32Array(((landmarks.length / 2) + (options.background ?? true ? 1 : 0)) * H * W);
  writeHeatmaps(landmarks, options, out);
  return out;
}

/** Heatmaps of a batch of faces as an [N, K (+1), H, W] float32 tensor. */
export function heatmapTensor(batch: ArrayLike<number>[], options: Omit<HeatmapOptions, 'visibility'> & { visibility?: ArrayLike<number>[] }): Tensor {
  const { visibility, ...rest } = options;
  checkHeatmapOptions('heatmapTensor', rest);
  if (!Array.isArray(batch) || batch.length === 0) throw typeError('heatmapTensor', 'batch', 'a non-empty array of landmark arrays', batch);
  const k = batch[0].length / 2;
  if (!batch.every((b) => b.length === 2 * k)) throw rangeError('heatmapTensor', 'batch', `faces with the same number of points (${k})`, 'different counts', true);
  if (visibility && visibility.length !== batch.length) throw rangeError('heatmapTensor', 'visibility', `one array per face (${batch.length})`, visibility.length);
  const [H, W] = rest.size;
  const channels = k + (rest.background ?? true ? 1 : 0);
  const out = new Float32Array(batch.length * channels * H * W);
  batch.forEach((lm, i) => writeHeatmaps(lm, { ...rest, ...(visibility ? { visibility: visibility[i] } : {}) }, out, i * channels * H * W));
  return tensor(out, [batch.length, channels, H, W]);
}
