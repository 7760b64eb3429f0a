import { afterEach, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { expectError, gradcheck } from './helpers/check.js';
import { rng, size, uniform } from './helpers/random.js';

const threadsAtStart = lr.numThreads();
afterEach(() => lr.setNumThreads(threadsAtStart));

type DT = 'float32' | 'int32' | 'uint8';
const DTYPES: DT[] = ['float32', 'int32', 'uint8'];

/** Values of a dtype, as a plain array (integers for int32/uint8). */
function values(n: number, seed: number, dtype: DT): number[] {
  const u = uniform(n, seed, 0, 1);
  return Array.from(u, (v) => (dtype === 'float32' ? Math.fround(v * 4 - 2) : dtype === 'int32' ? Math.floor(v * 2000) - 1000 : Math.floor(v * 256)));
}

function make(data: number[], shape: number[], dtype: DT): lr.Tensor {
  return lr.tensor(data, shape, dtype);
}

/** The same tensor as a view at a non-zero offset of a larger buffer. */
function atOffset(data: number[], shape: number[], dtype: DT, pad = 4): lr.Tensor {
  const big = make([...new Array(pad).fill(77), ...data, 1, 2], [pad + data.length + 2], dtype);
  const v = lr.reshape(lr.narrow(big, 0, pad, data.length), shape);
  expect(v._offset).toBe(pad);
  return v;
}

function randomShape(r: () => number, rank: number, maxDim: number): number[] {
  return Array.from({ length: rank }, () => 1 + Math.floor(r() * maxDim));
}

/** Flat index of a multi-index in a contiguous shape. */
function flat(shape: number[], idx: number[]): number {
  let f = 0;
  for (let k = 0; k < shape.length; k++) f = f * shape[k] + idx[k];
  return f;
}

/** Calls fn with every multi-index of `shape`, in order. */
function forEachIndex(shape: number[], fn: (idx: number[]) => void): void {
  const n = size(shape);
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    fn(idx);
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
}

/** out[idx] = inputs[k][idx with idx[axis] - offset_k]: the reference concat. */
function concatRef(datas: number[][], shapes: number[][], axis: number): number[] {
  const outShape = shapes[0].map((d, k) => (k === axis ? shapes.reduce((s, sh) => s + sh[axis], 0) : d));
  const out: number[] = [];
  forEachIndex(outShape, (idx) => {
    let j = idx[axis];
    let k = 0;
    while (j >= shapes[k][axis]) j -= shapes[k++][axis];
    const src = [...idx];
    src[axis] = j;
    out.push(datas[k][flat(shapes[k], src)]);
  });
  return out;
}

/** The indices Python's range(*slice(start, end, step).indices(n)) visits, written from the language reference. */
function pythonSliceIndices(n: number, start: number | undefined, end: number | undefined, step: number): number[] {
  const fix = (v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    if (v < 0) return Math.max(0, v + n);
    return Math.min(v, n);
  };
  const out: number[] = [];
  for (let i = fix(start, 0); i < fix(end, n); i += step) out.push(i);
  return out;
}

/** Picks rows `picks` of `axis`. */
function takeRef(data: number[], shape: number[], axis: number, picks: number[]): number[] {
  const outShape = shape.map((d, k) => (k === axis ? picks.length : d));
  const out: number[] = [];
  forEachIndex(outShape, (idx) => {
    const src = [...idx];
    src[axis] = picks[idx[axis]];
    out.push(data[flat(shape, src)]);
  });
  return out;
}

/** Element-by-element equality without building a diff of huge arrays. */
function expectSame(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) expect(`${i}: ${actual[i]}`).toBe(`${i}: ${expected[i]}`);
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('concat', () => {
  it('matches a reference for random shapes, axes, dtypes and offset views', () => {
    const r = rng(1);
    for (let c = 0; c < 24; c++) {
      const dtype = DTYPES[c % 3];
      const rank = 1 + Math.floor(r() * 4);
      const base = randomShape(r, rank, 4);
      const axis = Math.floor(r() * rank);
      const k = 1 + Math.floor(r() * 4);
      const shapes = Array.from({ length: k }, () => base.map((d, a) => (a === axis ? Math.floor(r() * 4) : d)));
      if (shapes.every((s) => s[axis] === 0)) shapes[0][axis] = 1;
      const datas = shapes.map((s, i) => values(size(s), 10 * c + i, dtype));
      const inputs = shapes.map((s, i) => (i % 2 ? atOffset(datas[i], s, dtype) : make(datas[i], s, dtype)));
      const out = lr.concat(inputs, c % 2 ? axis - rank : axis);
      expect(out.dtype).toBe(dtype);
      expect(out.shape).toEqual(base.map((d, a) => (a === axis ? shapes.reduce((s, sh) => s + sh[axis], 0) : d)));
      expect(Array.from(out.data())).toEqual(concatRef(datas, shapes, axis));
    }
  });
  it('large inputs give the same result on 1 and 2 threads', () => {
    const shapes = [[3, 40000], [3, 1], [3, 25000]];
    const datas = shapes.map((s, i) => values(size(s), 40 + i, 'float32'));
    for (const axis of [0, 1]) {
      const ss = axis === 0 ? shapes.map((s) => [s[1], s[0]]) : shapes;
      const ins = ss.map((s, i) => make(datas[i], s, 'float32'));
      const ref = concatRef(datas, ss, axis);
      lr.setNumThreads(1);
      expectSame(lr.concat(ins, axis).data(), ref);
      lr.setNumThreads(2);
      expectSame(lr.concat(ins, axis).data(), ref);
    }
  });
  it('gradients route back to each input', () => {
    gradcheck((x, y) => lr.concat([x, y], 1), [{ data: uniform(6, 3), shape: [2, 3] }, { data: uniform(4, 4), shape: [2, 2] }]);
    gradcheck((x, y, z) => lr.concat([x, y, z], 0), [
      { data: uniform(6, 5), shape: [2, 3] },
      { data: uniform(3, 6), shape: [1, 3], grad: false },
      { data: uniform(12, 7), shape: [4, 3] },
    ]);
    gradcheck((x, y) => lr.concat([y, x, y], -1), [{ data: uniform(8, 8), shape: [2, 2, 2] }, { data: uniform(12, 9), shape: [2, 2, 3] }]);
    gradcheck((x) => lr.concat([lr.narrow(x, 0, 1, 2), x], 0), [{ data: uniform(12, 10), shape: [4, 3] }]);
  });
  it('rejects bad arguments naming them', () => {
    expectError(() => lr.concat([lr.zeros([2, 3]), lr.zeros([3, 3])], 1), RangeError, 'concat', "'tensors[1]'");
    expectError(() => lr.concat([lr.zeros([2, 3]), lr.zeros([2, 3, 1])], 1), RangeError, 'concat', "'tensors[1]'");
    expectError(() => lr.concat([lr.zeros([2]), lr.zeros([2], 'int32')]), TypeError, 'concat', "'tensors[1]'");
    expectError(() => lr.concat([]), RangeError, 'concat', "'tensors'");
    expectError(() => lr.concat(lr.zeros([2]) as unknown as lr.Tensor[]), TypeError, 'concat', "'tensors'");
    expectError(() => lr.concat([lr.zeros([2]), 'x' as unknown as lr.Tensor]), TypeError, 'concat', "'tensors[1]'");
    expectError(() => lr.concat([lr.tensor(1), lr.tensor(2)]), RangeError, 'concat', "'tensors[0]'");
    expectError(() => lr.concat([lr.zeros([2])], 1), RangeError, 'concat', "'axis'");
    expectError(() => lr.concat([lr.zeros([2])], 0.5), TypeError, 'concat', "'axis'");
  });
});

describe('stack', () => {
  it('matches a reference for random shapes, axes and dtypes', () => {
    const r = rng(2);
    for (let c = 0; c < 15; c++) {
      const dtype = DTYPES[c % 3];
      const rank = Math.floor(r() * 4);
      const shape = randomShape(r, rank, 4);
      const axis = Math.floor(r() * (rank + 1));
      const k = 1 + Math.floor(r() * 4);
      const datas = Array.from({ length: k }, (_, i) => values(size(shape), 100 * c + i, dtype));
      const out = lr.stack(datas.map((d, i) => (i === 1 ? atOffset(d, shape, dtype) : make(d, shape, dtype))), c % 2 ? axis - rank - 1 : axis);
      const withOne = [...shape.slice(0, axis), 1, ...shape.slice(axis)];
      expect(out.shape).toEqual([...shape.slice(0, axis), k, ...shape.slice(axis)]);
      expect(Array.from(out.data())).toEqual(concatRef(datas, datas.map(() => withOne), axis));
    }
  });
  it('gradients route back to each input', () => {
    gradcheck((x, y) => lr.stack([x, y], 0), [{ data: uniform(3, 5), shape: [3] }, { data: uniform(3, 6), shape: [3] }]);
    gradcheck((x, y) => lr.stack([x, y, x], 1), [{ data: uniform(6, 7), shape: [2, 3] }, { data: uniform(6, 8), shape: [2, 3], grad: false }]);
    // two views at offsets 2 and 4 of the leaf
    gradcheck((x) => lr.stack([lr.narrow(lr.reshape(x, [3, 2]), 0, 1, 1), lr.narrow(lr.reshape(x, [3, 2]), 0, 2, 1)], -1), [{ data: uniform(6, 9), shape: [6] }]);
  });
  it('rejects bad arguments naming them', () => {
    expectError(() => lr.stack([lr.zeros([2]), lr.zeros([3])]), RangeError, 'stack', "'tensors[1]'");
    expectError(() => lr.stack([lr.zeros([2]), lr.zeros([2, 1])]), RangeError, 'stack', "'tensors[1]'");
    expectError(() => lr.stack([lr.zeros([2]), lr.zeros([2], 'uint8')]), TypeError, 'stack', "'tensors[1]'");
    expectError(() => lr.stack([]), RangeError, 'stack', "'tensors'");
    expectError(() => lr.stack('ab' as unknown as lr.Tensor[]), TypeError, 'stack', "'tensors'");
    expectError(() => lr.stack([lr.zeros([2])], 2), RangeError, 'stack', "'axis'");
    expectError(() => lr.stack([lr.zeros([2])], -3), RangeError, 'stack', "'axis'");
  });
});

describe('slice', () => {
  it('follows Python semantics on random shapes, bounds, steps, dtypes and offset views', () => {
    const r = rng(3);
    for (let c = 0; c < 40; c++) {
      const dtype = DTYPES[c % 3];
      const rank = 1 + Math.floor(r() * 3);
      const shape = randomShape(r, rank, 7);
      const axis = Math.floor(r() * rank);
      const n = shape[axis];
      const pick = () => (r() < 0.25 ? undefined : Math.floor(r() * (2 * n + 5)) - n - 2);
      const opts: lr.SliceOptions = { axis: c % 4 === 0 ? axis - rank : axis, start: pick(), end: pick(), step: r() < 0.4 ? 1 : 1 + Math.floor(r() * 4) };
      const data = values(size(shape), 300 + c, dtype);
      const picks = pythonSliceIndices(n, opts.start, opts.end, opts.step!);
      const x = c % 2 ? atOffset(data, shape, dtype) : make(data, shape, dtype);
      const y = lr.slice(x, opts);
      expect(y.dtype).toBe(dtype);
      expect(y.shape).toEqual(shape.map((d, k) => (k === axis ? picks.length : d)));
      expect(Array.from(y.data())).toEqual(takeRef(data, shape, axis, picks));
    }
  });
  it('defaults to the whole axis 0 and copies', () => {
    const x = lr.tensor([1, 2, 3, 4], [2, 2]);
    const y = lr.slice(x);
    expect(y.toArray()).toEqual([[1, 2], [3, 4]]);
    expect(y._handle).not.toBe(x._handle);
  });
  it('large strided slices give the same result on 1 and 2 threads', () => {
    const data = values(200 * 301, 31, 'float32');
    const x = make(data, [200, 301], 'float32');
    for (const [axis, step] of [[0, 3], [1, 2], [1, 1]]) {
      const ref = takeRef(data, [200, 301], axis, pythonSliceIndices([200, 301][axis], 1, undefined, step));
      lr.setNumThreads(1);
      expectSame(lr.slice(x, { axis, start: 1, step }).data(), ref);
      lr.setNumThreads(2);
      expectSame(lr.slice(x, { axis, start: 1, step }).data(), ref);
    }
  });
  it('gradient scatters back into the taken rows', () => {
    const shape = [3, 7, 2];
    for (const opts of [{ axis: 1, start: 1, end: 6, step: 2 }, { axis: 0, start: -2 }, { axis: -1, step: 2 }, { axis: 1, start: 2, end: 3 }, { axis: 1, step: 10 }])
      gradcheck((t) => lr.slice(t, opts), [{ data: uniform(size(shape), 8), shape }]);
    gradcheck((t) => lr.slice(lr.narrow(t, 0, 1, 2), { axis: 1, start: 1, step: 3 }), [{ data: uniform(42, 9), shape }]);
    // an empty slice still gives a (zero) gradient
    const x = lr.tensor(uniform(6, 10), [2, 3]).requiresGrad_();
    lr.sum(lr.slice(x, { axis: 1, start: 3 })).backward();
    expect(Array.from(x.grad!.data())).toEqual([0, 0, 0, 0, 0, 0]);
  });
  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([3, 4]);
    expectError(() => lr.slice(x, { axis: 1, step: 0 }), RangeError, 'slice', "'step'");
    expectError(() => lr.slice(x, { step: -1 }), RangeError, 'slice', "'step'");
    expectError(() => lr.slice(x, { start: 0.5 }), TypeError, 'slice', "'start'");
    expectError(() => lr.slice(x, { end: '2' as unknown as number }), TypeError, 'slice', "'end'");
    expectError(() => lr.slice(x, { axis: 2 }), RangeError, 'slice', "'axis'");
    expectError(() => lr.slice(x, { stop: 1 } as lr.SliceOptions), TypeError, 'slice', "'stop'");
    expectError(() => lr.slice(lr.tensor(1)), RangeError, 'slice', "'x'");
    expectError(() => lr.slice({} as lr.Tensor), TypeError, 'slice', "'x'");
  });
});

