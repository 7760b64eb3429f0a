import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

// Naive batched matmul with broadcasting over leading dimensions (float64).
function matmulRef(a: Float32Array, as: number[], b: Float32Array, bs: number[]) {
  const [m, k] = as.slice(-2);
  const n = bs[bs.length - 1];
  const ab = as.slice(0, -2), bb = bs.slice(0, -2);
  const rank = Math.max(ab.length, bb.length);
  const pa = [...Array(rank - ab.length).fill(1), ...ab], pb = [...Array(rank - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const total = size(batch);
  const out = new Float64Array(total * m * n);
  for (let t = 0; t < total; t++) {
    let r = t, ia = 0, ib = 0;
    const idx: number[] = [];
    for (let d = rank - 1; d >= 0; d--) { idx[d] = r % batch[d]; r = Math.floor(r / batch[d]); }
    for (let d = 0; d < rank; d++) { ia = ia * pa[d] + (pa[d] === 1 ? 0 : idx[d]); ib = ib * pb[d] + (pb[d] === 1 ? 0 : idx[d]); }
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a[ia * m * k + i * k + p] * b[ib * k * n + p * n + j];
      out[t * m * n + i * n + j] = acc;
    }
  }
  return { out, shape: [...batch, m, n] };
}

describe('matmul', () => {
  const pairs: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[1, 1], [1, 1]],
    [[2, 3, 4], [4, 2]],
    [[2, 1, 3, 4], [5, 4, 6]],
    [[37, 70], [70, 45]], // crosses the micro-kernel tile sizes
    [[13, 300], [300, 33]], // k larger than one cache block
  ];
  it('matches the naive product with broadcast batches', () => {
    for (const [i, [as, bs]] of pairs.entries()) {
      const ad = uniform(size(as), i), bd = uniform(size(bs), 10 + i);
      const y = lr.matmul(lr.tensor(ad, as), lr.tensor(bd, bs));
      const ref = matmulRef(ad, as, bd, bs);
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.data(), ref.out, 1e-4, 1e-4);
    }
  });
  it('treats 1-D operands as vectors', () => {
    const v = lr.tensor([1, 2, 3]);
    const m = lr.tensor([[1, 0], [0, 1], [1, 1]]);
    expect(lr.matmul(v, m).toArray()).toEqual([4, 5]);
    expect(lr.matmul(lr.transpose(m), v).toArray()).toEqual([4, 5]);
    expect(lr.matmul(v, v).shape).toEqual([]);
    expect(lr.matmul(v, v).item()).toBe(14);
  });
  it('gradients match finite differences', () => {
    for (const [i, [as, bs]] of pairs.slice(0, 4).entries())
      gradcheck(lr.matmul, [{ data: uniform(size(as), 20 + i), shape: as }, { data: uniform(size(bs), 30 + i), shape: bs }]);
    gradcheck(lr.matmul, [{ data: uniform(3, 1), shape: [3] }, { data: uniform(6, 2), shape: [3, 2] }]);
  });
  it('rejects mismatched shapes naming the argument', () => {
    expectError(() => lr.matmul(lr.zeros([2, 3]), lr.zeros([4, 2])), RangeError, 'matmul', "'b'");
    expectError(() => lr.matmul(lr.zeros([2, 2, 3]), lr.zeros([3, 3, 2])), RangeError, "'b'");
    expectError(() => lr.matmul(lr.tensor(3), lr.zeros([1])), RangeError, "'a'");
  });
});

describe('linear', () => {
  it('matches x @ W^T + b and its gradients', () => {
    for (const xs of [[4, 6], [2, 3, 6], [6]]) {
      const xd = uniform(size(xs), 1), wd = uniform(5 * 6, 2), bd = uniform(5, 3);
      const y = lr.linear(lr.tensor(xd, xs), lr.tensor(wd, [5, 6]), lr.tensor(bd));
      const rows = size(xs) / 6;
      const ref = new Float64Array(rows * 5);
      for (let r = 0; r < rows; r++) for (let o = 0; o < 5; o++) {
        let acc = bd[o];
        for (let i = 0; i < 6; i++) acc += xd[r * 6 + i] * wd[o * 6 + i];
        ref[r * 5 + o] = acc;
      }
      expect(y.shape).toEqual([...xs.slice(0, -1), 5]);
      expectClose(y.data(), ref, 1e-5, 1e-4);
      gradcheck((x, w, b) => lr.linear(x, w, b), [{ data: xd, shape: xs }, { data: wd, shape: [5, 6] }, { data: bd, shape: [5] }]);
    }
  });
  it('rejects bad shapes', () => {
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 2])), RangeError, 'linear', "'weight'");
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 3]), lr.zeros([3])), RangeError, "'bias'");
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 3, 1])), RangeError, "'weight'");
  });
});
