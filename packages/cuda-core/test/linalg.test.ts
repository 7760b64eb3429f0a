import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { ref } from '../src/ops/decl.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

// Naive batched matmul with broadcasting over leading dimensions (float64).
function matmulRef(a: ArrayLike<number>, as: number[], b: ArrayLike<number>, bs: number[]) {
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

const isas = ['avx512', 'avx2', 'scalar'].filter((isa) => kernels.gemm_use_isa(isa) as boolean);
kernels.gemm_use_isa('auto');
afterAll(() => kernels.gemm_use_isa('auto'));

describe('matmul', () => {
  it('reports the micro-kernel in use, one this CPU runs', () => {
    expect(isas).toContain(lr.buildInfo().cpuIsa);
  });
  const pairs: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[1, 1], [1, 1]],
    [[2, 3, 4], [4, 2]],
    [[2, 1, 3, 4], [5, 4, 6]], // both sides broadcast
    [[37, 70], [70, 45]], // crosses the micro-kernel tile sizes
    [[13, 700], [700, 33]], // k larger than one cache block
    [[3, 30000], [30000, 4]], // tiny C, long k: threads split k
    [[200, 90], [90, 700]], // several column blocks, threads split C
    [[4, 30, 20], [4, 20, 25]], // a batch the threads share whole products of
    [[3, 50, 40], [40, 60]], // an odd batch: each product split across threads
    [[2, 0, 3], [3, 4]], // empty rows
    [[2, 3], [3, 0]],
  ];
  it('matches the naive product with broadcast batches, with every micro-kernel and thread split', () => {
    expect(isas.length).toBeGreaterThan(0);
    const refs = pairs.map(([as, bs], i) => matmulRef(uniform(size(as), i), as, uniform(size(bs), 10 + i), bs));
    const threads = lr.numThreads();
    // 3 threads split products three ways (and k into three slices) even on a 2-core machine.
    for (const [isa, nt] of [...isas.map((isa) => [isa, threads] as const), ['auto', 1], ['auto', 3]] as const) {
      kernels.gemm_use_isa(isa);
      lr.setNumThreads(nt);
      try {
        for (const [i, [as, bs]] of pairs.entries()) {
          lr.scope(() => {
            const y = lr.matmul(lr.tensor(uniform(size(as), i), as), lr.tensor(uniform(size(bs), 10 + i), bs));
            expect(y.shape, `${isa} ${nt} threads ${JSON.stringify([as, bs])}`).toEqual(refs[i].shape);
            expectClose(y.data(), refs[i].out, 1e-4, 1e-4);
          });
        }
      } finally {
        kernels.gemm_use_isa('auto');
        lr.setNumThreads(threads);
      }
    }
  });
  it('a zero-length inner dimension gives zeros', () => {
    expect(lr.matmul(lr.ones([2, 0]), lr.ones([0, 3])).toArray()).toEqual([[0, 0, 0], [0, 0, 0]]);
  });
  it('treats 1-D operands as vectors', () => {
    const v = lr.tensor([1, 2, 3]);
    const m = lr.tensor([[1, 0], [0, 1], [1, 1]]);
    expect(lr.matmul(v, m).toArray()).toEqual([4, 5]);
    expect(lr.matmul(lr.transpose(m), v).toArray()).toEqual([4, 5]);
    expect(lr.matmul(v, v).shape).toEqual([]);
    expect(lr.matmul(v, v).item()).toBe(14);
    // A vector against a batch of matrices broadcasts like torch.matmul.
    const bd = uniform(2 * 3 * 4, 3);
    const y = lr.matmul(v, lr.tensor(bd, [2, 3, 4]));
    expect(y.shape).toEqual([2, 4]);
    expectClose(y.data(), matmulRef([1, 2, 3], [1, 3], bd, [2, 3, 4]).out, 1e-5, 1e-5);
    const z = lr.matmul(lr.tensor(bd, [2, 4, 3]), v);
    expect(z.shape).toEqual([2, 4]);
    expectClose(z.data(), matmulRef(bd, [2, 4, 3], [1, 2, 3], [3, 1]).out, 1e-5, 1e-5);
  });
  it('reads operands that are views at an offset', () => {
    const big = lr.tensor(uniform(5 * 6 * 7, 4), [5, 6, 7]);
    const a = lr.narrow(big, 0, 2, 2); // [2, 6, 7], 84 elements in
    const b = lr.narrow(lr.tensor(uniform(3 * 7 * 4, 5), [3, 7, 4]), 0, 1, 1);
    const y = lr.matmul(a, b);
    expectClose(y.data(), matmulRef(a.data(), [2, 6, 7], b.data(), [1, 7, 4]).out, 1e-5, 1e-4);
    gradcheck((x, w) => lr.matmul(lr.narrow(x, 0, 1, 2), w), [{ data: uniform(3 * 4 * 5, 6), shape: [3, 4, 5] }, { data: uniform(5 * 3, 7), shape: [5, 3] }]);
  });
  it('gradients match finite differences', () => {
    for (const [i, [as, bs]] of pairs.slice(0, 4).entries())
      gradcheck(lr.matmul, [{ data: uniform(size(as), 20 + i), shape: as }, { data: uniform(size(bs), 30 + i), shape: bs }]);
    gradcheck(lr.matmul, [{ data: uniform(3, 1), shape: [3] }, { data: uniform(6, 2), shape: [3, 2] }]);
    gradcheck(lr.matmul, [{ data: uniform(8, 3), shape: [2, 4] }, { data: uniform(4, 4), shape: [4] }]);
    gradcheck(lr.matmul, [{ data: uniform(3, 5), shape: [3] }, { data: uniform(3, 6), shape: [3] }]);
    gradcheck(lr.matmul, [{ data: uniform(2 * 3 * 5, 7), shape: [2, 1, 3, 5] }, { data: uniform(3 * 5 * 2, 8), shape: [3, 5, 2] }]);
    gradcheck(lr.matmul, [{ data: uniform(3 * 700, 9), shape: [3, 700] }, { data: uniform(700 * 2, 10), shape: [700, 2] }], { atol: 1e-2 });
  });
  it('rejects mismatched shapes naming the argument', () => {
    expectError(() => lr.matmul(lr.zeros([2, 3]), lr.zeros([4, 2])), RangeError, 'matmul', "'b'");
    expectError(() => lr.matmul(lr.zeros([2, 2, 3]), lr.zeros([3, 3, 2])), RangeError, "'b'");
    expectError(() => lr.matmul(lr.zeros([3]), lr.zeros([4])), RangeError, "'b'");
    expectError(() => lr.matmul(lr.tensor(3), lr.zeros([1])), RangeError, "'a'");
    expectError(() => lr.matmul(lr.zeros([1]), lr.tensor(3)), RangeError, "'b'");
    expectError(() => lr.matmul(lr.cast(lr.zeros([2, 2]), 'int32'), lr.zeros([2, 2])), TypeError, "'a'");
    expectError(() => lr.matmul(lr.zeros([2, 2]), [[1, 2]] as unknown as lr.Tensor), TypeError, "'b'");
  });
});

