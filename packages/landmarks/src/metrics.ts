// Landmark accuracy: normalised mean error (NME) per image with an explicit normaliser, the
// cumulative error distribution (CED), the area under it up to a threshold (AUC@alpha) and the
// failure rate, and per-subset tables (300-W common / challenging / full).
//
// Conventions (see the evaluation-protocol notes of the project):
// - NME of one image = mean over its visible points of ||p_k - g_k|| / d. Ground-truth points
//   that are NaN, or have visibility 0, are left out (AFLW scores visible points only).
// - 'inter-ocular': d = distance between the outer eye corners (68 points: 36 and 45, 0-based);
//   'inter-pupil': d = distance between the eye centres (68 points: means of 36-41 and 42-47);
//   'box': d = sqrt(w * h) of the face box; 'box-width': d = w.
// - CED(e) = fraction of images with NME <= e. AUC@alpha = (1/alpha) * integral_0^alpha CED(e) de,
//   computed as the 300-W / HRNet-facial evaluation code does: the trapezoid rule on the grid
//   0, step, 2 step, ..., alpha (step 1e-4 by default). Failure rate FR@alpha = fraction with NME > alpha.
import { checkKeys, rangeError, typeError } from '@lrface/cuda-core';
import type { Box } from '@lrface/datasets';
import { checkErrors } from './error-checks.js';
import { groupMean, schemeFor, type LandmarkScheme } from './schemes.js';

export type NmeNormalizer = 'inter-ocular' | 'inter-pupil' | 'box' | 'box-width';
export const NME_NORMALIZERS: readonly NmeNormalizer[] = ['inter-ocular', 'inter-pupil', 'box', 'box-width'];

export interface NmeOptions {
  /** What the error is divided by; required, since the normalisers differ by ~1.4x. */
  normalizer: NmeNormalizer;
  /** The landmark scheme (default: the one with the ground truth's point count). */
  scheme?: LandmarkScheme;
  /**
   * For 'box' and 'box-width': the ground-truth face box (one per image for nmePerImage).
   * Default: the tight box around the visible ground-truth points.
   */
  box?: Box;
  /** Per point, 0 = not annotated: left out of the mean (default: every finite point). */
  visibility?: ArrayLike<number>;
  /**
   * A visible ground-truth point with a NaN prediction (nothing detected): 'error' (default)
   * throws; 'fail' scores the image as NME = Infinity, a failure at every threshold.
   */
  missing?: 'error' | 'fail';
}

export interface NmeBatchOptions extends Omit<NmeOptions, 'box' | 'visibility'> {
  boxes?: Box[];
  visibility?: ArrayLike<number>[];
}

// nmeNormalizer reads a subset of NmeOptions, but takes a whole one too (the same object as nme).
const NME_OPTION_KEYS: Record<keyof NmeOptions, true> = { normalizer: true, scheme: true, box: true, visibility: true, missing: true };
const NME_BATCH_OPTION_KEYS: Record<keyof NmeBatchOptions, true> = { normalizer: true, scheme: true, boxes: true, visibility: true, missing: true };

function checkLandmarks(fn: string, arg: string, value: unknown): ArrayLike<number> {
  if (!(value instanceof Float32Array || value instanceof Float64Array || Array.isArray(value)))
    throw typeError(fn, arg, 'a Float32Array, Float64Array or array of [x0, y0, x1, y1, ...]', value);
  const n = (value as ArrayLike<number>).length;
  if (n < 2 || n % 2 !== 0) throw rangeError(fn, arg, 'an even, non-zero number of coordinates', `${n} numbers`, true);
  return value as ArrayLike<number>;
}

/** The normalising distance d of one ground-truth face. */
export function nmeNormalizer(gt: ArrayLike<number>, options: Pick<NmeOptions, 'normalizer' | 'scheme' | 'box' | 'visibility'>): number {
  const fn = 'nmeNormalizer';
  checkLandmarks(fn, 'gt', gt);
  return normalizerOf(fn, gt, options);
}

