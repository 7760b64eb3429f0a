import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { decodePng, sharedDataDir } from '@lrface/test-data';
import { size, uniform } from './helpers/random.js';
import { kernels } from '../src/native.js';

const f = Math.fround;

/**
 * PyTorch's upsample_nearest2d / upsample_bilinear2d for float tensors, element by element:
 * the source coordinate of each output pixel in float32 arithmetic as ATen computes it
 * (nearest_idx, area_pixel_compute_scale/_source_index, guard_index_and_lambda), then the
 * direct 2-D formula.
 */
function torchRef(x: ArrayLike<number>, shape: number[], oh: number, ow: number, mode: 'nearest' | 'bilinear', alignCorners = false, scaleFactor?: [number, number]) {
  const [n, c, h, w] = shape;
  const scaleOf = (inS: number, outS: number, sf?: number) => {
    if (mode === 'bilinear' && alignCorners) return outS > 1 ? f((inS - 1) / (outS - 1)) : 0;
    return sf !== undefined ? f(1 / sf) : f(inS / outS);
  };
  const nearest = (i: number, inS: number, outS: number, sf?: number) => {
    if (outS === inS) return i;
    if (outS === 2 * inS) return i >> 1;
    return Math.min(Math.floor(f(i * scaleOf(inS, outS, sf))), inS - 1);
  };
  // [index0, index1, lambda1]
  const linear = (i: number, inS: number, outS: number, sf?: number): [number, number, number] => {
    if (outS === inS) return [i, i, 0];
    const s = scaleOf(inS, outS, sf);
    let src = alignCorners ? f(s * i) : f(f(s * f(i + 0.5)) - 0.5);
    if (!alignCorners && src < 0) src = 0;
    const i0 = Math.min(Math.floor(src), inS - 1);
    const lam = Math.min(Math.max(f(src - i0), 0), 1);
    return [i0, i0 < inS - 1 ? i0 + 1 : i0, lam];
  };
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const at = (a: number, b: number) => x[(p * h + a) * w + b];
        let v: number;
        if (mode === 'nearest') v = at(nearest(i, h, oh, scaleFactor?.[0]), nearest(j, w, ow, scaleFactor?.[1]));
        else {
          const [y0, y1, ly] = linear(i, h, oh, scaleFactor?.[0]);
          const [x0, x1, lx] = linear(j, w, ow, scaleFactor?.[1]);
          v = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
        }
        out[(p * oh + i) * ow + j] = v;
      }
  return out;
}

/**
 * MATLAB imresize 'bicubic' along one axis, written from its published definition as a dense
 * matrix: contributions() with u = x/scale + 0.5*(1 - 1/scale) (1-based), kernel
 * scale*cubic(scale*t) of width 4/scale when shrinking with antialiasing, weights normalised
 * per output, out-of-range indices mirrored (0 -> 1, n+1 -> n).
 */
function matlabMatrix(inS: number, outS: number, scale: number, antialias = true): number[][] {
  const keys = (t: number) => {
    const a = Math.abs(t);
    return a <= 1 ? 1.5 * a ** 3 - 2.5 * a ** 2 + 1 : a <= 2 ? -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2 : 0;
  };
  const shrink = scale < 1 && antialias;
  const h = (t: number) => (shrink ? scale * keys(scale * t) : keys(t));
  const width = shrink ? 4 / scale : 4;
  const m = Array.from({ length: outS }, () => new Array<number>(inS).fill(0));
  for (let x = 1; x <= outS; x++) {
    const u = x / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - width / 2);
    const taps = Math.ceil(width) + 2;
    const ws: number[] = [];
    for (let k = 0; k < taps; k++) ws.push(h(u - (left + k)));
    const total = ws.reduce((a, b) => a + b, 0);
    for (let k = 0; k < taps; k++) {
      let idx = left + k; // 1-based
      while (idx < 1 || idx > inS) idx = idx < 1 ? 1 - idx : 2 * inS + 1 - idx;
      m[x - 1][idx - 1] += ws[k] / total;
    }
  }
  return m;
}

