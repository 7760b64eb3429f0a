import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bicubicDegrade, decodeImage, imageToTensor, modcrop, srPatches, type RawImage } from '../src/index.js';
import { data, expectArgError, have } from './helpers.js';

describe('SRINC patches', () => {
  it.skipIf(!have('set5/butterfly_GT.png'))('cuts aligned 51x51 (degraded, original) pairs from the Y channel', async () => {
    const y = await decodeImage(join(data, 'set5/butterfly_GT.png'), { color: 'y' });
    const p = srPatches(y, { count: 6, scales: [3], seed: 4 });
    expect(p.scale).toBe(3);
    expect(p.input.shape).toEqual([6, 1, 51, 51]);
    expect(p.target.shape).toEqual([6, 1, 51, 51]);
    const [hr, deg] = bicubicDegrade(imageToTensor(modcrop(y, 3)), 3);
    const w = hr.shape[3];
    const H = hr.data();
    const D = deg.data();
    const inp = p.input.data();
    const tgt = p.target.data();
    p.positions.forEach(([x, yy], i) => {
      for (const [r, c] of [[0, 0], [25, 25], [50, 50], [7, 44]]) {
        expect(tgt[i * 2601 + r * 51 + c]).toBe(H[(yy + r) * w + x + c]);
        expect(inp[i * 2601 + r * 51 + c]).toBe(D[(yy + r) * w + x + c]);
      }
    });
    // Same seed, same patches; scale drawn from the set.
    expect(srPatches(y, { count: 6, scales: [3], seed: 4 }).positions).toEqual(p.positions);
    const scales = new Set([1, 2, 3, 4, 5, 6].map((s) => srPatches(y, { count: 1, seed: s, scales: [1, 2, 4] }).scale));
    expect([...scales].every((s) => [1, 2, 4].includes(s))).toBe(true);
    const id = srPatches(y, { count: 2, scales: [1], seed: 1 });
    expect(Array.from(id.input.data())).toEqual(Array.from(id.target.data()));
  });

  it('cuts a regular grid with a stride, and checks its arguments', async () => {
    const img: RawImage<Uint8Array> = { data: Uint8Array.from({ length: 120 * 100 }, (_, i) => i % 251), width: 120, height: 100, channels: 1 };
    const grid = srPatches(img, { size: 51, stride: 20, scales: [2] });
    // x in 0, 20, 40, 60 (60 + 51 <= 120), y in 0, 20, 40 (40 + 51 <= 100)
    expect(grid.positions.length).toBe(4 * 3);
    expect(grid.positions[5]).toEqual([20, 20]);
    expect(grid.target.data()[0]).toBeCloseTo(img.data[0] / 255, 6);
    await expectArgError(() => srPatches(img, { size: 101 }), RangeError, 'srPatches', 'image');
    await expectArgError(() => srPatches({ ...img, data: new Uint8Array(120 * 100 * 3), channels: 3 }), RangeError, 'srPatches', 'image');
    await expectArgError(() => srPatches(img, { scales: [] }), TypeError, 'srPatches', 'scales');
    await expectArgError(() => srPatches(img, { scales: [1.5] }), TypeError, 'srPatches', 'scales');
  });
});
