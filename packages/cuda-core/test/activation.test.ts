import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { awayFromZero, size, uniform } from './helpers/random.js';

function softmaxRef(x: Float32Array, shape: number[], axis: number, log: boolean) {
  const outer = size(shape.slice(0, axis)), n = shape[axis], inner = size(shape.slice(axis + 1));
  const out = new Float64Array(x.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => (o * n + j) * inner + i;
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x[at(j)]);
      for (let j = 0; j < n; j++) out[at(j)] = log ? x[at(j)] - Math.log(s) : Math.exp(x[at(j)]) / s;
    }
  return out;
}

describe('softmax and logSoftmax', () => {
  for (const log of [false, true]) {
    const op = log ? lr.logSoftmax : lr.softmax;
    it(`${log ? 'logSoftmax' : 'softmax'}: values and gradient on several axes`, () => {
      for (const [shape, axis] of [[[5], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[3, 1, 2], 0], [[1, 1], 1]] as [number[], number][]) {
        const x = uniform(size(shape), 1, -3, 3);
        const ax = axis < 0 ? axis + shape.length : axis;
        expectClose(op(lr.tensor(x, shape), axis).data(), softmaxRef(x, shape, ax, log), 1e-6, 1e-5);
        gradcheck((t) => op(t, axis), [{ data: x, shape }]);
      }
    });
  }
  it('is stable for large inputs', () => {
    const y = lr.softmax(lr.tensor([1000, 1000, -1000]), 0).data();
    expectClose(y, [0.5, 0.5, 0], 1e-7);
    expect(Number.isFinite(lr.logSoftmax(lr.tensor([1e4, 0]), 0).data()[1])).toBe(true);
    expectError(() => lr.softmax(lr.zeros([2, 3]), 2), RangeError, 'softmax', "'axis'");
    expectError(() => lr.logSoftmax(lr.zeros([2, 3]), 1.5), TypeError, 'log_softmax', "'axis'");
  });
});

describe('prelu', () => {
  it('per-channel and shared slopes, values and gradients', () => {
    for (const [shape, wn] of [[[2, 3, 4, 4], 3], [[2, 3, 4, 4], 1], [[4, 5], 5], [[6], 1]] as [number[], number][]) {
      const x = awayFromZero(size(shape), 2);
      const w = uniform(wn, 3, 0.05, 0.5);
      const y = lr.prelu(lr.tensor(x, shape), lr.tensor(w));
      const c = shape.length >= 2 ? shape[1] : 1;
      const inner = size(shape.slice(2));
      const ref = Array.from(x, (v, i) => (v > 0 ? v : v * w[wn === 1 ? 0 : Math.floor(i / inner) % c]));
      expectClose(y.data(), ref, 1e-6, 1e-6);
      gradcheck((a, b) => lr.prelu(a, b), [{ data: x, shape }, { data: w, shape: [wn] }]);
    }
    expectError(() => lr.prelu(lr.zeros([2, 3, 2, 2]), lr.zeros([2])), RangeError, 'prelu', "'weight'");
  });
});

describe('mfm', () => {
  it('takes the max of the two channel halves, gradient to the winner', () => {
    const shape = [2, 6, 3, 2];
    const x = uniform(size(shape), 4);
    const y = lr.mfm(lr.tensor(x, shape));
    expect(y.shape).toEqual([2, 3, 3, 2]);
    const ref: number[] = [];
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let p = 0; p < 6; p++) ref.push(Math.max(x[(n * 6 + c) * 6 + p], x[(n * 6 + c + 3) * 6 + p]));
    expectClose(y.data(), ref, 0, 0);
    gradcheck((t) => lr.mfm(t), [{ data: x, shape }]);
    gradcheck((t) => lr.mfm(t, { axis: 1 }), [{ data: uniform(8, 5), shape: [2, 4] }]);
    expectError(() => lr.mfm(lr.zeros([1, 3, 2, 2])), RangeError, 'mfm', "'x'");
  });
});

describe('dropout', () => {
  it('zeroes about p of the elements, scales the rest, and is reproducible by seed', () => {
    const x = lr.ones([100, 100]);
    const y = lr.dropout(x, { p: 0.3, seed: 42 }).data();
    const kept = y.filter((v) => v !== 0);
    expect(kept.length / y.length).toBeGreaterThan(0.68);
    expect(kept.length / y.length).toBeLessThan(0.72);
    expectClose(kept.slice(0, 10), new Array(10).fill(1 / 0.7), 1e-6);
    expect(Array.from(lr.dropout(x, { p: 0.3, seed: 42 }).data())).toEqual(Array.from(y));
    expect(Array.from(lr.dropout(x, { p: 0.3, training: false }).data())).toEqual(Array.from(x.data()));
    expectError(() => lr.dropout(x, { p: 1 }), RangeError, 'dropout', "'p'");
  });
  it('does not depend on the thread count', () => {
    const x = lr.ones([300, 300]);
    const threads = lr.numThreads();
    lr.setNumThreads(1);
    const a = lr.dropout(x, { p: 0.5, seed: 3 }).data();
    lr.setNumThreads(2);
    const b = lr.dropout(x, { p: 0.5, seed: 3 }).data();
    lr.setNumThreads(threads);
    expect(Array.from(a)).toEqual(Array.from(b));
  });
  it('gradient flows through the same mask', () => {
    const x = lr.tensor(uniform(50, 6)).requiresGrad_();
    const y = lr.dropout(x, { p: 0.4, seed: 9 });
    lr.sum(y).backward();
    const yd = y.data(), g = x.grad!.data();
    for (let i = 0; i < 50; i++) expect(g[i]).toBeCloseTo(yd[i] === 0 ? 0 : 1 / 0.6, 5);
  });
});

describe('l2Normalize', () => {
  it('divides by the L2 norm along the axis, with a gradient', () => {
    const x = uniform(12, 7);
    const y = lr.l2Normalize(lr.tensor(x, [3, 4])).data();
    for (let r = 0; r < 3; r++) {
      const norm = Math.hypot(...x.slice(r * 4, r * 4 + 4));
      expectClose(y.slice(r * 4, r * 4 + 4), Array.from(x.slice(r * 4, r * 4 + 4), (v) => v / norm), 1e-6, 1e-5);
    }
    expect(Array.from(lr.l2Normalize(lr.zeros([1, 3])).data())).toEqual([0, 0, 0]);
    gradcheck((t) => lr.l2Normalize(t, { axis: 1 }), [{ data: x, shape: [3, 4] }]);
    expectError(() => lr.l2Normalize(lr.zeros([2, 2]), { eps: -1 }), RangeError, 'l2_normalize', "'eps'");
  });
});