function matlabResizeRef(x: ArrayLike<number>, planes: number, h: number, w: number, oh: number, ow: number, scale: [number, number], antialias = true) {
  const mh = matlabMatrix(h, oh, scale[0], antialias);
  const mw = matlabMatrix(w, ow, scale[1], antialias);
  const out = new Float64Array(planes * oh * ow);
  for (let p = 0; p < planes; p++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let acc = 0;
        for (let a = 0; a < h; a++) {
          if (mh[i][a] === 0) continue;
          for (let b = 0; b < w; b++) acc += mh[i][a] * mw[j][b] * x[(p * h + a) * w + b];
        }
        out[(p * oh + i) * ow + j] = acc;
      }
  return out;
}

/** <f(x), y> must equal <x, grad> for the linear map f: the gradient is the exact transpose. */
function expectAdjoint(fn: (t: lr.Tensor) => lr.Tensor, shape: number[], seed: number) {
  const x = uniform(size(shape), seed);
  const xt = lr.tensor(x, shape).requiresGrad_();
  const y = fn(xt);
  const g = uniform(y.size, seed + 1);
  y.backward(lr.tensor(g, y.shape));
  const yd = y.data();
  const gx = xt.grad!.data();
  let lhs = 0;
  let rhs = 0;
  let scale = 0;
  for (let i = 0; i < g.length; i++) {
    lhs += yd[i] * g[i];
    scale += Math.abs(yd[i] * g[i]);
  }
  for (let i = 0; i < x.length; i++) rhs += x[i] * gx[i];
  expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * (scale + 1));
}

