// Landmark schemes: point counts, named index groups, mirror maps (from @lrface/datasets) and
// the reduction of each scheme to the 5-point layout (two eye centres, nose tip, two mouth
// corners) that face alignment and the LR benchmarks use.
//
// Sides: "left"/"right" in group names are the image's left and right (the viewer's), so for
// a frontal face `leftEye` of the 68-point scheme is points 36-41 (the subject's right eye).
// The 5-point layout lists the image-left point of each pair first, as the ArcFace template does.
import { typeError, rangeError } from '@lrface/cuda-core';
import { AFLW19_NAMES, AFLW21_NAMES, MIRROR_19, MIRROR_21, MIRROR_5, MIRROR_68 } from '@lrface/datasets';

/** A landmark layout: how many points, their mirror map, named groups and the 5-point reduction. */
export interface LandmarkScheme {
  readonly name: string;
  readonly points: number;
  /** Entry i is the index point i becomes under a horizontal flip. */
  readonly mirror: readonly number[];
  /** Named index groups (0-based). */
  readonly groups: Readonly<Record<string, readonly number[]>>;
  /** The two points whose distance is the inter-ocular normaliser (outer eye corners). */
  readonly outerEyeCorners: readonly [number, number];
  /** Per eye (image-left first), the points whose mean approximates the pupil. */
  readonly pupils: readonly [readonly number[], readonly number[]];
  /** Per 5-point slot (left eye, right eye, nose tip, left mouth corner, right mouth corner), the points averaged into it. */
  readonly toFive: readonly (readonly number[])[];
  /** Point names where the scheme has them. */
  readonly names?: readonly string[];
}

const defineScheme = (scheme: LandmarkScheme): LandmarkScheme => Object.freeze(scheme);

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The 68-point iBUG / 300-W scheme (0-based indices). */
export const SCHEME_68 = defineScheme({
  name: 'ibug68',
  points: 68,
  mirror: MIRROR_68,
  groups: Object.freeze({
    jaw: range(0, 16),
    leftBrow: range(17, 21),
    rightBrow: range(22, 26),
    noseBridge: range(27, 30),
    nostrils: range(31, 35),
    nose: range(27, 35),
    leftEye: range(36, 41),
    rightEye: range(42, 47),
    eyes: range(36, 47),
    outerEyeCorners: [36, 45],
    innerEyeCorners: [39, 42],
    outerLips: range(48, 59),
    innerLips: range(60, 67),
    mouth: range(48, 67),
    mouthCorners: [48, 54],
    noseTip: [30],
  }),
  outerEyeCorners: [36, 45],
  pupils: [range(36, 41), range(42, 47)],
  toFive: [range(36, 41), range(42, 47), [30], [48], [54]],
});

/** AFLW's 21 points, in AFLW's FeatureCoordTypes order (names as AFLW spells them). */
export const SCHEME_AFLW21 = defineScheme({
  name: 'aflw21',
  points: 21,
  mirror: MIRROR_21,
  names: AFLW21_NAMES,
  groups: Object.freeze({
    leftBrow: [0, 1, 2],
    rightBrow: [3, 4, 5],
    leftEye: [6, 7, 8],
    rightEye: [9, 10, 11],
    eyes: range(6, 11),
    outerEyeCorners: [6, 11],
    eyeCentres: [7, 10],
    ears: [12, 16],
    nose: [13, 14, 15],
    noseTip: [14],
    mouth: [17, 18, 19],
    mouthCorners: [17, 19],
    chin: [20],
  }),
  outerEyeCorners: [6, 11],
  pupils: [[7], [10]],
  toFive: [[7], [10], [14], [17], [19]],
});

/** AFLW-Full's 19 points: AFLW's 21 without the two ears. */
export const SCHEME_AFLW19 = defineScheme({
  name: 'aflw19',
  points: 19,
  mirror: MIRROR_19,
  names: AFLW19_NAMES,
  groups: Object.freeze({
    leftBrow: [0, 1, 2],
    rightBrow: [3, 4, 5],
    leftEye: [6, 7, 8],
    rightEye: [9, 10, 11],
    eyes: range(6, 11),
    outerEyeCorners: [6, 11],
    eyeCentres: [7, 10],
    nose: [12, 13, 14],
    noseTip: [13],
    mouth: [15, 16, 17],
    mouthCorners: [15, 17],
    chin: [18],
  }),
  outerEyeCorners: [6, 11],
  pupils: [[7], [10]],
  toFive: [[7], [10], [13], [15], [17]],
});

