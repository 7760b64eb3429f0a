// Geometric and photometric augmentation that keeps annotations consistent: an affine map
// (crop around a face box, random scale / rotation / translation / horizontal flip) applied to
// the pixels by inverse-mapped bilinear sampling and to landmarks and boxes directly, with the
// left/right point swaps of each landmark scheme; colour jitter.
//
// Coordinates: pixel centres are integers (pixel (0, 0) covers [-0.5, 0.5)^2), so a flip of a
// W-wide image maps x to W - 1 - x.
import { checkKeys, checkNumber, checkOneOf, checkRange, rangeError, typeError } from './errors.js';
import { checkImage, cropImage, imageSize, LazyImage, type Box, type DecodeOptions, type RawImage } from './image.js';
import { rngFrom, type Rng } from './random.js';

/** A 2-D affine map [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
export type Affine = [number, number, number, number, number, number];

export const IDENTITY: Affine = [1, 0, 0, 0, 1, 0];

/** m2 after m1 (apply m1 first). */
export function composeAffine(m2: Affine, m1: Affine): Affine {
  const [a2, b2, c2, d2, e2, f2] = m2;
  const [a1, b1, c1, d1, e1, f1] = m1;
  return [a2 * a1 + b2 * d1, a2 * b1 + b2 * e1, a2 * c1 + b2 * f1 + c2, d2 * a1 + e2 * d1, d2 * b1 + e2 * e1, d2 * c1 + e2 * f1 + f2];
}

export function invertAffine(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  const det = a * e - b * d;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) throw rangeError('invertAffine', 'm', 'an invertible affine map', `[${m.join(', ')}]`, true);
  return [e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det];
}

/** Applies an affine map to [x0, y0, x1, y1, ...] (NaN points stay NaN). */
export function transformPoints(points: ArrayLike<number>, m: Affine): Float32Array {
  const out = new Float32Array(points.length);
  const [a, b, c, d, e, f] = m;
  for (let k = 0; k + 1 < points.length; k += 2) {
    const x = points[k];
    const y = points[k + 1];
    out[k] = a * x + b * y + c;
    out[k + 1] = d * x + e * y + f;
  }
  return out;
}

/** The axis-aligned box around a transformed box's four corners. */
export function transformBox(box: Box, m: Affine): Box {
  const pts = transformPoints([box.x, box.y, box.x + box.width, box.y, box.x, box.y + box.height, box.x + box.width, box.y + box.height], m);
  const xs = [pts[0], pts[2], pts[4], pts[6]];
  const ys = [pts[1], pts[3], pts[5], pts[7]];
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

/** Mirror map for the 68-point iBUG / 300-W scheme (0-based): entry i is the point i becomes. */
export const MIRROR_68: readonly number[] = [
  16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, // jaw
  26, 25, 24, 23, 22, 21, 20, 19, 18, 17, // brows
  27, 28, 29, 30, // nose bridge
  35, 34, 33, 32, 31, // nostrils
  45, 44, 43, 42, 47, 46, // left eye -> right eye
  39, 38, 37, 36, 41, 40, // right eye -> left eye
  54, 53, 52, 51, 50, 49, 48, // upper outer lip
  59, 58, 57, 56, 55, // lower outer lip
  64, 63, 62, 61, 60, // upper inner lip
  67, 66, 65, // lower inner lip
];

/** Mirror map for AFLW's 21 points (FeatureCoordTypes order). */
export const MIRROR_21: readonly number[] = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 16, 15, 14, 13, 12, 19, 18, 17, 20];

/** Mirror map for AFLW-Full's 19 points (the 21 without the ears). */
export const MIRROR_19: readonly number[] = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 14, 13, 12, 17, 16, 15, 18];

/** Mirror map for the 5-point scheme: left eye, right eye, nose, left mouth corner, right mouth corner. */
export const MIRROR_5: readonly number[] = [1, 0, 2, 4, 3];

