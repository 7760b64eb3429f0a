import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { rng, size, uniform } from './helpers/random.js';
import { kernels } from '../src/native.js';

/** Distinct values so max pooling has no ties (finite differences stay valid). */
function distinct(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const perm = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
  return Float32Array.from(perm, (p) => p / n - 0.5);
}

interface PoolCase {
  shape: number[];
  k: [number, number];
  s?: [number, number];
  p?: [number, number];
  d?: [number, number];
  ceil?: boolean;
}

/** PyTorch's pooling_output_shape, written out. */
function outLen(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const num = n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let o = Math.floor(num / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

/** Naive pooling: every window position of every plane, straight from the definitions. */
function poolRef(x: ArrayLike<number>, c: PoolCase, kind: 'max' | 'avg', includePad = true) {
  const [n, ch, h, w] = c.shape;
  const [kh, kw] = c.k;
  const [sh, sw] = c.s ?? c.k;
  const [ph, pw] = c.p ?? [0, 0];
  const [dh, dw] = c.d ?? [1, 1];
  const oh = outLen(h, kh, sh, ph, dh, !!c.ceil);
  const ow = outLen(w, kw, sw, pw, dw, !!c.ceil);
  const out = new Float64Array(n * ch * oh * ow);
  const grad = new Float64Array(x.length); // d(sum of outputs)/dx
  for (let pl = 0; pl < n * ch; pl++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let best = -Infinity;
        let arg = -1;
        let sum = 0;
        const cells: number[] = [];
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const iy = y * sh - ph + i * dh;
            const ix = xx * sw - pw + j * dw;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const at = (pl * h + iy) * w + ix;
            const v = x[at];
            if (arg < 0 || v > best || Number.isNaN(v)) {
              best = v;
              arg = at;
            }
            sum += v;
            cells.push(at);
          }
        let div = cells.length;
        if (includePad) {
          // PyTorch: the window clipped to the padded input (ceil mode can run past it).
          const y0 = y * sh - ph;
          const x0 = xx * sw - pw;
          div = (Math.min(y0 + kh, h + ph) - y0) * (Math.min(x0 + kw, w + pw) - x0);
        }
        const o = (pl * oh + y) * ow + xx;
        if (kind === 'max') {
          out[o] = best;
          if (arg >= 0) grad[arg] += 1;
        } else {
          out[o] = cells.length === 0 ? 0 : sum / div;
          for (const at of cells) grad[at] += 1 / div;
        }
      }
  return { out, grad, shape: [n, ch, oh, ow] };
}

const cases: PoolCase[] = [
  { shape: [1, 1, 4, 4], k: [2, 2] },
  { shape: [2, 3, 7, 5], k: [3, 2], s: [2, 1] }, // odd sizes, asymmetric kernel and stride
  { shape: [1, 2, 7, 7], k: [3, 3], s: [2, 2], p: [1, 1] },
  { shape: [1, 1, 8, 9], k: [2, 2], s: [3, 3] }, // stride > kernel
  { shape: [1, 1, 9, 10], k: [2, 3], s: [4, 3], p: [1, 0] }, // stride > kernel, padding on one axis
  { shape: [2, 1, 7, 6], k: [3, 3], s: [2, 2], ceil: true },
  { shape: [1, 2, 5, 5], k: [2, 2], s: [2, 2], p: [1, 1], ceil: true }, // the ceil rule drops a window
  { shape: [1, 1, 2, 3], k: [3, 3], s: [2, 2], ceil: true }, // ceil mode: a window bigger than the input
  { shape: [1, 2, 9, 9], k: [2, 3], s: [1, 2], d: [2, 2] }, // dilation
  { shape: [1, 1, 6, 7], k: [3, 2], s: [2, 3], p: [1, 1], d: [2, 3], ceil: true },
  { shape: [1, 1, 1, 1], k: [1, 1] }, // 1x1
  { shape: [3, 1, 1, 5], k: [1, 3], s: [1, 1], p: [0, 1] },
];

/** The instruction sets this CPU runs; the pooling kernels follow the GEMM's choice. */
const poolIsas = ['avx512', 'avx2', 'scalar'].filter((isa) => kernels.gemm_use_isa(isa) as boolean);
kernels.gemm_use_isa('auto');
afterAll(() => kernels.gemm_use_isa('auto'));

const opts = (c: PoolCase) => ({ kernelSize: c.k, stride: c.s, padding: c.p, dilation: c.d, ceilMode: c.ceil });
const avgOpts = (c: PoolCase, countIncludePad: boolean) => ({ kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil, countIncludePad });

describe('maxPool2d', () => {
  it('output sizes follow PyTorch (known values)', () => {
    const shapeOf = (hw: number[], o: lr.MaxPool2dOptions) => lr.maxPool2d(lr.zeros([1, 1, ...hw]), o).shape.slice(2);
    expect(shapeOf([112, 112], { kernelSize: 3, stride: 2, ceilMode: true })).toEqual([56, 56]); // GoogLeNet's stem
    expect(shapeOf([112, 112], { kernelSize: 3, stride: 2 })).toEqual([55, 55]);
    expect(shapeOf([5, 5], { kernelSize: 2, stride: 2, padding: 1, ceilMode: true })).toEqual([3, 3]);
    expect(shapeOf([2, 2], { kernelSize: 3, stride: 2, ceilMode: true })).toEqual([1, 1]);
    expect(shapeOf([10, 7], { kernelSize: [3, 1], stride: [1, 2], dilation: [4, 1] })).toEqual([2, 4]);
  });

  it('matches the naive reference, and its gradient routes to each argmax', () => {
    for (const [i, c] of cases.entries()) {
      const x = distinct(size(c.shape), i);
      const xt = lr.tensor(x, c.shape).requiresGrad_();
      const y = lr.maxPool2d(xt, opts(c));
      const ref = poolRef(x, c, 'max');
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.data(), ref.out, 0, 0);
      lr.sum(y).backward();
      expectClose(xt.grad!.data(), ref.grad, 0, 0);
    }
  });

  it('gradient matches finite differences', () => {
    for (const [i, c] of cases.entries()) gradcheck((x) => lr.maxPool2d(x, opts(c)), [{ data: distinct(size(c.shape), 10 + i), shape: c.shape }], { eps: 1e-3 });
  });

  it('reads views at an offset and gives the same result without autograd', () => {
    const c = cases[2];
    const big = distinct(3 * size(c.shape), 4);
    const view = lr.narrow(lr.tensor(big, [3 * c.shape[0], ...c.shape.slice(1)]), 0, 1, c.shape[0]);
    const part = big.slice(size(c.shape), 2 * size(c.shape));
    expectClose(lr.maxPool2d(view, opts(c)).data(), poolRef(part, c, 'max').out, 0, 0);
    expectClose(lr.noGrad(() => lr.maxPool2d(lr.tensor(part, c.shape), opts(c))).data(), poolRef(part, c, 'max').out, 0, 0);
  });

  it('propagates NaN; a window wholly in the padding is -inf with no gradient', () => {
    const y = lr.maxPool2d(lr.tensor([[[[1, NaN, 3, 4], [5, 6, 7, 8]]]]), { kernelSize: 2 });
    expect(Array.from(y.data())).toEqual([NaN, 8]);
    // kernel 2, dilation 2, padding 1 on a 1x1 input: taps at -1 and 1, both outside
    const x = lr.tensor([[[[2]]]]).requiresGrad_();
    const z = lr.maxPool2d(x, { kernelSize: [1, 2], padding: [0, 1], dilation: [1, 2] });
    expect(z.shape).toEqual([1, 1, 1, 1]);
    expect(z.item()).toBe(-Infinity);
    z.backward(lr.ones([1, 1, 1, 1]));
    expect(x.grad!.item()).toBe(0);
  });

  it('2x2 stride-2 kernel: every instruction set matches the reference on ties, NaN and infinities', () => {
    // Output widths past a whole vector (16 and 8 lanes) with a tail, odd input sizes (a row and
    // column left over), and quantised values so windows hold ties.
    const shapes = [
      [2, 3, 9, 75],
      [1, 2, 4, 32],
      [1, 1, 5, 3],
    ];
    for (const [i, shape] of shapes.entries()) {
      const r = rng(40 + i);
      const x = Float32Array.from({ length: size(shape) }, () => Math.round(r() * 8) - 4);
      for (let k = 0; k < x.length; k += 7) x[k] = [NaN, -Infinity, Infinity][k % 3];
      const c: PoolCase = { shape, k: [2, 2] };
      const ref = poolRef(x, c, 'max');
      for (const isa of poolIsas) {
        kernels.gemm_use_isa(isa);
        try {
          const xt = lr.tensor(x, shape).requiresGrad_();
          const y = lr.maxPool2d(xt, { kernelSize: 2 });
          expect(y.shape).toEqual(ref.shape);
          // Exact equality, NaN equal to NaN (infinities defeat a tolerance check).
          expect(Array.from(y.data())).toEqual(Array.from(ref.out));
          y.backward(lr.ones(y.shape));
          expect(Array.from(xt.grad!.data())).toEqual(Array.from(ref.grad));
          // Without autograd no argmax index is kept: the kernel's index-free path.
          expect(Array.from(lr.noGrad(() => lr.maxPool2d(lr.tensor(x, shape), { kernelSize: 2 })).data())).toEqual(Array.from(ref.out));
        } finally {
          kernels.gemm_use_isa('auto');
        }
      }
    }
  });

  it('without autograd every case and instruction set gives the reference values (the index-free kernels)', () => {
    // Quantised values (ties), NaN and infinities; the cases cover stride 1 columns with padding,
    // dilation and ceil mode, and a window wholly in the padding.
    const more: PoolCase[] = [
      ...cases,
      { shape: [2, 3, 9, 40], k: [3, 3], s: [1, 1], p: [1, 1] },
      { shape: [1, 1, 1, 1], k: [1, 2], p: [0, 1], d: [1, 2] },
      // Planes taller than a band of row maxima (32 output rows), bands that start mid-plane
      // (padding 1 on rows only: the separable kernel, not the 3x3 "same" one).
      { shape: [2, 3, 70, 20], k: [3, 3], s: [1, 1], p: [1, 0] },
      { shape: [1, 2, 75, 18], k: [3, 5], s: [2, 1], p: [1, 2], d: [2, 1] },
    ];
    for (const [i, c] of more.entries()) {
      const r = rng(60 + i);
      const x = Float32Array.from({ length: size(c.shape) }, () => Math.round(r() * 6) - 3);
      for (let k = 0; k < x.length; k += 5) x[k] = [NaN, -Infinity, Infinity][k % 3];
      const want = Array.from(poolRef(x, c, 'max').out);
      for (const isa of poolIsas) {
        kernels.gemm_use_isa(isa);
        try {
          expect(Array.from(lr.noGrad(() => lr.maxPool2d(lr.tensor(x, c.shape), opts(c))).data()), `${isa} ${JSON.stringify(c)}`).toEqual(want);
        } finally {
          kernels.gemm_use_isa('auto');
        }
      }
    }
  });

  it('without autograd, of equal values the first in row-major window order wins (the sign of zero)', () => {
    // Windows [[-0, +0], [+0, +0]] and [[+0, -0], [-0, -0]]: the indexed kernel keeps the first.
    for (const isa of poolIsas) {
      kernels.gemm_use_isa(isa);
      try {
        for (const [a, b] of [[-0, 0], [0, -0]]) {
          const y = lr.noGrad(() => lr.maxPool2d(lr.tensor([[[[a, b], [b, b]]]]), { kernelSize: [2, 2], stride: 1, padding: [0, 0] })).data();
          expect(Object.is(y[0], a), `${isa} ${a}`).toBe(true);
        }
      } finally {
        kernels.gemm_use_isa('auto');
      }
    }
  });

  it('3x3 stride-1 padding-1 kernel: every instruction set and thread count gives the reference values', () => {
    // Widths below, at and past a whole vector (4, 8, 16 lanes) with tails, a single row and
    // column, N > 1, and planes tall enough that chunks of rows start mid-plane on 2 and 3 threads.
    const shapes = [
      [1, 1, 1, 1],
      [2, 3, 1, 5],
      [1, 2, 2, 3],
      [3, 2, 5, 17],
      [1, 3, 9, 16],
      [2, 2, 33, 40],
      [1, 4, 130, 129],
    ];
    const saved = lr.numThreads();
    try {
      for (const [i, shape] of shapes.entries()) {
        const r = rng(80 + i);
        const x = Float32Array.from({ length: size(shape) }, () => Math.round(r() * 6) - 3);
        for (let k = 0; k < x.length; k += 7) x[k] = [NaN, -Infinity, Infinity, -0][k % 4];
        const c: PoolCase = { shape, k: [3, 3], s: [1, 1], p: [1, 1] };
        const want = Array.from(poolRef(x, c, 'max').out);
        for (const isa of poolIsas)
          for (const threads of [1, 2, 3]) {
            kernels.gemm_use_isa(isa);
            lr.setNumThreads(threads);
            try {
              const got = Array.from(lr.noGrad(() => lr.maxPool2d(lr.tensor(x, shape), opts(c))).data());
              // toEqual tells -0 from +0 and takes NaN as equal to NaN.
              expect(got, `${isa} ${threads} threads ${shape}`).toEqual(want);
            } finally {
              kernels.gemm_use_isa('auto');
            }
          }
      }
    } finally {
      lr.setNumThreads(saved);
    }
  });

  it('3x3 stride-1 padding-1 kernel: of equal values the first in row-major order wins, not column-major', () => {
    // The only window holding all four: row-major order meets (0,1) before (1,0), column-major
    // the other way round, so the sign of the zero that comes out tells the order.
    for (const isa of poolIsas) {
      kernels.gemm_use_isa(isa);
      try {
        for (const [a, b] of [[0, -0], [-0, 0]]) {
          const y = lr.noGrad(() => lr.maxPool2d(lr.tensor([[[[-1, a], [b, -1]]]]), { kernelSize: 3, stride: 1, padding: 1 })).data();
          expect(Array.from(y).map((v) => Object.is(v, -0)), `${isa} ${a}`).toEqual([a, a, a, a].map((v) => Object.is(v, -0)));
        }
      } finally {
        kernels.gemm_use_isa('auto');
      }
    }
  });

  it('rejects bad arguments, naming them', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    expectError(() => lr.maxPool2d(x, { kernelSize: 0 }), RangeError, 'max_pool2d', "'kernelSize'");
    expectError(() => lr.maxPool2d(x, { kernelSize: [2, 2, 2] }), RangeError, "'kernelSize'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 1.5 }), TypeError, "'kernelSize'");
    expectError(() => lr.maxPool2d(x, {} as lr.MaxPool2dOptions), TypeError, "'kernelSize'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 5 }), RangeError, "'kernelSize'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, dilation: 4 }), RangeError, "'kernelSize'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, stride: 0 }), RangeError, "'stride'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, stride: 'x' as unknown as number }), TypeError, "'stride'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, padding: 2 }), RangeError, "'padding'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 3, padding: -1 }), RangeError, "'padding'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, dilation: 0 }), RangeError, "'dilation'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, ceilMode: 1 as unknown as boolean }), TypeError, "'ceilMode'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, size: 2 } as lr.MaxPool2dOptions), TypeError, "'size'");
    expectError(() => lr.maxPool2d(lr.zeros([4, 4]), { kernelSize: 2 }), RangeError, "'x'");
    expectError(() => lr.maxPool2d(lr.zeros([1, 1, 4, 4], 'int32'), { kernelSize: 2 }), TypeError, "'x'");
    expectError(() => lr.maxPool2d(lr.zeros([1, 1, 0, 4]), { kernelSize: 1 }), RangeError, "'x'");
    expectError(() => lr.maxPool2d([1, 2] as unknown as lr.Tensor, { kernelSize: 1 }), TypeError, "'x'");
  });
});

