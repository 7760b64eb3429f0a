// Evaluation protocols of face recognition: pair verification (LFW's and YTF's 10-fold
// accuracy, ROC, TAR at a FAR, EER) and closed/open-set identification (TinyFace's CMC ranks
// and mean average precision), all from similarity scores, so any feature and any metric fit.
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';

function checkScores(fn: string, scores: unknown): Float64Array {
  if (!scores || typeof (scores as ArrayLike<number>).length !== 'number' || typeof scores === 'string')
    throw typeError(fn, 'scores', 'an array of numbers', scores);
  const s = Float64Array.from(scores as ArrayLike<number>);
  s.forEach((v, i) => {
    if (!Number.isFinite(v)) throw rangeError(fn, `scores[${i}]`, 'a finite number', (scores as ArrayLike<number>)[i]);
  });
  return s;
}

function checkLabels(fn: string, same: unknown, n: number): boolean[] {
  if (!Array.isArray(same) && !(same instanceof Uint8Array)) throw typeError(fn, 'same', 'an array of booleans', same);
  if (same.length !== n) throw rangeError(fn, 'same', `length ${n} (one per score)`, same.length);
  return Array.from(same as ArrayLike<boolean | number>, (v) => Boolean(v));
}

function checkBothClasses(fn: string, same: boolean[]): void {
  if (!same.includes(true) || !same.includes(false)) throw rangeError(fn, 'same', 'both matched and mismatched pairs', 'one kind only', true);
}

/**
 * The threshold with the highest accuracy on these pairs (a pair with score >= threshold is
 * called "same"). Among equally accurate cut points the lowest is kept; the threshold is the
 * midpoint between the lowest accepted and the highest rejected score.
 */
export function bestThreshold(scores: ArrayLike<number>, same: ArrayLike<boolean>): { threshold: number; accuracy: number } {
  const fn = 'bestThreshold';
  const s = checkScores(fn, scores);
  const y = checkLabels(fn, same, s.length);
  if (s.length === 0) throw rangeError(fn, 'scores', 'at least one pair', 0);
  const order = Array.from(s.keys()).sort((a, b) => s[a] - s[b]);
  // Cut k: the k lowest scores are rejected. Start with everything accepted.
  let correct = y.filter(Boolean).length;
  let best = correct;
  let bestCut = 0;
  for (let k = 0; k < order.length; ) {
    // Move every pair of the same score across the cut together.
    let j = k;
    while (j < order.length && s[order[j]] === s[order[k]]) {
      correct += y[order[j]] ? -1 : 1;
      j++;
    }
    if (correct > best) {
      best = correct;
      bestCut = j;
    }
    k = j;
  }
  const lowestAccepted = bestCut < order.length ? s[order[bestCut]] : Infinity;
  const highestRejected = bestCut > 0 ? s[order[bestCut - 1]] : -Infinity;
  let threshold: number;
  if (Number.isFinite(lowestAccepted) && Number.isFinite(highestRejected)) threshold = (lowestAccepted + highestRejected) / 2;
  else if (Number.isFinite(lowestAccepted)) threshold = lowestAccepted;
  else threshold = highestRejected + Math.max(1e-6, Math.abs(highestRejected) * 1e-6);
  return { threshold, accuracy: best / s.length };
}

/** The fraction of pairs called right at `threshold` (score >= threshold means "same"). */
export function accuracyAt(scores: ArrayLike<number>, same: ArrayLike<boolean>, threshold: number): number {
  const fn = 'accuracyAt';
  const s = checkScores(fn, scores);
  const y = checkLabels(fn, same, s.length);
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) throw typeError(fn, 'threshold', 'a number', threshold);
  if (s.length === 0) throw rangeError(fn, 'scores', 'at least one pair', 0);
  let correct = 0;
  s.forEach((v, i) => {
    if (v >= threshold === y[i]) correct++;
  });
  return correct / s.length;
}

export interface VerificationFold {
  /** Chosen on the other folds. */
  threshold: number;
  /** On this fold. */
  accuracy: number;
  pairs: number;
}

export interface VerificationResult {
  /** Mean of the folds' accuracies (what LFW's and YTF's tables report). */
  accuracy: number;
  /** The folds' sample standard deviation, as LFW's result tables give it. */
  std: number;
  folds: VerificationFold[];
}