/** The mirror map for a point count (68, 21, 19 or 5), or an error. */
export function mirrorMapFor(points: number): readonly number[] {
  const map = { 68: MIRROR_68, 21: MIRROR_21, 19: MIRROR_19, 5: MIRROR_5 }[points];
  if (!map) throw rangeError('mirrorMapFor', 'points', '68, 21, 19 or 5 (or pass a mirror map)', points);
  return map;
}

/** Checks that a mirror map is an involution on 0..n-1. */
export function checkMirrorMap(fn: string, map: readonly number[], n: number): void {
  if (!Array.isArray(map) || map.length !== n) throw rangeError(fn, 'mirrorMap', `an array of ${n} indices`, map);
  map.forEach((j, i) => {
    if (!Number.isInteger(j) || j < 0 || j >= n || map[j] !== i) throw rangeError(fn, 'mirrorMap', 'a permutation that is its own inverse', `entry ${i} -> ${j}`, true);
  });
}

/** Reorders per-point values (2 numbers per point for landmarks, 1 for visibility) by a mirror map. */
export function permutePoints<T extends Float32Array | Uint8Array>(values: T, map: readonly number[], stride: 1 | 2): T {
  const out = values.slice() as T;
  for (let i = 0; i < map.length; i++) for (let s = 0; s < stride; s++) out[map[i] * stride + s] = values[i * stride + s];
  return out;
}

export interface WarpOptions {
  /** Out-of-image pixels: 'zeros' (default) or 'replicate'. */
  fill?: 'zeros' | 'replicate';
  /**
   * When the map shrinks the image by 2x or more, average k x k blocks first (k = the
   * integer part of the shrink) so the bilinear sampling does not alias. Default true.
   */
  antialias?: boolean;
}

/** Box-averages an image by an integer factor (partial blocks at the right and bottom edges are averaged over what they hold). */
function areaDownsample(img: RawImage, k: number): RawImage<Float32Array> {
  const { width: W, height: H, channels: c, data } = img;
  const w = Math.ceil(W / k);
  const h = Math.ceil(H / k);
  const out = new Float32Array(w * h * c);
  // Sum each source row into its output row (blocks of k columns), then divide by the block areas.
  const rowSums = new Float64Array(w * c);
  for (let y = 0; y < h; y++) {
    rowSums.fill(0);
    const y0 = y * k;
    const y1 = Math.min(H, y0 + k);
    for (let yy = y0; yy < y1; yy++) {
      const base = yy * W;
      for (let x = 0, xx = 0; x < w; x++) {
        const end = Math.min(W, xx + k);
        if (c === 3) {
          let r = 0;
          let g = 0;
          let b = 0;
          for (; xx < end; xx++) {
            const i = (base + xx) * 3;
            r += data[i];
            g += data[i + 1];
            b += data[i + 2];
          }
          rowSums[3 * x] += r;
          rowSums[3 * x + 1] += g;
          rowSums[3 * x + 2] += b;
        } else
          for (; xx < end; xx++) for (let ch = 0; ch < c; ch++) rowSums[x * c + ch] += data[(base + xx) * c + ch];
      }
    }
    const rows = y1 - y0;
    for (let x = 0; x < w; x++) {
      const inv = 1 / (rows * (Math.min(W, x * k + k) - x * k));
      for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = rowSums[x * c + ch] * inv;
    }
  }
  return { data: out, width: w, height: h, channels: c };
}

