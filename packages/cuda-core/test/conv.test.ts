import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

interface Case {
  n: number; c: number; h: number; w: number; o: number; kh: number; kw: number;
  stride?: [number, number]; padding?: number[]; dilation?: [number, number]; groups?: number; bias?: boolean;
}

function pads(p: number[] | undefined): [number, number, number, number] {
  if (!p) return [0, 0, 0, 0];
  if (p.length === 2) return [p[0], p[0], p[1], p[1]];
  return p as [number, number, number, number];
}

// Direct-definition convolution, float64, independent of the im2col kernels.
function conv2dRef(x: Float32Array, w: Float32Array, b: Float32Array | null, k: Case) {
  const [sh, sw] = k.stride ?? [1, 1];
  const [dh, dw] = k.dilation ?? [1, 1];
  const [pt, pb, pl, pr] = pads(k.padding);
  const g = k.groups ?? 1;
  const cg = k.c / g, og = k.o / g;
  const oh = Math.floor((k.h + pt + pb - dh * (k.kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((k.w + pl + pr - dw * (k.kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(k.n * k.o * oh * ow);
  for (let n = 0; n < k.n; n++)
    for (let o = 0; o < k.o; o++) {
      const gr = Math.floor(o / og);
      for (let y = 0; y < oh; y++)
        for (let xo = 0; xo < ow; xo++) {
          let acc = b ? b[o] : 0;
          for (let ci = 0; ci < cg; ci++)
            for (let i = 0; i < k.kh; i++)
              for (let j = 0; j < k.kw; j++) {
                const iy = y * sh - pt + i * dh;
                const ix = xo * sw - pl + j * dw;
                if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                acc += x[((n * k.c + gr * cg + ci) * k.h + iy) * k.w + ix] * w[((o * cg + ci) * k.kh + i) * k.kw + j];
              }
          out[((n * k.o + o) * oh + y) * ow + xo] = acc;
        }
    }
  return { out, shape: [k.n, k.o, oh, ow] };
}

// Transposed convolution by its definition: every input pixel scatters a weighted kernel.
function convT2dRef(x: Float32Array, w: Float32Array, b: Float32Array | null, k: Case & { outputPadding?: [number, number] }) {
  const [sh, sw] = k.stride ?? [1, 1];
  const [dh, dw] = k.dilation ?? [1, 1];
  const [pt, pb, pl, pr] = pads(k.padding);
  const [oph, opw] = k.outputPadding ?? [0, 0];
  const g = k.groups ?? 1;
  const cin = k.c, cing = cin / g, coutg = k.o / g;
  const oh = (k.h - 1) * sh - pt - pb + dh * (k.kh - 1) + oph + 1;
  const ow = (k.w - 1) * sw - pl - pr + dw * (k.kw - 1) + opw + 1;
  const out = new Float64Array(k.n * k.o * oh * ow);
  for (let n = 0; n < k.n; n++)
    for (let ci = 0; ci < cin; ci++) {
      const gr = Math.floor(ci / cing);
      for (let y = 0; y < k.h; y++)
        for (let xx = 0; xx < k.w; xx++) {
          const v = x[((n * cin + ci) * k.h + y) * k.w + xx];
          for (let co = 0; co < coutg; co++)
            for (let i = 0; i < k.kh; i++)
              for (let j = 0; j < k.kw; j++) {
                const oy = y * sh - pt + i * dh;
                const ox = xx * sw - pl + j * dw;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                out[((n * k.o + gr * coutg + co) * oh + oy) * ow + ox] += v * w[((ci * coutg + co) * k.kh + i) * k.kw + j];
              }
        }
    }
  if (b) for (let n = 0; n < k.n; n++) for (let co = 0; co < k.o; co++) for (let p = 0; p < oh * ow; p++) out[(n * k.o + co) * oh * ow + p] += b[co];
  return { out, shape: [k.n, k.o, oh, ow] };
}

const cases: Case[] = [
  { n: 1, c: 1, h: 5, w: 5, o: 1, kh: 3, kw: 3 },
  { n: 2, c: 3, h: 7, w: 6, o: 4, kh: 3, kw: 3, padding: [1, 1], bias: true },
  { n: 1, c: 2, h: 9, w: 8, o: 3, kh: 3, kw: 2, stride: [2, 3], padding: [1, 0, 2, 1], bias: true },
  { n: 2, c: 2, h: 7, w: 7, o: 2, kh: 2, kw: 2, stride: [3, 3] }, // stride > kernel
  { n: 1, c: 3, h: 9, w: 10, o: 2, kh: 3, kw: 3, dilation: [2, 3], padding: [2, 3] },
  { n: 2, c: 4, h: 6, w: 5, o: 6, kh: 3, kw: 1, groups: 2, padding: [1, 0], bias: true },
  { n: 1, c: 4, h: 6, w: 6, o: 4, kh: 3, kw: 3, groups: 4, padding: [1, 1] }, // depthwise
  { n: 3, c: 5, h: 1, w: 1, o: 2, kh: 1, kw: 1, bias: true }, // 1x1 spatial, pointwise
  { n: 2, c: 3, h: 4, w: 5, o: 7, kh: 1, kw: 1 }, // pointwise path
  { n: 1, c: 1, h: 3, w: 3, o: 2, kh: 5, kw: 5, padding: [2, 2] }, // kernel larger than input
];

function describeCase(k: Case): string {
  return JSON.stringify(k).replace(/"/g, '');
}

describe('conv2d', () => {
  it('matches the direct definition on edge cases', () => {
    for (const [i, k] of cases.entries()) {
      const xd = uniform(k.n * k.c * k.h * k.w, 10 + i);
      const wd = uniform(k.o * (k.c / (k.groups ?? 1)) * k.kh * k.kw, 20 + i);
      const bd = k.bias ? uniform(k.o, 30 + i) : null;
      const y = lr.conv2d(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, [k.o, k.c / (k.groups ?? 1), k.kh, k.kw]), bd ? lr.tensor(bd) : undefined, {
        stride: k.stride, padding: k.padding, dilation: k.dilation, groups: k.groups,
      });
      const ref = conv2dRef(xd, wd, bd, k);
      expect(y.shape, describeCase(k)).toEqual(ref.shape);
      expectClose(y.data(), ref.out, 1e-5, 1e-4);
    }
  });

  it('gradients of input, weight and bias match finite differences', () => {
    for (const [i, k] of cases.entries()) {
      const opts = { stride: k.stride, padding: k.padding, dilation: k.dilation, groups: k.groups };
      const xs = [k.n, k.c, k.h, k.w];
      const ws = [k.o, k.c / (k.groups ?? 1), k.kh, k.kw];
      const inputs = [{ data: uniform(size(xs), 40 + i), shape: xs }, { data: uniform(size(ws), 50 + i), shape: ws }, { data: uniform(k.o, 60 + i), shape: [k.o] }];
      gradcheck((x, w, b) => lr.conv2d(x, w, b, opts), inputs);
    }
  });

  it('reads inputs that are views at an offset', () => {
    const big = lr.tensor(uniform(3 * 2 * 5 * 5, 3), [3, 2, 5, 5]);
    const flat = lr.reshape(big, [6, 5, 5]);
    const w = uniform(2 * 2 * 3 * 3, 4);
    const y = lr.conv2d(lr.reshape(flat, [3, 2, 5, 5]), lr.tensor(w, [2, 2, 3, 3]));
    const ref = conv2dRef(big.data() as Float32Array, w, null, { n: 3, c: 2, h: 5, w: 5, o: 2, kh: 3, kw: 3 });
    expectClose(y.data(), ref.out, 1e-5, 1e-4);
  });

  it('large images are processed in row bands with the same result and gradients', () => {
    const k: Case = { n: 1, c: 2, h: 250, w: 300, o: 2, kh: 3, kw: 3, padding: [1, 1], bias: true };
    const xd = uniform(2 * 250 * 300, 91), wd = uniform(2 * 2 * 9, 92), bd = uniform(2, 93);
    const y = lr.conv2d(lr.tensor(xd, [1, 2, 250, 300]), lr.tensor(wd, [2, 2, 3, 3]), lr.tensor(bd), { padding: 1 });
    expectClose(y.data(), conv2dRef(xd, wd, bd, k).out, 1e-5, 1e-4);
    gradcheck((x, w) => lr.conv2d(x, w, undefined, { padding: 1 }), [{ data: xd, shape: [1, 2, 250, 300] }, { data: wd, shape: [2, 2, 3, 3] }], { maxElements: 12, atol: 2e-2 });
  });

  it('accepts a batch of zero images', () => {
    expect(lr.conv2d(lr.zeros([0, 2, 4, 4]), lr.zeros([3, 2, 3, 3])).shape).toEqual([0, 3, 2, 2]);
  });

  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([1, 4, 8, 8]);
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3])), RangeError, 'conv2d', "'weight'", 'rank 4');
    expectError(() => lr.conv2d(lr.zeros([4, 8, 8]), lr.zeros([4, 4, 3, 3])), RangeError, "'input'", 'rank 4');
    expectError(() => lr.conv2d(x, lr.zeros([4, 3, 3, 3])), RangeError, "'weight'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 2, 3, 3]), undefined, { groups: 3 }), RangeError, "'groups'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), lr.zeros([5])), RangeError, "'bias'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 9, 9])), RangeError, "'input'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), undefined, { stride: 0 }), RangeError, "'stride'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), undefined, { stride: 1.5 }), TypeError, "'stride'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), undefined, { padding: [1, 2, 3] }), RangeError, "'padding'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), undefined, { padding: -1 }), RangeError, "'padding'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), undefined, { dilation: '2' as unknown as number }), TypeError, "'dilation'");
    expectError(() => lr.conv2d(x, 'w' as unknown as lr.Tensor), TypeError, "'weight'");
    expectError(() => lr.conv2d(lr.cast(x, 'int32'), lr.zeros([4, 4, 3, 3])), TypeError, "'input'");
  });
});

