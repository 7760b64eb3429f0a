import { describe, expect, it } from 'vitest';
import { gaussianHeatmaps, heatmapTensor } from '../src/index.js';
import { expectArgError } from './helpers.js';

describe('heatmaps', () => {
  it('puts an unnormalised Gaussian (sigma 2) at each point, plus 1 - max as background', () => {
    const pts = [10, 12, 3.5, 20.25, 25, 2];
    const H = 24;
    const W = 28;
    const maps = gaussianHeatmaps(pts, { size: [H, W] });
    expect(maps.length).toBe(4 * H * W);
    for (let k = 0; k < 3; k++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const want = Math.exp(-((x - pts[2 * k]) ** 2 + (y - pts[2 * k + 1]) ** 2) / (2 * 2 * 2));
          expect(maps[k * H * W + y * W + x]).toBeCloseTo(want, 6);
        }
    expect(maps[0 * H * W + 12 * W + 10]).toBeCloseTo(1, 6);
    for (let q = 0; q < H * W; q++) expect(maps[3 * H * W + q]).toBeCloseTo(1 - Math.max(maps[q], maps[H * W + q], maps[2 * H * W + q]), 6);
  });

  it('maps image coordinates onto any heatmap resolution with pixel centres aligned', () => {
    // A point at image pixel (63.5, 31.5) of a 128x128 image is at ((63.5 + 0.5) / 4 - 0.5) = 15.5 on a 32x32 map.
    const maps = gaussianHeatmaps([63.5, 31.5], { size: [32, 32], imageSize: [128, 128], sigma: 1, background: false });
    expect(maps.length).toBe(32 * 32);
    let best = 0;
    for (let q = 1; q < maps.length; q++) if (maps[q] > maps[best]) best = q;
    const [by, bx] = [Math.floor(best / 32), best % 32];
    expect([15, 16]).toContain(bx);
    expect([7, 8]).toContain(by);
    expect(maps[7 * 32 + 15]).toBeCloseTo(Math.exp(-(0.25 + 0.25) / 2), 6);
    // Non-square: 64 wide, 32 high heatmap of a 128x64 image.
    const m2 = gaussianHeatmaps([0, 0], { size: [32, 64], imageSize: [64, 128], sigma: 2, background: false });
    // (0 + 0.5) * 0.5 - 0.5 = -0.25 on both axes.
    expect(m2[0]).toBeCloseTo(Math.exp(-(0.0625 + 0.0625) / 8), 6);
  });

  it('leaves invisible and missing points empty and batches to [N, K+1, H, W]', async () => {
    const maps = gaussianHeatmaps([5, 5, NaN, NaN, 8, 8], { size: [16, 16], visibility: [1, 1, 0] });
    expect(maps.subarray(256, 768).every((v) => v === 0)).toBe(true);
    expect(maps.subarray(768).every((v, q) => Math.abs(v - (1 - maps[q])) < 1e-6)).toBe(true);
    const t = heatmapTensor([[1, 2, 3, 4], [5, 6, 7, 8]], { size: [8, 10], visibility: [[1, 1], [0, 1]] });
    expect(t.shape).toEqual([2, 3, 8, 10]);
    const d = t.data();
    expect(d[2 * 80 + 2 * 10 + 1]).toBeCloseTo(0, 6); // background at point (1, 2) of face 0
    expect(d.subarray(3 * 80, 4 * 80).every((v) => v === 0)).toBe(true); // face 1, point 0 invisible
    await expectArgError(() => gaussianHeatmaps([1, 2, 3], { size: [4, 4] }), RangeError, 'gaussianHeatmaps', 'landmarks');
    await expectArgError(() => gaussianHeatmaps([1, 2], { size: [0, 4] }), RangeError, 'gaussianHeatmaps', 'size');
    await expectArgError(() => gaussianHeatmaps([1, 2], { size: [4, 4], sigma: 0 }), RangeError, 'gaussianHeatmaps', 'sigma');
    await expectArgError(() => heatmapTensor([[1, 2], [1, 2, 3, 4]], { size: [4, 4] }), RangeError, 'heatmapTensor', 'batch');
  });
});