/** The sampling loop of {@link warpAffine}: out(x, y) = bilinear(src, inv(x, y)). */
function bilinearWarp(src: RawImage, inv: Affine, out: Uint8Array | Float32Array, width: number, height: number, replicate: boolean, round: boolean): void {
  const { width: W, height: H, channels: c, data } = src;
  const [a, b, cc, d, e, f] = inv;
  const dst = round ? new Uint8ClampedArray(out.buffer, out.byteOffset, out.length) : out;
  for (let y = 0; y < height; y++) {
    let sx = b * y + cc;
    let sy = e * y + f;
    for (let x = 0; x < width; x++, sx += a, sy += d) {
      let px = sx;
      let py = sy;
      if (replicate) {
        px = px < 0 ? 0 : px > W - 1 ? W - 1 : px;
        py = py < 0 ? 0 : py > H - 1 ? H - 1 : py;
      } else if (px <= -1 || py <= -1 || px >= W || py >= H) continue;
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      const fx = px - x0;
      const fy = py - y0;
      const o = (y * width + x) * c;
      // Neighbours outside the image weigh zero; the inner pixels take the fast path.
      const inX0 = x0 >= 0;
      const inX1 = x0 + 1 < W;
      const inY0 = y0 >= 0;
      const inY1 = y0 + 1 < H;
      const w00 = inX0 && inY0 ? (1 - fx) * (1 - fy) : 0;
      const w10 = inX1 && inY0 ? fx * (1 - fy) : 0;
      const w01 = inX0 && inY1 ? (1 - fx) * fy : 0;
      const w11 = inX1 && inY1 ? fx * fy : 0;
      const i00 = ((inY0 ? y0 : y0 + 1) * W + (inX0 ? x0 : x0 + 1)) * c;
      const i10 = ((inY0 ? y0 : y0 + 1) * W + (inX1 ? x0 + 1 : x0)) * c;
      const i01 = ((inY1 ? y0 + 1 : y0) * W + (inX0 ? x0 : x0 + 1)) * c;
      const i11 = ((inY1 ? y0 + 1 : y0) * W + (inX1 ? x0 + 1 : x0)) * c;
      // The clamped view rounds and saturates 8-bit results on store.
      if (c === 3) {
        dst[o] = w00 * data[i00] + w10 * data[i10] + w01 * data[i01] + w11 * data[i11];
        dst[o + 1] = w00 * data[i00 + 1] + w10 * data[i10 + 1] + w01 * data[i01 + 1] + w11 * data[i11 + 1];
        dst[o + 2] = w00 * data[i00 + 2] + w10 * data[i10 + 2] + w01 * data[i01 + 2] + w11 * data[i11 + 2];
      } else for (let k = 0; k < c; k++) dst[o + k] = w00 * data[i00 + k] + w10 * data[i10 + k] + w01 * data[i01 + k] + w11 * data[i11 + k];
    }
  }
}

/**
 * Resamples `img` through an affine map (source -> output coordinates) into a width x height
 * image, bilinear. The output keeps the input's data type (8-bit results are rounded).
 */
export function warpAffine<T extends Uint8Array | Float32Array>(img: RawImage<T>, m: Affine, width: number, height: number, options: WarpOptions = {}): RawImage<T> {
  checkKeys('warpAffine', options, ['fill', 'antialias']);
  checkImage('warpAffine', 'img', img);
  if (!Array.isArray(m) || m.length !== 6 || !m.every(Number.isFinite)) throw typeError('warpAffine', 'm', 'an affine map of 6 finite numbers', m);
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) throw rangeError('warpAffine', 'width', 'positive integer output sizes', `${width}x${height}`, true);
  const fill = checkOneOf('warpAffine', 'fill', options.fill ?? 'zeros', ['zeros', 'replicate'] as const);
  let src: RawImage = img;
  let inv = invertAffine(m);
  const shrink = 1 / Math.sqrt(Math.abs(m[0] * m[4] - m[1] * m[3]));
  if ((options.antialias ?? true) && shrink >= 2 && img.width > 1 && img.height > 1) {
    // Only the part of the source the output sees is averaged.
    const corners = transformPoints([-1, -1, width, -1, -1, height, width, height], inv);
    const xs = [corners[0], corners[2], corners[4], corners[6]];
    const ys = [corners[1], corners[3], corners[5], corners[7]];
    const k = Math.floor(shrink);
    const x0 = Math.max(0, Math.floor(Math.min(...xs)) - k);
    const y0 = Math.max(0, Math.floor(Math.min(...ys)) - k);
    const x1 = Math.min(img.width, Math.ceil(Math.max(...xs)) + k + 1);
    const y1 = Math.min(img.height, Math.ceil(Math.max(...ys)) + k + 1);
    if (x1 > x0 && y1 > y0) {
      const region = cropImage(img, { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }).image;
      src = areaDownsample(region, k);
      // Source pixel (x, y) of the region lands at ((x - x0 + 0.5) / k - 0.5, ...) in the averaged image.
      const toSmall: Affine = [1 / k, 0, (0.5 - x0) / k - 0.5, 0, 1 / k, (0.5 - y0) / k - 0.5];
      inv = composeAffine(toSmall, inv);
    }
  }
  const isByte = img.data instanceof Uint8Array;
  const out = (isByte ? new Uint8Array(width * height * src.channels) : new Float32Array(width * height * src.channels)) as T;
  bilinearWarp(src, inv, out, width, height, fill === 'replicate', isByte);
  return { data: out, width, height, channels: src.channels };
}

