// Face alignment: the least-squares similarity (Umeyama 1991) from detected points to a
// template, and the bilinear warp of the image into the template's frame (each output pixel
// samples the source at the inverse-mapped position, through @lrface/datasets' warpAffine).
//
// Coordinates: pixel centres are integers (as in @lrface/datasets and OpenCV, which the
// ArcFace template was made with).
import { checkKeys, isTensor, rangeError, tensor, typeError, type Tensor } from '@lrface/cuda-core';
import { checkImage, warpAffine, type Affine, type RawImage, type WarpOptions } from '@lrface/datasets';
import { schemeFor, toFivePoints } from './schemes.js';

/** ArcFace / InsightFace's 5-point template for 112 x 112 crops (left eye, right eye, nose tip, left and right mouth corners). */
export const ARCFACE_TEMPLATE_112: readonly number[] = Object.freeze([
  38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041,
]);

export interface SimilarityOptions {
  /**
   * Accept a mirror-image fit (determinant -1). Default false: Umeyama's reflection check
   * keeps a proper rotation even when a reflection would fit better.
   */
  allowReflection?: boolean;
}

const SIMILARITY_OPTION_KEYS: Record<keyof SimilarityOptions, true> = { allowReflection: true };

export interface Similarity {
  /** The map src -> dst as [a, b, c, d, e, f]: x' = a x + b y + c, y' = d x + e y + f. */
  affine: Affine;
  scale: number;
  /** Radians: positive turns +x toward +y (clockwise on screen, where y points down). */
  rotation: number;
  reflection: boolean;
  /** Root mean square distance between mapped src points and dst. */
  rmse: number;
}

function checkPointList(fn: string, arg: string, value: unknown): ArrayLike<number> {
  if (!(value instanceof Float32Array || value instanceof Float64Array || Array.isArray(value)))
    throw typeError(fn, arg, 'a Float32Array, Float64Array or array of [x0, y0, x1, y1, ...]', value);
  const v = value as ArrayLike<number>;
  if (v.length < 4 || v.length % 2 !== 0) throw rangeError(fn, arg, 'an even number of coordinates for 2 or more points', `${v.length} numbers`, true);
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'number' || !Number.isFinite(v[i])) throw rangeError(fn, arg, 'finite coordinates', `${arg}[${i}] = ${v[i]}`, true);
  return v;
}

/**
 * The similarity (scale, rotation, translation; optionally a reflection) minimising the sum
 * of squared distances from mapped src points to dst points (Umeyama 1991). In 2-D the SVD
 * of the cross-covariance reduces to closed forms: with centred points, a = sum(s . d) and
 * b = sum(s x d) give the proper fit scale*(cos, sin) = (a, b) / sum|s|^2; the mirrored fit
 * uses the reflected sums. The better of the two wins only when reflections are allowed.
 */
export function estimateSimilarity(src: ArrayLike<number>, dst: ArrayLike<number>, options: SimilarityOptions = {}): Similarity {
  const fn = 'estimateSimilarity';
  checkPointList(fn, 'src', src);
  checkPointList(fn, 'dst', dst);
  if (src.length !== dst.length) throw rangeError(fn, 'dst', `${src.length / 2} points like src`, `${dst.length / 2} points`, true);
  if (typeof options !== 'object' || options === null) throw typeError(fn, 'options', 'an object', options);
  checkKeys(fn, options, SIMILARITY_OPTION_KEYS);
  const allowReflection = options.allowReflection ?? false;
  if (typeof allowReflection !== 'boolean') throw typeError(fn, 'allowReflection', 'a boolean', allowReflection);
  const n = src.length / 2;
  let msx = 0;
  let msy = 0;
  let mdx = 0;
  let mdy = 0;
  for (let k = 0; k < n; k++) {
    msx += src[2 * k];
    msy += src[2 * k + 1];
    mdx += dst[2 * k];
    mdy += dst[2 * k + 1];
  }
  msx /= n;
  msy /= n;
  mdx /= n;
  mdy /= n;
  let varS = 0;
  let a = 0; // sum sx dx + sy dy
  let b = 0; // sum sx dy - sy dx
  let ar = 0; // reflected: sum sx dx - sy dy
  let br = 0; // reflected: sum sx dy + sy dx
  for (let k = 0; k < n; k++) {
    const sx = src[2 * k] - msx;
    const sy = src[2 * k + 1] - msy;
    const dx = dst[2 * k] - mdx;
    const dy = dst[2 * k + 1] - mdy;
    varS += sx * sx + sy * sy;
    a += sx * dx + sy * dy;
    b += sx * dy - sy * dx;
    ar += sx * dx - sy * dy;
    br += sx * dy + sy * dx;
  }
  if (!(varS > 1e-12)) throw rangeError(fn, 'src', 'points that are not all the same', 'coincident points', true);
  // The fitted term's magnitude is what the fit explains: the larger one has the smaller residual.
  const reflection = allowReflection && Math.hypot(ar, br) > Math.hypot(a, b);
  const p = (reflection ? ar : a) / varS;
  const q = (reflection ? br : b) / varS;
  // Proper: [[p, -q], [q, p]]; mirrored: [[p, q], [q, -p]] (a rotation after flipping y).
  const m: Affine = reflection ? [p, q, 0, q, -p, 0] : [p, -q, 0, q, p, 0];
  m[2] = mdx - (m[0] * msx + m[1] * msy);
  m[5] = mdy - (m[3] * msx + m[4] * msy);
  let sq = 0;
  for (let k = 0; k < n; k++) {
    const x = src[2 * k];
    const y = src[2 * k + 1];
    sq += (m[0] * x + m[1] * y + m[2] - dst[2 * k]) ** 2 + (m[3] * x + m[4] * y + m[5] - dst[2 * k + 1]) ** 2;
  }
  return { affine: m, scale: Math.hypot(p, q), rotation: Math.atan2(q, p), reflection, rmse: Math.sqrt(sq / n) };
}

