import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { parseLfwPairs, Rng } from '@lrface/datasets';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import {
  accuracyAt,
  bestThreshold,
  cosineSimilarityMatrix,
  equalErrorRate,
  identificationMetrics,
  matchFeatures,
  pairCosineSimilarities,
  rocAuc,
  rocCurve,
  tarAtFar,
  verificationAccuracy,
} from '../src/index.js';

/** Scores with ties (rounded to 0.05) where matched pairs tend to score higher. */
function synthetic(n: number, seed: number): { scores: number[]; same: boolean[] } {
  const rng = new Rng(seed);
  const same = Array.from({ length: n }, (_, i) => i % 2 === 0);
  const scores = same.map((s) => Math.round((rng.normal() * 0.25 + (s ? 0.55 : 0.2)) * 20) / 20);
  return { scores, same };
}

/** The best training accuracy over every possible cut, by trying each threshold (naive). */
function naiveBestAccuracy(scores: number[], same: boolean[]): number {
  const candidates = [...new Set(scores)].concat([Infinity]);
  let best = 0;
  for (const t of candidates) {
    let right = 0;
    scores.forEach((s, i) => {
      if (s >= t === same[i]) right++;
    });
    best = Math.max(best, right / scores.length);
  }
  return best;
}

describe('verification', () => {
  it('bestThreshold reaches the best accuracy any cut reaches, with tied scores moved together', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { scores, same } = synthetic(41 + seed, seed);
      const { threshold, accuracy } = bestThreshold(scores, same);
      expect(accuracy).toBeCloseTo(naiveBestAccuracy(scores, same), 12);
      expect(accuracyAt(scores, same, threshold)).toBeCloseTo(accuracy, 12);
    }
    // Separable: the threshold falls between the classes.
    expect(bestThreshold([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toEqual({ threshold: 0.5, accuracy: 1 });
    // Everything rejected is best when every pair is mismatched.
    const { threshold } = bestThreshold([0.3, 0.4], [false, false]);
    expect(threshold).toBeGreaterThan(0.4);
  });

  it('verificationAccuracy is the 10-fold protocol: each fold scored at the threshold best on the other nine', () => {
    const { scores, same } = synthetic(600, 7);
    const folds = scores.map((_, i) => Math.floor(i / 60));
    const result = verificationAccuracy(scores, same, folds);
    expect(result.folds).toHaveLength(10);
    // Naive reference: per fold, try every threshold on the other folds, keep the best (ties: lowest), score the fold.
    const accs = [];
    for (let f = 0; f < 10; f++) {
      const trainIdx = scores.map((_, i) => i).filter((i) => folds[i] !== f);
      const testIdx = scores.map((_, i) => i).filter((i) => folds[i] === f);
      const trainBest = naiveBestAccuracy(trainIdx.map((i) => scores[i]), trainIdx.map((i) => same[i]));
      expect(accuracyAt(trainIdx.map((i) => scores[i]), trainIdx.map((i) => same[i]), result.folds[f].threshold)).toBeCloseTo(trainBest, 12);
      expect(result.folds[f].pairs).toBe(60);
      accs.push(accuracyAt(testIdx.map((i) => scores[i]), testIdx.map((i) => same[i]), result.folds[f].threshold));
    }
    const mean = accs.reduce((a, b) => a + b) / 10;
    expect(result.accuracy).toBeCloseTo(mean, 12);
    expect(result.std).toBeCloseTo(Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / 9), 12);
    // Perfectly separated scores: 100 %, no spread.
    const perfect = verificationAccuracy(same.map((s) => (s ? 0.9 : 0.1)), same, folds);
    expect(perfect.accuracy).toBe(1);
    expect(perfect.std).toBe(0);
  });

  it.skipIf(!haveSharedData('lfw/pairs.txt'))("runs on LFW View 2's real pairs file: 10 folds of 300 matched and 300 mismatched pairs", async () => {
    const file = await parseLfwPairs(sharedDataDir + 'lfw/pairs.txt');
    expect(file.pairs).toHaveLength(6000);
    // Scores that a feature would give: matched pairs higher, except every 10th pair of a fold, which is flipped.
    const scores = file.pairs.map((p, i) => ((p.same ? 1 : 0) ^ (i % 10 === 0 ? 1 : 0) ? 0.7 : 0.3));
    const result = verificationAccuracy(scores, file.pairs.map((p) => p.same), file.pairs.map((p) => p.fold));
    expect(result.folds.map((f) => f.pairs)).toEqual(Array(10).fill(600));
    expect(result.accuracy).toBeCloseTo(0.9, 12);
  });

  it('rocCurve, rocAuc, tarAtFar and equalErrorRate agree with direct counts', () => {
    const { scores, same } = synthetic(300, 3);
    const curve = rocCurve(scores, same);
    const pos = scores.filter((_, i) => same[i]);
    const neg = scores.filter((_, i) => !same[i]);
    curve.thresholds.forEach((t, k) => {
      expect(curve.tar[k]).toBeCloseTo(pos.filter((s) => s >= t).length / pos.length, 12);
      expect(curve.far[k]).toBeCloseTo(neg.filter((s) => s >= t).length / neg.length, 12);
    });
    expect(curve.far[curve.far.length - 1]).toBe(1);
    // AUC as the Mann-Whitney statistic: P(matched > mismatched) + P(tie) / 2.
    let u = 0;
    for (const p of pos) for (const q of neg) u += p > q ? 1 : p === q ? 0.5 : 0;
    expect(rocAuc(scores, same)).toBeCloseTo(u / (pos.length * neg.length), 12);
    const far = 0.1;
    const { tar, threshold } = tarAtFar(scores, same, far);
    expect(neg.filter((s) => s >= threshold).length / neg.length).toBeLessThanOrEqual(far);
    expect(tar).toBeCloseTo(pos.filter((s) => s >= threshold).length / pos.length, 12);
    // No threshold with a FAR within the bound accepts more matched pairs.
    for (const t of new Set(scores))
      if (neg.filter((s) => s >= t).length / neg.length <= far) expect(pos.filter((s) => s >= t).length / pos.length).toBeLessThanOrEqual(tar);
    // Symmetric classes: one error in four on each side.
    expect(equalErrorRate([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9], [false, false, false, false, true, true, true, true])).toBeCloseTo(0.25, 12);
    expect(equalErrorRate([0, 1], [false, true])).toBe(0);
  });

  it('rejects bad inputs naming the function and argument', () => {
    expect(() => bestThreshold('abc' as unknown as number[], [])).toThrow(TypeError);
    expect(() => bestThreshold([1, NaN], [true, false])).toThrow(/bestThreshold: 'scores\[1\]'/);
    expect(() => bestThreshold([1, 2], [true])).toThrow(/'same' must be length 2/);
    expect(() => bestThreshold([], [])).toThrow(RangeError);
    expect(() => verificationAccuracy([1, 2, 3, 4], [true, false, true, false], [0, 0, 0, 0])).toThrow(/at least 2 distinct folds/);
    expect(() => verificationAccuracy([1, 2], [true, false], [0, 1.5])).toThrow(/'folds'/);
    expect(() => verificationAccuracy([1, 2, 3, 4], [true, true, false, false], [0, 0, 1, 1])).toThrow(/both matched and mismatched/);
    expect(() => rocCurve([1, 2], [true, true])).toThrow(/rocCurve: 'same'/);
    expect(() => tarAtFar([1, 2], [true, false], 2)).toThrow(/'far'/);
  });
});