/** Random augmentation parameters (see {@link randomAugmentation}). */
export interface AugmentParams {
  /** Isotropic scale about the output centre. */
  scale: number;
  /** Degrees, counter-clockwise on screen. */
  rotation: number;
  /** Output pixels. */
  tx: number;
  ty: number;
  flip: boolean;
}

export interface AugmentRanges {
  /** Scale range (default [0.9, 1.1]). */
  scale?: [number, number];
  /** Rotation in degrees, uniform in [-r, r] (default 30). */
  rotation?: number;
  /** Translation in output pixels, uniform in [-t, t] per axis (default 20). */
  translation?: number;
  /** Probability of a horizontal flip (default 0.5). */
  flip?: number;
}

/** Draws augmentation parameters; defaults are the landmark papers' ranges (scale 0.9-1.1, +-30 degrees, +-20 px, flip 0.5). */
export function randomAugmentation(rng: Rng, ranges: AugmentRanges = {}): AugmentParams {
  checkKeys('randomAugmentation', ranges, ['scale', 'rotation', 'translation', 'flip']);
  const [s0, s1] = checkRange('randomAugmentation', 'scale', ranges.scale ?? [0.9, 1.1], Number.MIN_VALUE);
  const rot = checkNumber('randomAugmentation', 'rotation', ranges.rotation ?? 30, 0, 180);
  const tr = checkNumber('randomAugmentation', 'translation', ranges.translation ?? 20, 0);
  const pf = checkNumber('randomAugmentation', 'flip', ranges.flip ?? 0.5, 0, 1);
  return { scale: rng.uniform(s0, s1), rotation: rng.uniform(-rot, rot), tx: rng.uniform(-tr, tr), ty: rng.uniform(-tr, tr), flip: rng.chance(pf) };
}

/**
 * The map from source pixels to a size x size output that shows `box` (widened by
 * `margin` on each side, made square about its centre) and then applies `params` about the
 * output centre: scale and rotation, flip, translation.
 */
export function cropAffine(box: Box, size: [number, number], margin = 0, params?: AugmentParams): Affine {
  const [outH, outW] = size;
  const side = Math.max(box.width, box.height) * (1 + 2 * margin);
  if (!(side > 0)) throw rangeError('cropAffine', 'box', 'a box with a positive size', `${box.width}x${box.height}`, true);
  // Box centre in pixel-centre coordinates: the box spans [x - 0.5, x + width - 0.5].
  const cx = box.x + box.width / 2 - 0.5;
  const cy = box.y + box.height / 2 - 0.5;
  const ocx = (outW - 1) / 2;
  const ocy = (outH - 1) / 2;
  const s = Math.min(outW, outH) / side;
  let m: Affine = [s, 0, ocx - s * cx, 0, s, ocy - s * cy];
  if (params) {
    const th = (-params.rotation * Math.PI) / 180; // y points down: negate for counter-clockwise on screen
    const cs = Math.cos(th) * params.scale;
    const sn = Math.sin(th) * params.scale;
    const about: Affine = [cs, -sn, ocx - cs * ocx + sn * ocy, sn, cs, ocy - sn * ocx - cs * ocy];
    m = composeAffine(about, m);
    if (params.flip) m = composeAffine([-1, 0, outW - 1, 0, 1, 0], m);
    m = composeAffine([1, 0, params.tx, 0, 1, params.ty], m);
  }
  return m;
}