describe('avgPool2d', () => {
  it('matches the naive reference (with and without counting padding) and its exact gradient', () => {
    for (const [i, c] of cases.entries()) {
      if (c.d) continue;
      for (const countIncludePad of [true, false]) {
        const x = uniform(size(c.shape), 20 + i);
        const xt = lr.tensor(x, c.shape).requiresGrad_();
        const y = lr.avgPool2d(xt, avgOpts(c, countIncludePad));
        const ref = poolRef(x, c, 'avg', countIncludePad);
        expect(y.shape).toEqual(ref.shape);
        expectClose(y.data(), ref.out, 1e-6, 1e-5);
        lr.sum(y).backward();
        expectClose(xt.grad!.data(), ref.grad, 1e-6, 1e-5);
      }
    }
  });

  it('gradient matches finite differences', () => {
    for (const [i, c] of cases.entries())
      if (!c.d) gradcheck((x) => lr.avgPool2d(x, avgOpts(c, i % 2 === 0)), [{ data: uniform(size(c.shape), 30 + i), shape: c.shape }]);
  });

  it('2x2 stride-2 kernel: every instruction set matches the reference, padding counted or not', () => {
    for (const [i, shape] of [[2, 3, 9, 75], [1, 2, 4, 32], [1, 1, 5, 3]].entries()) {
      const x = uniform(size(shape), 50 + i);
      const c: PoolCase = { shape, k: [2, 2] };
      const ref = poolRef(x, c, 'avg');
      for (const isa of poolIsas)
        for (const countIncludePad of [true, false]) {
          kernels.gemm_use_isa(isa);
          try {
            const y = lr.avgPool2d(lr.tensor(x, shape), { kernelSize: 2, countIncludePad });
            expect(y.shape).toEqual(ref.shape);
            expectClose(y.data(), ref.out, 1e-6, 1e-5);
          } finally {
            kernels.gemm_use_isa('auto');
          }
        }
    }
    // NaN and infinities propagate as in a plain sum.
    expect(Array.from(lr.avgPool2d(lr.tensor([[[[1, NaN, Infinity, 1], [1, 1, 1, 1]]]]), { kernelSize: 2 }).data())).toEqual([NaN, Infinity]);
  });

  it('known values: padding counted or not, ceil mode clipping', () => {
    const x = lr.tensor([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]);
    // 2x2 windows, stride 2, padding 1: corners see one input each
    expect(Array.from(lr.avgPool2d(x, { kernelSize: 2, padding: 1 }).data())).toEqual([1 / 4, 5 / 4, 11 / 4, 28 / 4].map(Math.fround));
    expect(Array.from(lr.avgPool2d(x, { kernelSize: 2, padding: 1, countIncludePad: false }).data())).toEqual([1, 2.5, 5.5, 7]);
    // ceil mode: the last window is clipped to the input and divides by what it covers
    expect(Array.from(lr.avgPool2d(x, { kernelSize: 2, ceilMode: true }).data())).toEqual([3, 4.5, 7.5, 9]);
  });

  it('reads views at an offset', () => {
    const c = cases[1];
    const big = uniform(2 * size(c.shape), 9);
    const view = lr.narrow(lr.tensor(big, [2 * c.shape[0], ...c.shape.slice(1)]), 0, c.shape[0], c.shape[0]);
    expectClose(lr.avgPool2d(view, avgOpts(c, true)).data(), poolRef(big.slice(size(c.shape)), c, 'avg').out, 1e-6, 1e-5);
  });

  it('rejects bad arguments, naming them', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    expectError(() => lr.avgPool2d(x, { kernelSize: 0 }), RangeError, 'avg_pool2d', "'kernelSize'");
    expectError(() => lr.avgPool2d(x, { kernelSize: 5 }), RangeError, "'kernelSize'");
    expectError(() => lr.avgPool2d(x, { kernelSize: 2, stride: [1, 0] }), RangeError, "'stride'");
    expectError(() => lr.avgPool2d(x, { kernelSize: 2, padding: [0, 2] }), RangeError, "'padding'");
    expectError(() => lr.avgPool2d(x, { kernelSize: 2, countIncludePad: 'no' as unknown as boolean }), TypeError, "'countIncludePad'");
    expectError(() => lr.avgPool2d(x, { kernelSize: 2, dilation: 2 } as lr.AvgPool2dOptions), TypeError, "'dilation'");
    expectError(() => lr.avgPool2d(lr.zeros([1, 4, 4]), { kernelSize: 2 }), RangeError, "'x'");
    expectError(() => lr.avgPool2d(lr.zeros([1, 1, 4, 0]), { kernelSize: 1 }), RangeError, "'x'");
  });
});

