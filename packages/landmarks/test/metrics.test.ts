import { describe, expect, it } from 'vitest';
import { SCHEME_AFLW19, aucAt, cedCurve, failureRate, formatSubsetTable, meanNme, nme, nmeNormalizer, nmePerImage, subsetTable, summarizeErrors } from '../src/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ops from '@lrface/cuda-core';
import { Rng } from '@lrface/datasets';
import {
  DEFAULT_AUGMENT, DEFAULT_HIGH_TO_LOW, HighToLowTrainer, LandmarkTrainer, Lgcn, LgcnTrainer, PAPER_OPTIMIZER, PcaShapeModel, SCHEME_68, SupervisedTrainer,
  estimateSimilarity, heatmapGeneratorLoss, highToLowGeneratorLoss, kabschRotation, labelledBatch, landmarkPreset, loadLandmarkWeights, loadLgcnWeights,
  saveLgcnWeights, solveQp, symmetricEigen,
} from '../src/index.js';

/** 68 ground-truth points with point k at (k, 0): outer corners 9 apart, eye centres 6 apart. */
const gt68 = Float32Array.from({ length: 136 }, (_, i) => (i % 2 === 0 ? i / 2 : 0));
/** The same points moved by (3, 4): every point error is 5. */
const pred68 = gt68.map((v, i) => v + (i % 2 === 0 ? 3 : 4));

/** The exact AUC of a step CED: integral_0^alpha CED = mean(max(0, alpha - e)). */
function exactAuc(errors: number[], alpha: number): number {
  return errors.reduce((s, e) => s + Math.max(0, alpha - e), 0) / errors.length / alpha;
}

