// SRINC-style training patches: an image's Y channel is degraded by bicubic down- then
// up-sampling at a scale (drawn per image from the model's scale set for SRINC-F), and aligned
// 51x51 patches are cut from the degraded input and the original at the same places.
import { tensor, type Tensor } from '@lrface/cuda-core';
import { bicubicDegrade } from './degrade.js';
import { checkInt, checkKeys, rangeError, typeError } from './errors.js';
import { checkImage, imageToTensor, type RawImage } from './image.js';
import { rngFrom, type Rng } from './random.js';

export interface PatchOptions {
  /** Patch side (default 51, SRINC's training size). */
  size?: number;
  /** Patches per image, at uniformly random positions (default 16). Ignored when `stride` is given. */
  count?: number;
  /** Cut a regular grid with this stride instead of random positions. */
  stride?: number;
  /** Scale factors to draw from, one per image (default [2, 3, 4]; include 1 for SRINC-F's identity case). */
  scales?: number[];
  /** Seed or generator for the scale and positions. */
  seed?: number | Rng;
}

/** Aligned patches: input (degraded) and target (original), both [n, 1, size, size] in [0, 1]. */
export interface PatchPairs {
  input: Tensor;
  target: Tensor;
  /** The scale used for the image. */
  scale: number;
  /** Top-left corners [x, y] in the (modcropped) image. */
  positions: [number, number][];
}

/**
 * Cuts aligned (bicubic-degraded, original) patch pairs from one single-channel image (8-bit
 * values, or floats in [0, 1]) — normally the Y channel from decodeImage(..., { color: 'y' }).
 */
export function srPatches(image: RawImage, options: PatchOptions = {}): PatchPairs {
  checkKeys('srPatches', options, ['size', 'count', 'stride', 'scales', 'seed']);
  checkImage('srPatches', 'image', image);
  if (image.channels !== 1) throw rangeError('srPatches', 'image', 'a single-channel (Y) image', `${image.channels} channels`, true);
  const size = checkInt('srPatches', 'size', options.size ?? 51, 1);
  const scales = options.scales ?? [2, 3, 4];
  if (!Array.isArray(scales) || scales.length === 0) throw typeError('srPatches', 'scales', 'a non-empty array of integer scales', scales);
  scales.forEach((s) => checkInt('srPatches', 'scales', s, 1));
  const rng = rngFrom(options.seed);
  const scale = scales[rng.int(scales.length)];
  const x = imageToTensor(image, { normalize: image.data instanceof Uint8Array });
  let hr: Tensor;
  let lr: Tensor;
  if (scale === 1) {
    hr = x;
    lr = x;
  } else {
    [hr, lr] = bicubicDegrade(x, scale);
  }
  const [, , h, w] = hr.shape;
  if (h < size || w < size) throw rangeError('srPatches', 'image', `at least ${size}x${size} after cropping to a multiple of ${scale}`, `${w}x${h}`, true);
  const positions: [number, number][] = [];
  if (options.stride !== undefined) {
    const stride = checkInt('srPatches', 'stride', options.stride, 1);
    for (let y = 0; y + size <= h; y += stride) for (let xx = 0; xx + size <= w; xx += stride) positions.push([xx, y]);
  } else {
    const count = checkInt('srPatches', 'count', options.count ?? 16, 1);
    for (let i = 0; i < count; i++) positions.push([rng.int(w - size + 1), rng.int(h - size + 1)]);
  }
  const hrData = hr.data();
  const lrData = lr.data();
  const n = positions.length;
  const inp = new Float32Array(n * size * size);
  const tgt = new Float32Array(n * size * size);
  positions.forEach(([px, py], i) => {
    for (let r = 0; r < size; r++) {
      const src = (py + r) * w + px;
      inp.set(lrData.subarray(src, src + size) as Float32Array, (i * size + r) * size);
      tgt.set(hrData.subarray(src, src + size) as Float32Array, (i * size + r) * size);
    }
  });
  if (lr !== x) lr.dispose();
  if (hr !== x) hr.dispose();
  x.dispose();
  return { input: tensor(inp, [n, 1, size, size]), target: tensor(tgt, [n, 1, size, size]), scale, positions };
}