describe('adaptiveAvgPool2d / globalAvgPool2d', () => {
  function adaptiveRef(x: ArrayLike<number>, shape: number[], out: number[]) {
    const [n, c, h, w] = shape;
    const ref: number[] = [];
    for (let p = 0; p < n * c; p++)
      for (let i = 0; i < out[0]; i++)
        for (let j = 0; j < out[1]; j++) {
          const y0 = Math.floor((i * h) / out[0]);
          const y1 = Math.ceil(((i + 1) * h) / out[0]);
          const x0 = Math.floor((j * w) / out[1]);
          const x1 = Math.ceil(((j + 1) * w) / out[1]);
          let s = 0;
          for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += x[(p * h + yy) * w + xx];
          ref.push(s / ((y1 - y0) * (x1 - x0)));
        }
    return ref;
  }

  it('uses PyTorch windows (overlapping when the size does not divide, repeated when growing)', () => {
    const cases: [number[], number[]][] = [
      [[1, 2, 7, 5], [3, 2]],
      [[2, 1, 4, 4], [4, 4]],
      [[1, 1, 5, 9], [2, 4]],
      [[1, 3, 3, 3], [5, 5]],
      [[1, 1, 1, 1], [2, 3]],
      [[3, 2, 6, 1], [4, 1]],
    ];
    for (const [k, [shape, out]] of cases.entries()) {
      const x = uniform(size(shape), 5 + k);
      const y = lr.adaptiveAvgPool2d(lr.tensor(x, shape), out);
      expect(y.shape).toEqual([shape[0], shape[1], ...out]);
      expectClose(y.data(), adaptiveRef(x, shape, out), 1e-6, 1e-5);
      gradcheck((t) => lr.adaptiveAvgPool2d(t, out), [{ data: x, shape }]);
    }
    // a single number means a square output
    expect(lr.adaptiveAvgPool2d(lr.zeros([1, 1, 5, 5]), 2).shape).toEqual([1, 1, 2, 2]);
  });

  it('reads views at an offset', () => {
    const shape = [1, 2, 5, 7];
    const big = uniform(3 * size(shape), 6);
    const view = lr.narrow(lr.tensor(big, [3, 2, 5, 7]), 0, 2, 1);
    expectClose(lr.adaptiveAvgPool2d(view, [2, 3]).data(), adaptiveRef(big.slice(2 * size(shape)), shape, [2, 3]), 1e-6, 1e-5);
  });

  it('globalAvgPool2d keeps [N, C, 1, 1]', () => {
    const g = lr.globalAvgPool2d(lr.tensor([[[[1, 2], [3, 6]]]]));
    expect(g.shape).toEqual([1, 1, 1, 1]);
    expect(g.item()).toBe(3);
    const shape = [2, 3, 4, 5];
    const x = uniform(size(shape), 8);
    expectClose(lr.globalAvgPool2d(lr.tensor(x, shape)).data(), adaptiveRef(x, shape, [1, 1]), 1e-6, 1e-5);
    gradcheck((t) => lr.globalAvgPool2d(t), [{ data: x, shape }]);
  });

  it('rejects bad arguments, naming them', () => {
    expectError(() => lr.adaptiveAvgPool2d(lr.zeros([1, 1, 2, 2]), [0, 1]), RangeError, 'adaptive_avg_pool2d', "'outputSize'");
    expectError(() => lr.adaptiveAvgPool2d(lr.zeros([1, 1, 2, 2]), [1, 1, 1]), RangeError, "'outputSize'");
    expectError(() => lr.adaptiveAvgPool2d(lr.zeros([1, 1, 2, 2]), 'big' as unknown as number), TypeError, "'outputSize'");
    expectError(() => lr.adaptiveAvgPool2d(lr.zeros([1, 2, 2]), 1), RangeError, "'x'");
    expectError(() => lr.adaptiveAvgPool2d(lr.zeros([1, 1, 0, 2]), 1), RangeError, "'x'");
    expectError(() => lr.globalAvgPool2d(lr.zeros([2, 2])), RangeError, 'global_avg_pool2d', "'x'");
    expectError(() => lr.globalAvgPool2d(lr.zeros([1, 1, 2, 0])), RangeError, 'global_avg_pool2d', "'x'");
    expectError(() => lr.globalAvgPool2d(lr.zeros([1, 1, 2, 2], 'uint8')), TypeError, "'x'");
  });
});

