// Locating a face from a rough box: the reference detector's 68 points give a tighter box, the
// detector is run again on it until the box settles, and faces whose points do not form a
// plausible face (eyes, nose, mouth, chin in order; box settled; inside the image) are rejected.
import { checkInt, checkKeys, checkNumber, decodeImage, rangeError, typeError } from '@lrface/datasets';
import type { Box, RawImage } from '@lrface/datasets';
import { ReferenceDetector } from './detector.js';

/** Options of {@link refineFaceBox}. */
export interface RefineFaceBoxOptions {
  /** Most detector passes (default 4). */
  iterations?: number;
  /** The box has settled when the IoU of two successive boxes reaches this (default 0.9). */
  settledIou?: number;
  /** Face box side over the points' bounding box side (default 1.08, see {@link boxFromPoints}). */
  boxScale?: number;
  /** Box centre shift below the points' centre, as a fraction of their height (default -0.075: upwards). */
  boxShiftY?: number;
  /** Smallest accepted face box side, max(w, h) in pixels (default 80). */
  minSize?: number;
  /** Largest fraction of the points' bounding box that may lie outside the image (default 0.05). */
  maxOutside?: number;
}

/** What {@link refineFaceBox} found. */
export interface RefinedFace {
  /** The settled face box (image coordinates). */
  box: Box;
  /** The 68 points [x0, y0, ...] from the detector on that box (image coordinates). */
  points: Float32Array;
  /** Detector passes run. */
  passes: number;
  /** Null for a plausible face, else why it was rejected. */
  rejected: string | null;
}