describe('narrow', () => {
  it('is a zero-copy view when the axis is the outermost one larger than 1', () => {
    const r = rng(4);
    for (let c = 0; c < 20; c++) {
      const dtype = DTYPES[c % 3];
      const rank = 1 + Math.floor(r() * 4);
      const shape = randomShape(r, rank, 5);
      const axis = Math.floor(r() * rank);
      for (let k = 0; k < axis; k++) if (c % 2 === 0) shape[k] = 1;
      const n = shape[axis];
      const start = Math.floor(r() * (n + 1));
      const length = Math.floor(r() * (n - start + 1));
      const data = values(size(shape), 400 + c, dtype);
      const x = c % 3 === 0 ? atOffset(data, shape, dtype) : make(data, shape, dtype);
      const bytes = lr.memory().bytes;
      const y = lr.narrow(x, axis, c % 4 === 1 && start > 0 ? start - n : start, length);
      const view = shape.slice(0, axis).every((d) => d === 1) || length === n;
      expect(y._handle === x._handle).toBe(view);
      if (view) expect(lr.memory().bytes).toBe(bytes);
      expect(y.shape).toEqual(shape.map((d, k) => (k === axis ? length : d)));
      expect(Array.from(y.data())).toEqual(takeRef(data, shape, axis, range(start, start + length)));
    }
  });
  it('a view of a view composes offsets and shares memory', () => {
    const x = lr.tensor(range(0, 24), [4, 6]);
    const v = lr.narrow(lr.narrow(x, 0, 1, 3), 0, 1, 2);
    expect(v._offset).toBe(12);
    expect(v.toArray()).toEqual([range(12, 18), range(18, 24)]);
    x.assign(new Float32Array(24).fill(5));
    expect(Array.from(v.data())).toEqual(new Array(12).fill(5));
  });
  it('gradient for views and copies', () => {
    gradcheck((t) => lr.narrow(t, 0, 1, 2), [{ data: uniform(12, 10), shape: [4, 3] }]);
    gradcheck((t) => lr.narrow(t, 1, 0, 2), [{ data: uniform(12, 11), shape: [4, 3] }]);
    gradcheck((t) => lr.narrow(t, 1, -2, 2), [{ data: uniform(12, 12), shape: [1, 4, 3] }]);
    gradcheck((t) => lr.narrow(t, 2, 1, 1), [{ data: uniform(24, 13), shape: [2, 3, 4] }]);
    gradcheck((t) => lr.mul(lr.narrow(t, 0, 0, 2), lr.narrow(t, 0, 2, 2)), [{ data: uniform(12, 14), shape: [4, 3] }]);
  });
  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([4, 3]);
    expectError(() => lr.narrow(x, 0, 3, 2), RangeError, 'narrow', "'length'");
    expectError(() => lr.narrow(x, 0, 5, 0), RangeError, 'narrow', "'start'");
    expectError(() => lr.narrow(x, 0, -5, 1), RangeError, 'narrow', "'start'");
    expectError(() => lr.narrow(x, 0, 0, -1), RangeError, 'narrow', "'length'");
    expectError(() => lr.narrow(x, 0, 0.5, 1), TypeError, 'narrow', "'start'");
    expectError(() => lr.narrow(x, 2, 0, 1), RangeError, 'narrow', "'axis'");
    expectError(() => lr.narrow(x, undefined as unknown as number, 0, 1), TypeError, 'narrow', "'axis'");
    expectError(() => lr.narrow(lr.tensor(1), 0, 0, 1), RangeError, 'narrow', "'x'");
  });
});