/**
 * The unrestricted verification protocol of LFW View 2 and YouTube Faces: for each fold, the
 * threshold that is best on the other folds is applied to it; the result is the mean and
 * standard deviation of the folds' accuracies. `folds[i]` is pair i's fold (0-based; the
 * readers' `fold` field).
 */
export function verificationAccuracy(scores: ArrayLike<number>, same: ArrayLike<boolean>, folds: ArrayLike<number>): VerificationResult {
  const fn = 'verificationAccuracy';
  const s = checkScores(fn, scores);
  const y = checkLabels(fn, same, s.length);
  if (!folds || typeof (folds as ArrayLike<number>).length !== 'number') throw typeError(fn, 'folds', 'an array of fold indices', folds);
  if (folds.length !== s.length) throw rangeError(fn, 'folds', `length ${s.length} (one per score)`, folds.length);
  const ids = [...new Set(Array.from(folds))].sort((a, b) => a - b);
  ids.forEach((f) => {
    if (!Number.isInteger(f) || f < 0) throw rangeError(fn, 'folds', 'integers >= 0', f);
  });
  if (ids.length < 2) throw rangeError(fn, 'folds', 'at least 2 distinct folds', ids.length);
  const results: VerificationFold[] = ids.map((f) => {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < s.length; i++) (folds[i] === f ? test : train).push(i);
    const trainSame = train.map((i) => y[i]);
    checkBothClasses(fn, trainSame);
    const { threshold } = bestThreshold(train.map((i) => s[i]), trainSame);
    return { threshold, accuracy: accuracyAt(test.map((i) => s[i]), test.map((i) => y[i]), threshold), pairs: test.length };
  });
  const accs = results.map((r) => r.accuracy);
  const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
  const variance = accs.reduce((a, b) => a + (b - mean) ** 2, 0) / (accs.length - 1);
  return { accuracy: mean, std: Math.sqrt(variance), folds: results };
}

export interface RocCurve {
  /** Decreasing thresholds; point i calls "same" every pair with score >= thresholds[i]. */
  thresholds: number[];
  /** False accept rate: mismatched pairs accepted / mismatched pairs. */
  far: number[];
  /** True accept rate: matched pairs accepted / matched pairs. */
  tar: number[];
}

/** The ROC curve over every distinct score, from (0, 0) (nothing accepted) to (1, 1). */
export function rocCurve(scores: ArrayLike<number>, same: ArrayLike<boolean>): RocCurve {
  const fn = 'rocCurve';
  const s = checkScores(fn, scores);
  const y = checkLabels(fn, same, s.length);
  checkBothClasses(fn, y);
  const positives = y.filter(Boolean).length;
  const negatives = y.length - positives;
  const order = Array.from(s.keys()).sort((a, b) => s[b] - s[a]);
  const curve: RocCurve = { thresholds: [Infinity], far: [0], tar: [0] };
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; ) {
    const t = s[order[k]];
    while (k < order.length && s[order[k]] === t) {
      if (y[order[k]]) tp++;
      else fp++;
      k++;
    }
    curve.thresholds.push(t);
    curve.far.push(fp / negatives);
    curve.tar.push(tp / positives);
  }
  return curve;
}

/** Area under the ROC curve (trapezoids; equals the probability that a matched pair outscores a mismatched one, ties counting half). */
export function rocAuc(scores: ArrayLike<number>, same: ArrayLike<boolean>): number {
  const { far, tar } = rocCurve(scores, same);
  let area = 0;
  for (let i = 1; i < far.length; i++) area += ((far[i] - far[i - 1]) * (tar[i] + tar[i - 1])) / 2;
  return area;
}

/** The highest true accept rate whose false accept rate is at most `far` (0 when none is). */
export function tarAtFar(scores: ArrayLike<number>, same: ArrayLike<boolean>, far: number): { tar: number; threshold: number } {
  if (typeof far !== 'number' || !(far >= 0 && far <= 1)) throw rangeError('tarAtFar', 'far', 'in [0, 1]', far);
  const curve = rocCurve(scores, same);
  let best = { tar: 0, threshold: Infinity };
  curve.far.forEach((f, i) => {
    if (f <= far && curve.tar[i] >= best.tar) best = { tar: curve.tar[i], threshold: curve.thresholds[i] };
  });
  return best;
}

