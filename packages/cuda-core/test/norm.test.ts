import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';
import { kernels } from '../src/native.js';

/** Batch statistics per channel of x [N, C, ...] and the normalised output, in plain loops. */
function bnRef(x: ArrayLike<number>, shape: number[], w: ArrayLike<number> | null, b: ArrayLike<number> | null, eps: number, stats?: { mean: number[]; var: number[] }) {
  const [n, c] = shape;
  const hw = size(shape.slice(2));
  const out = new Float64Array(x.length);
  const means: number[] = [];
  const vars: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) s += x[(i * c + ch) * hw + p];
    const m = s / (n * hw);
    let v = 0;
    for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) v += (x[(i * c + ch) * hw + p] - m) ** 2;
    v /= n * hw;
    means.push(m);
    vars.push(v);
    const [um, uv] = stats ? [stats.mean[ch], stats.var[ch]] : [m, v];
    for (let i = 0; i < n; i++)
      for (let p = 0; p < hw; p++) {
        const k = (i * c + ch) * hw + p;
        out[k] = ((x[k] - um) / Math.sqrt(uv + eps)) * (w ? w[ch] : 1) + (b ? b[ch] : 0);
      }
  }
  return { out, means, vars };
}

describe('batchNorm2d', () => {
  it('training: normalises with the batch statistics and updates the running ones in place (unbiased variance)', () => {
    for (const [k, shape] of [[4, 3, 5, 5], [2, 2, 1, 1], [3, 5], [1, 2, 3, 3], [2, 1, 3, 1, 2]].entries()) {
      const c = shape[1];
      const x = uniform(size(shape), 1 + k, -2, 3);
      const w = uniform(c, 2, 0.5, 1.5);
      const b = uniform(c, 3);
      const rm0 = uniform(c, 4);
      const rv0 = uniform(c, 5, 0.5, 2);
      const rm = lr.tensor(rm0);
      const rv = lr.tensor(rv0);
      const momentum = 0.1 + 0.2 * k;
      const y = lr.batchNorm2d(lr.tensor(x, shape), rm, rv, lr.tensor(w), lr.tensor(b), { momentum, eps: 1e-5 });
      const ref = bnRef(x, shape, w, b, 1e-5);
      expect(y.shape).toEqual(shape);
      expectClose(y.data(), ref.out, 1e-5, 1e-4);
      const count = size(shape) / c;
      expectClose(rm.data(), ref.means.map((m, ch) => (1 - momentum) * rm0[ch] + momentum * m), 1e-6, 1e-5);
      expectClose(rv.data(), ref.vars.map((v, ch) => (1 - momentum) * rv0[ch] + momentum * v * (count / (count - 1))), 1e-6, 1e-5);
    }
  });

  it('defaults: momentum 0.1, eps 1e-5, training; weight and bias optional; each running statistic optional', () => {
    const shape = [3, 2, 2, 2];
    const x = uniform(size(shape), 6, -1, 2);
    const ref = bnRef(x, shape, null, null, 1e-5);
    const rm = lr.zeros([2]);
    const y = lr.batchNorm2d(lr.tensor(x, shape), rm, null);
    expectClose(y.data(), ref.out, 1e-5, 1e-4);
    expectClose(rm.data(), ref.means.map((m) => 0.1 * m), 1e-6, 1e-5);
    const rv = lr.ones([2]);
    lr.batchNorm2d(lr.tensor(x, shape), null, rv, lr.ones([2]));
    expectClose(rv.data(), ref.vars.map((v) => 0.9 + 0.1 * v * (12 / 11)), 1e-6, 1e-5);
    // momentum 0 keeps, momentum 1 replaces
    const keepMean = lr.tensor([5, 6]);
    lr.batchNorm2d(lr.tensor(x, shape), keepMean, null, null, null, { momentum: 0 });
    expect(Array.from(keepMean.data())).toEqual([5, 6]);
    const replace = lr.tensor([5, 6]);
    lr.batchNorm2d(lr.tensor(x, shape), replace, null, null, null, { momentum: 1 });
    expectClose(replace.data(), ref.means, 1e-6, 1e-5);
  });

  it('updates running statistics that are views at an offset, and nothing around them', () => {
    const shape = [2, 3, 2, 2];
    const buffer = lr.tensor([9, 9, 0, 0, 0, 9, 9, 1, 1, 1, 9]);
    const rm = lr.narrow(buffer, 0, 2, 3);
    const rv = lr.narrow(buffer, 0, 7, 3);
    // x itself a view at an offset of a larger batch
    const bigX = uniform(2 * size(shape), 8);
    const xv = lr.narrow(lr.tensor(bigX, [4, 3, 2, 2]), 0, 2, 2);
    const y = lr.batchNorm2d(xv, rm, rv);
    const part = bigX.slice(size(shape));
    const ref = bnRef(part, shape, null, null, 1e-5);
    expectClose(y.data(), ref.out, 1e-5, 1e-4);
    const got = buffer.data();
    expect([got[0], got[1], got[5], got[6], got[10]]).toEqual([9, 9, 9, 9, 9]);
    expectClose(got.slice(2, 5), ref.means.map((m) => 0.1 * m), 1e-6, 1e-5);
    expectClose(got.slice(7, 10), ref.vars.map((v) => 0.9 + 0.1 * v * (8 / 7)), 1e-6, 1e-5);
  });

  it('eval: uses the running statistics and leaves them alone', () => {
    const shape = [2, 3, 2, 2];
    const x = uniform(size(shape), 4);
    const stats = { mean: [0.5, -1, 2], var: [4, 0.25, 1] };
    const rm = lr.tensor(stats.mean);
    const rv = lr.tensor(stats.var);
    const w = [2, 1, -1];
    const b = [0, 1, 0.5];
    const y = lr.batchNorm2d(lr.tensor(x, shape), rm, rv, lr.tensor(w), lr.tensor(b), { training: false, eps: 1e-3 });
    expectClose(y.data(), bnRef(x, shape, w, b, 1e-3, stats).out, 1e-6, 1e-5);
    expect(Array.from(rm.data())).toEqual(stats.mean);
    expect(Array.from(rv.data())).toEqual(stats.var);
    // a batch of one value per channel is fine in eval mode
    const one = lr.batchNorm2d(lr.tensor([1, 2, 3], [1, 3]), rm, rv, null, null, { training: false, eps: 1e-3 });
    expectClose(one.data(), [0.5 / Math.sqrt(4.001), 3 / Math.sqrt(0.251), 1 / Math.sqrt(1.001)], 1e-6, 1e-5);
  });

  it('gradients for x, weight and bias (training and eval formulas) match finite differences', () => {
    const shape = [3, 2, 3, 2];
    const inputs = [
      { data: uniform(size(shape), 5), shape },
      { data: uniform(2, 6, 0.5, 1.5), shape: [2] },
      { data: uniform(2, 7), shape: [2] },
    ];
    gradcheck((x, w, b) => lr.batchNorm2d(x, null, null, w, b), inputs);
    gradcheck((x, w, b) => lr.batchNorm2d(x, lr.zeros([2]), lr.ones([2]), w, b, { momentum: 0.3 }), inputs);
    gradcheck((x, w, b) => lr.batchNorm2d(x, lr.tensor([0.1, -0.2]), lr.tensor([1.5, 0.7]), w, b, { training: false }), inputs);
    gradcheck((x) => lr.batchNorm2d(x, null, null), [inputs[0]]);
    gradcheck((x) => lr.batchNorm2d(x, null, null, null, null), [{ data: uniform(8, 9), shape: [4, 2] }]);
    // only the affine parameters need a gradient
    gradcheck((x, w, b) => lr.batchNorm2d(x, null, null, w, b), [{ ...inputs[0], grad: false }, inputs[1], inputs[2]]);
    gradcheck((x, w) => lr.batchNorm2d(x, null, null, w, null), [inputs[0], inputs[1]]);
    gradcheck((x, b) => lr.batchNorm2d(x, null, null, null, b), [inputs[0], inputs[2]]);
  });

  it('training gradient: zero mean over each channel, zero for a constant input shift', () => {
    const shape = [2, 2, 2, 2];
    const x = lr.tensor(uniform(size(shape), 11), shape).requiresGrad_();
    const y = lr.batchNorm2d(x, null, null);
    y.backward(lr.tensor(uniform(size(shape), 12), shape));
    const g = x.grad!.data();
    for (let ch = 0; ch < 2; ch++) {
      let s = 0;
      for (let n = 0; n < 2; n++) for (let p = 0; p < 4; p++) s += g[(n * 2 + ch) * 4 + p];
      expect(Math.abs(s)).toBeLessThan(1e-5);
    }
  });

  it('rejects bad arguments, naming them', () => {
    const x = lr.zeros([2, 3, 2, 2]);
    expectError(() => lr.batchNorm2d(x, lr.zeros([2]), lr.zeros([3])), RangeError, 'batch_norm', "'runningMean'");
    expectError(() => lr.batchNorm2d(x, lr.zeros([3]), lr.zeros([4])), RangeError, "'runningVar'");
    expectError(() => lr.batchNorm2d(x, null, null, lr.ones([2])), RangeError, "'weight'");
    expectError(() => lr.batchNorm2d(x, null, null, null, lr.ones([1, 3])), RangeError, "'bias'");
    expectError(() => lr.batchNorm2d(x, lr.zeros([3], 'int32'), null), TypeError, "'runningMean'");
    expectError(() => lr.batchNorm2d(x, [0, 0, 0] as unknown as lr.Tensor, null), TypeError, "'runningMean'");
    expectError(() => lr.batchNorm2d(x, null, null, null, null, { training: false }), RangeError, "'runningMean'");
    expectError(() => lr.batchNorm2d(x, lr.zeros([3]), null, null, null, { training: false }), RangeError, "'runningVar'");
    expectError(() => lr.batchNorm2d(lr.zeros([1, 3, 1, 1]), null, null), RangeError, "'x'");
    expectError(() => lr.batchNorm2d(lr.zeros([1, 3]), null, null), RangeError, "'x'");
    expectError(() => lr.batchNorm2d(lr.zeros([6]), null, null), RangeError, "'x'");
    expectError(() => lr.batchNorm2d(lr.zeros([2, 0, 2]), null, null), RangeError, "'x'");
    expectError(() => lr.batchNorm2d(lr.zeros([2, 3], 'uint8'), null, null), TypeError, "'x'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { momentum: 2 }), RangeError, "'momentum'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { momentum: -0.1 }), RangeError, "'momentum'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { eps: 0 }), RangeError, "'eps'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { eps: '1' as unknown as number }), TypeError, "'eps'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { training: 1 as unknown as boolean }), TypeError, "'training'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { affine: true } as lr.BatchNormOptions), TypeError, "'affine'");
  });
});

