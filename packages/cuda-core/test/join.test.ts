import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

// Nested-array reference via toArray(): slicing along an axis of plain JS arrays.
function sliceNested(a: unknown, axis: number, pick: (n: number) => number[]): unknown {
  if (axis === 0) {
    const arr = a as unknown[];
    return pick(arr.length).map((i) => arr[i]);
  }
  return (a as unknown[]).map((sub) => sliceNested(sub, axis - 1, pick));
}

describe('concat and stack', () => {
  it('joins along any axis', () => {
    const a = lr.tensor(uniform(2 * 3 * 2, 1), [2, 3, 2]);
    const b = lr.tensor(uniform(2 * 1 * 2, 2), [2, 1, 2]);
    const c = lr.concat([a, b], 1);
    expect(c.shape).toEqual([2, 4, 2]);
    const an = a.toArray() as number[][][], bn = b.toArray() as number[][][];
    expect(c.toArray()).toEqual(an.map((row, i) => [...row, ...bn[i]]));
    expect(lr.concat([a, a], -1).shape).toEqual([2, 3, 4]);
    expect(lr.concat([lr.tensor(new Int32Array([1, 2])), lr.tensor(new Int32Array([3]))]).toArray()).toEqual([1, 2, 3]);
    const s = lr.stack([lr.tensor([1, 2]), lr.tensor([3, 4])], 1);
    expect(s.toArray()).toEqual([[1, 3], [2, 4]]);
  });
  it('gradients route back to each input', () => {
    gradcheck((x, y) => lr.concat([x, y], 1), [{ data: uniform(6, 3), shape: [2, 3] }, { data: uniform(4, 4), shape: [2, 2] }]);
    gradcheck((x, y) => lr.stack([x, y], 0), [{ data: uniform(3, 5), shape: [3] }, { data: uniform(3, 6), shape: [3] }]);
  });
  it('rejects mismatches naming the tensor', () => {
    expectError(() => lr.concat([lr.zeros([2, 3]), lr.zeros([3, 3])], 1), RangeError, 'concat', "'tensors[1]'");
    expectError(() => lr.concat([lr.zeros([2]), lr.tensor(new Int32Array(2))]), TypeError, "'tensors[1]'");
    expectError(() => lr.concat([]), RangeError, "'tensors'");
    expectError(() => lr.concat([lr.zeros([2]), 'x' as unknown as lr.Tensor]), TypeError, "'tensors[1]'");
    expectError(() => lr.concat([lr.zeros([2])], 1), RangeError, "'axis'");
  });
});

describe('slice, narrow and split', () => {
  it('slice follows Python semantics with steps and negative indices', () => {
    const shape = [3, 7, 2];
    const x = lr.tensor(uniform(size(shape), 7), shape);
    const nested = x.toArray();
    const cases: [lr.SliceOptions, (n: number) => number[]][] = [
      [{ axis: 1, start: 1, end: 6, step: 2 }, () => [1, 3, 5]],
      [{ axis: 1, start: -3 }, () => [4, 5, 6]],
      [{ axis: 0, end: -1 }, () => [0, 1]],
      [{ axis: 2, start: 5 }, () => []],
      [{ axis: -1, step: 3 }, () => [0]],
    ];
    for (const [opts, pick] of cases) {
      const y = lr.slice(x, opts);
      const ax = (opts.axis ?? 0) < 0 ? (opts.axis ?? 0) + 3 : opts.axis ?? 0;
      if (y.size > 0) expect(y.toArray()).toEqual(sliceNested(nested, ax, pick));
      else expect(y.shape[ax]).toBe(0);
    }
    gradcheck((t) => lr.slice(t, { axis: 1, start: 1, end: 6, step: 2 }), [{ data: uniform(size(shape), 8), shape }]);
    expectError(() => lr.slice(x, { axis: 1, step: 0 }), RangeError, 'slice', "'step'");
  });
  it('narrow is a view on the outer axis and a copy elsewhere, both differentiable', () => {
    const x = lr.tensor(uniform(4 * 3, 9), [4, 3]);
    const before = lr.memory().bytes;
    const v = lr.narrow(x, 0, 1, 2);
    expect(lr.memory().bytes).toBe(before); // no new memory: a view
    expect(v.toArray()).toEqual((x.toArray() as number[][]).slice(1, 3));
    const c = lr.narrow(x, 1, 1, 1);
    expect(c.toArray()).toEqual((x.toArray() as number[][]).map((r) => [r[1]]));
    gradcheck((t) => lr.narrow(t, 0, 1, 2), [{ data: uniform(12, 10), shape: [4, 3] }]);
    gradcheck((t) => lr.narrow(t, 1, 0, 2), [{ data: uniform(12, 11), shape: [4, 3] }]);
    expectError(() => lr.narrow(x, 0, 3, 2), RangeError, 'narrow', "'length'");
    expectError(() => lr.narrow(x, 0, 5, 0), RangeError, "'start'");
  });
  it('split by sizes or sections, each piece with its gradient', () => {
    const x = lr.tensor(uniform(10, 12), [10]);
    expect(lr.split(x, [3, 7]).map((t) => t.shape[0])).toEqual([3, 7]);
    expect(lr.split(x, 3).map((t) => t.shape[0])).toEqual([4, 4, 2]);
    const y = lr.tensor(uniform(12, 13), [2, 6]);
    const parts = lr.split(y, 2, 1);
    expect(parts[1].toArray()).toEqual((y.toArray() as number[][]).map((r) => r.slice(3)));
    gradcheck((t) => lr.mul(lr.split(t, [2, 4], 1)[1], 3), [{ data: uniform(12, 14), shape: [2, 6] }]);
    expectError(() => lr.split(x, [3, 3]), RangeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, 0), RangeError, "'sizesOrSections'");
  });
});
