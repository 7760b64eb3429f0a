import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

function padRef(x: Float32Array, shape: number[], p: number[], mode: lr.PadMode, value = 0) {
  const h = p.length === 4 ? shape[shape.length - 2] : 1;
  const w = shape[shape.length - 1];
  const [pl, pr, pt, pb] = [p[0], p[1], p[2] ?? 0, p[3] ?? 0];
  const planes = size(shape) / (h * w);
  const oh = h + pt + pb, ow = w + pl + pr;
  const map = (i: number, n: number) => {
    if (mode === 'replicate') return Math.min(Math.max(i, 0), n - 1);
    if (i < 0) return -i;
    if (i >= n) return 2 * (n - 1) - i;
    return i;
  };
  const out = new Float64Array(planes * oh * ow);
  for (let q = 0; q < planes; q++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const y = i - pt, xx = j - pl;
        const inside = y >= 0 && y < h && xx >= 0 && xx < w;
        out[(q * oh + i) * ow + j] = mode === 'constant' ? (inside ? x[(q * h + y) * w + xx] : value) : x[(q * h + map(y, h)) * w + map(xx, w)];
      }
  return out;
}

describe('pad', () => {
  const cases: [number[], number[]][] = [[[1, 1, 3, 4], [1, 2, 2, 1]], [[2, 3, 4, 4], [0, 3, 1, 0]], [[5, 6], [2, 1]], [[2, 1, 1, 5], [1, 1, 0, 0]]];
  for (const mode of ['constant', 'reflect', 'replicate'] as const)
    it(`${mode}: values and gradient`, () => {
      for (const [shape, p] of cases) {
        const w = shape[shape.length - 1], h = shape[shape.length - 2];
        if (mode === 'reflect' && (p[0] >= w || p[1] >= w || (p.length === 4 && (p[2] >= h || p[3] >= h)))) continue;
        const x = uniform(size(shape), 1);
        const y = lr.pad(lr.tensor(x, shape), p, { mode, value: 0.5 });
        expectClose(y.data(), padRef(x, shape, p, mode, 0.5), 0, 0);
        gradcheck((t) => lr.pad(t, p, { mode }), [{ data: x, shape }]);
      }
    });
  it('rejects bad padding', () => {
    const x = lr.zeros([1, 1, 3, 3]);
    expectError(() => lr.pad(x, [1, 2, 3]), RangeError, 'pad', "'pad'");
    expectError(() => lr.pad(x, [3, 0], { mode: 'reflect' }), RangeError, "'pad'");
    expectError(() => lr.pad(x, [-1, 0]), RangeError, "'pad'");
    expectError(() => lr.pad(x, [1, 1], { mode: 'wrap' as lr.PadMode }), RangeError, "'mode'");
  });
});

describe('gaussianBlur', () => {
  it('equals a direct 2-D Gaussian convolution per channel', () => {
    const shape = [1, 2, 9, 8];
    const x = uniform(size(shape), 2);
    const sigma = 1.2;
    const y = lr.gaussianBlur(lr.tensor(x, shape), { sigma });
    const k = 2 * Math.ceil(3 * sigma) + 1, half = (k - 1) / 2;
    const g = (d: number) => Math.exp(-(d * d) / (2 * sigma * sigma));
    let norm = 0;
    for (let i = -half; i <= half; i++) for (let j = -half; j <= half; j++) norm += g(i) * g(j);
    const ref = new Float64Array(x.length);
    for (let c = 0; c < 2; c++)
      for (let i = 0; i < 9; i++)
        for (let j = 0; j < 8; j++) {
          let acc = 0;
          for (let a = -half; a <= half; a++)
            for (let b = -half; b <= half; b++) {
              const yy = i + a, xx = j + b;
              if (yy >= 0 && yy < 9 && xx >= 0 && xx < 8) acc += (g(a) * g(b) * x[(c * 9 + yy) * 8 + xx]) / norm;
            }
          ref[(c * 9 + i) * 8 + j] = acc;
        }
    expect(y.shape).toEqual(shape);
    expectClose(y.data(), ref, 1e-5, 1e-4);
    // reflect border keeps a constant image constant
    const flat = lr.gaussianBlur(lr.full([1, 1, 6, 6], 3), { sigma: 1, mode: 'reflect' });
    expectClose(flat.data(), new Array(36).fill(3), 1e-5, 1e-5);
    gradcheck((t) => lr.gaussianBlur(t, { sigma: 0.8, kernelSize: 3, mode: 'replicate' }), [{ data: uniform(2 * 25, 3), shape: [1, 2, 5, 5] }]);
    expectError(() => lr.gaussianBlur(lr.zeros([1, 1, 4, 4]), { sigma: 0 }), RangeError, 'gaussian_blur', "'sigma'");
    expectError(() => lr.gaussianBlur(lr.zeros([1, 1, 4, 4]), { sigma: 1, kernelSize: 4 }), RangeError, "'kernelSize'");
  });
});