/** An image with its faces' annotations, as augmentation takes and returns them. */
export interface Annotated<T extends Uint8Array | Float32Array = Uint8Array | Float32Array> {
  image: RawImage<T>;
  boxes?: Box[];
  landmarks?: Float32Array[];
  visibility?: Uint8Array[];
}

export interface AffineAugmentOptions extends WarpOptions {
  /** Output [height, width]. */
  size: [number, number];
  /** The map from source to output (e.g. {@link cropAffine}). */
  affine: Affine;
  /** Whether the map mirrors the image (the landmarks are then re-indexed). Default: the sign of the map's determinant. */
  flipped?: boolean;
  /** Landmark mirror map (default: by point count: 68, 21, 19 or 5). */
  mirrorMap?: readonly number[];
}

/**
 * Warps an image and moves its landmarks and boxes with it. Mirroring maps re-index the
 * landmarks and their visibility so "left eye" stays the subject's left eye in the output.
 */
export function applyAffine<T extends Uint8Array | Float32Array>(input: Annotated<T>, options: AffineAugmentOptions, warpPixels = true): Annotated<T> {
  checkKeys('applyAffine', options, ['size', 'affine', 'flipped', 'mirrorMap', 'fill', 'antialias']);
  const { affine: m } = options;
  const [h, w] = options.size;
  const image = warpPixels ? warpAffine(input.image, m, w, h, { fill: options.fill ?? 'zeros', antialias: options.antialias ?? true }) : input.image;
  const flipped = options.flipped ?? m[0] * m[4] - m[1] * m[3] < 0;
  const landmarks = (input.landmarks ?? []).map((p) => {
    const t = transformPoints(p, m);
    if (!flipped) return t;
    const map = options.mirrorMap ?? mirrorMapFor(p.length / 2);
    checkMirrorMap('applyAffine', map, p.length / 2);
    return permutePoints(t, map, 2);
  });
  const visibility = (input.visibility ?? []).map((v) => (flipped ? permutePoints(v, options.mirrorMap ?? mirrorMapFor(v.length), 1) : v.slice()));
  const boxes = (input.boxes ?? []).map((b) => transformBox({ x: b.x - 0.5, y: b.y - 0.5, width: b.width, height: b.height }, m)).map((b) => ({ ...b, x: b.x + 0.5, y: b.y + 0.5 }));
  return { image, boxes, landmarks, visibility };
}

export interface ColorJitterOptions {
  /** Brightness factor drawn from [1 - b, 1 + b] (default 0.2). */
  brightness?: number;
  /** Contrast factor drawn from [1 - c, 1 + c] about the mean grey level (default 0.2). */
  contrast?: number;
  /** Saturation factor drawn from [1 - s, 1 + s] about each pixel's grey (default 0.2). */
  saturation?: number;
  /** Pixel value range, for clamping (default 255 for 8-bit images, 1 for float). */
  max?: number;
}

const COLOR_JITTER_OPTION_KEYS: Record<keyof ColorJitterOptions, true> = { brightness: true, contrast: true, saturation: true, max: true };

/** Random brightness, contrast and saturation changes (in that order), clamped to [0, max]. */
export function colorJitter<T extends Uint8Array | Float32Array>(img: RawImage<T>, seed: number | Rng, options: ColorJitterOptions = {}): RawImage<T> {
  checkKeys('colorJitter', options, COLOR_JITTER_OPTION_KEYS);
  checkImage('colorJitter', 'img', img);
  const rng = rngFrom(seed);
  const isByte = img.data instanceof Uint8Array;
  const max = checkNumber('colorJitter', 'max', options.max ?? (isByte ? 255 : 1), Number.MIN_VALUE);
  const draw = (name: string, v: number | undefined) => {
    const r = checkNumber('colorJitter', name, v ?? 0.2, 0, 1);
    return rng.uniform(1 - r, 1 + r);
  };
  const b = draw('brightness', options.brightness);
  const c = draw('contrast', options.contrast);
  const s = draw('saturation', options.saturation);
  const { data, channels: ch } = img;
  const n = img.width * img.height;
  const grey = (p: number) => (ch === 3 ? 0.299 * data[3 * p] + 0.587 * data[3 * p + 1] + 0.114 * data[3 * p + 2] : data[p * ch]);
  let mean = 0;
  for (let p = 0; p < n; p++) mean += grey(p);
  // Brightness scales the mean too; contrast then works about the brightened mean.
  const m = (b * mean) / Math.max(1, n);
  const out = (isByte ? new Uint8Array(data.length) : new Float32Array(data.length)) as T;
  const dst = isByte ? new Uint8ClampedArray(out.buffer, out.byteOffset, out.length) : out;
  const clamp = (v: number) => (v < 0 ? 0 : v > max ? max : v);
  if (ch === 3) {
    for (let p = 0, o = 0; p < n; p++, o += 3) {
      const g = (grey(p) * b - m) * c + m;
      for (let k = 0; k < 3; k++) {
        const v = (data[o + k] * b - m) * c + m;
        dst[o + k] = clamp(g + (v - g) * s);
      }
    }
  } else for (let i = 0; i < data.length; i++) dst[i] = clamp((data[i] * b - m) * c + m);
  return { ...img, data: out };
}