describe('split', () => {
  it('by sizes or by a section count (tensor_split), views on the outer axis', () => {
    const r = rng(5);
    for (let c = 0; c < 16; c++) {
      const dtype = DTYPES[c % 3];
      const rank = 1 + Math.floor(r() * 3);
      const shape = randomShape(r, rank, 7);
      const axis = Math.floor(r() * rank);
      const n = shape[axis];
      let sizes: number[];
      let arg: number | number[];
      if (c % 2) {
        const k = 1 + Math.floor(r() * (n + 2));
        arg = k;
        // tensor_split: the first n % k pieces have one more row
        sizes = range(0, k).map((i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
      } else {
        sizes = [];
        for (let left = n; left > 0; ) {
          const s = Math.min(left, Math.floor(r() * 4));
          sizes.push(s);
          left -= s;
        }
        arg = sizes;
      }
      const data = values(size(shape), 500 + c, dtype);
      const x = c % 3 ? make(data, shape, dtype) : atOffset(data, shape, dtype);
      const pieces = lr.split(x, arg, c % 4 === 3 ? axis - rank : axis);
      expect(pieces.length).toBe(sizes.length);
      let start = 0;
      pieces.forEach((p, i) => {
        expect(p.shape).toEqual(shape.map((d, k) => (k === axis ? sizes[i] : d)));
        expect(Array.from(p.data())).toEqual(takeRef(data, shape, axis, range(start, start + sizes[i])));
        if (axis === 0) expect(p._handle).toBe(x._handle);
        start += sizes[i];
      });
    }
    expect(lr.split(lr.zeros([10]), 3).map((t) => t.shape[0])).toEqual([4, 3, 3]);
    expect(lr.split(lr.zeros([2]), 4).map((t) => t.shape[0])).toEqual([1, 1, 0, 0]);
  });
  it("each piece's gradient lands in its own region", () => {
    const shape = [2, 6, 2];
    for (const [arg, axis] of [[[1, 2, 3], 1], [3, 1], [[2, 0], 0], [2, -1]] as [number | number[], number][]) {
      const count = Array.isArray(arg) ? arg.length : arg;
      for (let i = 0; i < count; i++) gradcheck((t) => lr.split(t, arg, axis)[i], [{ data: uniform(24, 20 + i), shape }]);
    }
    // all pieces at once, weighted differently: each must route to its own rows
    const x = lr.tensor(uniform(24, 30), shape).requiresGrad_();
    const [a, b, c] = lr.split(x, [1, 2, 3], 1);
    lr.add(lr.add(lr.sum(a), lr.sum(lr.mul(b, 2))), lr.sum(lr.mul(c, 3))).backward();
    const expected: number[] = [];
    forEachIndex(shape, (idx) => expected.push(idx[1] < 1 ? 1 : idx[1] < 3 ? 2 : 3));
    expect(Array.from(x.grad!.data())).toEqual(expected);
  });
  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([10]);
    expectError(() => lr.split(x, [3, 3]), RangeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, []), RangeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, [12, -2]), RangeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, [5, 4.5, 0.5]), TypeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, 0), RangeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, 2.5), TypeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, '2' as unknown as number), TypeError, 'split', "'sizesOrSections'");
    expectError(() => lr.split(x, 2, 1), RangeError, 'split', "'axis'");
    expectError(() => lr.split(5 as unknown as lr.Tensor, 2), TypeError, 'split', "'x'");
  });
});