describe('NME', () => {
  it('divides the mean point error by the chosen normaliser', () => {
    expect(nmeNormalizer(gt68, { normalizer: 'inter-ocular' })).toBe(9);
    expect(nmeNormalizer(gt68, { normalizer: 'inter-pupil' })).toBeCloseTo(6, 12);
    expect(nme(pred68, gt68, { normalizer: 'inter-ocular' })).toBeCloseTo(5 / 9, 12);
    expect(nme(pred68, gt68, { normalizer: 'inter-pupil' })).toBeCloseTo(5 / 6, 6);
    const box = { x: 0, y: 0, width: 4, height: 9 };
    expect(nme(pred68, gt68, { normalizer: 'box', box })).toBeCloseTo(5 / 6, 12);
    expect(nme(pred68, gt68, { normalizer: 'box-width', box })).toBeCloseTo(5 / 4, 12);
  });

  it('uses the tight box of the visible ground truth when no box is given', () => {
    // 19 points on a 30 x 120 box: sqrt = 60.
    const gt = new Float32Array(38);
    gt[0] = 10;
    gt[1] = 20;
    gt[2] = 40;
    gt[3] = 140;
    for (let k = 2; k < 19; k++) {
      gt[2 * k] = 25;
      gt[2 * k + 1] = 50;
    }
    const pred = gt.slice();
    pred[4] += 19 * 6; // point 2 off by 114 px: mean error 6 px
    expect(nme(pred, gt, { normalizer: 'box', scheme: SCHEME_AFLW19 })).toBeCloseTo(6 / 60, 12);
    expect(nme(pred, gt, { normalizer: 'box-width' })).toBeCloseTo(6 / 30, 12);
    // Point 1 invisible: the box shrinks to 15 x 30 (sqrt 450) and the mean runs over 18 points.
    const vis = new Uint8Array(19).fill(1);
    vis[1] = 0;
    expect(nme(pred, gt, { normalizer: 'box', visibility: vis })).toBeCloseTo(114 / 18 / Math.sqrt(450), 10);
  });

  it('leaves out invisible and NaN ground-truth points', () => {
    const pred = gt68.slice();
    pred[0] += 90; // point 0 off by 90
    expect(nme(pred, gt68, { normalizer: 'inter-ocular' })).toBeCloseTo(90 / 68 / 9, 12);
    const vis = new Uint8Array(68).fill(1);
    vis[0] = 0;
    expect(nme(pred, gt68, { normalizer: 'inter-ocular', visibility: vis })).toBe(0);
    const gtNaN = gt68.slice();
    gtNaN[0] = NaN;
    expect(nme(pred, gtNaN, { normalizer: 'inter-ocular' })).toBe(0);
  });

  it('scores a missing prediction as an error or a failure', () => {
    const pred = pred68.slice();
    pred[10] = NaN;
    expect(() => nme(pred, gt68, { normalizer: 'inter-ocular' })).toThrow(/nme: 'pred' must be finite coordinates at visible point 5/);
    expect(nme(pred, gt68, { normalizer: 'inter-ocular', missing: 'fail' })).toBe(Infinity);
  });

  it('computes per-image NMEs with per-image boxes and visibility', () => {
    const e = nmePerImage([pred68, gt68], [gt68, gt68], { normalizer: 'box', boxes: [{ x: 0, y: 0, width: 5, height: 5 }, { x: 0, y: 0, width: 1, height: 1 }] });
    expect(Array.from(e)).toEqual([1, 0]);
    expect(meanNme(e)).toBe(0.5);
  });

  it('rejects bad input', () => {
    expect(() => nme(pred68, gt68, {} as never)).toThrow(/nme: 'normalizer' must be one of/);
    expect(() => nme(pred68, gt68, { normalizer: 'iod' as never })).toThrow(RangeError);
    expect(() => nme(pred68.subarray(2), gt68, { normalizer: 'inter-ocular' })).toThrow(/'pred' must be 68 points like gt, got 67 points/);
    expect(() => nme(new Float32Array(3), gt68, { normalizer: 'inter-ocular' })).toThrow(/even/);
    expect(() => nme('x' as never, gt68, { normalizer: 'inter-ocular' })).toThrow(TypeError);
    expect(() => nme(new Float32Array(14), new Float32Array(14), { normalizer: 'inter-ocular' })).toThrow(/schemeFor/);
    expect(() => nme(gt68, gt68.map(() => 0), { normalizer: 'inter-ocular' })).toThrow(/positive inter-ocular distance, got 0/);
    expect(() => nme(gt68, gt68, { normalizer: 'inter-ocular', visibility: new Uint8Array(68) })).toThrow(/at least one visible point/);
    expect(() => nme(gt68, gt68, { normalizer: 'inter-ocular', visibility: new Uint8Array(3) })).toThrow(/'visibility' must be 68 entries/);
    expect(() => nme(gt68, gt68, { normalizer: 'inter-ocular', missing: 'skip' as never })).toThrow(/'missing'/);
    expect(() => nmePerImage([gt68], [gt68, gt68], { normalizer: 'inter-ocular' })).toThrow(/nmePerImage: 'preds' must be 2 images/);
    expect(() => nmePerImage([gt68], [gt68], { normalizer: 'box', boxes: [] })).toThrow(/'boxes'/);
    expect(() => nmePerImage([gt68.subarray(2)], [gt68], { normalizer: 'inter-ocular' })).toThrow(/'pred\[0\]'/);
  });
});