describe('identification', () => {
  it('CMC ranks and mAP match a worked example with distractors', () => {
    // Probe 0 (id 'a'): gallery order by similarity: g1 (b), g0 (a), g3 (distractor), g2 (a) -> first match at rank 2;
    // AP = (1/2 + 2/4) / 2 = 0.5. Probe 1 (id 'b'): g1 first -> rank 1, AP 1.
    const sim = [
      [0.8, 0.9, 0.1, 0.5],
      [0.2, 0.95, 0.3, 0.9],
    ];
    const r = identificationMetrics(sim, ['a', 'b'], ['a', 'b', 'a', null], { ranks: [1, 2, 3] });
    expect(r.cmc).toEqual({ 1: 0.5, 2: 1, 3: 1 });
    expect(r.meanAveragePrecision).toBeCloseTo(0.75, 12);
    expect(r.probes).toBe(2);
    // The same from a tensor and a flat Float32Array; a probe without a true match is left out.
    const t = lr.tensor(new Float32Array(sim.flat().concat([0.1, 0.2, 0.3, 0.4])), [3, 4]);
    const fromTensor = identificationMetrics(t, ['a', 'b', 'zzz'], ['a', 'b', 'a', -1], { ranks: [1, 2, 3] });
    expect(fromTensor.probes).toBe(2);
    expect(fromTensor.cmc).toEqual(r.cmc);
    expect(fromTensor.meanAveragePrecision).toBeCloseTo(0.75, 6);
    expect(identificationMetrics(new Float32Array(sim.flat()), [1, 2], [1, 2, 1, -1]).cmc[1]).toBe(0.5);
  });

  it('agrees with a naive ranking on random similarities', () => {
    const rng = new Rng(9);
    const P = 30;
    const G = 50;
    const gallery = Array.from({ length: G }, (_, g) => (g < 40 ? g % 10 : null));
    const probes = Array.from({ length: P }, (_, p) => p % 10);
    const sim = Array.from({ length: P }, () => Array.from({ length: G }, () => rng.next()));
    const r = identificationMetrics(sim, probes, gallery, { ranks: [1, 5] });
    let r1 = 0;
    let r5 = 0;
    let ap = 0;
    for (let p = 0; p < P; p++) {
      const ranked = sim[p].map((s, g) => ({ s, g })).sort((a, b) => b.s - a.s);
      const positions = ranked.map((e, i) => (gallery[e.g] === probes[p] ? i + 1 : 0)).filter((x) => x > 0);
      if (positions[0] <= 1) r1++;
      if (positions[0] <= 5) r5++;
      ap += positions.reduce((acc, pos, k) => acc + (k + 1) / pos, 0) / positions.length;
    }
    expect(r.cmc[1]).toBeCloseTo(r1 / P, 12);
    expect(r.cmc[5]).toBeCloseTo(r5 / P, 12);
    expect(r.meanAveragePrecision).toBeCloseTo(ap / P, 12);
  });

  it('rejects bad inputs', () => {
    expect(() => identificationMetrics([[1, 2]], ['a', 'b'], ['a', 'b'])).toThrow(/'probeIds' must be length 1/);
    expect(() => identificationMetrics([[1, 2], [1]], ['a', 'b'], ['a', 'b'])).toThrow(/'similarity\[1\]'/);
    expect(() => identificationMetrics([[1, 2]], ['a'], ['c', 'd'])).toThrow(/a true match/);
    expect(() => identificationMetrics([[1, 2]], ['a'], ['a', 'd'], { ranks: [0] })).toThrow(/'ranks'/);
    expect(() => identificationMetrics('x' as unknown as number[][], ['a'], ['a'])).toThrow(TypeError);
  });
});