/** Bounding box of the 68 points [x0, y0, ...]. */
export function pointsBoundingBox(points: ArrayLike<number>): Box {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i + 1 < points.length; i += 2) {
    x0 = Math.min(x0, points[i]); x1 = Math.max(x1, points[i]);
    y0 = Math.min(y0, points[i + 1]); y1 = Math.max(y1, points[i + 1]);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * A face box from 68 points: their bounding box scaled by `scale` about its centre, moved by
 * `shiftY` of its height. The defaults (1.08, -0.075) are the median relation between the
 * human-drawn boxes and dlib's points on dlib's examples/faces (43 faces), so refined boxes
 * match the boxes the detector's margin was tuned on.
 */
export function boxFromPoints(points: ArrayLike<number>, scale = 1.08, shiftY = -0.075): Box {
  const b = pointsBoundingBox(points);
  const cx = b.x + b.width / 2;
  const cy = b.y + b.height / 2 + shiftY * b.height;
  const w = b.width * scale;
  const h = b.height * scale;
  return { x: cx - w / 2, y: cy - h / 2, width: w, height: h };
}

/** Intersection over union of two boxes. */
export function boxIou(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const ih = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = iw * ih;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

const mean = (p: ArrayLike<number>, from: number, to: number, axis: 0 | 1): number => {
  let s = 0;
  for (let i = from; i <= to; i++) s += p[2 * i + axis];
  return s / (to - from + 1);
};

/**
 * Why 68 points (iBUG order, [x0, y0, ...]) do not look like an upright face, or null when
 * they do: finite; left eye left of the right eye; eyes above the nose tip, above the mouth,
 * above the chin; nose tip between the outer eye corners; eye distance 25-60 % of the width.
 */
export function implausibleFacePoints(points: ArrayLike<number>): string | null {
  if (points.length !== 136) return `expected 136 coordinates, got ${points.length}`;
  for (let i = 0; i < 136; i++) if (!Number.isFinite(points[i])) return 'non-finite point';
  const b = pointsBoundingBox(points);
  if (!(b.width > 0 && b.height > 0)) return 'points collapse to a line';
  const leftEye = [mean(points, 36, 41, 0), mean(points, 36, 41, 1)];
  const rightEye = [mean(points, 42, 47, 0), mean(points, 42, 47, 1)];
  const eyesY = (leftEye[1] + rightEye[1]) / 2;
  const noseY = points[61];
  const mouthY = mean(points, 48, 67, 1);
  const chinY = points[17];
  if (!(leftEye[0] < rightEye[0])) return 'eyes in the wrong order';
  if (!(eyesY < noseY && noseY < mouthY && mouthY < chinY)) return 'eyes, nose, mouth, chin not top to bottom';
  if (!(points[60] > points[72] && points[60] < points[90])) return 'nose tip outside the outer eye corners';
  const eyeDist = Math.hypot(rightEye[0] - leftEye[0], rightEye[1] - leftEye[1]);
  if (eyeDist < 0.25 * b.width || eyeDist > 0.6 * b.width) return `eye distance ${(eyeDist / b.width).toFixed(2)} of the face width`;
  return null;
}

/**
 * Runs the reference detector on `box`, replaces the box by {@link boxFromPoints} of its points
 * and repeats until two successive boxes overlap by `settledIou` (at most `iterations` passes).
 * The result is rejected (with the reason) when the box did not settle, the points are
 * implausible ({@link implausibleFacePoints}), the face is smaller than `minSize` or lies partly
 * outside the image.
 */
export async function refineFaceBox(detector: ReferenceDetector, image: string | RawImage, box: Box, options: RefineFaceBoxOptions = {}): Promise<RefinedFace> {
  const fn = 'refineFaceBox';
  if (!(detector instanceof ReferenceDetector)) throw typeError(fn, 'detector', 'a ReferenceDetector (loadReferenceDetector())', detector);
  if (box === null || typeof box !== 'object' || ![box.x, box.y, box.width, box.height].every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw typeError(fn, 'box', '{x, y, width, height} of finite numbers', box);
  if (box.width <= 0 || box.height <= 0) throw rangeError(fn, 'box', 'a box of positive width and height', `${box.width}x${box.height}`, true);
  if (options === null || typeof options !== 'object') throw typeError(fn, 'options', 'an object', options);
  checkKeys(fn, options, ['iterations', 'settledIou', 'boxScale', 'boxShiftY', 'minSize', 'maxOutside']);
  const iterations = checkInt(fn, 'iterations', options.iterations ?? 4, 1, 100);
  const settledIou = checkNumber(fn, 'settledIou', options.settledIou ?? 0.9, 0, 1);
  const scale = checkNumber(fn, 'boxScale', options.boxScale ?? 1.08, 0.5, 2);
  const shiftY = checkNumber(fn, 'boxShiftY', options.boxShiftY ?? -0.075, -0.5, 0.5);
  const minSize = checkNumber(fn, 'minSize', options.minSize ?? 80, 0);
  const maxOutside = checkNumber(fn, 'maxOutside', options.maxOutside ?? 0.05, 0, 1);
  const img = typeof image === 'string' ? await decodeImage(image) : image;

  let current = box;
  let points = new Float32Array(136);
  let settled = false;
  let passes = 0;
  while (passes < iterations) {
    points = Float32Array.from((await detector.detect68(img, current)).flat());
    passes++;
    const next = boxFromPoints(points, scale, shiftY);
    settled = boxIou(next, current) >= settledIou;
    current = next;
    if (settled) break;
  }
  let rejected = implausibleFacePoints(points);
  if (!rejected && !settled) rejected = `box did not settle in ${iterations} passes`;
  if (!rejected && Math.max(current.width, current.height) < minSize) rejected = `face ${Math.max(current.width, current.height).toFixed(1)} px < ${minSize} px`;
  if (!rejected) {
    // Share of the points' box inside the image.
    const b = pointsBoundingBox(points);
    const iw = Math.max(0, Math.min(b.x + b.width, img.width) - Math.max(b.x, 0));
    const ih = Math.max(0, Math.min(b.y + b.height, img.height) - Math.max(b.y, 0));
    if (1 - (iw * ih) / (b.width * b.height) > maxOutside) rejected = 'face partly outside the image';
  }
  return { box: current, points, passes, rejected };
}
