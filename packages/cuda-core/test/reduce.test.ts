import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

// Naive reduction over a set of axes (plain loops over every element).
function reduceRef(data: Float32Array, shape: number[], axes: number[], kind: 'sum' | 'mean' | 'max' | 'min') {
  const outShape = shape.map((d, k) => (axes.includes(k) ? 1 : d));
  const n = size(outShape);
  const acc = new Float64Array(n).fill(kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0);
  const count = axes.reduce((p, k) => p * shape[k], 1);
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < data.length; i++) {
    let r = i;
    for (let k = shape.length - 1; k >= 0; k--) {
      idx[k] = r % shape[k];
      r = Math.floor(r / shape[k]);
    }
    let o = 0;
    for (let k = 0; k < shape.length; k++) o = o * outShape[k] + (axes.includes(k) ? 0 : idx[k]);
    const v = data[i];
    if (kind === 'max') acc[o] = Math.max(acc[o], v);
    else if (kind === 'min') acc[o] = Math.min(acc[o], v);
    else acc[o] += v;
  }
  if (kind === 'mean') for (let i = 0; i < n; i++) acc[i] /= count;
  return { out: acc, shape: outShape };
}

const cases: [number[], number[] | undefined][] = [
  [[5], undefined],
  [[2, 3, 4], [1]],
  [[2, 3, 4], [0, 2]],
  [[2, 3, 4], [-1]],
  [[1, 1, 7], [2]],
  [[3, 1, 2, 5], [1, 3]],
];

describe('reductions', () => {
  for (const kind of ['sum', 'mean', 'max', 'min'] as const) {
    const op = lr[kind];
    it(`${kind} matches the naive reference, with and without keepDims`, () => {
      for (const [shape, axis] of cases) {
        const data = uniform(size(shape), 21);
        const axes = axis === undefined ? shape.map((_, k) => k) : axis.map((a) => (a < 0 ? a + shape.length : a));
        const ref = reduceRef(data, shape, axes, kind);
        const kept = op(lr.tensor(data, shape), { axis, keepDims: true });
        expect(kept.shape).toEqual(ref.shape);
        expectClose(kept.data(), ref.out, 1e-5, 1e-5);
        const dropped = op(lr.tensor(data, shape), { axis });
        expect(dropped.shape).toEqual(shape.filter((_, k) => !axes.includes(k)));
      }
    });
    it(`${kind} gradient matches finite differences`, () => {
      for (const [shape, axis] of cases) gradcheck((x) => op(x, { axis }), [{ data: uniform(size(shape), 22), shape }]);
    });
  }

  it('works on offset views', () => {
    const big = lr.tensor(uniform(24, 3), [4, 6]);
    const half = lr.reshape(big, [2, 2, 6]);
    const s = lr.sum(half, { axis: 2 });
    const d = big.data();
    expectClose(s.data(), [0, 1, 2, 3].map((r) => d.slice(r * 6, r * 6 + 6).reduce((a, b) => a + b, 0)), 1e-5);
  });

  it('argmax returns int32 indices of the first maximum', () => {
    const x = lr.tensor([[1, 5, 5], [7, 2, 9]]);
    const a = lr.argmax(x, 1);
    expect(a.dtype).toBe('int32');
    expect(Array.from(a.data())).toEqual([1, 2]);
    expect(lr.argmax(x, 0, { keepDims: true }).shape).toEqual([1, 3]);
  });

  it('sumToShape undoes broadcasting', () => {
    const g = lr.ones([2, 3, 4]);
    expect(Array.from(lr.sumToShape(g, [3, 1]).data())).toEqual([8, 8, 8]);
    expect(lr.sumToShape(g, []).item()).toBe(24);
  });

  it('rejects bad axes', () => {
    expectError(() => lr.sum(lr.zeros([2, 3]), { axis: 2 }), RangeError, 'sum', "'axis'");
    expectError(() => lr.mean(lr.zeros([2, 3]), { axis: [0, -2] }), RangeError, "'axis'");
    expectError(() => lr.max(lr.zeros([2, 3]), { axis: 'x' as unknown as number }), TypeError, "'axis'");
    expectError(() => lr.sum(lr.zeros([2]), { keepdims: true } as never), TypeError, "'keepdims'");
    expectError(() => lr.max(lr.zeros([2, 0]), { axis: 1 }), RangeError, 'max');
    expectError(() => lr.argmax(lr.zeros([2]), 1), RangeError, "'axis'");
  });
});