describe('similarities', () => {
  it('cosineSimilarityMatrix and pairCosineSimilarities match a direct computation', () => {
    lr.manualSeed(8);
    const a = lr.randn([4, 6]);
    const b = lr.randn([3, 6]);
    const A = Array.from({ length: 4 }, (_, i) => Array.from(a.data().subarray(i * 6, i * 6 + 6)));
    const B = Array.from({ length: 3 }, (_, i) => Array.from(b.data().subarray(i * 6, i * 6 + 6)));
    const cos = (x: number[], y: number[]) => x.reduce((s, v, k) => s + v * y[k], 0) / Math.hypot(...x) / Math.hypot(...y);
    const m = cosineSimilarityMatrix(a, b);
    expect(m.shape).toEqual([4, 3]);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) expect(m.data()[i * 3 + j]).toBeCloseTo(cos(A[i], B[j]), 5);
    const pairs = pairCosineSimilarities(lr.narrow(a, 0, 0, 3), b);
    for (let i = 0; i < 3; i++) expect(pairs[i]).toBeCloseTo(cos(A[i], B[i]), 5);
    expect(() => cosineSimilarityMatrix(a, lr.randn([3, 5]))).toThrow(/cosineSimilarityMatrix: 'b'/);
    expect(() => pairCosineSimilarities(a, b)).toThrow(/pairCosineSimilarities: 'b'/);
    expect(() => cosineSimilarityMatrix(lr.randn([2, 2, 2]), b)).toThrow(/'a' must be shape \[N, D\]/);
  });

  it('matchFeatures gives the cosine and the Euclidean distance of two features', () => {
    const m = matchFeatures([3, 4], [4, 3]);
    expect(m.similarity).toBeCloseTo(24 / 25, 12);
    expect(m.distance).toBeCloseTo(Math.SQRT2, 12);
    expect(matchFeatures([1, 0], [-2, 0])).toEqual({ similarity: -1, distance: 3 });
    expect(() => matchFeatures([1, 2], [1])).toThrow(/matchFeatures: 'b' must be length 2/);
  });
});