export interface FaceAugmentOptions extends AugmentRanges, WarpOptions {
  /** Output [height, width]. */
  size: [number, number];
  /** Context around the face box, a fraction of its side on each side (default 0.2). */
  margin?: number;
  /** Which face to centre on (default 0). */
  face?: number;
  /** Colour jitter options, or false for none (default: jitter with the defaults). */
  jitter?: ColorJitterOptions | false;
  /** Landmark mirror map (default by point count). */
  mirrorMap?: readonly number[];
  /** Skip the random part (crop only). Default false. */
  deterministic?: boolean;
}

/** {@link augmentFaceFrom}'s options: {@link augmentFace}'s and the colour mode the region is decoded in. */
export type FaceAugmentFromOptions = FaceAugmentOptions & Pick<DecodeOptions, 'color'>;

const FACE_AUGMENT_OPTION_KEYS: Record<keyof FaceAugmentOptions, true> = {
  size: true, margin: true, face: true, jitter: true, mirrorMap: true, deterministic: true, scale: true, rotation: true, translation: true, flip: true, fill: true, antialias: true,
};
const FACE_AUGMENT_FROM_OPTION_KEYS: Record<keyof FaceAugmentFromOptions, true> = { ...FACE_AUGMENT_OPTION_KEYS, color: true };

function checkFaceAugmentOptions(fn: string, options: FaceAugmentOptions, known: Readonly<Record<string, true>>): void {
  checkKeys(fn, options, known);
  // Checked even when no jitter is drawn (deterministic): a misspelt key is a mistake either way.
  if (options.jitter !== undefined && options.jitter !== false) checkKeys(fn, options.jitter, COLOR_JITTER_OPTION_KEYS, 'options.jitter');
}

/**
 * The standard landmark-training augmentation: crop around a face box with a margin, random
 * scale / rotation / translation / flip (see {@link randomAugmentation}), colour jitter. Every
 * face's landmarks and boxes follow the pixels.
 */
export function augmentFace<T extends Uint8Array | Float32Array>(input: Annotated<T>, seed: number | Rng, options: FaceAugmentOptions): Annotated<T> & { affine: Affine; params: AugmentParams | null } {
  checkFaceAugmentOptions('augmentFace', options, FACE_AUGMENT_OPTION_KEYS);
  const rng = rngFrom(seed);
  const face = options.face ?? 0;
  const box = input.boxes?.[face];
  if (!box) throw rangeError('augmentFace', 'face', `the index of a box (the input has ${input.boxes?.length ?? 0})`, face);
  const { scale, rotation, translation, flip } = options;
  const params = options.deterministic ? null : randomAugmentation(rng, { ...(scale ? { scale } : {}), ...(rotation !== undefined ? { rotation } : {}), ...(translation !== undefined ? { translation } : {}), ...(flip !== undefined ? { flip } : {}) });
  const affine = cropAffine(box, options.size, options.margin ?? 0.2, params ?? undefined);
  const out = applyAffine(input, { size: options.size, affine, fill: options.fill ?? 'zeros', antialias: options.antialias ?? true, ...(options.mirrorMap ? { mirrorMap: options.mirrorMap } : {}) });
  if (options.jitter !== false && !options.deterministic) out.image = colorJitter(out.image, rng, options.jitter ?? {});
  return { ...out, affine, params };
}