describe('pooling kernels re-check their arguments natively', () => {
  it('throws RangeError instead of reading out of bounds', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    const out = lr.zeros([1, 1, 2, 2]);
    const index = lr.zeros([1, 1, 2, 2], 'int32');
    const s = (t: lr.Tensor) => t._storage('test');
    const geom = [1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2];
    expect(() => kernels.max_pool2d(s(out), 0, s(index), 0, s(x), 0, [1, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 3, 3])).toThrow(RangeError);
    expect(() => kernels.max_pool2d(s(out), 0, s(index), 0, s(x), 0, [1, 4, 4, 2, 2, 2, 2, 2, 0, 1, 1, 2, 2])).toThrow(RangeError);
    expect(() => kernels.max_pool2d(s(out), 1, s(index), 0, s(x), 0, geom)).toThrow(RangeError);
    const bad = lr.tensor(new Int32Array([0, 1, 99, 2]), [1, 1, 2, 2]);
    expect(() => kernels.max_pool2d_backward(s(x), 0, s(out), 0, s(bad), 0, geom)).toThrow(RangeError);
    expect(() => kernels.avg_pool2d(s(out), 0, s(x), 0, geom, true, 5, 0)).toThrow(RangeError);
    expect(() => kernels.adaptive_avg_pool2d(s(out), 0, s(x), 0, [1, 4, 4, 3, 3])).toThrow(RangeError);
    expect(() => kernels.adaptive_avg_pool2d(s(out), 0, s(x), 0, [2 ** 40, 2 ** 40, 2 ** 40, 1, 1])).toThrow(RangeError);
  });
});