describe('CED, AUC and failure rate', () => {
  it('samples the CED on the threshold grid (NME <= threshold)', () => {
    const c = cedCurve([0.012, 0.035], { max: 0.04, step: 0.01 });
    expect(Array.from(c.thresholds)).toEqual([0, 0.01, 0.02, 0.03, 0.04]);
    expect(Array.from(c.fractions)).toEqual([0, 0, 0.5, 0.5, 1]);
    const d = cedCurve([0, 0.02, 0.05], { max: 0.04, step: 0.02 });
    expect(Array.from(d.fractions)).toEqual([1 / 3, 2 / 3, 2 / 3]);
    expect(cedCurve([0.01]).thresholds.length).toBe(801);
  });

  it('integrates the CED with the trapezoid rule on the grid', () => {
    // CED 0, 0, .5, .5, 1 at step .01: area .01 * (0 + .25 + .5 + .75) = .015; / .04.
    expect(aucAt([0.012, 0.035], 0.04, 0.01)).toBeCloseTo(0.375, 12);
    // The exact integral would give (0.028 + 0.005) / 2 / 0.04 = 0.4125: the grid convention matters.
    expect(exactAuc([0.012, 0.035], 0.04)).toBeCloseTo(0.4125, 12);
    // Errors midway between grid points: the trapezoid equals the exact integral.
    const mid = [0.01005, 0.03005, 0.05005, 0.1];
    expect(aucAt(mid, 0.08)).toBeCloseTo(exactAuc(mid, 0.08), 10);
    expect(aucAt(mid, 0.08)).toBeCloseTo(0.46828125, 10);
    // A zero error counts from threshold 0 on (NME <= 0); a tiny one only from the next grid point.
    expect(aucAt([0], 0.08)).toBe(1);
    expect(aucAt([1e-6], 0.08)).toBeCloseTo(1 - 0.5e-4 / 0.08, 12);
    expect(aucAt([1, Infinity], 0.07)).toBe(0);
  });

  it('stays within half a grid step of the exact AUC for arbitrary errors', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const errors = Array.from({ length: 200 }, () => rand() * 0.12);
    for (const alpha of [0.07, 0.08]) expect(Math.abs(aucAt(errors, alpha) - exactAuc(errors, alpha))).toBeLessThanOrEqual(0.5e-4 / alpha + 1e-12);
  });

  it('counts failures strictly above the threshold', () => {
    const e = [0.01, 0.03, 0.05, 0.1];
    expect(failureRate(e, 0.08)).toBe(0.25);
    expect(failureRate(e, 0.05)).toBe(0.25);
    expect(failureRate(e, 0.04)).toBe(0.5);
  });

  it('summarises errors and builds 300-W subset tables with a weighted full set', () => {
    const s = summarizeErrors([0.01, 0.03, 0.05, 0.1]);
    expect(s.count).toBe(4);
    expect(s.mean).toBeCloseTo(0.0475, 12);
    expect(s.median).toBeCloseTo(0.04, 12);
    expect(s.std).toBeCloseTo(Math.sqrt((0.0375 ** 2 + 0.0175 ** 2 + 0.0025 ** 2 + 0.0525 ** 2) / 4), 12);
    expect(Object.keys(s.auc)).toEqual(['0.07', '0.08']);
    expect(s.failureRate['0.07']).toBe(0.25);
    const rows = subsetTable({ common: [0.02, 0.04], challenging: [0.1] });
    expect(rows.map((r) => r.subset)).toEqual(['common', 'challenging', 'full']);
    expect(rows[2].count).toBe(3);
    // Weighted by images: (0.02 + 0.04 + 0.1) / 3, not the mean of the two subset means.
    expect(rows[2].mean).toBeCloseTo(0.16 / 3, 12);
    expect(rows[2].auc['0.08']).toBeCloseTo(exactAuc([0.02, 0.04, 0.1], 0.08), 3);
    const md = formatSubsetTable(rows);
    expect(md.split('\n')[0]).toBe('| subset | images | NME % | AUC@0.07 % | AUC@0.08 % | FR@0.07 % | FR@0.08 % |');
    expect(md.split('\n')[4]).toMatch(/^\| full \| 3 \| 5\.33 \|/);
    const custom = subsetTable({ a: [0.01], b: [0.03] }, { alphas: [0.05], unions: { both: ['a', 'b'] } });
    expect(custom[2].mean).toBeCloseTo(0.02, 12);
    expect(Object.keys(custom[2].auc)).toEqual(['0.05']);
  });

  it('rejects bad input', () => {
    expect(() => aucAt([], 0.08)).toThrow(/aucAt: 'errors' must be a non-empty array/);
    expect(() => aucAt([0.1, NaN], 0.08)).toThrow(/errors\[1\] = NaN/);
    expect(() => aucAt([-0.1], 0.08)).toThrow(RangeError);
    expect(() => aucAt([0.1], 0)).toThrow(/'alpha' must be a positive finite number/);
    expect(() => aucAt('x' as never, 0.08)).toThrow(TypeError);
    expect(() => cedCurve([0.1], { max: 0.08, step: 0.03 })).toThrow(/cedCurve: 'step' must be a divisor of max/);
    expect(() => failureRate([0.1], '0.08' as never)).toThrow(TypeError);
    expect(() => subsetTable({})).toThrow(/at least one subset/);
    expect(() => subsetTable({ a: [0.1] }, { unions: { all: ['a', 'b'] } })).toThrow(/'unions.all' must be names of given subsets/);
    expect(() => summarizeErrors([0.1], [])).toThrow(/'alphas'/);
    expect(() => formatSubsetTable([])).toThrow(TypeError);
  });
});

