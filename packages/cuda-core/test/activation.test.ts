import { afterEach, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { awayFromZero, rng, size, uniform } from './helpers/random.js';
import { STREAM_DROPOUT, STREAM_GENERATOR, unit32, wordAt } from './helpers/philox.js';

const threadsAtStart = lr.numThreads();
afterEach(() => lr.setNumThreads(threadsAtStart));

/** A random shape of the given rank with sizes in [1, maxDim]. */
function randomShape(r: () => number, rank: number, maxDim: number): number[] {
  return Array.from({ length: rank }, () => 1 + Math.floor(r() * maxDim));
}

/** A tensor holding `data` that is a view at a non-zero offset of a larger buffer (the padding is garbage). */
function atOffset(data: Float32Array, shape: number[], pad = 5): lr.Tensor {
  const big = new Float32Array(pad + data.length + 3).fill(1e6);
  big.set(data, pad);
  const v = lr.reshape(lr.narrow(lr.tensor(big), 0, pad, data.length), shape);
  expect(v._offset).toBe(pad);
  return v;
}

/** [outer, n, inner] around axis. */
function around(shape: number[], axis: number): [number, number, number] {
  return [size(shape.slice(0, axis)), shape[axis], size(shape.slice(axis + 1))];
}

function softmaxRef(x: ArrayLike<number>, shape: number[], axis: number, log: boolean): Float64Array {
  const [outer, n, inner] = around(shape, axis);
  const out = new Float64Array(x.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => (o * n + j) * inner + i;
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, x[at(j)]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x[at(j)] - mx);
      for (let j = 0; j < n; j++) out[at(j)] = log ? x[at(j)] - mx - Math.log(s) : Math.exp(x[at(j)] - mx) / s;
    }
  return out;
}