describe('upsample: nearest and bilinear (PyTorch F.interpolate)', () => {
  const cases: [number[], [number, number]][] = [
    [[1, 1, 4, 4], [8, 8]], // exactly double: nearest's shift path
    [[2, 3, 5, 7], [3, 4]], // shrink, odd sizes
    [[1, 2, 3, 2], [7, 5]],
    [[1, 1, 1, 1], [3, 2]], // 1x1 input
    [[1, 1, 6, 5], [1, 1]], // 1x1 output
    [[1, 1, 4, 6], [4, 9]], // same height: copy path
  ];
  for (const mode of ['nearest', 'bilinear'] as const)
    for (const alignCorners of mode === 'bilinear' ? [false, true] : [false])
      it(`${mode}${alignCorners ? ' alignCorners' : ''}: values and gradient`, () => {
        for (const [k, [shape, out]] of cases.entries()) {
          const x = uniform(size(shape), 1 + k);
          const y = lr.upsample(lr.tensor(x, shape), { size: out, mode, alignCorners });
          expect(y.shape).toEqual([shape[0], shape[1], ...out]);
          expectClose(y.data(), torchRef(x, shape, out[0], out[1], mode, alignCorners), 1e-6, 1e-5);
          gradcheck((t) => lr.upsample(t, { size: out, mode, alignCorners }), [{ data: x, shape }]);
          expectAdjoint((t) => lr.upsample(t, { size: out, mode, alignCorners }), shape, 40 + k);
        }
      });

  it('scaleFactor: size floor(in * s), samples placed by 1/s (recompute_scale_factor off)', () => {
    for (const [k, [shape, s]] of ([[[1, 2, 3, 5], [2, 2]], [[1, 1, 5, 7], [1.5, 0.6]], [[2, 1, 4, 3], [1.1, 2.1]], [[1, 1, 100, 2], [0.29, 1]]] as [number[], [number, number]][]).entries()) {
      const x = uniform(size(shape), 10 + k);
      const oh = Math.floor(shape[2] * s[0]);
      const ow = Math.floor(shape[3] * s[1]);
      for (const mode of ['nearest', 'bilinear'] as const) {
        const y = lr.upsample(lr.tensor(x, shape), { scaleFactor: s, mode });
        expect(y.shape).toEqual([shape[0], shape[1], oh, ow]);
        expectClose(y.data(), torchRef(x, shape, oh, ow, mode, false, s), 1e-6, 1e-5);
      }
    }
    // 100 * 0.29 is 28.999999999999996 in double: PyTorch floors it to 28
    expect(lr.upsample(lr.zeros([1, 1, 100, 1]), { scaleFactor: [0.29, 1] }).shape).toEqual([1, 1, 28, 1]);
  });

  it('nearest copies elements exactly (signed zeros, infinities, NaN), rows and pairs split over threads', () => {
    // Planes large enough that the rows are cut into chunks (606 rows of 256 in 8 chunks on two
    // threads: some start on a repeated row, which cannot copy the row before it); exactly 2x
    // (pairs), 3x and 1.5x (gathers).
    const threads = lr.numThreads();
    lr.setNumThreads(2);
    try {
      for (const [k, [shape, out]] of ([[[1, 3, 101, 128], [202, 256]], [[2, 3, 37, 41], [74, 82]], [[1, 2, 33, 20], [99, 60]], [[1, 1, 64, 30], [96, 45]]] as [number[], [number, number]][]).entries()) {
        const x = uniform(size(shape), 60 + k);
        x[0] = -0;
        x[5] = Infinity;
        x[x.length - 1] = NaN;
        const want = torchRef(x, shape, out[0], out[1], 'nearest');
        const got = lr.upsample(lr.tensor(x, shape), { size: out, mode: 'nearest' }).data();
        expect(got.length).toBe(want.length);
        for (let i = 0; i < want.length; i++) if (!Object.is(got[i], Math.fround(want[i]))) expect(`${i}: ${got[i]}`).toBe(`${i}: ${want[i]}`);
      }
    } finally {
      lr.setNumThreads(threads);
    }
  });

  it('reproduces ATen exactly where float32 and exact arithmetic differ', () => {
    const row = lr.tensor(Float32Array.from({ length: 16 }, (_, i) => i), [1, 1, 1, 16]);
    // scale = float(1/2.2) = 0.45454547; 33 * scale rounds to 15.000001 -> index 15 (exactly: 15 - 1/2.2*... -> 14)
    const near = lr.upsample(row, { scaleFactor: [1, 2.2], mode: 'nearest' }).data();
    expect(near.length).toBe(35);
    expect(near[33]).toBe(15);
    // same size (4 * 1.1 floors to 4): a copy, whatever the scale says
    const x4 = lr.tensor([[[[1, 2, 3, 4]]]]);
    expect(Array.from(lr.upsample(x4, { scaleFactor: [1, 1.1] }).data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(lr.upsample(x4, { scaleFactor: [1, 1.1], mode: 'bilinear' }).data())).toEqual([1, 2, 3, 4]);
    // exactly double (3 * 2.1 floors to 6): nearest shifts the index
    expect(Array.from(lr.upsample(lr.tensor([[[[1, 2, 3]]]]), { scaleFactor: [1, 2.1] }).data())).toEqual([1, 1, 2, 2, 3, 3]);
    // one output: the centre (non-aligned) or the first pixel (aligned)
    expect(lr.upsample(x4, { size: [1, 1], mode: 'bilinear' }).item()).toBe(2.5);
    expect(lr.upsample(x4, { size: [1, 1], mode: 'bilinear', alignCorners: true }).item()).toBe(1);
  });

  it('reads views at an offset', () => {
    const shape = [1, 3, 4, 5];
    const big = uniform(2 * size(shape), 3);
    const view = lr.narrow(lr.tensor(big, [2, 3, 4, 5]), 0, 1, 1);
    const part = big.slice(size(shape));
    expectClose(lr.upsample(view, { size: [7, 3], mode: 'bilinear' }).data(), torchRef(part, shape, 7, 3, 'bilinear'), 1e-6, 1e-5);
    expectClose(lr.upsample(view, { scaleFactor: 0.5, mode: 'bicubic' }).data(), matlabResizeRef(part, 3, 4, 5, 2, 3, [0.5, 0.5]), 1e-6, 1e-5);
  });
});

describe('upsample: bicubic (MATLAB imresize)', () => {
  it('hand-computed values: x2 up of an impulse (Keys a = -0.5 at offsets 0.25 / 0.75, mirrored edge)', () => {
    const y = lr.upsample(lr.tensor([[[[0, 1, 0, 0]]]]), { scaleFactor: [1, 2], mode: 'bicubic' });
    expect(y.shape).toEqual([1, 1, 1, 8]);
    expectClose(y.data(), [-0.09375, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375, 0], 1e-7, 0);
  });

  it('hand-computed values: x2 down of a linear ramp (antialiased kernel of width 8)', () => {
    const ramp = (n: number) => lr.tensor(Float32Array.from({ length: n }, (_, i) => i), [1, 1, 1, n]);
    // weights 0.43359375, 0.11328125, -0.03515625, -0.01171875 at distances 0.5 .. 3.5, mirrored at the borders
    const y = lr.upsample(ramp(10), { scaleFactor: [1, 0.5], mode: 'bicubic' });
    expectClose(y.data(), [0.44921875, 2.48828125, 4.5, 6.51171875, 8.55078125], 1e-6, 0);
    // away from the borders a ramp stays a ramp: output o samples input position 2*o + 0.5
    const long = lr.upsample(ramp(16), { scaleFactor: [1, 0.5], mode: 'bicubic' }).data();
    for (let o = 2; o <= 5; o++) expect(long[o]).toBeCloseTo(2 * o + 0.5, 5);
    // and x2 up places output o at (o + 0.5)/2 - 0.5
    const up = lr.upsample(ramp(16), { scaleFactor: [1, 2], mode: 'bicubic' }).data();
    for (const o of [5, 10, 17, 25]) expect(up[o]).toBeCloseTo((o + 0.5) / 2 - 0.5, 5);
  });

  it('keeps a constant image constant, shrinking or enlarging by any factor', () => {
    for (const [shape, opt] of [
      [[1, 1, 9, 9], { scaleFactor: 1 / 3 }],
      [[2, 1, 7, 5], { scaleFactor: 0.6 }],
      [[1, 2, 4, 6], { scaleFactor: 1.7 }],
      [[1, 1, 5, 5], { size: [3, 8] }],
      [[1, 1, 2, 2], { scaleFactor: 4 }],
    ] as [number[], lr.UpsampleOptions][]) {
      const y = lr.upsample(lr.full(shape, 0.7), { ...opt, mode: 'bicubic' });
      expectClose(y.data(), new Array(y.size).fill(0.7), 1e-6, 1e-6);
    }
  });

  it('matches the published imresize weight formula, written naively, shrinking (antialiased) and enlarging', () => {
    const cases: [number, number, [number, number]][] = [
      [12, 12, [0.5, 0.5]],
      [9, 12, [1 / 3, 1 / 3]],
      [16, 8, [0.25, 0.25]],
      [5, 6, [2, 2]],
      [4, 7, [3, 3]],
      [7, 7, [0.6, 0.6]],
      [6, 9, [1.5, 0.5]], // different scale per axis
      [1, 5, [3, 1]], // a single row
      [3, 3, [1, 1]], // identity
    ];
    for (const [k, [h, w, scale]] of cases.entries()) {
      const x = uniform(2 * h * w, 3 + k, 0, 1);
      const y = lr.upsample(lr.tensor(x, [1, 2, h, w]), { scaleFactor: scale, mode: 'bicubic' });
      const oh = Math.ceil(h * scale[0]);
      const ow = Math.ceil(w * scale[1]);
      expect(y.shape).toEqual([1, 2, oh, ow]);
      expectClose(y.data(), matlabResizeRef(x, 2, h, w, oh, ow, scale), 1e-6, 1e-5);
    }
    // an output size instead: scale = out / in per axis
    const x = uniform(3 * 4 * 5, 20, 0, 1);
    expectClose(lr.upsample(lr.tensor(x, [1, 3, 4, 5]), { size: [7, 2], mode: 'bicubic' }).data(), matlabResizeRef(x, 3, 4, 5, 7, 2, [7 / 4, 2 / 5]), 1e-6, 1e-5);
    // 'Antialiasing', false: the plain kernel when shrinking
    const z = uniform(12 * 12, 21, 0, 1);
    expectClose(lr.upsample(lr.tensor(z, [1, 1, 12, 12]), { scaleFactor: 0.4, mode: 'bicubic', antialias: false }).data(), matlabResizeRef(z, 1, 12, 12, 5, 5, [0.4, 0.4], false), 1e-6, 1e-5);
  });

  it('output size is ceil(in * scale), as MATLAB', () => {
    expect(lr.upsample(lr.zeros([1, 1, 7, 100]), { scaleFactor: [0.5, 0.29], mode: 'bicubic' }).shape).toEqual([1, 1, 4, 29]);
    expect(lr.upsample(lr.zeros([1, 1, 9, 12]), { scaleFactor: 1 / 3, mode: 'bicubic' }).shape).toEqual([1, 1, 3, 4]);
  });

  it('gradient is the transposed resampling', () => {
    gradcheck((t) => lr.upsample(t, { scaleFactor: 0.5, mode: 'bicubic' }), [{ data: uniform(64, 4), shape: [1, 1, 8, 8] }]);
    gradcheck((t) => lr.upsample(t, { size: [7, 5], mode: 'bicubic' }), [{ data: uniform(2 * 12, 5), shape: [1, 2, 4, 3] }]);
    gradcheck((t) => lr.upsample(t, { scaleFactor: [3, 1 / 3], mode: 'bicubic' }), [{ data: uniform(2 * 9, 6), shape: [2, 1, 1, 9] }]);
    expectAdjoint((t) => lr.upsample(t, { scaleFactor: 0.25, mode: 'bicubic' }), [2, 2, 16, 12], 7);
    expectAdjoint((t) => lr.upsample(t, { scaleFactor: 3, mode: 'bicubic' }), [1, 3, 5, 4], 8);
    // a retained graph reuses its transposed tables
    const x = lr.tensor(uniform(36, 9), [1, 1, 6, 6]).requiresGrad_();
    const y = lr.upsample(x, { scaleFactor: 0.5, mode: 'bicubic' });
    y.backward(lr.ones(y.shape), { retainGraph: true });
    const first = Array.from(x.grad!.data());
    y.backward(lr.ones(y.shape));
    expectClose(x.grad!.data(), first.map((v) => 2 * v), 1e-6, 1e-5);
  });

  const set5 = `${sharedDataDir}set5/`;
  it.skipIf(!existsSync(set5))('reproduces the published Set5 bicubic PSNR (33.66 / 30.39 / 28.42 dB)', () => {
    const names = ['baby', 'bird', 'butterfly', 'head', 'woman'];
    const published: Record<number, number> = { 2: 33.66, 3: 30.39, 4: 28.42 };
    for (const scale of [2, 3, 4]) {
      let total = 0;
      for (const name of names) {
        const img = decodePng(`${set5}${name}_GT.png`);
        // modcrop to a multiple of the scale, then Y as MATLAB rgb2ycbcr on uint8 (rounded)
        const h = img.height - (img.height % scale);
        const w = img.width - (img.width % scale);
        const y = new Float32Array(h * w);
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++) {
            const o = (i * img.width + j) * img.channels;
            y[i * w + j] = Math.round(16 + (65.481 * img.data[o] + 128.553 * img.data[o + 1] + 24.966 * img.data[o + 2]) / 255) / 255;
          }
        lr.scope(() => {
          const hr = lr.tensor(y, [1, 1, h, w]);
          const small = lr.upsample(hr, { scaleFactor: 1 / scale, mode: 'bicubic' });
          const back = lr.upsample(small, { scaleFactor: scale, mode: 'bicubic' }).data();
          let se = 0;
          let count = 0;
          for (let i = scale; i < h - scale; i++)
            for (let j = scale; j < w - scale; j++) {
              const d = (back[i * w + j] - y[i * w + j]) * 255;
              se += d * d;
              count++;
            }
          total += 10 * Math.log10((255 * 255) / (se / count));
        });
      }
      expect(Math.abs(total / names.length - published[scale])).toBeLessThan(0.05);
    }
  });

  it('rejects bad arguments, naming them', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    expectError(() => lr.upsample(x, { mode: 'bilinear' }), TypeError, 'upsample', "'size'");
    expectError(() => lr.upsample(x, { size: 2, scaleFactor: 2 }), TypeError, "'size'");
    expectError(() => lr.upsample(x, { size: 0 }), RangeError, "'size'");
    expectError(() => lr.upsample(x, { size: [2, 2, 2] }), RangeError, "'size'");
    expectError(() => lr.upsample(x, { size: 2.5 }), TypeError, "'size'");
    expectError(() => lr.upsample(x, { scaleFactor: -1 }), RangeError, "'scaleFactor'");
    expectError(() => lr.upsample(x, { scaleFactor: Infinity }), RangeError, "'scaleFactor'");
    expectError(() => lr.upsample(x, { scaleFactor: [2, 2, 2] }), RangeError, "'scaleFactor'");
    expectError(() => lr.upsample(x, { scaleFactor: '2' as unknown as number }), TypeError, "'scaleFactor'");
    expectError(() => lr.upsample(x, { scaleFactor: 0.1 }), RangeError, "'scaleFactor'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, mode: 'area' as lr.UpsampleMode }), RangeError, "'mode'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, alignCorners: true }), RangeError, "'alignCorners'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, mode: 'bicubic', alignCorners: true }), RangeError, "'alignCorners'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: 1 as unknown as boolean }), TypeError, "'alignCorners'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, mode: 'bilinear', antialias: true }), RangeError, "'antialias'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, recompute: true } as lr.UpsampleOptions), TypeError, "'recompute'");
    expectError(() => lr.upsample(lr.zeros([4, 4]), { scaleFactor: 2 }), RangeError, "'x'");
    expectError(() => lr.upsample(lr.zeros([1, 1, 0, 4]), { scaleFactor: 2 }), RangeError, "'x'");
    expectError(() => lr.upsample(lr.zeros([1, 1, 4, 4], 'uint8'), { scaleFactor: 2 }), TypeError, "'x'");
  });
});