/** Equal error rate: where the false accept rate meets the false reject rate (linear between ROC points). */
export function equalErrorRate(scores: ArrayLike<number>, same: ArrayLike<boolean>): number {
  const { far, tar } = rocCurve(scores, same);
  for (let i = 1; i < far.length; i++) {
    const d0 = far[i - 1] - (1 - tar[i - 1]);
    const d1 = far[i] - (1 - tar[i]);
    if (d0 <= 0 && d1 >= 0) {
      const t = d1 === d0 ? 0 : -d0 / (d1 - d0);
      return far[i - 1] + t * (far[i] - far[i - 1]);
    }
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------
// Similarities between features.

function checkFeatures(fn: string, arg: string, x: unknown): Tensor {
  const t = x as Tensor;
  if (!ops.isTensor(t) || t.dtype !== 'float32') throw typeError(fn, arg, 'a float32 [N, D] tensor', x);
  if (t.rank !== 2) throw rangeError(fn, arg, 'shape [N, D]', `[${t.shape.join(',')}]`, true);
  return t;
}

/** Cosine similarity and Euclidean distance of two features (as the network gives them). */
export function matchFeatures(a: ArrayLike<number>, b: ArrayLike<number>): { similarity: number; distance: number } {
  if (a.length !== b.length) throw rangeError('matchFeatures', 'b', `length ${a.length} (that of 'a')`, b.length);
  let dot = 0;
  let na = 0;
  let nb = 0;
  let squared = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    squared += (a[i] - b[i]) ** 2;
  }
  return { similarity: dot / Math.max(Math.sqrt(na * nb), 1e-12), distance: Math.sqrt(squared) };
}

/** Rows scaled to unit length (a zero row stays zero). */
export function l2Normalize(features: Tensor): Tensor {
  const x = checkFeatures('l2Normalize', 'features', features);
  return ops.scope(() => {
    const norms = ops.sqrt(ops.sum(ops.square(x), { axis: 1, keepDims: true }));
    return ops.div(x, ops.maximum(norms, 1e-12));
  });
}

/** Cosine similarities [P, G] between every row of `a` [P, D] and every row of `b` [G, D]. */
export function cosineSimilarityMatrix(a: Tensor, b: Tensor): Tensor {
  const fn = 'cosineSimilarityMatrix';
  const x = checkFeatures(fn, 'a', a);
  const y = checkFeatures(fn, 'b', b);
  if (x.shape[1] !== y.shape[1]) throw rangeError(fn, 'b', `shape [G, ${x.shape[1]}] (the features of 'a')`, `[${y.shape.join(',')}]`, true);
  return ops.scope(() => ops.matmul(l2Normalize(x), ops.transpose(l2Normalize(y))));
}

/** Cosine similarity of each pair of rows: a[i] with b[i]. */
export function pairCosineSimilarities(a: Tensor, b: Tensor): Float32Array {
  const fn = 'pairCosineSimilarities';
  const x = checkFeatures(fn, 'a', a);
  const y = checkFeatures(fn, 'b', b);
  if (x.shape[0] !== y.shape[0] || x.shape[1] !== y.shape[1]) throw rangeError(fn, 'b', `shape [${x.shape.join(', ')}] (that of 'a')`, `[${y.shape.join(',')}]`, true);
  return ops.scope(() => ops.sum(ops.mul(l2Normalize(x), l2Normalize(y)), { axis: 1 }).data() as Float32Array);
}

// ---------------------------------------------------------------------------------------------
// Identification.

export interface IdentificationOptions {
  /** Ranks of the CMC curve to report (default [1, 5, 10, 20], TinyFace's table uses 1 and 20). */
  ranks?: number[];
}

const IDENTIFICATION_OPTION_KEYS: Record<keyof IdentificationOptions, true> = { ranks: true };

export interface IdentificationResult {
  /** Fraction of probes whose first true match is within rank r, per requested rank. */
  cmc: Record<number, number>;
  /** Mean over probes of the average precision of their gallery ranking (TinyFace's mAP). */
  meanAveragePrecision: number;
  /** Probes that have at least one true match in the gallery (the others are left out). */
  probes: number;
}

function checkIds(fn: string, arg: string, ids: unknown, n: number): (number | string)[] {
  if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw typeError(fn, arg, 'an array of identities', ids);
  const list = Array.from(ids as ArrayLike<number | string>);
  if (list.length !== n) throw rangeError(fn, arg, `length ${n}`, list.length);
  return list;
}

/**
 * Identification of each probe against a gallery, from their similarities (row p: probe p
 * against every gallery entry; higher is more alike). Gallery entries with identity null or
 * -1 are distractors (TinyFace's 153,428 non-mated faces): they rank but never match. Equal
 * similarities keep gallery order.
 */
export function identificationMetrics(
  similarity: Tensor | Float32Array | number[][],
  probeIds: ArrayLike<number | string>,
  galleryIds: ArrayLike<number | string | null>,
  options: IdentificationOptions = {},
): IdentificationResult {
  const fn = 'identificationMetrics';
  checkKeys(fn, options, IDENTIFICATION_OPTION_KEYS);
  let rows: number;
  let cols: number;
  let sim: ArrayLike<number>;
  if (ops.isTensor(similarity)) {
    if (similarity.rank !== 2) throw rangeError(fn, 'similarity', 'shape [probes, gallery]', `[${similarity.shape.join(',')}]`, true);
    [rows, cols] = similarity.shape as [number, number];
    sim = similarity.data() as Float32Array;
  } else if (Array.isArray(similarity)) {
    rows = similarity.length;
    cols = rows > 0 ? similarity[0].length : 0;
    similarity.forEach((r, i) => {
      if (!Array.isArray(r) || r.length !== cols) throw rangeError(fn, `similarity[${i}]`, `an array of ${cols} numbers`, r, !Array.isArray(r));
    });
    sim = similarity.flat();
  } else if (similarity instanceof Float32Array) {
    const g = galleryIds?.length ?? 0;
    if (g === 0 || similarity.length % g !== 0) throw rangeError(fn, 'similarity', `a multiple of the gallery size ${g}`, similarity.length);
    rows = similarity.length / g;
    cols = g;
    sim = similarity;
  } else throw typeError(fn, 'similarity', 'a [probes, gallery] tensor, Float32Array or array of rows', similarity);
  const probes = checkIds(fn, 'probeIds', probeIds, rows);
  const gallery = checkIds(fn, 'galleryIds', galleryIds, cols).map((id) => (id === null || id === -1 ? null : id));
  const ranks = options.ranks ?? [1, 5, 10, 20];
  if (!Array.isArray(ranks)) throw typeError(fn, 'ranks', 'an array of integers', ranks);
  ranks.forEach((r) => {
    if (!Number.isInteger(r) || r < 1) throw rangeError(fn, 'ranks', 'integers >= 1', r);
  });
  const hits = new Map<number, number>(ranks.map((r) => [r, 0]));
  let apSum = 0;
  let counted = 0;
  const order = Array.from({ length: cols }, (_, g) => g);
  for (let p = 0; p < rows; p++) {
    const base = p * cols;
    const ranked = order.slice().sort((a, b) => sim[base + b] - sim[base + a] || a - b);
    let matches = 0;
    let precisionSum = 0;
    let firstMatch = -1;
    ranked.forEach((g, position) => {
      if (gallery[g] !== null && gallery[g] === probes[p]) {
        matches++;
        precisionSum += matches / (position + 1);
        if (firstMatch < 0) firstMatch = position + 1;
      }
    });
    if (matches === 0) continue;
    counted++;
    apSum += precisionSum / matches;
    for (const r of ranks) if (firstMatch <= r) hits.set(r, hits.get(r)! + 1);
  }
  if (counted === 0) throw rangeError(fn, 'galleryIds', 'a true match for at least one probe', 'none', true);
  const cmc: Record<number, number> = {};
  for (const r of ranks) cmc[r] = hits.get(r)! / counted;
  return { cmc, meanAveragePrecision: apSum / counted, probes: counted };
}