describe('softmax and logSoftmax', () => {
  for (const log of [false, true]) {
    const name = log ? 'logSoftmax' : 'softmax';
    const op = log ? lr.logSoftmax : lr.softmax;
    it(`${name}: matches a reference on random shapes and axes, also on offset views`, () => {
      const r = rng(log ? 11 : 12);
      for (let c = 0; c < 14; c++) {
        const rank = 1 + Math.floor(r() * 4);
        const shape = randomShape(r, rank, 6);
        const axis = Math.floor(r() * rank) - (r() < 0.5 ? rank : 0);
        const ax = axis < 0 ? axis + rank : axis;
        const x = uniform(size(shape), 100 + c, -6, 6);
        const ref = softmaxRef(x, shape, ax, log);
        expectClose(op(lr.tensor(x, shape), axis).data(), ref, 1e-6, 1e-5);
        expectClose(op(atOffset(x, shape), axis).data(), ref, 1e-6, 1e-5);
      }
      // More lanes than one block of the kernel (64) and a lane block that is cut short.
      for (const [shape, axis] of [[[2, 5, 70], 1], [[3, 130], 0], [[1, 3, 1, 200], 1], [[4, 1000], 1]] as [number[], number][]) {
        const x = uniform(size(shape), 7, -20, 20);
        expectClose(op(lr.tensor(x, shape), axis).data(), softmaxRef(x, shape, axis, log), 1e-6, 1e-5);
      }
    });
    it(`${name}: gradient on several shapes and axes, through an offset view`, () => {
      for (const [shape, axis] of [[[5], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[3, 1, 2], 0], [[1, 1], 1], [[2, 4, 70], 1]] as [number[], number][])
        gradcheck((t) => op(t, axis), [{ data: uniform(size(shape), 21, -2, 2), shape }]);
      // rows 1..3 of a [4, 5] leaf: the op reads a view at offset 5
      gradcheck((t) => op(lr.narrow(t, 0, 1, 3), 1), [{ data: uniform(20, 22, -2, 2), shape: [4, 5] }]);
    });
  }
  it('is stable for huge inputs and follows torch on infinities, scalars and empty tensors', () => {
    expectClose(lr.softmax(lr.tensor([1000, 1000, -1000]), 0).data(), [0.5, 0.5, 0], 1e-7);
    expectClose(lr.logSoftmax(lr.tensor([1e4, 0]), 0).data(), [0, -1e4], 1e-3);
    expectClose(lr.softmax(lr.tensor([-Infinity, 0, -Infinity]), 0).data(), [0, 1, 0], 0);
    expect(Array.from(lr.logSoftmax(lr.tensor([-Infinity, 0]), 0).data())).toEqual([-Infinity, 0]);
    // a lane of only -inf has no defined distribution: NaN, as in torch
    expect(Array.from(lr.softmax(lr.tensor([-Infinity, -Infinity]), 0).data()).every(Number.isNaN)).toBe(true);
    expect(lr.softmax(lr.tensor(3), 0).item()).toBe(1);
    expect(lr.logSoftmax(lr.tensor(3), -1).item()).toBe(0);
    expect(lr.softmax(lr.zeros([2, 0]), 1).shape).toEqual([2, 0]);
    expect(lr.logSoftmax(lr.zeros([0, 3]), 1).shape).toEqual([0, 3]);
  });
  it('does not depend on the thread count', () => {
    const x = lr.tensor(uniform(64 * 300, 5, -5, 5), [64, 300]);
    lr.setNumThreads(1);
    const a = lr.softmax(x, 0).data();
    lr.setNumThreads(2);
    expect(Array.from(lr.softmax(x, 0).data())).toEqual(Array.from(a));
  });
  it('rejects bad arguments naming them', () => {
    for (const [op, name] of [[lr.softmax, 'softmax'], [lr.logSoftmax, 'log_softmax']] as const) {
      expectError(() => op(lr.zeros([2, 3]), 2), RangeError, name, "'axis'");
      expectError(() => op(lr.zeros([2, 3]), -3), RangeError, name, "'axis'");
      expectError(() => op(lr.zeros([2, 3]), 1.5), TypeError, name, "'axis'");
      expectError(() => op(lr.zeros([2, 3]), undefined as unknown as number), TypeError, name, "'axis'");
      expectError(() => op([1, 2] as unknown as lr.Tensor, 0), TypeError, name, "'x'");
      expectError(() => op(lr.zeros([2], 'int32'), 0), TypeError, name, "'x'");
      const gone = lr.zeros([2]);
      gone.dispose();
      expectError(() => op(gone, 0), Error, name, "'x'");
    }
  });
});

function preluRef(x: ArrayLike<number>, shape: number[], w: ArrayLike<number>): number[] {
  const c = shape.length >= 2 ? shape[1] : 1;
  const inner = size(shape.slice(2));
  return Array.from(x, (v, i) => (v > 0 ? v : Math.fround(v * w[w.length === 1 ? 0 : Math.floor(i / inner) % c])));
}

