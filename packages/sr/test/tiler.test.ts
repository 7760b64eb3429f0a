import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Vdsr, tileStarts, tiledForward } from '../src/index.js';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, keep: (i: number) => boolean = () => true): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (keep(i)) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('tileStarts', () => {
  it('covers the axis on a regular grid and shifts the last tile back to the border', () => {
    expect(tileStarts(100, 40, 20)).toEqual([0, 20, 40, 60]);
    // 95: regular starts 0, 20, 40; the last tile starts at 55 and overlaps its neighbour more.
    expect(tileStarts(95, 40, 20)).toEqual([0, 20, 40, 55]);
    expect(tileStarts(30, 40, 20)).toEqual([0]);
    expect(tileStarts(40, 40, 20)).toEqual([0]);
  });
});

describe('tiledForward', () => {
  // A small VDSR (radius 6) keeps the test quick; the property does not depend on depth.
  lr.manualSeed(11);
  const net = new Vdsr({ depth: 6, features: 8 }).eval();
  const run = (x: lr.Tensor) => net.forward(x);
  lr.manualSeed(5);
  const x = lr.rand([2, 1, 45, 37]);
  const whole = lr.noGrad(() => net.forward(x)).data();

  it('equals the whole-image output everywhere when the margin covers the receptive field (no seams)', () => {
    const tiled = tiledForward(run, x, net.receptiveRadius, { tile: 20, batchSize: 3 });
    expect(tiled.shape).toEqual([2, 1, 45, 37]);
    expect(maxAbsDiff(tiled.data(), whole)).toBeLessThan(1e-5);
  });

  it('averaging overlapping tiles equals the whole image wherever every covering tile sees the full receptive field', () => {
    const tile = 30, overlap = 12, r = net.receptiveRadius;
    const tiled = tiledForward(run, x, r, { tile, overlap, blend: 'average' }).data();
    // Independent check of which pixels must be exact: every tile covering them keeps r px of context.
    const exactAlong = (n: number) => {
      const starts = tileStarts(n, tile, tile - 2 * overlap);
      return Array.from({ length: n }, (_, p) =>
        starts.filter((s0) => s0 <= p && p < s0 + tile).every((s0) => (s0 === 0 || p - s0 >= r) && (s0 + tile === n || s0 + tile - 1 - p >= r)),
      );
    };
    const rows = exactAlong(45), cols = exactAlong(37);
    const keep = (i: number) => {
      const q = i % (45 * 37);
      return rows[Math.floor(q / 37)] && cols[q % 37];
    };
    let kept = 0;
    for (let i = 0; i < tiled.length; i++) if (keep(i)) kept++;
    expect(kept).toBeGreaterThan(tiled.length / 10);
    expect(maxAbsDiff(tiled, whole, keep)).toBeLessThan(1e-5);
  });

  it('shows seams when the margin is too small (the margin matters)', () => {
    const tiled = tiledForward(run, x, net.receptiveRadius, { tile: 20, overlap: 0 }).data();
    expect(maxAbsDiff(tiled, whole)).toBeGreaterThan(1e-4);
  });

  it('runs an image smaller than the tile in one forward pass', () => {
    const small = lr.rand([1, 1, 9, 7]);
    const a = tiledForward(run, small, 6, { tile: 64 }).data();
    const b = lr.noGrad(() => net.forward(small)).data();
    expect(maxAbsDiff(a, b)).toBe(0);
  });

  it('fits the default margin to a tile smaller than twice the radius; a margin given explicitly must fit', () => {
    // radius 6 asks for tiles of 13 or more; tile 4 keeps a margin of 1 (stride 2) and still covers every pixel.
    const identity = (t: lr.Tensor) => lr.mul(t, 1);
    const tiled = tiledForward(identity, x, 6, { tile: 4 });
    expect(tiled.shape).toEqual([2, 1, 45, 37]);
    expect(maxAbsDiff(tiled.data(), x.data())).toBe(0);
    expect(maxAbsDiff(tiledForward(identity, x, 20, { tile: 1 }).data(), x.data())).toBe(0);
    expect(() => tiledForward(identity, x, 6, { tile: 4, overlap: 2 })).toThrow(/tiledForward: 'overlap' must be less than half the tile \(4\), got 2/);
  });

  it('rejects bad options', () => {
    expect(() => tiledForward(run, x, 6, { tile: 10, overlap: 5 })).toThrow(/tiledForward: 'overlap' must be less than half the tile/);
    expect(() => tiledForward(run, x, 6, { tile: 0 })).toThrow(/'tile' must be an integer >= 1/);
    expect(() => tiledForward(run, x, 6, { batchSize: 1.5 })).toThrow(/'batchSize'/);
    expect(() => tiledForward(run, x, 6, { blend: 'max' as 'crop' })).toThrow(/'blend'/);
    expect(() => tiledForward(run, lr.rand([4, 4]), 6)).toThrow(/'x' must be a float32 \[N, C, H, W\] tensor/);
    expect(() => tiledForward((t) => lr.narrow(t, 2, 0, 2), x, 0, { tile: 20 })).toThrow(/'forward' must be a same-size network/);
  });
});