/** The 5-point scheme: left eye centre, right eye centre, nose tip, left and right mouth corners. */
export const SCHEME_5 = defineScheme({
  name: 'five',
  points: 5,
  mirror: MIRROR_5,
  names: ['leftEye', 'rightEye', 'noseTip', 'leftMouthCorner', 'rightMouthCorner'],
  groups: Object.freeze({ eyes: [0, 1], outerEyeCorners: [0, 1], noseTip: [2], mouthCorners: [3, 4] }),
  // Five points have no eye corners: the eye centres stand in for them.
  outerEyeCorners: [0, 1],
  pupils: [[0], [1]],
  toFive: [[0], [1], [2], [3], [4]],
});

const SCHEMES: readonly LandmarkScheme[] = [SCHEME_68, SCHEME_AFLW21, SCHEME_AFLW19, SCHEME_5];

/** The scheme for a point count (68, 21, 19 or 5). */
export function schemeFor(points: number): LandmarkScheme {
  if (typeof points !== 'number') throw typeError('schemeFor', 'points', 'a number', points);
  const scheme = SCHEMES.find((s) => s.points === points);
  if (!scheme) throw rangeError('schemeFor', 'points', '68, 21, 19 or 5', points);
  return scheme;
}

function checkPoints(fn: string, landmarks: unknown, scheme: LandmarkScheme): ArrayLike<number> {
  if (!(landmarks instanceof Float32Array || landmarks instanceof Float64Array || Array.isArray(landmarks)))
    throw typeError(fn, 'landmarks', 'a Float32Array, Float64Array or array of [x0, y0, x1, y1, ...]', landmarks);
  const n = (landmarks as ArrayLike<number>).length;
  if (n % 2 !== 0 || n < 2) throw rangeError(fn, 'landmarks', 'an even number of coordinates', `${n} numbers`, true);
  if (n / 2 % scheme.points !== 0) throw rangeError(fn, 'landmarks', `a multiple of ${scheme.points} points (${scheme.name})`, `${n / 2} points`, true);
  return landmarks as ArrayLike<number>;
}

/** The mean of a group of points of one face as [x, y] (NaN where any member is NaN). */
export function groupMean(landmarks: ArrayLike<number>, group: readonly number[], offset = 0): [number, number] {
  let x = 0;
  let y = 0;
  for (const i of group) {
    x += landmarks[offset + 2 * i];
    y += landmarks[offset + 2 * i + 1];
  }
  return [x / group.length, y / group.length];
}

/**
 * Reduces landmarks of a scheme to the 5-point layout (an eye centre is the mean of that
 * eye's points). Accepts several faces back to back; returns 10 numbers per face.
 */
export function toFivePoints(landmarks: ArrayLike<number>, scheme: LandmarkScheme = SCHEME_68): Float32Array {
  checkPoints('toFivePoints', landmarks, scheme);
  const faces = landmarks.length / (2 * scheme.points);
  const out = new Float32Array(faces * 10);
  for (let f = 0; f < faces; f++) {
    for (let k = 0; k < 5; k++) {
      const [x, y] = groupMean(landmarks, scheme.toFive[k], f * 2 * scheme.points);
      out[f * 10 + 2 * k] = x;
      out[f * 10 + 2 * k + 1] = y;
    }
  }
  return out;
}

/** Picks a subset of points (e.g. SCHEME_68.groups.eyes) of every face: 2 numbers per kept point. */
export function selectPoints(landmarks: ArrayLike<number>, indices: readonly number[], scheme: LandmarkScheme = SCHEME_68): Float32Array {
  checkPoints('selectPoints', landmarks, scheme);
  if (!Array.isArray(indices) || indices.length === 0) throw typeError('selectPoints', 'indices', 'a non-empty array of point indices', indices);
  for (const i of indices)
    if (!Number.isInteger(i) || i < 0 || i >= scheme.points) throw rangeError('selectPoints', 'indices', `indices in [0, ${scheme.points - 1}]`, i);
  const faces = landmarks.length / (2 * scheme.points);
  const out = new Float32Array(faces * indices.length * 2);
  for (let f = 0; f < faces; f++)
    indices.forEach((i, k) => {
      out[(f * indices.length + k) * 2] = landmarks[f * 2 * scheme.points + 2 * i];
      out[(f * indices.length + k) * 2 + 1] = landmarks[f * 2 * scheme.points + 2 * i + 1];
    });
  return out;
}
