import { describe, expect, it } from 'vitest';
import { tensor } from '@lrface/cuda-core';
import { cropAffine, gaussianHeatmaps } from '@lrface/datasets';
import { cropToImage, decodeHeatmaps } from '../src/index.js';

/** A Gaussian of the given sigma centred at (x, y) on an H x W grid, peak 1. */
function gaussian(H: number, W: number, x: number, y: number, sigma: number): Float32Array {
  const out = new Float32Array(H * W);
  for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) out[j * W + i] = Math.exp(-((i - x) ** 2 + (j - y) ** 2) / (2 * sigma * sigma));
  return out;
}

function stack(...maps: Float32Array[]): Float32Array {
  const out = new Float32Array(maps.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of maps) {
    out.set(m, o);
    o += m.length;
  }
  return out;
}

describe('decodeHeatmaps', () => {
  it('finds the integer argmax without refinement', () => {
    const map = new Float32Array(4 * 5);
    map[2 * 5 + 3] = 0.7; // (x 3, y 2)
    map[1 * 5 + 1] = 0.2;
    const r = decodeHeatmaps(map, [1, 1, 4, 5], { refine: 'none' });
    expect(Array.from(r.points)).toEqual([3, 2]);
    expect(r.confidence[0]).toBeCloseTo(0.7, 6);
    expect(r.batch).toBe(1);
    expect(r.count).toBe(1);
  });

  it('shifts a quarter pixel toward the higher neighbour on each axis', () => {
    const W = 5;
    const map = new Float32Array(5 * W);
    map[2 * W + 2] = 1;
    map[2 * W + 3] = 0.5; // right neighbour higher than left (0)
    map[1 * W + 2] = 0.3; // upper neighbour higher than lower (0)
    const r = decodeHeatmaps(map, [1, 1, 5, 5], { refine: 'quarter' });
    expect(r.points[0]).toBeCloseTo(2.25, 6);
    expect(r.points[1]).toBeCloseTo(1.75, 6);
  });

  it('takes the first maximum in raster order on ties and does not shift between equal neighbours', () => {
    const W = 6;
    const map = new Float32Array(4 * W);
    map[1 * W + 4] = 1;
    map[2 * W + 1] = 1;
    map[2 * W + 0] = 0.5;
    map[2 * W + 2] = 0.5;
    // (4, 1) comes first; its neighbours are all zero, so no shift.
    const r = decodeHeatmaps(map, [1, 1, 4, W]);
    expect(Array.from(r.points)).toEqual([4, 1]);
    const only = new Float32Array(4 * W);
    only[2 * W + 1] = 1;
    only[2 * W + 0] = 0.5;
    only[2 * W + 2] = 0.5;
    expect(Array.from(decodeHeatmaps(only, [1, 1, 4, W]).points)).toEqual([1, 2]);
  });

  it('recovers a Gaussian at a known sub-pixel location within 0.1 px with Taylor refinement', () => {
    const cases: [number, number][] = [
      [10.3, 7.8],
      [5.45, 12.1],
      [20.9, 3.35],
      [15.0, 15.0],
    ];
    for (const [x, y] of cases) {
      const r = decodeHeatmaps(gaussian(24, 28, x, y, 2), [1, 1, 24, 28], { refine: 'taylor' });
      expect(Math.abs(r.points[0] - x)).toBeLessThan(0.1);
      expect(Math.abs(r.points[1] - y)).toBeLessThan(0.1);
      // The quarter step can only land on a quarter grid: its error is larger in general.
      const q = decodeHeatmaps(gaussian(24, 28, x, y, 2), [1, 1, 24, 28], { refine: 'quarter' });
      expect(Math.abs(q.points[0] - x)).toBeLessThanOrEqual(0.5);
    }
    // An anisotropic, correlated Gaussian (the full 2-D Hessian) is also recovered.
    const W = 20;
    const H = 20;
    const map = new Float32Array(H * W);
    for (let j = 0; j < H; j++)
      for (let i = 0; i < W; i++) {
        const dx = i - 9.4;
        const dy = j - 10.7;
        map[j * W + i] = Math.exp(-(dx * dx / 6 + dy * dy / 3 + dx * dy / 5));
      }
    const r = decodeHeatmaps(map, [1, 1, H, W], { refine: 'taylor' });
    expect(r.points[0]).toBeCloseTo(9.4, 3);
    expect(r.points[1]).toBeCloseTo(10.7, 3);
  });

  it('falls back to the quarter step at the border under Taylor refinement', () => {
    const map = gaussian(8, 8, 0.2, 4.3, 1.5);
    const r = decodeHeatmaps(map, [1, 1, 8, 8], { refine: 'taylor' });
    // x at column 0: no left neighbour, no x shift; y quarter step toward row 5.
    expect(r.points[0]).toBe(0);
    expect(r.points[1]).toBeCloseTo(4.25, 6);
  });

  it('gives NaN and the peak as confidence for all-zero or sub-threshold maps', () => {
    const maps = stack(new Float32Array(16), gaussian(4, 4, 1, 2, 1).map((v) => v * 0.05));
    const r = decodeHeatmaps(maps, [1, 2, 4, 4]);
    expect(Number.isNaN(r.points[0]) && Number.isNaN(r.points[1])).toBe(true);
    expect(r.confidence[0]).toBe(0);
    expect(r.points[2]).toBeCloseTo(1, 6);
    expect(r.points[3]).toBeCloseTo(2, 6);
    const t = decodeHeatmaps(maps, [1, 2, 4, 4], { minPeak: 0.1 });
    expect(Number.isNaN(t.points[2])).toBe(true);
    expect(t.confidence[1]).toBeCloseTo(0.05, 6);
  });

  it('skips the background channel and lays points out batch-major', () => {
    const H = 16;
    const W = 16;
    const pts = [
      [3, 4, 10, 12],
      [7.5, 2.25, 12.5, 9],
    ];
    const maps = stack(...pts.map((p) => gaussianHeatmaps(p, { size: [H, W], background: true })));
    const r = decodeHeatmaps(maps, [2, 3, H, W], { background: true, refine: 'taylor' });
    expect(r.count).toBe(2);
    expect(r.points.length).toBe(8);
    const flat = pts.flat();
    for (let i = 0; i < 8; i++) expect(Math.abs(r.points[i] - flat[i])).toBeLessThan(0.1);
    expect(r.confidence.length).toBe(4);
  });

  it('accepts a float32 tensor', () => {
    const map = gaussian(8, 8, 5, 3, 1);
    const r = decodeHeatmaps(tensor(map, [1, 1, 8, 8]), { refine: 'none' });
    expect(Array.from(r.points)).toEqual([5, 3]);
  });

  it('maps heatmap pixels to input pixels with aligned pixel centres', () => {
    // A 4x4 heatmap over a 16x16 input: heatmap pixel 0 spans input [-0.5, 3.5], centre 1.5.
    const map = new Float32Array(16);
    map[0] = 1;
    const r = decodeHeatmaps(map, [1, 1, 4, 4], { refine: 'none', inputSize: [16, 16] });
    expect(Array.from(r.points)).toEqual([1.5, 1.5]);
    map[0] = 0;
    map[2 * 4 + 3] = 1; // x 3, y 2 -> (3.5 * 4 - 0.5, 2.5 * 4 - 0.5)
    expect(Array.from(decodeHeatmaps(map, [1, 1, 4, 4], { refine: 'none', inputSize: [16, 16] }).points)).toEqual([13.5, 9.5]);
    // Round trip with the heatmaps of @lrface/datasets drawn at input resolution.
    const lm = [20.3, 41.7, 50.6, 9.1];
    const hm = gaussianHeatmaps(lm, { size: [16, 16], imageSize: [64, 64], background: false });
    const back = decodeHeatmaps(hm, [1, 2, 16, 16], { refine: 'taylor', inputSize: [64, 64] });
    for (let i = 0; i < 4; i++) expect(Math.abs(back.points[i] - lm[i])).toBeLessThan(0.4); // 0.1 heatmap px = 0.4 input px
  });

  it('maps input pixels to image pixels through a crop box or a crop affine', () => {
    // Box {x 100, y 50, 64 x 32} shown as a 32 x 32 input (sx 2, sy 1): input (0, 0) covers
    // image [99.5, 101.5] x [49.5, 50.5], centre (100.5, 50).
    const map = new Float32Array(32 * 32);
    map[0] = 1;
    const box = { x: 100, y: 50, width: 64, height: 32 };
    const r = decodeHeatmaps(map, [1, 1, 32, 32], { refine: 'none', boxes: box });
    expect(Array.from(r.points)).toEqual([100.5, 50]);
    expect(Array.from(cropToImage([0, 0, 31, 31], box, [32, 32]))).toEqual([100.5, 50, 162.5, 81]);
    // Through cropAffine: decode(heatmaps of affine(points)) returns the image points.
    const imgPts = [130.2, 61.4, 145.9, 70.3];
    const face = { x: 110, y: 40, width: 48, height: 48 };
    const m = cropAffine(face, [64, 64], 0.1);
    const inCrop = [m[0] * imgPts[0] + m[1] * imgPts[1] + m[2], m[3] * imgPts[0] + m[4] * imgPts[1] + m[5], m[0] * imgPts[2] + m[1] * imgPts[3] + m[2], m[3] * imgPts[2] + m[4] * imgPts[3] + m[5]];
    const hm = gaussianHeatmaps(inCrop, { size: [32, 32], imageSize: [64, 64], background: false });
    const a = decodeHeatmaps(hm, [1, 2, 32, 32], { refine: 'taylor', inputSize: [64, 64], affines: m });
    const scale = 48 * 1.2 / 64; // image px per input px
    for (let i = 0; i < 4; i++) expect(Math.abs(a.points[i] - imgPts[i])).toBeLessThan(0.1 * 2 * scale);
    // A box per batch item.
    const two = decodeHeatmaps(stack(map, map), [2, 1, 32, 32], { refine: 'none', boxes: [box, { x: 0, y: 0, width: 32, height: 32 }] });
    expect(Array.from(two.points)).toEqual([100.5, 50, 0, 0]);
  });

  it('rejects bad input with errors naming the argument', () => {
    expect(() => decodeHeatmaps([1, 2] as unknown as Float32Array, [1, 1, 1, 2])).toThrow(TypeError);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2] as unknown as number[])).toThrow(/decodeHeatmaps: 'shape'/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 3])).toThrow(/decodeHeatmaps: 'heatmaps' must be 1x1x2x3 = 6 values, got 4 values/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 0, 4])).toThrow(RangeError);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { background: true })).toThrow(/at least one landmark channel/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { refine: 'cubic' as 'none' })).toThrow(RangeError);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { refine: 2 as never })).toThrow(/decodeHeatmaps: 'refine' must be 'none', 'quarter' or 'taylor', got 2/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { background: 1 as never })).toThrow(/'background' must be a boolean/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { minPeak: '0' as never })).toThrow(/'minPeak' must be a number/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { boxes: { x: 0, y: 0, width: 1, height: 1 }, affines: [1, 0, 0, 0, 1, 0] })).toThrow(/'boxes'/);
    expect(() => decodeHeatmaps(tensor(new Float32Array(4), [1, 1, 2, 2]), [1, 1, 2, 2] as never)).toThrow(/'options' must be an options object/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { sigma: 2 } as object)).toThrow(/'sigma' must be one of the known options/);
    expect(() => decodeHeatmaps(new Float32Array(8), [2, 1, 2, 2], { boxes: [{ x: 0, y: 0, width: 1, height: 1 }] })).toThrow(/'boxes'/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { boxes: { x: 0, y: 0, width: 0, height: 1 } })).toThrow(/'boxes\[0\]' must be a box with a positive/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { inputSize: [2.5, 2] as [number, number] })).toThrow(/'inputSize'/);
    expect(() => decodeHeatmaps(new Float32Array(4), [1, 1, 2, 2], { affines: [0, 0, 0, 0, 0, 0] })).toThrow(/invertible/);
    expect(() => decodeHeatmaps(tensor(new Int32Array(4), [1, 1, 2, 2]))).toThrow(/float32 tensor/);
    expect(() => decodeHeatmaps(tensor(new Float32Array(4), [1, 2, 2]))).toThrow(/'shape'/);
    expect(() => cropToImage([0, 0], { x: 0, y: 0, width: -1, height: 2 }, [2, 2])).toThrow(/cropToImage: 'box'/);
    expect(() => cropToImage([0, 0], { x: 0, y: 0, width: 1, height: 2 }, [2, 0])).toThrow(/cropToImage: 'inputSize'/);
  });
});