export interface AlignOptions extends SimilarityOptions, WarpOptions {
  /** Output [height, width] (default 112 x 112). */
  size?: [number, number];
  /** Template points in the template's own frame (default ARCFACE_TEMPLATE_112). */
  template?: ArrayLike<number>;
  /** The [height, width] the template points are given for (default 112 x 112); the template is scaled to `size`. */
  templateSize?: [number, number];
}

export interface AlignedFace<T> {
  /** The face in the template frame: a RawImage, or a tensor shaped like the input. */
  image: T;
  /** The map source-image pixels -> aligned pixels. */
  affine: Affine;
  /** RMS distance of the mapped points from the template, in output pixels. */
  rmse: number;
}

function checkSize(fn: string, arg: string, value: unknown): [number, number] {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => Number.isInteger(v) && v > 0))
    throw rangeError(fn, arg, 'a [height, width] pair of positive integers', value);
  return value as [number, number];
}

/** The template points scaled to the output size. */
export function scaledTemplate(template: ArrayLike<number>, templateSize: [number, number], size: [number, number]): Float64Array {
  const fn = 'scaledTemplate';
  checkPointList(fn, 'template', template);
  checkSize(fn, 'templateSize', templateSize);
  checkSize(fn, 'size', size);
  // Pixel-centre aligned scaling: x' = (x + 0.5) * W' / W - 0.5.
  const sx = size[1] / templateSize[1];
  const sy = size[0] / templateSize[0];
  return Float64Array.from(template, (v, i) => (i % 2 === 0 ? (v + 0.5) * sx - 0.5 : (v + 0.5) * sy - 0.5));
}

function tensorToImage(fn: string, t: Tensor): { img: RawImage<Float32Array>; batched: boolean } {
  if (t.dtype !== 'float32') throw typeError(fn, 'image', 'a float32 tensor', t);
  const batched = t.shape.length === 4;
  if (!(t.shape.length === 3 || (batched && t.shape[0] === 1))) throw rangeError(fn, 'image', 'a tensor of shape [C, H, W] or [1, C, H, W]', t);
  const [C, H, W] = t.shape.slice(-3);
  const chw = t.data() as Float32Array;
  const hwc = new Float32Array(chw.length);
  for (let c = 0; c < C; c++) for (let q = 0; q < H * W; q++) hwc[q * C + c] = chw[c * H * W + q];
  return { img: { data: hwc, width: W, height: H, channels: C }, batched };
}

function imageToTensor(img: RawImage<Float32Array>, batched: boolean): Tensor {
  const { width: W, height: H, channels: C, data } = img;
  const chw = new Float32Array(data.length);
  for (let c = 0; c < C; c++) for (let q = 0; q < H * W; q++) chw[c * H * W + q] = data[q * C + c];
  return tensor(chw, batched ? [1, C, H, W] : [C, H, W]);
}

/**
 * Aligns a face: fits the similarity from its landmarks (5 points, or 68 / 21 / 19 reduced to
 * 5) to the template and warps the image into a size[0] x size[1] crop. Takes a RawImage
 * (HWC) or a float32 tensor [C, H, W] / [1, C, H, W] and returns the same kind.
 */
export function alignFace<T extends RawImage | Tensor>(image: T, landmarks: ArrayLike<number>, options: AlignOptions = {}): AlignedFace<T> {
  const fn = 'alignFace';
  checkKeys(fn, options, ['size', 'template', 'templateSize', 'allowReflection', 'fill', 'antialias']);
  checkPointList(fn, 'landmarks', landmarks);
  const size = checkSize(fn, 'size', options.size ?? [112, 112]);
  const templateSize = checkSize(fn, 'templateSize', options.templateSize ?? [112, 112]);
  const template = options.template ?? ARCFACE_TEMPLATE_112;
  checkPointList(fn, 'template', template);
  let points: ArrayLike<number> = landmarks;
  if (landmarks.length !== template.length) {
    if (template.length !== 10) throw rangeError(fn, 'landmarks', `${template.length / 2} points like the template`, `${landmarks.length / 2} points`, true);
    const n = landmarks.length / 2;
    if (![68, 21, 19].includes(n)) throw rangeError(fn, 'landmarks', '5, 68, 21 or 19 points', `${n} points`, true);
    points = toFivePoints(landmarks, schemeFor(n));
  }
  const target = scaledTemplate(template, templateSize, size);
  const fit = estimateSimilarity(points, target, { allowReflection: options.allowReflection });
  const warp: WarpOptions = {};
  if (options.fill !== undefined) warp.fill = options.fill;
  if (options.antialias !== undefined) warp.antialias = options.antialias;
  if (isTensor(image)) {
    const { img, batched } = tensorToImage(fn, image);
    const out = warpAffine(img, fit.affine, size[1], size[0], warp);
    return { image: imageToTensor(out, batched) as T, affine: fit.affine, rmse: fit.rmse };
  }
  checkImage(fn, 'image', image);
  return { image: warpAffine(image as RawImage, fit.affine, size[1], size[0], warp) as T, affine: fit.affine, rmse: fit.rmse };
}