describe('pixelShuffle / pixelUnshuffle', () => {
  function shuffleRef(x: ArrayLike<number>, n: number, c: number, r: number, h: number, w: number) {
    const out = new Float64Array(x.length);
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++)
        for (let i = 0; i < h * r; i++)
          for (let j = 0; j < w * r; j++) {
            const src = ((b * c * r * r + ch * r * r + (i % r) * r + (j % r)) * h + Math.floor(i / r)) * w + Math.floor(j / r);
            out[((b * c + ch) * h * r + i) * w * r + j] = x[src];
          }
    return out;
  }

  it('rearranges as the definition, and each inverts the other', () => {
    for (const [n, c, r, h, w] of [[2, 3, 2, 3, 4], [1, 1, 3, 1, 1], [1, 2, 1, 2, 3], [3, 1, 4, 2, 1]]) {
      const x = uniform(n * c * r * r * h * w, 6 + r);
      const y = lr.pixelShuffle(lr.tensor(x, [n, c * r * r, h, w]), r);
      expect(y.shape).toEqual([n, c, h * r, w * r]);
      expectClose(y.data(), shuffleRef(x, n, c, r, h, w), 0, 0);
      const back = lr.pixelUnshuffle(y, r);
      expect(back.shape).toEqual([n, c * r * r, h, w]);
      expect(Array.from(back.data())).toEqual(Array.from(x));
      const z = uniform(n * c * r * r * h * w, 60 + r);
      expect(Array.from(lr.pixelShuffle(lr.pixelUnshuffle(lr.tensor(z, [n, c, h * r, w * r]), r), r).data())).toEqual(Array.from(z));
    }
  });

  it('gradients match finite differences and are the inverse rearrangement', () => {
    gradcheck((t) => lr.pixelShuffle(t, 2), [{ data: uniform(2 * 8 * 2 * 3, 7), shape: [2, 8, 2, 3] }]);
    gradcheck((t) => lr.pixelUnshuffle(t, 2), [{ data: uniform(1 * 2 * 4 * 6, 8), shape: [1, 2, 4, 6] }]);
    expectAdjoint((t) => lr.pixelShuffle(t, 3), [1, 9, 2, 2], 9);
    expectAdjoint((t) => lr.pixelUnshuffle(t, 2), [2, 1, 4, 2], 10);
  });

  it('reads views at an offset', () => {
    const big = uniform(2 * 8 * 3 * 2, 11);
    const view = lr.narrow(lr.tensor(big, [2, 8, 3, 2]), 0, 1, 1);
    expectClose(lr.pixelShuffle(view, 2).data(), shuffleRef(big.slice(48), 1, 2, 2, 3, 2), 0, 0);
  });

  it('rejects bad arguments, naming them', () => {
    expectError(() => lr.pixelShuffle(lr.zeros([1, 3, 2, 2]), 2), RangeError, 'pixel_shuffle', "'factor'");
    expectError(() => lr.pixelShuffle(lr.zeros([1, 4, 2, 2]), 0), RangeError, "'factor'");
    expectError(() => lr.pixelShuffle(lr.zeros([1, 4, 2, 2]), 1.5), TypeError, "'factor'");
    expectError(() => lr.pixelShuffle(lr.zeros([4, 2, 2]), 2), RangeError, "'x'");
    expectError(() => lr.pixelUnshuffle(lr.zeros([1, 1, 3, 4]), 2), RangeError, 'pixel_unshuffle', "'factor'");
    expectError(() => lr.pixelUnshuffle(lr.zeros([1, 1, 4, 4]), 0), RangeError, "'factor'");
    expectError(() => lr.pixelUnshuffle(lr.zeros([1, 1, 4, 4], 'int32'), 2), TypeError, "'x'");
  });
});