describe('batch norm kernels re-check their arguments natively', () => {
  it('throws RangeError instead of reading out of bounds', () => {
    const s = (t: lr.Tensor) => t._storage('test');
    const x = lr.zeros([2, 3]);
    const y = lr.zeros([2, 3]);
    const stat = lr.zeros([3]);
    const small = lr.zeros([2]);
    expect(() => kernels.batch_norm(s(y), 0, s(x), 0, null, 0, null, 0, s(small), 0, null, 0, s(stat), 0, s(stat), 0, [2, 3, 1], true, 0.1, 1e-5)).toThrow(RangeError);
    expect(() => kernels.batch_norm(s(y), 0, s(x), 0, null, 0, null, 0, null, 0, null, 0, s(stat), 0, s(stat), 0, [2, 3, 1], false, 0.1, 1e-5)).toThrow(RangeError);
    expect(() => kernels.batch_norm(s(y), 0, s(x), 0, null, 0, null, 0, null, 0, null, 0, s(stat), 0, s(stat), 0, [2, 3, 2], true, 0.1, 1e-5)).toThrow(RangeError);
    expect(() => kernels.batch_norm_backward(s(y), 0, null, 0, null, 0, s(x), 0, s(y), 0, null, 0, s(small), 0, s(stat), 0, [2, 3, 1], true, 1e-5)).toThrow(RangeError);
    expect(() => kernels.batch_norm_backward(s(y), 0, null, 0, null, 0, s(x), 0, s(y), 0, null, 0, s(stat), 0, s(stat), 0, [2, 3, 1], true, 0)).toThrow(/batch_norm_backward: bad eps/);
  });
});
