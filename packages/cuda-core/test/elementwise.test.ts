import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { awayFromZero, size, uniform } from './helpers/random.js';

// Naive broadcasting reference, written independently of the kernel.
function broadcastRef(a: Float32Array, as: number[], b: Float32Array, bs: number[], f: (x: number, y: number) => number) {
  const rank = Math.max(as.length, bs.length);
  const pa = [...Array(rank - as.length).fill(1), ...as];
  const pb = [...Array(rank - bs.length).fill(1), ...bs];
  const os = pa.map((d, k) => Math.max(d, pb[k]));
  const out = new Float32Array(size(os));
  const idx = new Array(rank).fill(0);
  for (let i = 0; i < out.length; i++) {
    let r = i;
    for (let k = rank - 1; k >= 0; k--) {
      idx[k] = r % os[k];
      r = Math.floor(r / os[k]);
    }
    let ia = 0;
    let ib = 0;
    for (let k = 0; k < rank; k++) {
      ia = ia * pa[k] + (pa[k] === 1 ? 0 : idx[k]);
      ib = ib * pb[k] + (pb[k] === 1 ? 0 : idx[k]);
    }
    out[i] = f(a[ia], b[ib]);
  }
  return { out, shape: os };
}

const binaryCases: [string, (a: lr.Tensor, b: lr.Tensor) => lr.Tensor, (x: number, y: number) => number][] = [
  ['add', lr.add, (x, y) => x + y],
  ['sub', lr.sub, (x, y) => x - y],
  ['mul', lr.mul, (x, y) => x * y],
  ['div', lr.div, (x, y) => x / y],
  ['pow', lr.pow, (x, y) => Math.pow(x, y)],
  ['maximum', lr.maximum, (x, y) => Math.max(x, y)],
  ['minimum', lr.minimum, (x, y) => Math.min(x, y)],
];

const shapePairs: [number[], number[]][] = [
  [[2, 3], [2, 3]],
  [[2, 3, 4], [4]],
  [[2, 1, 4], [3, 1]],
  [[1], [5, 2]],
  [[], [3]],
  [[1, 1, 1, 1], [2, 3, 1, 5]],
  // axes merged where both operands read them alike: a per-channel operand, a scaled conv weight,
  // runs of broadcast and whole axes on both sides, size-1 axes between them
  [[2, 3, 4, 5], [1, 3, 1, 1]],
  [[6, 4, 3, 3], [6, 1, 1, 1]],
  [[2, 1, 4, 1, 3], [2, 5, 4, 6, 1]],
  [[3, 1, 1, 2], [1, 4, 5, 1]],
  [[1, 1], [1]],
];

describe('binary ops with broadcasting', () => {
  for (const [name, op, ref] of binaryCases) {
    it(`${name} matches the naive reference`, () => {
      for (const [as, bs] of shapePairs) {
        const positive = name === 'pow' || name === 'div';
        const ad = positive ? uniform(size(as), 1, 0.5, 2) : uniform(size(as), 1);
        const bd = positive ? uniform(size(bs), 2, 0.5, 2) : uniform(size(bs), 2);
        const y = op(lr.tensor(ad, as), lr.tensor(bd, bs));
        const r = broadcastRef(ad, as, bd, bs, ref);
        expect(y.shape).toEqual(r.shape);
        expectClose(y.data(), r.out, 1e-6, 1e-5);
      }
    });
    it(`${name} gradient matches finite differences`, () => {
      for (const [as, bs] of shapePairs) {
        const positive = name === 'pow' || name === 'div';
        const ad = positive ? uniform(size(as), 3, 0.5, 2) : awayFromZero(size(as), 3);
        // keep maximum/minimum away from ties
        const bd = positive ? uniform(size(bs), 4, 0.5, 2) : uniform(size(bs), 4).map((v) => v + 0.013);
        gradcheck(op, [{ data: ad, shape: as }, { data: bd, shape: bs }]);
      }
    });
  }
  it('takes numbers as scalars', () => {
    expect(lr.add(lr.tensor([1, 2]), 3).toArray()).toEqual([4, 5]);
    expect(lr.sub(1, lr.tensor([1, 2])).toArray()).toEqual([0, -1]);
  });
  it('rejects bad input naming the argument', () => {
    expectError(() => lr.add(lr.tensor([1, 2, 3]), lr.tensor([1, 2])), RangeError, 'add', "'b'");
    expectError(() => lr.mul([1, 2] as unknown as lr.Tensor, lr.tensor([1])), TypeError, 'mul', "'a'");
    expectError(() => lr.div(lr.tensor([1]), lr.tensor(new Int32Array([1]))), TypeError, "'b'", 'float32');
  });
});

