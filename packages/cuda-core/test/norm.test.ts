import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

function bnRef(x: Float32Array, shape: number[], w: Float32Array, b: Float32Array, eps: number) {
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
    for (let i = 0; i < n; i++) for (let p = 0; p < hw; p++) out[(i * c + ch) * hw + p] = ((x[(i * c + ch) * hw + p] - m) / Math.sqrt(v + eps)) * w[ch] + b[ch];
  }
  return { out, means, vars };
}

describe('batchNorm2d', () => {
  it('training: normalises with batch statistics and updates running statistics (unbiased)', () => {
    for (const shape of [[4, 3, 5, 5], [2, 2, 1, 1], [3, 5]]) {
      const c = shape[1];
      const x = uniform(size(shape), 1, -2, 3);
      const w = uniform(c, 2, 0.5, 1.5), b = uniform(c, 3);
      const rm = lr.zeros([c]), rv = lr.ones([c]);
      const y = lr.batchNorm2d(lr.tensor(x, shape), rm, rv, lr.tensor(w), lr.tensor(b), { momentum: 0.1, eps: 1e-5 });
      const ref = bnRef(x, shape, w, b, 1e-5);
      expectClose(y.data(), ref.out, 1e-5, 1e-4);
      const count = size(shape) / c;
      expectClose(rm.data(), ref.means.map((m) => 0.1 * m), 1e-6, 1e-5);
      expectClose(rv.data(), ref.vars.map((v) => 0.9 + 0.1 * v * (count / (count - 1))), 1e-6, 1e-5);
    }
  });
  it('eval: uses the running statistics', () => {
    const x = uniform(2 * 3 * 4, 4);
    const rm = lr.tensor([0.5, -1, 2]), rv = lr.tensor([4, 0.25, 1]);
    const y = lr.batchNorm2d(lr.tensor(x, [2, 3, 2, 2]), rm, rv, lr.tensor([2, 1, 1]), lr.tensor([0, 1, 0]), { training: false, eps: 1e-12 });
    const ref = Array.from(x, (v, i) => {
      const ch = Math.floor(i / 4) % 3;
      return ((v - [0.5, -1, 2][ch]) / Math.sqrt([4, 0.25, 1][ch])) * [2, 1, 1][ch] + [0, 1, 0][ch];
    });
    expectClose(y.data(), ref, 1e-6, 1e-5);
    expect(Array.from(rm.data())).toEqual([0.5, -1, 2]); // untouched in eval
  });
  it('gradients (training and eval) match finite differences', () => {
    const shape = [3, 2, 3, 2];
    const inputs = [{ data: uniform(size(shape), 5), shape }, { data: uniform(2, 6, 0.5, 1.5), shape: [2] }, { data: uniform(2, 7), shape: [2] }];
    gradcheck((x, w, b) => lr.batchNorm2d(x, null, null, w, b), inputs);
    gradcheck((x, w, b) => lr.batchNorm2d(x, lr.tensor([0.1, -0.2]), lr.tensor([1.5, 0.7]), w, b, { training: false }), inputs);
    gradcheck((x) => lr.batchNorm2d(x, null, null), [inputs[0]]);
  });
  it('rejects bad arguments', () => {
    const x = lr.zeros([2, 3, 2, 2]);
    expectError(() => lr.batchNorm2d(x, lr.zeros([2]), lr.zeros([3])), RangeError, 'batch_norm', "'runningMean'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { training: false }), RangeError, "'runningMean'");
    expectError(() => lr.batchNorm2d(lr.zeros([1, 3, 1, 1]), null, null), RangeError, "'x'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { momentum: 2 }), RangeError, "'momentum'");
    expectError(() => lr.batchNorm2d(x, null, null, undefined, undefined, { eps: 0 }), RangeError, "'eps'");
  });
});
