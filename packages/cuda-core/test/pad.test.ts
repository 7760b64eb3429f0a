import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';
import { kernels } from '../src/native.js';

/** F.pad written per output element: where does each one come from? */
function padRef(x: ArrayLike<number>, shape: number[], p: number[], mode: lr.PadMode, value = 0) {
  const twoD = p.length === 4;
  const h = twoD ? shape[shape.length - 2] : 1;
  const w = shape[shape.length - 1];
  const [pl, pr, pt, pb] = [p[0], p[1], p[2] ?? 0, p[3] ?? 0];
  const planes = size(shape.slice(0, shape.length - (twoD ? 2 : 1)));
  const oh = h + pt + pb;
  const ow = w + pl + pr;
  const from = (i: number, n: number): number => {
    if (i >= 0 && i < n) return i;
    if (mode === 'constant') return -1;
    if (mode === 'replicate') return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i; // reflect: the edge is not repeated
  };
  const out = new Float64Array(planes * oh * ow);
  const outShape = [...shape];
  outShape[shape.length - 1] = ow;
  if (twoD) outShape[shape.length - 2] = oh;
  for (let q = 0; q < planes; q++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const y = from(i - pt, h);
        const xx = from(j - pl, w);
        out[(q * oh + i) * ow + j] = y < 0 || xx < 0 ? value : x[(q * h + y) * w + xx];
      }
  return { out, shape: outShape };
}