describe('prelu', () => {
  it('matches a reference with shared and per-channel slopes, on offset views', () => {
    const r = rng(31);
    for (let c = 0; c < 12; c++) {
      const rank = Math.floor(r() * 5);
      const shape = randomShape(r, rank, 5);
      const channels = rank >= 2 ? shape[1] : 1;
      const perChannel = r() < 0.6;
      const wShape = perChannel ? [channels] : r() < 0.5 ? [1] : [];
      const x = uniform(size(shape), 200 + c, -2, 2);
      const w = uniform(size(wShape), 300 + c, -0.5, 0.8);
      const ref = preluRef(x, shape, w);
      expectClose(lr.prelu(lr.tensor(x, shape), lr.tensor(w, wShape)).data(), ref, 0, 0);
      expectClose(lr.prelu(atOffset(x, shape), atOffset(w, wShape, 3)).data(), ref, 0, 0);
    }
    expect(lr.prelu(lr.zeros([0, 3, 2]), lr.ones([3])).shape).toEqual([0, 3, 2]);
  });
  // 35-element rows (2 x 16 + 3, 4 x 8 + 3) of [2, 3, 5, 7] with NaN, -0, 0, -Inf and Inf at 33 to 37.
  const shape = [2, 3, 5, 7];
  const specialInput = (seed: number) => {
    const x = uniform(size(shape), seed, -3, 3);
    x.set([NaN, -0, 0, -Infinity, Infinity], 33);
    return x;
  };
  /** body at every instruction set this machine has, the automatic choice restored after. */
  const atEveryIsa = (body: (isa: string) => void) => {
    const isas = ['avx512', 'avx2', 'scalar'].filter((isa) => kernels.gemm_use_isa(isa) as boolean);
    try {
      for (const isa of isas) {
        kernels.gemm_use_isa(isa);
        body(isa);
      }
    } finally {
      kernels.gemm_use_isa('auto');
    }
  };
  it('gives the same values with every instruction set: rows with vector tails, NaN, -0 and infinities', () => {
    const x = specialInput(400);
    const w = Float32Array.from([0.25, -0.5, 2]);
    const ref = preluRef(x, shape, w);
    atEveryIsa((isa) => {
      const y = lr.prelu(lr.tensor(x, shape), lr.tensor(w)).data();
      // Exact, NaN and the sign of zero included (-0 is not > 0: the slope times -0).
      expect(Array.from(y), isa).toEqual(ref);
      expect(Object.is(y[34], -0), isa).toBe(true);
    });
  });
  it('gives the same gradients with every instruction set: rows with vector tails, NaN, -0 and infinities', () => {
    const x = specialInput(402);
    const g = uniform(size(shape), 403, -2, 2);
    g.set([Infinity, NaN], 40); // where x > 0: the weight's gradient must not see them
    x.set([1.5, 2.5], 40);
    const w = Float32Array.from([0.25, -0.5, 2]);
    const plane = 35;
    // gx = g where x > 0, else a * g; gw[c] = sum over x <= 0 (or NaN) of x * g, in double.
    const gxRef = Array.from(x, (v, i) => (v > 0 ? g[i] : w[Math.floor(i / plane) % 3] * g[i]));
    const gwRef = [0, 0, 0];
    x.forEach((v, i) => {
      if (!(v > 0)) gwRef[Math.floor(i / plane) % 3] += v * g[i];
    });
    atEveryIsa((isa) => {
      const xt = lr.tensor(x, shape).requiresGrad_();
      const wt = lr.tensor(w).requiresGrad_();
      lr.prelu(xt, wt).backward(lr.tensor(g, shape));
      expect(Array.from(xt.grad!.data()), isa).toEqual(gxRef.map((v) => Math.fround(v)));
      const gw = Array.from(wt.grad!.data());
      gw.forEach((v, c) => (Number.isFinite(gwRef[c]) ? expect(Math.abs(v - gwRef[c]), `${isa} gw[${c}]`).toBeLessThan(1e-5 * Math.abs(gwRef[c]) + 1e-6) : expect(v, `${isa} gw[${c}]`).toBe(gwRef[c])));
    });
  });
  it('gradients for x and weight, together and alone', () => {
    for (const [shape, wn] of [[[2, 3, 4, 4], 3], [[2, 3, 4, 4], 1], [[1, 5, 1, 1], 5], [[4, 5], 5], [[6], 1], [[3, 2, 7], 2]] as [number[], number][]) {
      const x = { data: awayFromZero(size(shape), 40 + wn), shape };
      const w = { data: uniform(wn, 41, 0.05, 0.5), shape: [wn] };
      gradcheck((a, b) => lr.prelu(a, b), [x, w]);
      gradcheck((a, b) => lr.prelu(a, b), [{ ...x, grad: false }, w]);
      gradcheck((a, b) => lr.prelu(a, b), [x, { ...w, grad: false }]);
    }
    // a leaf read through an offset view
    gradcheck((a, b) => lr.prelu(lr.narrow(a, 0, 1, 2), b), [{ data: awayFromZero(24, 42), shape: [3, 2, 4] }, { data: uniform(2, 43, 0.1, 0.4), shape: [2] }]);
  });
  it('the weight gradient does not depend on the thread count', () => {
    const x = lr.tensor(uniform(16 * 8 * 32 * 32, 44), [16, 8, 32, 32]);
    const g = lr.tensor(uniform(x.size, 45), x.shape);
    const run = (w: lr.Tensor) => {
      const wl = lr.tensor(w.data(), w.shape).requiresGrad_();
      lr.prelu(x, wl).backward(g);
      return Array.from(wl.grad!.data());
    };
    for (const w of [lr.full([8], 0.2), lr.full([1], 0.2)]) {
      lr.setNumThreads(1);
      const a = run(w);
      lr.setNumThreads(2);
      expect(run(w)).toEqual(a);
    }
  });
  it('rejects bad arguments naming them', () => {
    expectError(() => lr.prelu(lr.zeros([2, 3, 2, 2]), lr.zeros([2])), RangeError, 'prelu', "'weight'");
    expectError(() => lr.prelu(lr.zeros([5]), lr.zeros([5])), RangeError, 'prelu', "'weight'");
    expectError(() => lr.prelu(lr.zeros([2, 3]), lr.zeros([1, 3])), RangeError, 'prelu', "'weight'");
    expectError(() => lr.prelu(lr.zeros([2, 3]), lr.zeros([3], 'int32')), TypeError, 'prelu', "'weight'");
    expectError(() => lr.prelu(lr.zeros([2, 3]), 0.25 as unknown as lr.Tensor), TypeError, 'prelu', "'weight'");
    expectError(() => lr.prelu(lr.zeros([2, 3], 'uint8'), lr.zeros([3])), TypeError, 'prelu', "'x'");
  });
});