describe('options and configs of the landmark functions refuse unknown keys', () => {
  // A misspelt key (normaliser, lrate, maxSweep) would otherwise be dropped and the default used.
  const dir = mkdtempSync(join(tmpdir(), 'lrface-landmarks-keys-'));
  const lr68 = fileURLToPath(new URL('../weights/lr68.safetensors', import.meta.url));
  const lgcnFile = join(dir, 'lgcn.safetensors');
  const lgcn = new Lgcn({ inputSize: 48, localLayers: 4, localWidth: 16, globalDilations: [1, 2, 4], globalWidth: 16, kernelSigma: 1 });
  saveLgcnWeights(lgcnFile, lgcn);
  const tinyG1 = { ...DEFAULT_HIGH_TO_LOW.generator, stemWidth: 4, encoderWidths: [4, 4, 4, 4, 4, 4, 4, 4], decoderWidths: [4, 4, 4, 4, 4, 4] };
  const tinyUNet = { widths: [4, 8, 8, 8], blocksPerGroup: 1, upsample: 'nearest' as const };
  const tinyDisc = { widths: [4, 8, 8, 8], poolCount: 3, spectral: false };
  const stage1 = { ...DEFAULT_HIGH_TO_LOW, generator: tinyG1, discriminator: tinyDisc };
  const s1 = () => landmarkPreset('S1', { generator: tinyUNet });
  const supervised = { generator: tinyUNet, optimizer: PAPER_OPTIMIZER, steps: 1, batchSize: 1, sigma: 1, inputSize: 32 };
  const face = { id: 'a', image: { data: new Uint8Array(64 * 64 * 3).fill(90), width: 64, height: 64, channels: 3 }, landmarks: gt68.map((v, i) => (i % 2 ? 20 : 5 + v / 2)) };
  const shapes = Array.from({ length: 8 }, (_, s) => Float64Array.from(gt68, (v, i) => 20 + (i % 2 ? 10 + Math.cos(s + i) : v / 3 + Math.sin(s * 3 + i))));
  const model = PcaShapeModel.fit(shapes, { components: 2, imageSize: 48 });
  const maps = new Float32Array(68 * 48 * 48);
  const z = () => ops.zeros([]);
  // [function, what the object is called in the message, call with the given keys, every documented key]
  const cases: [string, string, (o: object) => unknown, object][] = [
    ['nmeNormalizer', 'option', (o) => nmeNormalizer(gt68, { normalizer: 'box', ...o }), { scheme: SCHEME_68, box: { x: 0, y: 0, width: 4, height: 9 }, visibility: new Array(68).fill(1), missing: 'fail' }],
    ['nme', 'option', (o) => nme(pred68, gt68, { normalizer: 'box', ...o }), { scheme: SCHEME_68, box: { x: 0, y: 0, width: 4, height: 9 }, visibility: new Array(68).fill(1), missing: 'fail' }],
    ['nmePerImage', 'option', (o) => nmePerImage([pred68], [gt68], { normalizer: 'box', ...o }), { scheme: SCHEME_68, boxes: [{ x: 0, y: 0, width: 4, height: 9 }], visibility: [new Array(68).fill(1)], missing: 'fail' }],
    ['cedCurve', 'option', (o) => cedCurve([0.01, 0.05], o), { max: 0.1, step: 0.01 }],
    ['subsetTable', 'option', (o) => subsetTable({ a: [0.01], b: [0.02] }, o), { alphas: [0.05], step: 0.001, unions: { all: ['a', 'b'] } }],
    ['estimateSimilarity', 'option', (o) => estimateSimilarity([0, 0, 1, 0, 0, 1], [0, 0, 2, 0, 0, 2], o), { allowReflection: true }],
    ['heatmapGeneratorLoss', 'terms field', (o) => heatmapGeneratorLoss({ mse: z(), ...o }, { a: 1, b: 1, c: 1 }), { kp: z(), conf: z() }],
    ['heatmapGeneratorLoss', 'weights field', (o) => heatmapGeneratorLoss({ mse: z() }, { a: 1, b: 1, c: 1, ...o }), {}],
    ['highToLowGeneratorLoss', 'weights field', (o) => highToLowGeneratorLoss(ops.zeros([2, 1]), ops.zeros([1, 3, 4, 4]), ops.zeros([1, 3, 4, 4]), { alpha: 1, beta: 1, ...o }), {}],
    ['landmarkPreset', 'overrides field', (o) => landmarkPreset('S1', o), { ...s1(), setting: 'S1', foregroundWeight: 0.5, highToLowBatchStatistics: false, subsampledFraction: 0.25 }],
    ['HighToLowTrainer', 'config field', (o) => new HighToLowTrainer({ ...stage1, ...o }), {}],
    ['HighToLowTrainer', 'optimizer field', (o) => new HighToLowTrainer({ ...stage1, optimizer: { ...PAPER_OPTIMIZER, ...o } }), {}],
    ['LandmarkTrainer', 'config field', (o) => new LandmarkTrainer({ ...s1(), ...o }, null), { foregroundWeight: 0.5, highToLowBatchStatistics: false, subsampledFraction: 0.25 }],
    ['LandmarkTrainer', 'option', (o) => new LandmarkTrainer(s1(), null, o), { lowResSize: 16 }],
    ['SupervisedTrainer', 'config field', (o) => new SupervisedTrainer({ ...supervised, ...o }), { foregroundWeight: 0.5 }],
    ['labelledBatch', 'augment field', (o) => labelledBatch([face], new Rng(1), 1, 32, { ...DEFAULT_AUGMENT, ...o }), {}],
    ['LgcnTrainer', 'augment field', (o) => new LgcnTrainer({ network: { inputSize: 48, localLayers: 2, localWidth: 4, globalDilations: [1], globalWidth: 4 }, augment: { ...DEFAULT_AUGMENT, ...o } }), {}],
    ['loadLandmarkWeights', 'option', (o) => loadLandmarkWeights(lr68, o), { fallbackSpec: undefined, expectedSha256: undefined }],
    ['saveLgcnWeights', 'option', (o) => saveLgcnWeights(join(dir, 'other.safetensors'), lgcn, o), { shapeModel: null, margin: 0.3, metadata: { note: 'x' } }],
    ['loadLgcnWeights', 'option', (o) => loadLgcnWeights(lgcnFile, o), { expectedSha256: undefined }],
    ['symmetricEigen', 'option', (o) => symmetricEigen([2, 1, 1, 2], 2, o), { maxSweeps: 20 }],
    ['solveQp', 'option', (o) => solveQp([1, 0, 0, 1], [-1, -1], [1, 1], [1], o), { maxIterations: 50 }],
    ['kabschRotation', 'option', (o) => kabschRotation([1, 0, 0, 1], [0, 1, -1, 0], o), { centre: [0, 0], weights: [1, 1] }],
    ['PcaShapeModel.fitCoefficients', 'option', (o) => model.fitCoefficients(maps, o), { thresh: 0.1, minWeight: 0, useOrderingConstraints: false, window: { centres: model.mean, radius: 3 } }],
  ];
  it.each(cases)('%s names itself and the misspelt %s', (fn, what, call) => {
    expect(() => call({ normaliser: 'box' })).toThrow(TypeError);
    expect(() => call({ normaliser: 'box' })).toThrow(`${fn}: 'normaliser' must be one of the known ${what}s (`);
  });
  it.each(cases)('%s still takes every documented %s', (_fn, _what, call, documented) => {
    expect(() => call(documented)).not.toThrow();
  });
  it('the checked keys still take effect', () => {
    // Rotating (1, 0) and (0, 1) onto (0, 1) and (-1, 0) is a quarter turn.
    expect(kabschRotation([1, 0, 0, 1], [0, 1, -1, 0], { centre: [0, 0] })).toBeCloseTo(Math.PI / 2, 12);
    // The minimum of |x - (1, 1)|^2 / 2 under x0 + x1 <= 1 is (0.5, 0.5).
    expect(Array.from(solveQp([1, 0, 0, 1], [-1, -1], [1, 1], [1], { maxIterations: 50 }).x).map((v) => Math.round(v * 1e9) / 1e9)).toEqual([0.5, 0.5]);
    expect(Array.from(cedCurve([0.01, 0.07], { max: 0.1, step: 0.05 }).fractions)).toEqual([0, 0.5, 1]);
  });
});