const unaryCases: [string, (x: lr.Tensor) => lr.Tensor, (v: number) => number, [number, number]][] = [
  ['neg', lr.neg, (v) => -v, [-2, 2]],
  ['exp', lr.exp, Math.exp, [-2, 2]],
  ['log', lr.log, Math.log, [0.2, 3]],
  ['sqrt', lr.sqrt, Math.sqrt, [0.2, 3]],
  ['abs', lr.abs, Math.abs, [-2, 2]],
  ['relu', lr.relu, (v) => Math.max(v, 0), [-2, 2]],
  ['sigmoid', lr.sigmoid, (v) => 1 / (1 + Math.exp(-v)), [-6, 6]],
  ['tanh', lr.tanh, Math.tanh, [-3, 3]],
  ['square', lr.square, (v) => v * v, [-2, 2]],
  ['leakyRelu', (x) => lr.leakyRelu(x, 0.2), (v) => (v > 0 ? v : 0.2 * v), [-2, 2]],
  ['clamp', (x) => lr.clamp(x, -0.5, 0.7), (v) => Math.min(Math.max(v, -0.5), 0.7), [-2, 2]],
  ['affine', (x) => lr.affine(x, 2.5, -1), (v) => v * 2.5 - 1, [-2, 2]],
  ['powScalar', (x) => lr.powScalar(x, 1.7), (v) => Math.pow(v, 1.7), [0.2, 2]],
];

describe('unary ops', () => {
  for (const [name, op, ref, [lo, hi]] of unaryCases) {
    it(`${name}: values and gradient`, () => {
      for (const shape of [[7], [2, 3, 5], [1, 1, 1, 1]]) {
        let d = uniform(size(shape), 11, lo, hi);
        // keep away from kinks (relu, abs, clamp bounds)
        d = d.map((v) => (Math.abs(v) < 0.02 || Math.abs(v + 0.5) < 0.02 || Math.abs(v - 0.7) < 0.02 ? v + 0.05 : v));
        const y = op(lr.tensor(d, shape));
        expect(y.shape).toEqual(shape);
        expectClose(y.data(), Array.from(d, ref), 1e-6, 1e-5);
        gradcheck(op, [{ data: d, shape }]);
      }
    });
  }
  it('relu, leaky relu, clamp and abs gradients are the output gradient times the derivative, element for element', () => {
    // Random signs (the kernels choose without branches), a length off every vector width, and
    // non-finite output gradients: times a derivative of 0 they stay NaN, as gy * 0.
    const n = 1037;
    const x = uniform(n, 51, -2, 2);
    x.set([0, -0, NaN, Infinity, -Infinity, 0.7, -0.5], 100);
    const g = uniform(n, 52, -3, 3);
    g.set([Infinity, NaN, -Infinity], 200);
    x.set([-1, -1, 1], 200);
    const cases: [string, (t: lr.Tensor) => lr.Tensor, (v: number) => number][] = [
      ['relu', (t) => lr.relu(t), (v) => (v > 0 ? 1 : 0)],
      ['leakyRelu', (t) => lr.leakyRelu(t, 0.1), (v) => (v > 0 ? 1 : Math.fround(0.1))],
      ['clamp', (t) => lr.clamp(t, -0.5, 0.7), (v) => (v >= -0.5 && v <= 0.7 ? 1 : 0)],
      ['abs', (t) => lr.abs(t), (v) => (v > 0 ? 1 : v < 0 ? -1 : 0)],
    ];
    for (const [name, op, derivative] of cases) {
      const xt = lr.tensor(x).requiresGrad_();
      op(xt).backward(lr.tensor(g));
      const expected = Array.from(x, (v, i) => Math.fround(g[i] * derivative(v)));
      expect(Array.from(xt.grad!.data()), name).toEqual(expected);
    }
  });
  it('sigmoid does not overflow', () => {
    const y = lr.sigmoid(lr.tensor([-1000, 1000])).data();
    expect(Array.from(y)).toEqual([0, 1]);
  });
  it('rejects bad attributes', () => {
    expectError(() => lr.clamp(lr.tensor([1]), 2, 1), RangeError, "'max'");
    expectError(() => lr.leakyRelu(lr.tensor([1]), Number.NaN), RangeError, "'negativeSlope'");
    expectError(() => lr.relu(lr.tensor(new Uint8Array([1]))), TypeError, 'relu', "'x'");
  });
});

describe('number operands of add and sub', () => {
  it('give the same bits and gradients as a 0-d tensor operand, signed zeros included', () => {
    const data = new Float32Array([0, -0, 1.5, -2.25, 3e-39, -7e30, 0.1, 1e-8]);
    for (const c of [0, -0, 0.1, -3, 1e30]) {
      const asTensor = () => lr.tensor(new Float32Array([c]), []);
      const cases: [(x: lr.Tensor) => lr.Tensor, (x: lr.Tensor) => lr.Tensor][] = [
        [(x) => lr.add(x, c), (x) => lr.add(x, asTensor())],
        [(x) => lr.add(c, x), (x) => lr.add(asTensor(), x)],
        [(x) => lr.sub(x, c), (x) => lr.sub(x, asTensor())],
        [(x) => lr.sub(c, x), (x) => lr.sub(asTensor(), x)],
      ];
      for (const [withNumber, withTensor] of cases) {
        const x1 = lr.tensor(data, [8]).requiresGrad_();
        const x2 = lr.tensor(data, [8]).requiresGrad_();
        const y1 = withNumber(x1);
        const y2 = withTensor(x2);
        const negativeZeros = (t: lr.Tensor) => Array.from(t.data(), (v) => Object.is(v, -0));
        expect(Array.from(y1.data())).toEqual(Array.from(y2.data()));
        expect(negativeZeros(y1)).toEqual(negativeZeros(y2));
        lr.sum(y1).backward();
        lr.sum(y2).backward();
        expect(Array.from(x1.grad!.data())).toEqual(Array.from(x2.grad!.data()));
      }
    }
  });
});