describe('convTranspose2d', () => {
  const tcases: (Case & { outputPadding?: [number, number] })[] = [
    { n: 1, c: 2, h: 3, w: 3, o: 3, kh: 3, kw: 3 },
    { n: 2, c: 3, h: 4, w: 3, o: 2, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], outputPadding: [1, 1], bias: true },
    { n: 1, c: 4, h: 3, w: 5, o: 4, kh: 2, kw: 3, stride: [3, 2], groups: 2, bias: true },
    { n: 1, c: 2, h: 4, w: 4, o: 2, kh: 3, kw: 3, dilation: [2, 2], padding: [1, 2, 0, 1] },
    { n: 2, c: 3, h: 1, w: 1, o: 2, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1] },
  ];
  it('matches the scatter definition', () => {
    for (const [i, k] of tcases.entries()) {
      const g = k.groups ?? 1;
      const xd = uniform(k.n * k.c * k.h * k.w, 70 + i);
      const wd = uniform(k.c * (k.o / g) * k.kh * k.kw, 80 + i);
      const bd = k.bias ? uniform(k.o, 90 + i) : null;
      const y = lr.convTranspose2d(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, [k.c, k.o / g, k.kh, k.kw]), bd ? lr.tensor(bd) : undefined, {
        stride: k.stride, padding: k.padding, dilation: k.dilation, groups: k.groups, outputPadding: k.outputPadding,
      });
      const ref = convT2dRef(xd, wd, bd, k);
      expect(y.shape, describeCase(k)).toEqual(ref.shape);
      expectClose(y.data(), ref.out, 1e-5, 1e-4);
    }
  });
  it('gradients match finite differences', () => {
    for (const [i, k] of tcases.entries()) {
      const g = k.groups ?? 1;
      const opts = { stride: k.stride, padding: k.padding, dilation: k.dilation, groups: k.groups, outputPadding: k.outputPadding };
      const xs = [k.n, k.c, k.h, k.w];
      const ws = [k.c, k.o / g, k.kh, k.kw];
      gradcheck((x, w, b) => lr.convTranspose2d(x, w, b, opts), [{ data: uniform(size(xs), 100 + i), shape: xs }, { data: uniform(size(ws), 110 + i), shape: ws }, { data: uniform(k.o, 120 + i), shape: [k.o] }]);
    }
  });
  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([1, 4, 5, 5]);
    expectError(() => lr.convTranspose2d(x, lr.zeros([3, 2, 3, 3])), RangeError, 'conv_transpose2d', "'weight'");
    expectError(() => lr.convTranspose2d(x, lr.zeros([4, 2, 3, 3]), undefined, { stride: 2, outputPadding: 2 }), RangeError, "'outputPadding'");
    expectError(() => lr.convTranspose2d(x, lr.zeros([4, 2, 3, 3]), undefined, { groups: 3 }), RangeError, "'groups'");
    expectError(() => lr.convTranspose2d(x, lr.zeros([4, 2, 3, 3]), lr.zeros([3])), RangeError, "'bias'");
    expectError(() => lr.convTranspose2d(x, lr.zeros([4, 2, 3, 3]), undefined, { padding: 9 }), RangeError, "'padding'");
  });
});