describe('gaussianBlur', () => {
  /** Direct 2-D convolution with the normalised 2-D Gaussian, the border read through `mode`. */
  function blurRef(x: ArrayLike<number>, shape: number[], sigma: number, k: number, mode: 'zeros' | 'reflect' | 'replicate') {
    const [n, c, h, w] = shape;
    const half = (k - 1) / 2;
    const g = (a: number, b: number) => Math.exp(-(a * a + b * b) / (2 * sigma * sigma));
    let norm = 0;
    for (let a = -half; a <= half; a++) for (let b = -half; b <= half; b++) norm += g(a, b);
    const from = (i: number, len: number) => {
      if (i >= 0 && i < len) return i;
      if (mode === 'zeros') return -1;
      if (mode === 'replicate') return i < 0 ? 0 : len - 1;
      return i < 0 ? -i : 2 * (len - 1) - i;
    };
    const out = new Float64Array(x.length);
    for (let p = 0; p < n * c; p++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) {
          let acc = 0;
          for (let a = -half; a <= half; a++)
            for (let b = -half; b <= half; b++) {
              const yy = from(i + a, h);
              const xx = from(j + b, w);
              if (yy >= 0 && xx >= 0) acc += (g(a, b) / norm) * x[(p * h + yy) * w + xx];
            }
          out[(p * h + i) * w + j] = acc;
        }
    return out;
  }

  it('equals a direct 2-D Gaussian convolution per channel, for each border', () => {
    const shape = [2, 2, 9, 8];
    const x = uniform(size(shape), 2);
    for (const mode of ['zeros', 'reflect', 'replicate'] as const) {
      const y = lr.gaussianBlur(lr.tensor(x, shape), { sigma: 1.2, mode });
      expect(y.shape).toEqual(shape);
      expectClose(y.data(), blurRef(x, shape, 1.2, 2 * Math.ceil(3 * 1.2) + 1, mode), 1e-6, 1e-5); // default size 9
      const z = lr.gaussianBlur(lr.tensor(x, shape), { sigma: 0.7, kernelSize: 3, mode });
      expectClose(z.data(), blurRef(x, shape, 0.7, 3, mode), 1e-6, 1e-5);
    }
    // zero padding blurs the image as a depthwise 'same' convolution: a kernel larger than the image is fine
    const small = uniform(2 * 3 * 2, 3);
    expectClose(lr.gaussianBlur(lr.tensor(small, [1, 2, 3, 2]), { sigma: 2 }).data(), blurRef(small, [1, 2, 3, 2], 2, 13, 'zeros'), 1e-6, 1e-5);
    // kernelSize 1 is the identity
    expectClose(lr.gaussianBlur(lr.tensor(x, shape), { sigma: 3, kernelSize: 1 }).data(), x, 0, 0);
  });

  it('keeps a constant image constant with reflect and replicate borders, and the kernel sums to 1', () => {
    for (const mode of ['reflect', 'replicate'] as const) {
      const flat = lr.gaussianBlur(lr.full([1, 1, 6, 6], 3), { sigma: 1, mode });
      expectClose(flat.data(), new Array(36).fill(3), 1e-5, 1e-6);
    }
    const k = lr.gaussianKernel1d(7, 1.3);
    expect(k.length).toBe(7);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(k[0]).toBeCloseTo(k[6], 15);
  });

  it('gradient matches finite differences for each border', () => {
    for (const mode of ['zeros', 'reflect', 'replicate'] as const) {
      gradcheck((t) => lr.gaussianBlur(t, { sigma: 0.8, kernelSize: 3, mode }), [{ data: uniform(2 * 25, 3), shape: [1, 2, 5, 5] }]);
      expectAdjoint((t) => lr.gaussianBlur(t, { sigma: 1.1, mode }), [2, 1, 7, 8], 12);
    }
  });

  it('reads views at an offset', () => {
    const shape = [1, 2, 5, 6];
    const big = uniform(3 * size(shape), 13);
    const view = lr.narrow(lr.tensor(big, [3, 2, 5, 6]), 0, 2, 1);
    expectClose(lr.gaussianBlur(view, { sigma: 0.9, mode: 'reflect' }).data(), blurRef(big.slice(2 * size(shape)), shape, 0.9, 7, 'reflect'), 1e-6, 1e-5);
  });

  it('rejects bad arguments, naming them', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    expectError(() => lr.gaussianBlur(x, { sigma: 0 }), RangeError, 'gaussian_blur', "'sigma'");
    expectError(() => lr.gaussianBlur(x, { sigma: Number.NaN }), RangeError, "'sigma'");
    expectError(() => lr.gaussianBlur(x, {} as lr.GaussianBlurOptions), TypeError, "'sigma'");
    expectError(() => lr.gaussianBlur(x, { sigma: 1, kernelSize: 4 }), RangeError, "'kernelSize'");
    expectError(() => lr.gaussianBlur(x, { sigma: 1, kernelSize: 0 }), RangeError, "'kernelSize'");
    expectError(() => lr.gaussianBlur(x, { sigma: 1, kernelSize: 2.5 }), TypeError, "'kernelSize'");
    expectError(() => lr.gaussianBlur(x, { sigma: 1, kernelSize: 9, mode: 'reflect' }), RangeError, "'kernelSize'");
    expectError(() => lr.gaussianBlur(x, { sigma: 2, mode: 'reflect' }), RangeError, "'sigma'");
    expectError(() => lr.gaussianBlur(x, { sigma: 1, mode: 'circular' as 'zeros' }), RangeError, "'mode'");
    expectError(() => lr.gaussianBlur(x, { sigma: 1, radius: 2 } as lr.GaussianBlurOptions), TypeError, "'radius'");
    expectError(() => lr.gaussianBlur(lr.zeros([4, 4]), { sigma: 1 }), RangeError, "'x'");
    expectError(() => lr.gaussianBlur(lr.zeros([1, 1, 0, 4]), { sigma: 1 }), RangeError, "'x'");
    expectError(() => lr.gaussianBlur(lr.zeros([1, 1, 4, 4], 'int32'), { sigma: 1 }), TypeError, "'x'");
  });
});

describe('resampling kernels re-check their arguments natively', () => {
  it('throws RangeError instead of reading out of bounds', () => {
    const s = (t: lr.Tensor) => t._storage('test');
    const x = lr.zeros([1, 1, 2, 2]);
    const out = lr.zeros([1, 1, 2, 2]);
    const id = [0, 1];
    const one = [1, 1];
    expect(() => kernels.resample2d(s(out), 0, s(x), 0, [1, 2, 2, 2, 2, 1, 1], [0, 2], one, id, one)).toThrow(RangeError); // index past the input
    expect(() => kernels.resample2d(s(out), 0, s(x), 0, [1, 2, 2, 2, 2, 1, 1], [0], [1], id, one)).toThrow(RangeError); // short table
    expect(() => kernels.resample2d(s(out), 0, s(x), 0, [1, 2, 2, 3, 2, 1, 1], [0, 1, 1], [1, 1, 1], id, one)).toThrow(RangeError); // output too small
    expect(() => kernels.pixel_shuffle(s(out), 0, s(x), 0, [1, 1, 2, 2, 2], false)).toThrow(RangeError);
  });
});