describe('pad', () => {
  const cases: [number[], number[]][] = [
    [[1, 1, 3, 4], [1, 2, 2, 1]],
    [[2, 3, 4, 4], [0, 3, 1, 0]],
    [[5, 6], [2, 1]], // last axis only, rank 2
    [[7], [3, 2]], // rank 1
    [[2, 1, 1, 5], [1, 1, 0, 0]], // height 1
    [[1, 1, 1, 1], [0, 0, 0, 0]], // nothing to do
    [[2, 2, 3, 5], [4, 0, 2, 2]], // pads bigger than half the axis
    [[2, 1, 2, 3, 3], [2, 2, 1, 2]], // rank 5
    [[1, 4, 3], [1, 0, 0, 2]], // rank 3
  ];
  for (const mode of ['constant', 'reflect', 'replicate'] as const)
    it(`${mode}: values and gradient`, () => {
      let tested = 0;
      for (const [shape, p] of cases) {
        const w = shape[shape.length - 1];
        const h = p.length === 4 ? shape[shape.length - 2] : 1;
        if (mode === 'reflect' && (p[0] >= w || p[1] >= w || (p.length === 4 && (p[2] >= h || p[3] >= h)))) continue;
        const x = uniform(size(shape), 1 + tested);
        const y = lr.pad(lr.tensor(x, shape), p, { mode, value: 0.5 });
        const ref = padRef(x, shape, p, mode, 0.5);
        expect(y.shape).toEqual(ref.shape);
        expectClose(y.data(), ref.out, 0, 0);
        gradcheck((t) => lr.pad(t, p, { mode }), [{ data: x, shape }]);
        tested++;
      }
      expect(tested).toBeGreaterThanOrEqual(6);
    });

  it('known values for each mode', () => {
    const x = lr.tensor([1, 2, 3]);
    expect(Array.from(lr.pad(x, [2, 1]).data())).toEqual([0, 0, 1, 2, 3, 0]);
    expect(Array.from(lr.pad(x, [2, 2], { mode: 'reflect' }).data())).toEqual([3, 2, 1, 2, 3, 2, 1]);
    expect(Array.from(lr.pad(x, [2, 2], { mode: 'replicate' }).data())).toEqual([1, 1, 1, 2, 3, 3, 3]);
    expect(Array.from(lr.pad(x, [1, 0], { value: -7 }).data())).toEqual([-7, 1, 2, 3]);
  });

  it('constant mode crops with negative pads (as F.pad), and pads empty axes', () => {
    const shape = [2, 1, 4, 5];
    const x = uniform(size(shape), 3);
    const y = lr.pad(lr.tensor(x, shape), [-1, 2, -2, -1]);
    expect(y.shape).toEqual([2, 1, 1, 6]);
    const ref: number[] = [];
    for (let q = 0; q < 2; q++) for (let j = 0; j < 6; j++) ref.push(j + 1 < 5 ? x[(q * 4 + 2) * 5 + j + 1] : 0);
    expectClose(y.data(), ref, 0, 0);
    gradcheck((t) => lr.pad(t, [-1, 2, -2, -1]), [{ data: x, shape }]);
    expect(lr.pad(lr.tensor(x, shape), [0, 0, -4, 0]).shape).toEqual([2, 1, 0, 5]);
    const filled = lr.pad(lr.zeros([2, 0]), [1, 1], { value: 3 });
    expect(filled.shape).toEqual([2, 2]);
    expect(Array.from(filled.data())).toEqual([3, 3, 3, 3]);
  });

  it('reads views at an offset', () => {
    const shape = [2, 3, 4];
    const big = uniform(3 * size(shape), 5);
    const view = lr.narrow(lr.tensor(big, [6, 3, 4]), 0, 2, 2);
    const part = big.slice(2 * 12, 4 * 12);
    for (const mode of ['constant', 'reflect', 'replicate'] as const)
      expectClose(lr.pad(view, [1, 2, 2, 1], { mode }).data(), padRef(part, shape, [1, 2, 2, 1], mode).out, 0, 0);
  });

  it('rejects bad arguments, naming them', () => {
    const x = lr.zeros([1, 1, 3, 3]);
    expectError(() => lr.pad(x, [1, 2, 3]), RangeError, 'pad', "'pad'");
    expectError(() => lr.pad(x, []), RangeError, "'pad'");
    expectError(() => lr.pad(x, [1, 1, 1, 1, 1, 1]), RangeError, "'pad'");
    expectError(() => lr.pad(x, [1.5, 0]), TypeError, "'pad'");
    expectError(() => lr.pad(x, 2 as unknown as number[]), TypeError, "'pad'");
    expectError(() => lr.pad(lr.zeros([4]), [1, 1, 1, 1]), RangeError, "'pad'");
    expectError(() => lr.pad(x, [3, 0], { mode: 'reflect' }), RangeError, "'pad'");
    expectError(() => lr.pad(x, [0, 0, 0, 3], { mode: 'reflect' }), RangeError, "'pad'");
    expectError(() => lr.pad(x, [-1, 0], { mode: 'replicate' }), RangeError, "'pad'");
    expectError(() => lr.pad(x, [-1, 0], { mode: 'reflect' }), RangeError, "'pad'");
    expectError(() => lr.pad(x, [-2, -2]), RangeError, "'pad'");
    expectError(() => lr.pad(lr.zeros([2, 0]), [1, 1], { mode: 'replicate' }), RangeError, "'x'");
    expectError(() => lr.pad(lr.zeros([2, 0, 3]), [1, 1, 0, 0], { mode: 'reflect' }), RangeError, "'x'");
    expectError(() => lr.pad(x, [1, 1], { mode: 'wrap' as lr.PadMode }), RangeError, "'mode'");
    expectError(() => lr.pad(x, [1, 1], { value: Number.NaN }), RangeError, "'value'");
    expectError(() => lr.pad(x, [1, 1], { value: '0' as unknown as number }), TypeError, "'value'");
    expectError(() => lr.pad(x, [1, 1], { fill: 0 } as lr.PadOptions), TypeError, "'fill'");
    expectError(() => lr.pad(lr.zeros([2, 2], 'int32'), [1, 1]), TypeError, "'x'");
    expectError(() => lr.pad(lr.tensor(3), [1, 1]), RangeError, "'x'");
  });
});

describe('pad kernels re-check their arguments natively', () => {
  it('throws RangeError instead of reading out of bounds', () => {
    const s = (t: lr.Tensor) => t._storage('test');
    const x = lr.zeros([1, 1, 3, 3]);
    const out = lr.zeros([1, 1, 9, 9]);
    expect(() => kernels.pad2d(s(out), 0, s(x), 0, [1, 3, 3, 3, 3, 3, 3], 1, 0)).toThrow(RangeError); // reflect pad 3 >= 3
    expect(() => kernels.pad2d(s(out), 0, s(x), 0, [1, 3, 3, -1, 0, 0, 0], 2, 0)).toThrow(RangeError); // replicate crop
    expect(() => kernels.pad2d(s(out), 0, s(x), 0, [1, 3, 3, -4, 0, 0, 0], 0, 0)).toThrow(RangeError); // crop past the edge
    expect(() => kernels.pad2d(s(out), 0, s(x), 0, [1, 3, 3, 4, 4, 4, 4], 0, 0)).toThrow(RangeError); // output too small
    expect(() => kernels.pad2d_backward(s(x), 0, s(out), 0, [1, 3, 3, 3, 3, 3, 3], 3)).toThrow(RangeError); // bad mode
  });
});