function mfmRef(x: ArrayLike<number>, shape: number[], axis: number): number[] {
  const [outer, n, inner] = around(shape, axis);
  const half = n / 2;
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < half; j++)
      for (let i = 0; i < inner; i++) {
        const a = x[(o * n + j) * inner + i], b = x[(o * n + j + half) * inner + i];
        out.push(Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
      }
  return out;
}

describe('mfm', () => {
  it('takes the max of the two halves of any axis, on offset views', () => {
    const r = rng(51);
    for (let c = 0; c < 12; c++) {
      const rank = 1 + Math.floor(r() * 4);
      const shape = randomShape(r, rank, 4);
      const ax = c % 3 === 0 || rank === 1 ? Math.floor(r() * rank) : 1;
      shape[ax] *= 2;
      const x = uniform(size(shape), 500 + c);
      const opts = c % 3 === 0 || rank === 1 ? { axis: ax - (c % 2 ? rank : 0) } : {};
      const y = lr.mfm(lr.tensor(x, shape), opts);
      expect(y.shape).toEqual(shape.map((d, k) => (k === ax ? d / 2 : d)));
      expectClose(y.data(), mfmRef(x, shape, ax), 0, 0);
      expectClose(lr.mfm(atOffset(x, shape), opts).data(), mfmRef(x, shape, ax), 0, 0);
    }
    expect(Array.from(lr.mfm(lr.tensor([NaN, 1, 2, NaN]), { axis: 0 }).data()).every(Number.isNaN)).toBe(true);
  });
  it('gradient goes to the larger half and is split on ties', () => {
    for (const [shape, axis] of [[[2, 6, 3, 2], 1], [[1, 2, 1, 1], 1], [[3, 4], 1], [[4, 3], 0], [[2, 3, 8], -1]] as [number[], number][])
      gradcheck((t) => lr.mfm(t, { axis }), [{ data: uniform(size(shape), 60), shape }]);
    gradcheck((t) => lr.mfm(lr.narrow(t, 0, 2, 1)), [{ data: uniform(24, 61), shape: [3, 4, 2] }]);
    const x = lr.tensor([1, 5, 3, 2, 5, 3], [1, 6]).requiresGrad_();
    lr.mfm(x).backward(lr.tensor([10, 20, 30], [1, 3]));
    expect(Array.from(x.grad!.data())).toEqual([0, 10, 15, 10, 10, 15]);
  });
  it('rejects bad arguments naming them', () => {
    expectError(() => lr.mfm(lr.zeros([1, 3, 2, 2])), RangeError, 'mfm', "'x'");
    expectError(() => lr.mfm(lr.zeros([2, 0])), RangeError, 'mfm', "'x'");
    expectError(() => lr.mfm(lr.zeros([2, 4]), { axis: 2 }), RangeError, 'mfm', "'axis'");
    expectError(() => lr.mfm(lr.zeros([2, 4]), { axis: 0.5 }), TypeError, 'mfm', "'axis'");
    expectError(() => lr.mfm(lr.zeros([4])), RangeError, 'mfm', "'axis'");
    expectError(() => lr.mfm(lr.tensor(2)), RangeError, 'mfm', "'x'");
    expectError(() => lr.mfm(lr.zeros([2, 4]), 1 as unknown as object), TypeError, 'mfm', "'options'");
    expectError(() => lr.mfm(lr.zeros([2, 4]), { dim: 1 } as object), TypeError, 'mfm', "'dim'");
  });
});