/** The integer source region an affine map's output can read (its preimage, widened for filtering), clipped to the image. */
export function sourceRegion(m: Affine, size: [number, number], imageSize?: { width: number; height: number }): Box {
  const [h, w] = size;
  const inv = invertAffine(m);
  const corners = transformPoints([-1, -1, w, -1, -1, h, w, h], inv);
  const k = Math.ceil(1 / Math.sqrt(Math.abs(m[0] * m[4] - m[1] * m[3]))) + 1;
  let x0 = Math.floor(Math.min(corners[0], corners[2], corners[4], corners[6])) - k;
  let y0 = Math.floor(Math.min(corners[1], corners[3], corners[5], corners[7])) - k;
  let x1 = Math.ceil(Math.max(corners[0], corners[2], corners[4], corners[6])) + k + 1;
  let y1 = Math.ceil(Math.max(corners[1], corners[3], corners[5], corners[7])) + k + 1;
  if (imageSize) {
    x0 = Math.max(0, x0);
    y0 = Math.max(0, y0);
    x1 = Math.min(imageSize.width, x1);
    y1 = Math.min(imageSize.height, y1);
  }
  return { x: x0, y: y0, width: Math.max(1, x1 - x0), height: Math.max(1, y1 - y0) };
}

/**
 * {@link augmentFace} reading the pixels from an image file: the random map is drawn first and
 * only the source region it needs is decoded (natively, by sharp), which is what a loader wants.
 */
export async function augmentFaceFrom(
  image: LazyImage,
  annotations: Omit<Annotated, 'image'>,
  seed: number | Rng,
  options: FaceAugmentFromOptions,
): Promise<Annotated<Uint8Array> & { affine: Affine; params: AugmentParams | null }> {
  if (!(image instanceof LazyImage)) throw typeError('augmentFaceFrom', 'image', 'a LazyImage', image);
  checkFaceAugmentOptions('augmentFaceFrom', options, FACE_AUGMENT_FROM_OPTION_KEYS);
  const { color, ...rest } = options;
  const rng = rngFrom(seed);
  // The same draws as augmentFace: params first, then jitter.
  const face = rest.face ?? 0;
  const box = annotations.boxes?.[face];
  if (!box) throw rangeError('augmentFaceFrom', 'face', `the index of a box (the input has ${annotations.boxes?.length ?? 0})`, face);
  const { scale, rotation, translation, flip } = rest;
  const params = rest.deterministic ? null : randomAugmentation(rng, { ...(scale ? { scale } : {}), ...(rotation !== undefined ? { rotation } : {}), ...(translation !== undefined ? { translation } : {}), ...(flip !== undefined ? { flip } : {}) });
  const affine = cropAffine(box, rest.size, rest.margin ?? 0.2, params ?? undefined);
  // Clipped to the image, so 'replicate' sees the true edge pixels.
  const region = sourceRegion(affine, rest.size, await imageSize(image.source));
  const pixels = await image.decodeRegion(region, color ? { color } : {});
  // Pixels are region-relative; annotations stay in image coordinates.
  const shifted = composeAffine(affine, [1, 0, region.x, 0, 1, region.y]);
  const warped = warpAffine(pixels, shifted, rest.size[1], rest.size[0], { fill: rest.fill ?? 'zeros', antialias: rest.antialias ?? true });
  const moved = applyAffine({ image: { data: new Uint8Array(0), width: 0, height: 0, channels: pixels.channels }, ...annotations }, { size: [1, 1], affine, ...(rest.mirrorMap ? { mirrorMap: rest.mirrorMap } : {}) }, false);
  let out: RawImage<Uint8Array> = warped;
  if (rest.jitter !== false && !rest.deterministic) out = colorJitter(out, rng, rest.jitter ?? {});
  return { image: out, boxes: moved.boxes, landmarks: moved.landmarks, visibility: moved.visibility, affine, params };
}