describe('native matmul kernel', () => {
  it('re-checks sizes and offsets', () => {
    const t = lr.zeros([64]);
    const call = (dims: number[], aOffsets = [0], bOffsets = [0]) => () => kernels.matmul(...ref(t), ...ref(t), ...ref(t), null, 0, dims, false, false, aOffsets, bOffsets);
    expect(call([8, 8, 2])).not.toThrow();
    expectError(call([2 ** 40, 2 ** 40, 1]), RangeError, 'matmul', 'overflow');
    expectError(call([9, 8, 2]), RangeError, 'matmul', 'exceeds its storage');
    expectError(call([2, 2, 2], [0, 61], [0, 0]), RangeError, 'matmul', 'exceeds its storage');
    expectError(call([2, 2, 2], [-1], [0]), RangeError, 'matmul', 'negative');
    expectError(call([2, 2, 2], [0], [0, 0]), RangeError, 'matmul', 'differ');
  });
});

describe('bmm', () => {
  it('multiplies matching batches and differentiates', () => {
    const ad = uniform(3 * 4 * 5, 1), bd = uniform(3 * 5 * 2, 2);
    const y = lr.bmm(lr.tensor(ad, [3, 4, 5]), lr.tensor(bd, [3, 5, 2]));
    expect(y.shape).toEqual([3, 4, 2]);
    expectClose(y.data(), matmulRef(ad, [3, 4, 5], bd, [3, 5, 2]).out, 1e-5, 1e-4);
    gradcheck(lr.bmm, [{ data: ad, shape: [3, 4, 5] }, { data: bd, shape: [3, 5, 2] }]);
  });
  it('does not broadcast', () => {
    expectError(() => lr.bmm(lr.zeros([3, 4, 5]), lr.zeros([1, 5, 2])), RangeError, 'bmm', "'b'", 'batch');
    expectError(() => lr.bmm(lr.zeros([3, 4, 5]), lr.zeros([3, 4, 2])), RangeError, "'b'", 'rows');
    expectError(() => lr.bmm(lr.zeros([4, 5]), lr.zeros([3, 5, 2])), RangeError, "'a'", 'rank 3');
  });
});

