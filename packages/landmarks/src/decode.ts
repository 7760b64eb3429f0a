// Heatmap decoding: per map, the integer argmax, a sub-pixel refinement and the peak value as
// confidence; then heatmap pixels -> network-input (crop) pixels -> source-image pixels.
//
// Coordinate convention (the same as @lrface/datasets' heatmaps and crops): pixel centres are
// integers, pixel (0, 0) covers [-0.5, 0.5)^2. A grid of W pixels spans [-0.5, W - 0.5], so a
// heatmap of width W over a crop of width Wc maps x_h to x_c = (x_h + 0.5) * Wc / W - 0.5, and
// a crop showing the box {x, y, width, height} (which spans [x - 0.5, x + width - 0.5]) maps
// x_c to x = x - 0.5 + (x_c + 0.5) * width / Wc.
import { checkKeys, isTensor, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { invertAffine, transformPoints, type Affine, type Box } from '@lrface/datasets';

export type Refinement = 'none' | 'quarter' | 'taylor';

export interface DecodeOptions {
  /** The last channel is a background map and is not decoded (default false). */
  background?: boolean;
  /**
   * Sub-pixel refinement of the argmax (default 'quarter'):
   * - 'none': the integer argmax;
   * - 'quarter': a quarter-pixel step along each axis toward the higher neighbour (Newell et
   *   al.'s hourglass, HRNet);
   * - 'taylor': a second-order Taylor expansion of the log heatmap around the argmax (DARK,
   *   Zhang et al. 2020), exact for a Gaussian peak; falls back to 'quarter' where the 3x3
   *   neighbourhood leaves the map or the log surface is not a maximum there.
   */
  refine?: Refinement;
  /**
   * Maps with a peak value at or below this give NaN coordinates (no point found; default 0,
   * so an all-zero map decodes to NaN).
   */
  minPeak?: number;
  /** The [height, width] of the network input the heatmaps cover (default: the heatmap size). */
  inputSize?: [number, number];
  /**
   * Per batch item, the image box the network input shows (the crop was the box resized to
   * inputSize); coordinates are returned in image pixels. One box for the whole batch, or one per item.
   */
  boxes?: Box | Box[];
  /**
   * Per batch item, the affine map image -> network input (as @lrface/datasets' cropAffine
   * returns); coordinates are returned in image pixels. Exclusive with `boxes`.
   */
  affines?: Affine | Affine[];
}

export interface DecodedLandmarks {
  /** [B, N, 2] as x, y per point, batch-major. */
  points: Float32Array;
  /** The peak heatmap value per point, [B, N]. */
  confidence: Float32Array;
  batch: number;
  /** Points per item (channels without the background). */
  count: number;
}

const FN = 'decodeHeatmaps';
const REFINEMENTS: readonly Refinement[] = ['none', 'quarter', 'taylor'];
const OPTION_KEYS = ['background', 'refine', 'minPeak', 'inputSize', 'boxes', 'affines'];
// Floor for the log heatmap (DARK uses the same): zero neighbours stay finite.
const LOG_FLOOR = 1e-10;

function checkShape(shape: unknown): [number, number, number, number] {
  if (!Array.isArray(shape) || shape.length !== 4) throw rangeError(FN, 'shape', 'a [batch, channels, height, width] shape', shape);
  for (const d of shape) if (!Number.isInteger(d) || d < 1) throw rangeError(FN, 'shape', 'positive integer sizes', `[${shape.join(', ')}]`, true);
  return shape as [number, number, number, number];
}

function checkBox(fn: string, box: unknown, arg: string): Box {
  const b = box as Box;
  if (typeof box !== 'object' || box === null || ![b.x, b.y, b.width, b.height].every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw typeError(fn, arg, 'a box {x, y, width, height} of finite numbers', box);
  if (!(b.width > 0 && b.height > 0)) throw rangeError(fn, arg, 'a box with a positive width and height', `${b.width}x${b.height}`, true);
  return b;
}

function perItem<T>(value: T | T[], batch: number, arg: string, isOne: (v: unknown) => boolean): T[] {
  if (isOne(value)) return Array.from({ length: batch }, () => value as T);
  if (!Array.isArray(value) || value.length !== batch) throw rangeError(FN, arg, `one value or an array of ${batch} (one per batch item)`, value);
  return value as T[];
}

const isAffine = (v: unknown): boolean => Array.isArray(v) && v.length === 6 && v.every((x) => typeof x === 'number');

/** Per batch item, the map from network-input pixels to output pixels (null = stay in input pixels). */
function outputMaps(options: DecodeOptions, batch: number, inputSize: [number, number]): (Affine | null)[] {
  if (options.boxes !== undefined && options.affines !== undefined) throw typeError(FN, 'boxes', 'absent when affines are given (use one)', 'both', true);
  if (options.boxes !== undefined) {
    const boxes = perItem(options.boxes, batch, 'boxes', (v) => !Array.isArray(v));
    const [h, w] = inputSize;
    return boxes.map((box, i) => {
      const b = checkBox(FN, box, `boxes[${i}]`);
      const sx = b.width / w;
      const sy = b.height / h;
      return [sx, 0, b.x - 0.5 + 0.5 * sx, 0, sy, b.y - 0.5 + 0.5 * sy];
    });
  }
  if (options.affines !== undefined) {
    const maps = perItem(options.affines, batch, 'affines', isAffine);
    return maps.map((m, i) => {
      if (!isAffine(m) || !m.every(Number.isFinite)) throw typeError(FN, `affines[${i}]`, 'an affine map of 6 finite numbers', m);
      return invertAffine(m);
    });
  }
  return Array.from({ length: batch }, () => null);
}

/** Quarter-pixel step toward the higher neighbour along one axis (0 at a border or a tie). */
function quarterStep(lower: number, upper: number): number {
  return upper > lower ? 0.25 : upper < lower ? -0.25 : 0;
}

/**
 * Decodes heatmaps [B, N(+1), H, W] (a float32 Tensor, or a Float32Array with its shape) into
 * landmark coordinates and confidences.
 */
export function decodeHeatmaps(heatmaps: Tensor | Float32Array, shapeOrOptions?: readonly number[] | DecodeOptions, maybeOptions?: DecodeOptions): DecodedLandmarks {
  let data: Float32Array;
  let shape: [number, number, number, number];
  let options: DecodeOptions;
  if (isTensor(heatmaps)) {
    if (heatmaps.dtype !== 'float32') throw typeError(FN, 'heatmaps', 'a float32 tensor', heatmaps);
    shape = checkShape([...heatmaps.shape]);
    data = heatmaps.data() as Float32Array;
    if (Array.isArray(shapeOrOptions)) throw typeError(FN, 'options', 'an options object (a tensor carries its shape)', shapeOrOptions);
    options = (shapeOrOptions as DecodeOptions | undefined) ?? {};
  } else if (heatmaps instanceof Float32Array) {
    shape = checkShape(shapeOrOptions);
    data = heatmaps;
    options = maybeOptions ?? {};
    if (data.length !== shape[0] * shape[1] * shape[2] * shape[3])
      throw rangeError(FN, 'heatmaps', `${shape.join('x')} = ${shape[0] * shape[1] * shape[2] * shape[3]} values`, `${data.length} values`, true);
  } else throw typeError(FN, 'heatmaps', 'a float32 Tensor or a Float32Array', heatmaps);
  checkKeys(FN, options, OPTION_KEYS);

  const [B, C, H, W] = shape;
  const background = options.background ?? false;
  if (typeof background !== 'boolean') throw typeError(FN, 'background', 'a boolean', background);
  const N = background ? C - 1 : C;
  if (N < 1) throw rangeError(FN, 'heatmaps', 'at least one landmark channel besides the background', `${C} channel(s)`, true);
  const refine = options.refine ?? 'quarter';
  if (typeof refine !== 'string') throw typeError(FN, 'refine', "'none', 'quarter' or 'taylor'", refine);
  if (!REFINEMENTS.includes(refine)) throw rangeError(FN, 'refine', "'none', 'quarter' or 'taylor'", refine);
  const minPeak = options.minPeak ?? 0;
  if (typeof minPeak !== 'number' || Number.isNaN(minPeak)) throw typeError(FN, 'minPeak', 'a number', minPeak);
  const inputSize = options.inputSize ?? [H, W];
  if (!Array.isArray(inputSize) || inputSize.length !== 2 || !inputSize.every((v) => Number.isInteger(v) && v > 0))
    throw rangeError(FN, 'inputSize', 'a [height, width] pair of positive integers', inputSize);
  const maps = outputMaps(options, B, inputSize as [number, number]);

  const points = new Float32Array(B * N * 2);
  const confidence = new Float32Array(B * N);
  const plane = H * W;
  // Heatmap pixel -> input pixel: x_c = (x_h + 0.5) * Wc / W - 0.5.
  const sx = inputSize[1] / W;
  const sy = inputSize[0] / H;
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < N; n++) {
      const base = (b * C + n) * plane;
      // First maximum in raster order wins ties.
      let best = 0;
      let peak = -Infinity;
      for (let q = 0; q < plane; q++) {
        const v = data[base + q];
        if (v > peak) {
          peak = v;
          best = q;
        }
      }
      const o = b * N + n;
      confidence[o] = peak;
      if (!(peak > minPeak)) {
        points[2 * o] = NaN;
        points[2 * o + 1] = NaN;
        continue;
      }
      const px = best % W;
      const py = (best - px) / W;
      let x = px;
      let y = py;
      if (refine !== 'none') {
        const at = (xx: number, yy: number): number => data[base + yy * W + xx];
        let done = false;
        if (refine === 'taylor' && px > 0 && px < W - 1 && py > 0 && py < H - 1) {
          const L = (xx: number, yy: number): number => Math.log(Math.max(at(xx, yy), LOG_FLOOR));
          const c = L(px, py);
          const dx = 0.5 * (L(px + 1, py) - L(px - 1, py));
          const dy = 0.5 * (L(px, py + 1) - L(px, py - 1));
          const dxx = L(px + 1, py) - 2 * c + L(px - 1, py);
          const dyy = L(px, py + 1) - 2 * c + L(px, py - 1);
          const dxy = 0.25 * (L(px + 1, py + 1) - L(px + 1, py - 1) - L(px - 1, py + 1) + L(px - 1, py - 1));
          const det = dxx * dyy - dxy * dxy;
          // A maximum needs a negative-definite Hessian; the step stays within the argmax's neighbours.
          if (dxx < 0 && det > 0) {
            const ox = -(dyy * dx - dxy * dy) / det;
            const oy = -(dxx * dy - dxy * dx) / det;
            if (Math.abs(ox) <= 1 && Math.abs(oy) <= 1) {
              x = px + ox;
              y = py + oy;
              done = true;
            }
          }
        }
        if (!done) {
          if (px > 0 && px < W - 1) x += quarterStep(at(px - 1, py), at(px + 1, py));
          if (py > 0 && py < H - 1) y += quarterStep(at(px, py - 1), at(px, py + 1));
        }
      }
      let cx = (x + 0.5) * sx - 0.5;
      let cy = (y + 0.5) * sy - 0.5;
      const m = maps[b];
      if (m) {
        const ix = m[0] * cx + m[1] * cy + m[2];
        cy = m[3] * cx + m[4] * cy + m[5];
        cx = ix;
      }
      points[2 * o] = cx;
      points[2 * o + 1] = cy;
    }
  }
  return { points, confidence, batch: B, count: N };
}

/**
 * Maps points from network-input (crop) pixels to image pixels for a crop that shows `box`
 * resized to inputSize [height, width]; the inverse of what a box crop does to annotations.
 */
export function cropToImage(points: ArrayLike<number>, box: Box, inputSize: [number, number]): Float32Array {
  const b = checkBox('cropToImage', box, 'box');
  if (!Array.isArray(inputSize) || inputSize.length !== 2 || !inputSize.every((v) => Number.isInteger(v) && v > 0))
    throw rangeError('cropToImage', 'inputSize', 'a [height, width] pair of positive integers', inputSize);
  const sx = b.width / inputSize[1];
  const sy = b.height / inputSize[0];
  return transformPoints(points, [sx, 0, b.x - 0.5 + 0.5 * sx, 0, sy, b.y - 0.5 + 0.5 * sy]);
}