function normalizerOf(fn: string, gt: ArrayLike<number>, options: Pick<NmeOptions, 'normalizer' | 'scheme' | 'box' | 'visibility'>): number {
  if (typeof options !== 'object' || options === null) throw typeError(fn, 'options', 'an object with a normalizer', options);
  checkKeys(fn, options, NME_OPTION_KEYS);
  const kind = options.normalizer;
  if (typeof kind !== 'string') throw typeError(fn, 'normalizer', `one of ${NME_NORMALIZERS.map((n) => `'${n}'`).join(', ')}`, kind);
  if (!NME_NORMALIZERS.includes(kind)) throw rangeError(fn, 'normalizer', `one of ${NME_NORMALIZERS.map((n) => `'${n}'`).join(', ')}`, kind);
  const n = gt.length / 2;
  let d: number;
  if (kind === 'inter-ocular' || kind === 'inter-pupil') {
    const scheme = options.scheme ?? schemeFor(n);
    if (scheme.points !== n) throw rangeError(fn, 'gt', `${scheme.points} points (${scheme.name})`, `${n} points`, true);
    const [a, b] = kind === 'inter-ocular' ? scheme.outerEyeCorners.map((i) => [i]) : scheme.pupils;
    const [ax, ay] = groupMean(gt, a);
    const [bx, by] = groupMean(gt, b);
    d = Math.hypot(ax - bx, ay - by);
  } else {
    let box = options.box;
    if (box === undefined) {
      let x0 = Infinity;
      let y0 = Infinity;
      let x1 = -Infinity;
      let y1 = -Infinity;
      for (let k = 0; k < n; k++) {
        const x = gt[2 * k];
        const y = gt[2 * k + 1];
        if (!Number.isFinite(x) || !Number.isFinite(y) || (options.visibility && !options.visibility[k])) continue;
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
      box = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
    } else if (typeof box !== 'object' || box === null || typeof box.width !== 'number' || typeof box.height !== 'number')
      throw typeError(fn, 'box', 'a box {x, y, width, height}', box);
    d = kind === 'box' ? Math.sqrt(box.width * box.height) : box.width;
  }
  if (!(Number.isFinite(d) && d > 0)) throw rangeError(fn, 'gt', `landmarks with a positive ${kind} distance`, d);
  return d;
}

/** The NME of one face: mean over visible points of the point error divided by the normaliser. */
export function nme(pred: ArrayLike<number>, gt: ArrayLike<number>, options: NmeOptions): number {
  if (typeof options !== 'object' || options === null) throw typeError('nme', 'options', 'an object with a normalizer', options);
  checkKeys('nme', options, NME_OPTION_KEYS);
  return nmeOf('nme', pred, gt, options);
}

function nmeOf(fn: string, pred: ArrayLike<number>, gt: ArrayLike<number>, options: NmeOptions, where = ''): number {
  checkLandmarks(fn, 'pred', pred);
  checkLandmarks(fn, 'gt', gt);
  if (pred.length !== gt.length) throw rangeError(fn, `pred${where}`, `${gt.length / 2} points like gt`, `${pred.length / 2} points`, true);
  const missing = options.missing ?? 'error';
  if (missing !== 'error' && missing !== 'fail') throw rangeError(fn, 'missing', "'error' or 'fail'", missing);
  const n = gt.length / 2;
  if (options.visibility !== undefined && options.visibility.length !== n)
    throw rangeError(fn, `visibility${where}`, `${n} entries (one per point)`, `${options.visibility.length} entries`, true);
  const d = normalizerOf(fn, gt, options);
  let sum = 0;
  let count = 0;
  for (let k = 0; k < n; k++) {
    const gx = gt[2 * k];
    const gy = gt[2 * k + 1];
    if (!Number.isFinite(gx) || !Number.isFinite(gy) || (options.visibility && !options.visibility[k])) continue;
    const px = pred[2 * k];
    const py = pred[2 * k + 1];
    if (!Number.isFinite(px) || !Number.isFinite(py)) {
      if (missing === 'fail') return Infinity;
      throw rangeError(fn, `pred${where}`, `finite coordinates at visible point ${k}`, `(${px}, ${py})`, true);
    }
    sum += Math.hypot(px - gx, py - gy);
    count++;
  }
  if (count === 0) throw rangeError(fn, `gt${where}`, 'at least one visible point', 'none', true);
  return sum / count / d;
}

/** NME per image for lists of predicted and ground-truth faces (one Float32Array of 2N numbers each). */
export function nmePerImage(preds: readonly ArrayLike<number>[], gts: readonly ArrayLike<number>[], options: NmeBatchOptions): Float64Array {
  const fn = 'nmePerImage';
  if (!Array.isArray(preds)) throw typeError(fn, 'preds', 'an array of per-image landmarks', preds);
  if (!Array.isArray(gts)) throw typeError(fn, 'gts', 'an array of per-image landmarks', gts);
  if (preds.length !== gts.length) throw rangeError(fn, 'preds', `${gts.length} images like gts`, `${preds.length} images`, true);
  if (typeof options !== 'object' || options === null) throw typeError(fn, 'options', 'an object with a normalizer', options);
  checkKeys(fn, options, NME_BATCH_OPTION_KEYS);
  const { boxes, visibility } = options;
  if (boxes !== undefined && (!Array.isArray(boxes) || boxes.length !== gts.length)) throw rangeError(fn, 'boxes', `an array of ${gts.length} boxes`, boxes);
  if (visibility !== undefined && (!Array.isArray(visibility) || visibility.length !== gts.length))
    throw rangeError(fn, 'visibility', `an array of ${gts.length} visibility arrays`, visibility);
  const out = new Float64Array(gts.length);
  for (let i = 0; i < gts.length; i++)
    out[i] = nmeOf(fn, preds[i], gts[i], { normalizer: options.normalizer, scheme: options.scheme, missing: options.missing, box: boxes?.[i], visibility: visibility?.[i] }, `[${i}]`);
  return out;
}

function checkThreshold(fn: string, arg: string, value: unknown): number {
  if (typeof value !== 'number') throw typeError(fn, arg, 'a number', value);
  if (!(Number.isFinite(value) && value > 0)) throw rangeError(fn, arg, 'a positive finite number', value);
  return value;
}

/** The mean NME (Infinity if any image failed outright). */
export function meanNme(errors: ArrayLike<number>): number {
  const e = checkErrors('meanNme', errors);
  let s = 0;
  for (let i = 0; i < e.length; i++) s += e[i];
  return s / e.length;
}

/** Fraction of images with NME > alpha. */
export function failureRate(errors: ArrayLike<number>, alpha: number): number {
  const e = checkErrors('failureRate', errors);
  checkThreshold('failureRate', 'alpha', alpha);
  let fails = 0;
  for (let i = 0; i < e.length; i++) if (e[i] > alpha) fails++;
  return fails / e.length;
}

export interface CedCurve {
  /** 0, step, ..., max. */
  thresholds: Float64Array;
  /** Fraction of images with NME <= threshold. */
  fractions: Float64Array;
}

export interface CedOptions {
  /** Largest threshold (default 0.08). */
  max?: number;
  /** Grid step (default 1e-4). */
  step?: number;
}

const CED_OPTION_KEYS: Record<keyof CedOptions, true> = { max: true, step: true };

/** The CED curve of per-image errors sampled on 0, step, ..., max. */
export function cedCurve(errors: ArrayLike<number>, options: CedOptions = {}): CedCurve {
  const fn = 'cedCurve';
  checkKeys(fn, options, CED_OPTION_KEYS);
  const e = checkErrors(fn, errors);
  const max = checkThreshold(fn, 'max', options.max ?? 0.08);
  const step = checkThreshold(fn, 'step', options.step ?? 1e-4);
  // Grid points are i * step (no accumulated rounding); max is the last one when it is a multiple of step.
  const count = Math.round(max / step);
  if (Math.abs(count * step - max) > 1e-9 * max || count < 1) throw rangeError(fn, 'step', `a divisor of max (${max})`, step);
  const sorted = Float64Array.from(e).sort();
  const thresholds = new Float64Array(count + 1);
  const fractions = new Float64Array(count + 1);
  let j = 0;
  for (let i = 0; i <= count; i++) {
    const t = i === count ? max : i * step;
    while (j < sorted.length && sorted[j] <= t) j++;
    thresholds[i] = t;
    fractions[i] = j / sorted.length;
  }
  return { thresholds, fractions };
}

/** AUC@alpha: the CED's trapezoid integral over [0, alpha] divided by alpha, in [0, 1]. */
export function aucAt(errors: ArrayLike<number>, alpha: number, step = 1e-4): number {
  const fn = 'aucAt';
  checkErrors(fn, errors);
  checkThreshold(fn, 'alpha', alpha);
  const { thresholds, fractions } = cedCurve(errors, { max: alpha, step });
  let area = 0;
  for (let i = 1; i < thresholds.length; i++) area += 0.5 * (fractions[i] + fractions[i - 1]) * (thresholds[i] - thresholds[i - 1]);
  return area / alpha;
}

export interface ErrorSummary {
  count: number;
  mean: number;
  /** Population standard deviation (Infinity-free errors only; NaN if any failed outright). */
  std: number;
  median: number;
  /** Per threshold alpha: AUC@alpha and FR@alpha. */
  auc: Record<string, number>;
  failureRate: Record<string, number>;
}

/** Mean, spread, AUC and failure rate of per-image errors at each alpha (default 0.07 and 0.08). */
export function summarizeErrors(errors: ArrayLike<number>, alphas: readonly number[] = [0.07, 0.08], step = 1e-4): ErrorSummary {
  const fn = 'summarizeErrors';
  const e = checkErrors(fn, errors);
  if (!Array.isArray(alphas) || alphas.length === 0) throw typeError(fn, 'alphas', 'a non-empty array of thresholds', alphas);
  const mean = meanNme(e);
  let v = 0;
  for (let i = 0; i < e.length; i++) v += (e[i] - mean) ** 2;
  const sorted = Float64Array.from(e).sort();
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
  const auc: Record<string, number> = {};
  const fr: Record<string, number> = {};
  for (const a of alphas) {
    auc[String(a)] = aucAt(e, a, step);
    fr[String(a)] = failureRate(e, a);
  }
  return { count: e.length, mean, std: Number.isFinite(mean) ? Math.sqrt(v / e.length) : NaN, median, auc, failureRate: fr };
}

export interface SubsetRow extends ErrorSummary {
  subset: string;
}

export interface SubsetTableOptions {
  /** Thresholds for AUC and failure rate (default [0.07, 0.08]). */
  alphas?: number[];
  step?: number;
  /**
   * Unions to add as rows, by name: their per-image errors pooled, so the mean weighs each
   * subset by its image count. Default for 300-W: { full: ['common', 'challenging'] } when both exist.
   */
  unions?: Record<string, string[]>;
}

const SUBSET_TABLE_OPTION_KEYS: Record<keyof SubsetTableOptions, true> = { alphas: true, step: true, unions: true };

/**
 * One row per subset (and per union of subsets) of per-image errors, e.g. 300-W's common
 * (554 images) and challenging (135) subsets and their weighted union 'full' (689).
 */
export function subsetTable(errorsBySubset: Record<string, ArrayLike<number>>, options: SubsetTableOptions = {}): SubsetRow[] {
  const fn = 'subsetTable';
  checkKeys(fn, options, SUBSET_TABLE_OPTION_KEYS);
  if (typeof errorsBySubset !== 'object' || errorsBySubset === null || Array.isArray(errorsBySubset))
    throw typeError(fn, 'errorsBySubset', 'an object of per-subset error arrays', errorsBySubset);
  const names = Object.keys(errorsBySubset);
  if (names.length === 0) throw rangeError(fn, 'errorsBySubset', 'at least one subset', 'none', true);
  const unions = options.unions ?? (names.includes('common') && names.includes('challenging') && !names.includes('full') ? { full: ['common', 'challenging'] } : {});
  const rows: SubsetRow[] = names.map((subset) => ({ subset, ...summarizeErrors(checkErrors(`${fn}: ${subset}`, errorsBySubset[subset]), options.alphas, options.step) }));
  for (const [name, members] of Object.entries(unions)) {
    if (!Array.isArray(members) || members.length === 0) throw typeError(fn, `unions.${name}`, 'a non-empty array of subset names', members);
    const pooled: number[] = [];
    for (const m of members) {
      if (!(m in errorsBySubset)) throw rangeError(fn, `unions.${name}`, `names of given subsets (${names.join(', ')})`, m);
      pooled.push(...Array.from(errorsBySubset[m]));
    }
    rows.push({ subset: name, ...summarizeErrors(pooled, options.alphas, options.step) });
  }
  return rows;
}

/** A markdown table of subset rows: NME, AUC and FR (as percentages) per alpha. */
export function formatSubsetTable(rows: readonly SubsetRow[], label = 'subset'): string {
  if (!Array.isArray(rows) || rows.length === 0) throw typeError('formatSubsetTable', 'rows', 'a non-empty array of subset rows', rows);
  const alphas = Object.keys(rows[0].auc);
  const head = [label, 'images', 'NME %', ...alphas.map((a) => `AUC@${a} %`), ...alphas.map((a) => `FR@${a} %`)];
  const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(2) : String(v));
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${[r.subset, String(r.count), pct(r.mean), ...alphas.map((a) => pct(r.auc[a])), ...alphas.map((a) => pct(r.failureRate[a]))].join(' | ')} |`);
  return lines.join('\n');
}