describe('linear', () => {
  function linearRef(xd: ArrayLike<number>, rows: number, wd: ArrayLike<number>, out: number, inF: number, bd: ArrayLike<number> | null) {
    const ref = new Float64Array(rows * out);
    for (let r = 0; r < rows; r++) for (let o = 0; o < out; o++) {
      let acc = bd ? bd[o] : 0;
      for (let i = 0; i < inF; i++) acc += xd[r * inF + i] * wd[o * inF + i];
      ref[r * out + o] = acc;
    }
    return ref;
  }
  it('matches x @ W^T + b and its gradients', () => {
    for (const xs of [[4, 6], [2, 3, 6], [6], [1, 1, 6]]) {
      const xd = uniform(size(xs), 1), wd = uniform(5 * 6, 2), bd = uniform(5, 3);
      const y = lr.linear(lr.tensor(xd, xs), lr.tensor(wd, [5, 6]), lr.tensor(bd));
      expect(y.shape).toEqual([...xs.slice(0, -1), 5]);
      expectClose(y.data(), linearRef(xd, size(xs) / 6, wd, 5, 6, bd), 1e-5, 1e-4);
      gradcheck((x, w, b) => lr.linear(x, w, b), [{ data: xd, shape: xs }, { data: wd, shape: [5, 6] }, { data: bd, shape: [5] }]);
    }
  });
  it('works without a bias, on large layers, with every micro-kernel', () => {
    const xd = uniform(70 * 300, 4), wd = uniform(40 * 300, 5);
    const ref = linearRef(xd, 70, wd, 40, 300, null);
    for (const isa of isas) {
      kernels.gemm_use_isa(isa);
      try {
        expectClose(lr.linear(lr.tensor(xd, [70, 300]), lr.tensor(wd, [40, 300])).data(), ref, 1e-4, 1e-4);
      } finally {
        kernels.gemm_use_isa('auto');
      }
    }
    gradcheck((x, w) => lr.linear(x, w), [{ data: uniform(3 * 40, 6), shape: [3, 40] }, { data: uniform(7 * 40, 7), shape: [7, 40] }]);
  });
  it('small batches on deep layers (weight rows read in place as dot products), every instruction set', () => {
    // Rows 1..64 with k >= 128 take the dot-product path: row counts around its chunks of 8,
    // outputs around its groups of 3, k with a tail past the last vector, bias or none, and
    // operands at an offset; 65 rows go through the packed GEMM as before.
    const cases = [[1, 7, 128], [2, 5, 300], [7, 1, 129], [8, 9, 1000], [9, 4, 255], [17, 3, 130], [64, 8, 144], [65, 4, 200]];
    for (const isa of isas) {
      kernels.gemm_use_isa(isa);
      try {
        for (const [rows, out, inF] of cases) {
          const xd = uniform((rows + 1) * inF, rows), wd = uniform((out + 2) * inF, out), bd = uniform(out, inF);
          const x = lr.narrow(lr.tensor(xd, [rows + 1, inF]), 0, 1, rows);
          const w = lr.narrow(lr.tensor(wd, [out + 2, inF]), 0, 2, out);
          const withBias = rows % 2 === 1;
          const y = lr.linear(x, w, withBias ? lr.tensor(bd) : undefined);
          expect(y.shape).toEqual([rows, out]);
          expectClose(y.data(), linearRef(x.data(), rows, w.data(), out, inF, withBias ? bd : null), 1e-5, 1e-4);
        }
      } finally {
        kernels.gemm_use_isa('auto');
      }
    }
  });
  it('reads operands that are views at an offset', () => {
    const x = lr.narrow(lr.tensor(uniform(5 * 4, 8), [5, 4]), 0, 2, 3);
    const w = lr.narrow(lr.tensor(uniform(6 * 4, 9), [6, 4]), 0, 1, 4);
    const b = lr.narrow(lr.tensor(uniform(7, 10)), 0, 3, 4);
    expectClose(lr.linear(x, w, b).data(), linearRef(x.data(), 3, w.data(), 4, 4, b.data()), 1e-5, 1e-4);
  });
  it('zero input features give the bias', () => {
    const y = lr.linear(lr.zeros([3, 0]), lr.zeros([2, 0]), lr.tensor([1, 2]));
    expect(y.toArray()).toEqual([[1, 2], [1, 2], [1, 2]]);
    expect(lr.linear(lr.zeros([2, 0]), lr.zeros([2, 0])).toArray()).toEqual([[0, 0], [0, 0]]);
  });
  it('rejects bad shapes', () => {
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 2])), RangeError, 'linear', "'weight'");
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 3]), lr.zeros([3])), RangeError, "'bias'");
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 3]), lr.zeros([1, 4])), RangeError, "'bias'", 'rank 1');
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.zeros([4, 3, 1])), RangeError, "'weight'");
    expectError(() => lr.linear(lr.tensor(2), lr.zeros([4, 1])), RangeError, "'input'");
    expectError(() => lr.linear(lr.zeros([2, 3]), lr.cast(lr.zeros([4, 3]), 'int32')), TypeError, "'weight'");
  });
});