describe('native re-checks', () => {
  it('the kernels reject rows past the axis, views past storage and mismatched dtypes', () => {
    const r = (t: lr.Tensor) => [t._storage('test'), t._offset];
    const x = lr.zeros([2, 5]);
    const out = lr.zeros([2, 2]);
    expectError(() => kernels.slice_axis(...r(out), ...r(x), [2, 5, 2, 1, 4, 1]), RangeError, 'slice_axis');
    expectError(() => kernels.slice_axis(...r(out), ...r(x), [2, 5, 2, 1, 0, 0]), RangeError, 'slice_axis');
    expectError(() => kernels.slice_axis(...r(out), ...r(x), [2, 5, 2, 2, 0, 1]), RangeError, 'slice_axis');
    expectError(() => kernels.slice_axis(...r(lr.zeros([2, 2], 'int32')), ...r(x), [2, 5, 2, 1, 0, 1]), TypeError, 'slice_axis');
    expectError(() => kernels.slice_axis_backward(...r(x), ...r(out), [2, 5, 2, 1, 0, 5]), RangeError, 'slice_axis_backward');
    expectError(() => kernels.concat_axis(...r(x), [2, 5, 1], [2, 2], ...r(out), ...r(out)), RangeError, 'concat_axis');
    expectError(() => kernels.concat_axis(...r(x), [2, 5, 1], [2, 3], ...r(out), ...r(out)), RangeError, 'concat_axis');
    expectError(() => kernels.concat_axis(...r(x), [2, 5, 1], [2], ...r(out), ...r(out)), RangeError, 'concat_axis');
  });
});