/** The reference mask: element i is kept when stream word offset + i, as a number in [0, 1), is >= p. */
function dropoutRef(x: ArrayLike<number>, p: number, seed: number, stream: number, offset: number): number[] {
  const scale = Math.fround(1 / (1 - p));
  return Array.from(x, (v, i) => (unit32(wordAt(seed, stream, offset + i)) >= p ? Math.fround(v * scale) : 0));
}

describe('dropout', () => {
  it('matches the reference mask, bit for bit, with a seed and from the generator', () => {
    const x = uniform(999, 70, -3, 3);
    expectClose(lr.dropout(lr.tensor(x), { p: 0.3, seed: 42 }).data(), dropoutRef(x, 0.3, 42, STREAM_DROPOUT, 0), 0, 0);
    expectClose(lr.dropout(atOffset(x, [9, 111]), { p: 0.75, seed: 2 ** 40 + 3 }).data(), dropoutRef(x, 0.75, 2 ** 40 + 3, STREAM_DROPOUT, 0), 0, 0);
    lr.manualSeed(9);
    lr.rand([17]); // the next draw starts at word 20
    const y = lr.dropout(lr.tensor(x, [27, 37]), { p: 0.5 });
    expect(y.shape).toEqual([27, 37]);
    expectClose(y.data(), dropoutRef(x, 0.5, 9, STREAM_GENERATOR, 20), 0, 0);
    expect(lr.getRngState()).toEqual({ seed: 9, counter: 20 + 999 });
  });
  it('keeps about 1-p of the elements, scaled by 1/(1-p)', () => {
    const n = 200000;
    const x = lr.ones([n]);
    for (const p of [0.1, 0.5, 0.9]) {
      const y = lr.dropout(x, { p, seed: 7 }).data();
      const kept = y.filter((v) => v !== 0);
      // 5 standard deviations of a binomial proportion
      expect(Math.abs(kept.length / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      expect(new Set(kept)).toEqual(new Set([Math.fround(1 / (1 - p))]));
    }
  });
  it('is reproducible by seed and by manualSeed, and fresh on each call otherwise', () => {
    const x = lr.ones([4000]);
    const mask = (o?: lr.DropoutOptions) => Array.from(lr.dropout(x, { p: 0.5, ...o }).data());
    expect(mask({ seed: 1 })).toEqual(mask({ seed: 1 }));
    expect(mask({ seed: 1 })).not.toEqual(mask({ seed: 2 }));
    lr.manualSeed(3);
    const first = mask();
    const second = mask();
    expect(second).not.toEqual(first);
    lr.manualSeed(3);
    expect(mask()).toEqual(first);
    // a call's own seed uses its own stream: not the mask of manualSeed with the same value
    expect(mask({ seed: 3 })).not.toEqual(first);
  });
  it('does not depend on the thread count', () => {
    const x = lr.tensor(uniform(300 * 300, 71), [300, 300]);
    lr.setNumThreads(1);
    const a = lr.dropout(x, { p: 0.5, seed: 3 }).data();
    lr.setNumThreads(2);
    expect(Array.from(lr.dropout(x, { p: 0.5, seed: 3 }).data())).toEqual(Array.from(a));
  });
  it('the gradient reuses the mask', () => {
    const x = lr.tensor(awayFromZero(500, 72), [20, 25]).requiresGrad_();
    const g = uniform(500, 73);
    const y = lr.dropout(x, { p: 0.4 });
    y.backward(lr.tensor(g, [20, 25]));
    const yd = y.data(), gx = x.grad!.data();
    const scale = Math.fround(1 / 0.6);
    for (let i = 0; i < 500; i++) expect(gx[i]).toBe(yd[i] === 0 ? 0 : Math.fround(g[i] * scale));
    gradcheck((t) => lr.dropout(t, { p: 0.3, seed: 5 }), [{ data: uniform(60, 74), shape: [6, 10] }]);
    gradcheck((t) => lr.dropout(lr.narrow(t, 0, 1, 4), { p: 0.6, seed: 6 }), [{ data: uniform(60, 75), shape: [6, 10] }]);
  });
  it('is the identity (a view, no draw) when p = 0 or not training', () => {
    const x = lr.tensor(uniform(12, 76), [3, 4]);
    lr.manualSeed(1);
    const before = lr.memory().bytes;
    for (const o of [{ training: false }, { p: 0 }, { p: 0.9, training: false }]) {
      const y = lr.dropout(x, o);
      expect(y.shape).toEqual([3, 4]);
      expect(Array.from(y.data())).toEqual(Array.from(x.data()));
    }
    expect(lr.memory().bytes).toBe(before);
    expect(lr.getRngState().counter).toBe(0);
    gradcheck((t) => lr.dropout(t, { training: false }), [{ data: uniform(6, 77), shape: [6] }]);
    expect(lr.dropout(lr.zeros([0, 4]), { p: 0.5 }).shape).toEqual([0, 4]);
  });
  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([4]);
    expectError(() => lr.dropout(x, { p: 1 }), RangeError, 'dropout', "'p'");
    expectError(() => lr.dropout(x, { p: -0.1 }), RangeError, 'dropout', "'p'");
    expectError(() => lr.dropout(x, { p: NaN }), RangeError, 'dropout', "'p'");
    expectError(() => lr.dropout(x, { p: '0.5' as unknown as number }), TypeError, 'dropout', "'p'");
    expectError(() => lr.dropout(x, { training: 1 as unknown as boolean }), TypeError, 'dropout', "'training'");
    expectError(() => lr.dropout(x, { seed: -1 }), RangeError, 'dropout', "'seed'");
    expectError(() => lr.dropout(x, { seed: 2 ** 60 }), RangeError, 'dropout', "'seed'");
    expectError(() => lr.dropout(x, { seed: 1.5 }), TypeError, 'dropout', "'seed'");
    expectError(() => lr.dropout(x, { q: 0.5 } as lr.DropoutOptions), TypeError, 'dropout', "'q'");
    expectError(() => lr.dropout(lr.zeros([4], 'int32')), TypeError, 'dropout', "'x'");
    expectError(() => lr.dropout(null as unknown as lr.Tensor), TypeError, 'dropout', "'x'");
  });
});

