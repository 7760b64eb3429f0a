import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { rng, size, uniform } from './helpers/random.js';

/** Distinct values so max pooling has no ties (finite differences stay valid). */
function distinct(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const perm = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
  return Float32Array.from(perm, (p) => p / n - 0.5);
}

interface PoolCase { shape: number[]; k: [number, number]; s?: [number, number]; p?: [number, number]; d?: [number, number]; ceil?: boolean }

function outLen(n: number, k: number, s: number, p: number, d: number, ceil: boolean) {
  const span = n + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}

function poolRef(x: Float32Array, c: PoolCase, kind: 'max' | 'avg', includePad = true) {
  const [n, ch, h, w] = c.shape;
  const [kh, kw] = c.k;
  const [sh, sw] = c.s ?? c.k;
  const [ph, pw] = c.p ?? [0, 0];
  const [dh, dw] = c.d ?? [1, 1];
  const oh = outLen(h, kh, sh, ph, dh, !!c.ceil), ow = outLen(w, kw, sw, pw, dw, !!c.ceil);
  const out = new Float64Array(n * ch * oh * ow);
  for (let pl = 0; pl < n * ch; pl++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let best = -Infinity, sum = 0, cnt = 0;
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const iy = y * sh - ph + i * dh, ix = xx * sw - pw + j * dw;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const v = x[(pl * h + iy) * w + ix];
            best = Math.max(best, v);
            sum += v;
            cnt++;
          }
        let div = cnt;
        if (includePad) {
          const y0 = y * sh - ph, x0 = xx * sw - pw;
          div = (Math.min(y0 + kh, h + ph) - y0) * (Math.min(x0 + kw, w + pw) - x0);
        }
        out[(pl * oh + y) * ow + xx] = kind === 'max' ? best : sum / div;
      }
  return { out, shape: [n, ch, oh, ow] };
}

const cases: PoolCase[] = [
  { shape: [1, 1, 4, 4], k: [2, 2] },
  { shape: [2, 3, 7, 5], k: [3, 2], s: [2, 1] },
  { shape: [1, 2, 7, 7], k: [3, 3], s: [2, 2], p: [1, 1] },
  { shape: [1, 1, 8, 9], k: [2, 2], s: [3, 3] }, // stride > kernel
  { shape: [2, 1, 7, 6], k: [3, 3], s: [2, 2], ceil: true },
  { shape: [1, 2, 9, 9], k: [2, 3], s: [1, 2], d: [2, 2] },
  { shape: [1, 1, 1, 1], k: [1, 1] },
];

describe('maxPool2d', () => {
  it('matches the naive reference', () => {
    for (const [i, c] of cases.entries()) {
      const x = distinct(size(c.shape), i);
      const y = lr.maxPool2d(lr.tensor(x, c.shape), { kernelSize: c.k, stride: c.s, padding: c.p, dilation: c.d, ceilMode: c.ceil });
      const ref = poolRef(x, c, 'max');
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.data(), ref.out, 0, 0);
    }
  });
  it('gradient matches finite differences', () => {
    for (const [i, c] of cases.entries())
      gradcheck((x) => lr.maxPool2d(x, { kernelSize: c.k, stride: c.s, padding: c.p, dilation: c.d, ceilMode: c.ceil }), [{ data: distinct(size(c.shape), 10 + i), shape: c.shape }], { eps: 1e-3 });
  });
  it('rejects bad options', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    expectError(() => lr.maxPool2d(x, { kernelSize: 0 }), RangeError, 'max_pool2d', "'kernelSize'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 2, padding: 2 }), RangeError, "'padding'");
    expectError(() => lr.maxPool2d(x, { kernelSize: 5 }), RangeError, "'kernelSize'");
    expectError(() => lr.maxPool2d(lr.zeros([4, 4]), { kernelSize: 2 }), RangeError, "'x'");
    expectError(() => lr.maxPool2d(x, {} as lr.MaxPool2dOptions), TypeError, "'kernelSize'");
  });
});

describe('avgPool2d', () => {
  it('matches the naive reference with and without counting padding', () => {
    for (const [i, c] of cases.entries()) {
      if (c.d) continue;
      for (const countIncludePad of [true, false]) {
        const x = uniform(size(c.shape), 20 + i);
        const y = lr.avgPool2d(lr.tensor(x, c.shape), { kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil, countIncludePad });
        const ref = poolRef(x, c, 'avg', countIncludePad);
        expect(y.shape).toEqual(ref.shape);
        expectClose(y.data(), ref.out, 1e-6, 1e-5);
      }
    }
  });
  it('gradient matches finite differences', () => {
    for (const [i, c] of cases.entries())
      if (!c.d) gradcheck((x) => lr.avgPool2d(x, { kernelSize: c.k, stride: c.s, padding: c.p, ceilMode: c.ceil, countIncludePad: i % 2 === 0 }), [{ data: uniform(size(c.shape), 30 + i), shape: c.shape }]);
  });
});

describe('adaptiveAvgPool2d / globalAvgPool2d', () => {
  it('uses PyTorch windows', () => {
    for (const [shape, out] of [[[1, 2, 7, 5], [3, 2]], [[2, 1, 4, 4], [4, 4]], [[1, 1, 5, 9], [2, 4]], [[1, 3, 3, 3], [5, 5]]] as [number[], number[]][]) {
      const x = uniform(size(shape), 5);
      const y = lr.adaptiveAvgPool2d(lr.tensor(x, shape), out);
      const [n, c, h, w] = shape;
      const ref: number[] = [];
      for (let p = 0; p < n * c; p++)
        for (let i = 0; i < out[0]; i++)
          for (let j = 0; j < out[1]; j++) {
            const y0 = Math.floor((i * h) / out[0]), y1 = Math.ceil(((i + 1) * h) / out[0]);
            const x0 = Math.floor((j * w) / out[1]), x1 = Math.ceil(((j + 1) * w) / out[1]);
            let s = 0;
            for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += x[(p * h + yy) * w + xx];
            ref.push(s / ((y1 - y0) * (x1 - x0)));
          }
      expectClose(y.data(), ref, 1e-6, 1e-5);
      gradcheck((t) => lr.adaptiveAvgPool2d(t, out), [{ data: x, shape }]);
    }
    const g = lr.globalAvgPool2d(lr.tensor([[[[1, 2], [3, 6]]]]));
    expect(g.shape).toEqual([1, 1, 1, 1]);
    expect(g.item()).toBe(3);
    expectError(() => lr.adaptiveAvgPool2d(lr.zeros([1, 1, 2, 2]), [0, 1]), RangeError, "'outputSize'");
  });
});