function l2Ref(x: ArrayLike<number>, shape: number[], axis: number, eps: number): Float64Array {
  const [outer, n, inner] = around(shape, axis);
  const out = new Float64Array(x.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let ss = 0;
      for (let j = 0; j < n; j++) ss += x[(o * n + j) * inner + i] ** 2;
      const d = Math.max(Math.sqrt(ss), eps);
      for (let j = 0; j < n; j++) out[(o * n + j) * inner + i] = x[(o * n + j) * inner + i] / d;
    }
  return out;
}

describe('l2Normalize', () => {
  it('divides by the clamped L2 norm along any axis, on offset views', () => {
    const r = rng(81);
    for (let c = 0; c < 12; c++) {
      const rank = 1 + Math.floor(r() * 4);
      const shape = randomShape(r, rank, 6);
      const axis = rank === 1 ? 0 : Math.floor(r() * rank);
      const x = uniform(size(shape), 800 + c, -2, 2);
      const ref = l2Ref(x, shape, axis, 1e-12);
      const opts = rank >= 2 && axis === 1 && c % 2 ? {} : { axis };
      expectClose(lr.l2Normalize(lr.tensor(x, shape), opts).data(), ref, 1e-6, 1e-5);
      expectClose(lr.l2Normalize(atOffset(x, shape), opts).data(), ref, 1e-6, 1e-5);
    }
    const wide = uniform(3 * 100 * 5, 82);
    expectClose(lr.l2Normalize(lr.tensor(wide, [3, 100, 5]), { axis: 2 }).data(), l2Ref(wide, [3, 100, 5], 2, 1e-12), 1e-6, 1e-5);
    expect(Array.from(lr.l2Normalize(lr.zeros([1, 3])).data())).toEqual([0, 0, 0]);
    // below eps the divisor is eps
    expectClose(lr.l2Normalize(lr.tensor([[1e-4, 0]]), { eps: 1e-3 }).data(), [0.1, 0], 1e-7);
  });
  it('gradient, with the norm above and below eps', () => {
    for (const [shape, axis] of [[[3, 4], 1], [[2, 3, 5], 1], [[2, 3, 5], -1], [[4, 2], 0], [[1, 70, 2], 1]] as [number[], number][])
      gradcheck((t) => lr.l2Normalize(t, { axis }), [{ data: uniform(size(shape), 83), shape }]);
    gradcheck((t) => lr.l2Normalize(t, { eps: 10 }), [{ data: uniform(8, 84), shape: [2, 4] }]);
    gradcheck((t) => lr.l2Normalize(lr.narrow(t, 0, 1, 2)), [{ data: uniform(12, 85), shape: [3, 4] }]);
  });
  it('rejects bad arguments naming them', () => {
    expectError(() => lr.l2Normalize(lr.zeros([2, 2]), { eps: -1 }), RangeError, 'l2_normalize', "'eps'");
    expectError(() => lr.l2Normalize(lr.zeros([2, 2]), { eps: 0 }), RangeError, 'l2_normalize', "'eps'");
    expectError(() => lr.l2Normalize(lr.zeros([2, 2]), { eps: 'x' as unknown as number }), TypeError, 'l2_normalize', "'eps'");
    expectError(() => lr.l2Normalize(lr.zeros([2, 2]), { axis: 2 }), RangeError, 'l2_normalize', "'axis'");
    expectError(() => lr.l2Normalize(lr.zeros([4])), RangeError, 'l2_normalize', "'axis'");
    expectError(() => lr.l2Normalize(lr.zeros([2, 2], 'int32')), TypeError, 'l2_normalize', "'x'");
  });
});

describe('native re-checks', () => {
  it('the kernels reject views past their storage and bad sizes without crashing', () => {
    const x = lr.zeros([6]);
    const y = lr.zeros([6]);
    const r = (t: lr.Tensor) => [t._storage('test'), t._offset];
    expectError(() => kernels.softmax(...r(y), ...r(x), [2, 2, 2], false), RangeError, 'softmax');
    expectError(() => kernels.softmax(...r(y), ...r(x), [2, -3, 1], false), RangeError, 'softmax');
    expectError(() => kernels.softmax(...r(y), ...r(x), [2 ** 40, 2 ** 40, 1], false), RangeError, 'softmax');
    expectError(() => kernels.l2_normalize(...r(y), ...r(x), [1, 6, 1], 0), RangeError, 'l2_normalize');
    expectError(() => kernels.prelu(...r(y), ...r(x), ...r(lr.zeros([2])), [1, 3, 2], false), RangeError, 'prelu');
    expectError(() => kernels.mfm(...r(y), ...r(x), [1, 2, 2]), RangeError, 'mfm');
    expectError(() => kernels.dropout(...r(y), ...r(x), 6, 1, 0, 0, 0), RangeError, 'dropout');
    expectError(() => kernels.dropout(...r(y), ...r(x), 7, 0.5, 0, 0, 0), RangeError, 'dropout');
    expectError(() => kernels.dropout(...r(y), ...r(lr.zeros([6], 'int32')), 6, 0.5, 0, 0, 0), TypeError, 'dropout');
  });
});
