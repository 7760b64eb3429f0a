import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { ref } from '../src/ops/decl.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { size, uniform } from './helpers/random.js';

interface Case {
  n: number; c: number; h: number; w: number; o: number; kh: number; kw: number;
  stride?: [number, number]; padding?: number[]; dilation?: [number, number]; groups?: number; bias?: boolean;
  outputPadding?: [number, number];
}

function pads(p: number[] | undefined): [number, number, number, number] {
  if (!p) return [0, 0, 0, 0];
  if (p.length === 2) return [p[0], p[0], p[1], p[1]];
  return p as [number, number, number, number];
}

// Direct-definition convolution, float64, independent of the engine's kernels.
function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, k: Case) {
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
// Here k.c is the input (Cin) and k.o the output (Cout) channel count.
function convT2dRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, k: Case) {
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

// The weight gradient by its definition, float64: gw[o][ci][i][j] = sum over images and output
// pixels of gy * the input pixel that tap (i, j) of that output reads (ungrouped).
function convFilterGradRef(x: ArrayLike<number>, gy: ArrayLike<number>, k: Case) {
  const [sh, sw] = k.stride ?? [1, 1];
  const [dh, dw] = k.dilation ?? [1, 1];
  const [pt, , pl] = pads(k.padding);
  const [, , oh, ow] = convOutShape(k);
  const gw = new Float64Array(k.o * k.c * k.kh * k.kw);
  for (let o = 0; o < k.o; o++)
    for (let ci = 0; ci < k.c; ci++)
      for (let i = 0; i < k.kh; i++)
        for (let j = 0; j < k.kw; j++) {
          let acc = 0;
          for (let n = 0; n < k.n; n++)
            for (let y = 0; y < oh; y++) {
              const iy = y * sh - pt + i * dh;
              if (iy < 0 || iy >= k.h) continue;
              for (let xo = 0; xo < ow; xo++) {
                const ix = xo * sw - pl + j * dw;
                if (ix < 0 || ix >= k.w) continue;
                acc += gy[((n * k.o + o) * oh + y) * ow + xo] * x[((n * k.c + ci) * k.h + iy) * k.w + ix];
              }
            }
          gw[((o * k.c + ci) * k.kh + i) * k.kw + j] = acc;
        }
  return gw;
}

function convOutShape(k: Case): number[] {
  const [sh, sw] = k.stride ?? [1, 1];
  const [dh, dw] = k.dilation ?? [1, 1];
  const [pt, pb, pl, pr] = pads(k.padding);
  return [k.n, k.o, Math.floor((k.h + pt + pb - dh * (k.kh - 1) - 1) / sh) + 1, Math.floor((k.w + pl + pr - dw * (k.kw - 1) - 1) / sw) + 1];
}

// The native code picks GEMM (implicit im2col), direct loops, depthwise loops or a column
// buffer by shape; the comments name the paths each case reaches (forward / input gradient /
// weight gradient).
const cases: Case[] = [
  { n: 1, c: 1, h: 5, w: 5, o: 1, kh: 3, kw: 3 }, // direct / direct (flipped) / direct
  { n: 2, c: 3, h: 7, w: 6, o: 4, kh: 3, kw: 3, padding: [1, 1], bias: true },
  { n: 1, c: 2, h: 9, w: 8, o: 3, kh: 3, kw: 2, stride: [2, 3], padding: [1, 0, 2, 1], bias: true }, // gemm / col2im / gemm
  { n: 2, c: 2, h: 7, w: 7, o: 2, kh: 2, kw: 2, stride: [3, 3] }, // stride > kernel
  { n: 1, c: 3, h: 9, w: 10, o: 2, kh: 3, kw: 3, dilation: [2, 3], padding: [2, 3] },
  { n: 2, c: 4, h: 6, w: 5, o: 6, kh: 3, kw: 1, groups: 2, padding: [1, 0], bias: true },
  { n: 1, c: 4, h: 6, w: 6, o: 4, kh: 3, kw: 3, groups: 4, padding: [1, 1] }, // depthwise, direct
  { n: 3, c: 5, h: 1, w: 1, o: 2, kh: 1, kw: 1, bias: true }, // 1x1 spatial
  { n: 2, c: 3, h: 4, w: 5, o: 7, kh: 1, kw: 1 }, // pointwise
  { n: 1, c: 1, h: 3, w: 3, o: 2, kh: 5, kw: 5, padding: [2, 2] }, // kernel larger than the input
  { n: 2, c: 3, h: 5, w: 7, o: 32, kh: 3, kw: 3, padding: [1, 1], bias: true },
  { n: 2, c: 8, h: 6, w: 6, o: 32, kh: 3, kw: 3, padding: [0, 2, 1, 0], bias: true },
  { n: 1, c: 8, h: 5, w: 6, o: 130, kh: 3, kw: 3, padding: [1, 1] }, // over 128 outputs: gemm filter gradient
  { n: 1, c: 32, h: 5, w: 6, o: 4, kh: 3, kw: 3, padding: [1, 1] }, // filter gradient by inputs
  { n: 2, c: 4, h: 9, w: 9, o: 30, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], bias: true }, // strided: col2im
  { n: 2, c: 3, h: 8, w: 7, o: 6, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], groups: 3, bias: true }, // depthwise x2, strided
  { n: 1, c: 2, h: 6, w: 5, o: 4, kh: 3, kw: 3, padding: [0, 1, 2, 0], groups: 2 }, // depthwise x2, direct
  { n: 1, c: 2, h: 3, w: 70, o: 3, kh: 1, kw: 3, padding: [0, 1] }, // several vector segments per row, partial last
  { n: 1, c: 2, h: 4, w: 4, o: 3, kh: 1, kw: 1, padding: [1, 1] }, // padding beyond the kernel (negative flipped padding)
  { n: 1, c: 2, h: 4, w: 5, o: 2, kh: 3, kw: 3, padding: [3, 3] },
  { n: 1, c: 2, h: 11, w: 10, o: 3, kh: 3, kw: 3, stride: [2, 1], dilation: [2, 2], padding: [1, 2] }, // direct / col2im / direct
  { n: 1, c: 4, h: 5, w: 5, o: 52, kh: 3, kw: 3, groups: 2, padding: [1, 1], bias: true }, // direct per group
  { n: 1, c: 16, h: 4, w: 4, o: 52, kh: 3, kw: 3, groups: 2, padding: [1, 1] }, // direct per group, gemm filter gradient
  { n: 1, c: 6, h: 5, w: 9, o: 72, kh: 3, kw: 3, groups: 2, padding: [1, 1], bias: true }, // gemm per group (strips span rows)
  // Small output planes of several images (over 32 outputs and 16 taps, so not direct): one GEMM
  // whose columns run across images.
  { n: 3, c: 20, h: 3, w: 2, o: 40, kh: 1, kw: 1, bias: true }, // 1x1: whole images as runs, a strip spans all 3
  { n: 4, c: 6, h: 4, w: 4, o: 36, kh: 3, kw: 3, padding: [1, 1], bias: true }, // padded rows, strips cross images
  { n: 5, c: 7, h: 7, w: 1, o: 34, kh: 3, kw: 1, padding: [1, 0] }, // one pixel per row: a run per column
  { n: 3, c: 4, h: 7, w: 6, o: 30, kh: 3, kw: 3, stride: [2, 2], dilation: [1, 2], padding: [1, 2], groups: 2, bias: true }, // per group, strided
  { n: 11, c: 3, h: 19, w: 20, o: 34, kh: 3, kw: 3, padding: [1, 1], bias: true }, // 4096 columns per GEMM: 10 images, then 1
  { n: 2, c: 3, h: 22, w: 21, o: 40, kh: 3, kw: 3, padding: [1, 1], bias: true }, // 462 pixels: a GEMM per image again
  // Rows of whole 32-pixel segments (or 16 pixels), over 32 outputs: direct loops.
  { n: 1, c: 5, h: 6, w: 16, o: 40, kh: 3, kw: 3, padding: [1, 1], bias: true },
  { n: 2, c: 4, h: 21, w: 32, o: 37, kh: 3, kw: 3, padding: [1, 1] },
  { n: 1, c: 3, h: 5, w: 64, o: 40, kh: 3, kw: 3, padding: [1, 1], bias: true }, // two segments per row
  { n: 1, c: 2, h: 4, w: 66, o: 3, kh: 3, kw: 3 }, // valid: 64 outputs per row
];

function describeCase(k: Case): string {
  return JSON.stringify(k).replace(/"/g, '');
}

const opts = (k: Case) => ({ stride: k.stride, padding: k.padding, dilation: k.dilation, groups: k.groups });
const wShape = (k: Case) => [k.o, k.c / (k.groups ?? 1), k.kh, k.kw];

/** The micro-kernel instruction sets this CPU runs; tests switch between them. */
const isas = ['avx512', 'avx2', 'scalar'].filter((isa) => kernels.gemm_use_isa(isa) as boolean);
kernels.gemm_use_isa('auto');
afterAll(() => kernels.gemm_use_isa('auto'));

function withIsa<T>(isa: string, fn: () => T): T {
  kernels.gemm_use_isa(isa);
  try {
    return fn();
  } finally {
    kernels.gemm_use_isa('auto');
  }
}

/** Runs fn with an environment variable the native code reads at each call set (undefined: unset), then restores it. */
function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const saved = process.env[name];
  const set = (v: string | undefined) => (v === undefined ? delete process.env[name] : (process.env[name] = v));
  set(value);
  try {
    return fn();
  } finally {
    set(saved);
  }
}

/** Runs fn with LRFACE_CONV_ALGO set. */
const withAlgo = <T>(algo: string | undefined, fn: () => T): T => withEnv('LRFACE_CONV_ALGO', algo, fn);

/** How many convolutions have run the Winograd kernel so far. */
const winogradRuns = () => kernels.winograd_forward_count() as number;
/** How many weight gradients have run with output channels along the vector lanes so far. */
const byOutputsRuns = () => kernels.filter_by_outputs_count() as number;
/** How many weight gradients have run with input channels along the vector lanes so far. */
const byInputsRuns = () => kernels.filter_by_inputs_count() as number;
/** How many weight gradients have run the Winograd kernel so far. */
const winogradFilterRuns = () => kernels.winograd_backward_filter_count() as number;
/** How many convolutions have run the 1x1 kernel so far. */
const pointwiseRuns = () => kernels.pointwise_forward_count() as number;

/** Gradients of sum(conv(x, w, b) * r) for fixed random r, as flat arrays. */
function convGrads(f: (x: lr.Tensor, w: lr.Tensor, b: lr.Tensor) => lr.Tensor, xd: Float32Array, xs: number[], wd: Float32Array, ws: number[], bd: Float32Array) {
  return lr.scope(() => {
    const x = lr.tensor(xd, xs).requiresGrad_();
    const w = lr.tensor(wd, ws).requiresGrad_();
    const b = lr.tensor(bd).requiresGrad_();
    const y = f(x, w, b);
    y.backward(lr.tensor(uniform(y.size, 5), y.shape));
    return [x.grad!.data(), w.grad!.data(), b.grad!.data()].map((d) => Float32Array.from(d));
  });
}

describe('conv2d', () => {
  it('matches the direct definition on every kernel path, with every micro-kernel', () => {
    expect(isas.length).toBeGreaterThan(0);
    for (const isa of isas)
      withIsa(isa, () => {
        for (const [i, k] of cases.entries()) {
          const xd = uniform(k.n * k.c * k.h * k.w, 10 + i);
          const wd = uniform(size(wShape(k)), 20 + i);
          const bd = k.bias ? uniform(k.o, 30 + i) : null;
          lr.scope(() => {
            const y = lr.conv2d(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k));
            const ref = conv2dRef(xd, wd, bd, k);
            expect(y.shape, describeCase(k)).toEqual(ref.shape);
            expectClose(y.data(), ref.out, 1e-5, 1e-4);
          });
        }
      });
  });

  it('gradients of input, weight and bias match finite differences', () => {
    for (const [i, k] of cases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const ws = wShape(k);
      const inputs = [{ data: uniform(size(xs), 40 + i), shape: xs }, { data: uniform(size(ws), 50 + i), shape: ws }, { data: uniform(k.o, 60 + i), shape: [k.o] }];
      try {
        gradcheck((x, w, b) => lr.conv2d(x, w, b, opts(k)), inputs, { maxElements: 24 });
      } catch (err) {
        throw new Error(`${describeCase(k)}: ${(err as Error).message}`);
      }
    }
  });

  it('every micro-kernel gives the same gradients', () => {
    for (const [i, k] of cases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const args = [uniform(size(xs), 70 + i), xs, uniform(size(wShape(k)), 80 + i), wShape(k), uniform(k.o, 90 + i)] as const;
      const f = (x: lr.Tensor, w: lr.Tensor, b: lr.Tensor) => lr.conv2d(x, w, b, opts(k));
      const want = convGrads(f, ...args);
      for (const isa of isas) {
        const got = withIsa(isa, () => convGrads(f, ...args));
        got.forEach((g, j) => expectClose(g, want[j], 1e-4, 1e-4));
      }
    }
  });

  it('reads inputs and weights that are views at an offset, and differentiates through them', () => {
    const big = lr.tensor(uniform(4 * 2 * 5 * 6, 3), [4, 2, 5, 6]);
    const x = lr.narrow(big, 0, 1, 3); // images 1..3: a view starting 60 elements in
    const wBig = lr.tensor(uniform(40 * 2 * 3 * 3, 4), [40, 2, 3, 3]);
    for (const o of [3, 30]) {
      const w = lr.narrow(wBig, 0, 5, o);
      const y = lr.conv2d(x, w, undefined, { padding: 1 });
      const ref = conv2dRef(x.data(), w.data(), null, { n: 3, c: 2, h: 5, w: 6, o, kh: 3, kw: 3, padding: [1, 1] });
      expectClose(y.data(), ref.out, 1e-5, 1e-4);
    }
    gradcheck(
      (xb, wb) => lr.conv2d(lr.narrow(xb, 0, 1, 2), lr.narrow(wb, 0, 1, 3), undefined, { padding: [0, 1] }),
      [{ data: uniform(3 * 2 * 4 * 5, 5), shape: [3, 2, 4, 5] }, { data: uniform(4 * 2 * 3 * 3, 6), shape: [4, 2, 3, 3] }],
    );
  });

  it('large images are processed in bands with the same result and gradients', () => {
    const k: Case = { n: 1, c: 2, h: 250, w: 300, o: 2, kh: 3, kw: 3, padding: [1, 1], bias: true };
    const xd = uniform(2 * 250 * 300, 91), wd = uniform(2 * 2 * 9, 92), bd = uniform(2, 93);
    const y = lr.conv2d(lr.tensor(xd, [1, 2, 250, 300]), lr.tensor(wd, [2, 2, 3, 3]), lr.tensor(bd), { padding: 1 });
    expectClose(y.data(), conv2dRef(xd, wd, bd, k).out, 1e-5, 1e-4);
    gradcheck((x, w) => lr.conv2d(x, w, undefined, { padding: 1 }), [{ data: xd, shape: [1, 2, 250, 300] }, { data: wd, shape: [2, 2, 3, 3] }], { maxElements: 12, atol: 2e-2 });
  });

  it('input that no output reads (rows skipped by the stride) cannot reach the gradients', () => {
    // Odd rows lie between the strided windows; an infinity there must not leak into the
    // weight gradient through vector lanes read past the end of an even row.
    const xd = uniform(2 * 41 * 5, 1);
    for (let c = 0; c < 2; c++) for (let r = 1; r < 41; r += 2) xd[(c * 41 + r) * 5] = Infinity;
    const x = lr.tensor(xd, [1, 2, 41, 5]);
    const w = lr.tensor(uniform(3 * 2, 2), [3, 2, 1, 1]).requiresGrad_();
    const y = lr.conv2d(x, w, undefined, { stride: [2, 1] });
    expect(y.shape).toEqual([1, 3, 21, 5]);
    y.backward(lr.ones(y.shape));
    expect(Array.from(w.grad!.data()).every(Number.isFinite)).toBe(true);
  });

  it('accepts a batch of zero images', () => {
    expect(lr.conv2d(lr.zeros([0, 2, 4, 4]), lr.zeros([3, 2, 3, 3])).shape).toEqual([0, 3, 2, 2]);
    const x = lr.zeros([0, 2, 4, 4]).requiresGrad_();
    const w = lr.ones([3, 2, 3, 3]).requiresGrad_();
    lr.sum(lr.conv2d(x, w)).backward();
    expect(Array.from(w.grad!.data()).every((v) => v === 0)).toBe(true);
  });

  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([1, 4, 8, 8]);
    const w = lr.zeros([4, 4, 3, 3]);
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3])), RangeError, 'conv2d', "'weight'", 'rank 4');
    expectError(() => lr.conv2d(lr.zeros([4, 8, 8]), w), RangeError, "'input'", 'rank 4');
    expectError(() => lr.conv2d(x, lr.zeros([4, 3, 3, 3])), RangeError, "'weight'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 2, 3, 3]), undefined, { groups: 3 }), RangeError, "'groups'");
    expectError(() => lr.conv2d(x, lr.zeros([3, 2, 3, 3]), undefined, { groups: 2 }), RangeError, "'groups'", 'output channels');
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 3, 3]), undefined, { groups: 2 }), RangeError, "'weight'");
    expectError(() => lr.conv2d(x, w, lr.zeros([5])), RangeError, "'bias'");
    expectError(() => lr.conv2d(x, w, lr.zeros([4, 1])), RangeError, "'bias'", 'rank 1');
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 9, 9])), RangeError, "'input'");
    expectError(() => lr.conv2d(x, lr.zeros([4, 4, 5, 5]), undefined, { dilation: 2 }), RangeError, "'input'");
    expectError(() => lr.conv2d(lr.zeros([1, 0, 8, 8]), lr.zeros([4, 0, 3, 3])), RangeError, "'input'");
    expectError(() => lr.conv2d(x, lr.zeros([0, 4, 3, 3])), RangeError, "'weight'");
    expectError(() => lr.conv2d(x, w, undefined, { stride: 0 }), RangeError, "'stride'");
    expectError(() => lr.conv2d(x, w, undefined, { stride: 1.5 }), TypeError, "'stride'");
    expectError(() => lr.conv2d(x, w, undefined, { stride: [1, 2, 3] }), RangeError, "'stride'");
    expectError(() => lr.conv2d(x, w, undefined, { padding: [1, 2, 3] }), RangeError, "'padding'");
    expectError(() => lr.conv2d(x, w, undefined, { padding: -1 }), RangeError, "'padding'");
    expectError(() => lr.conv2d(x, w, undefined, { padding: '1' as unknown as number }), TypeError, "'padding'");
    expectError(() => lr.conv2d(x, w, undefined, { dilation: '2' as unknown as number }), TypeError, "'dilation'");
    expectError(() => lr.conv2d(x, w, undefined, { dilation: 0 }), RangeError, "'dilation'");
    expectError(() => lr.conv2d(x, w, undefined, { groups: 0 }), RangeError, "'groups'");
    expectError(() => lr.conv2d(x, w, undefined, { groups: 1.5 }), TypeError, "'groups'");
    expectError(() => lr.conv2d(x, w, undefined, { strides: 2 } as unknown as lr.Conv2dOptions), TypeError, "'strides'");
    expectError(() => lr.conv2d(x, 'w' as unknown as lr.Tensor), TypeError, "'weight'");
    expectError(() => lr.conv2d(lr.cast(x, 'int32'), w), TypeError, "'input'");
    expectError(() => lr.conv2d(x, w, lr.cast(lr.zeros([4]), 'int32')), TypeError, "'bias'");
  });
});

describe('conv2dRelu', () => {
  // The cases above plus one large enough that a single image's product is split over threads.
  const reluCases: Case[] = [...cases, { n: 1, c: 16, h: 32, w: 40, o: 64, kh: 3, kw: 3, padding: [1, 1], bias: true }];

  it('equals max(conv, 0) from the direct definition on every kernel path, and relu(conv2d) exactly', () => {
    // The GEMM and direct kernels (the Winograd kernel is tested below, against its own error bound).
    for (const isa of isas)
      withIsa(isa, () => withAlgo('gemm', () => {
        for (const [i, k] of reluCases.entries()) {
          const xd = uniform(k.n * k.c * k.h * k.w, 110 + i);
          const wd = uniform(size(wShape(k)), 120 + i);
          const bd = k.bias ? uniform(k.o, 130 + i) : null;
          lr.scope(() => {
            const args = [lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k)] as const;
            const y = lr.conv2dRelu(...args);
            const ref = conv2dRef(xd, wd, bd, k);
            expect(y.shape, describeCase(k)).toEqual(ref.shape);
            expectClose(y.data(), ref.out.map((v) => Math.max(v, 0)), 1e-5, 1e-4);
            expect(Array.from(y.data()), describeCase(k)).toEqual(Array.from(lr.relu(lr.conv2d(...args)).data()));
          });
        }
      }));
  });

  it('gradients equal those of relu(conv2d) on every kernel path', () => {
    for (const [i, k] of reluCases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const args = [uniform(size(xs), 140 + i), xs, uniform(size(wShape(k)), 150 + i), wShape(k), uniform(k.o, 160 + i)] as const;
      const want = convGrads((x, w, b) => lr.relu(lr.conv2d(x, w, b, opts(k))), ...args);
      const got = convGrads((x, w, b) => lr.conv2dRelu(x, w, b, opts(k)), ...args);
      got.forEach((g, j) => expectClose(g, want[j], 1e-6, 1e-5));
    }
  });

  it('gradients match finite differences', () => {
    const k = cases[1];
    const xs = [k.n, k.c, k.h, k.w];
    gradcheck((x, w, b) => lr.conv2dRelu(x, w, b, opts(k)), [{ data: uniform(size(xs), 170), shape: xs }, { data: uniform(size(wShape(k)), 171), shape: wShape(k) }, { data: uniform(k.o, 172), shape: [k.o] }], { maxElements: 24 });
  });

  it('passes NaN through as relu does (to 0)', () => {
    const y = lr.conv2dRelu(lr.tensor([[[[NaN, 1]]]]), lr.tensor([[[[1]]]]), lr.tensor([-2]));
    expect(Array.from(y.data())).toEqual(Array.from(lr.relu(lr.tensor([NaN, -1])).data()));
  });

  it('rejects bad arguments naming the op and them', () => {
    const x = lr.zeros([1, 4, 8, 8]);
    const w = lr.zeros([4, 4, 3, 3]);
    expectError(() => lr.conv2dRelu(x, lr.zeros([4, 4, 3])), RangeError, 'conv2d_relu', "'weight'", 'rank 4');
    expectError(() => lr.conv2dRelu(lr.zeros([4, 8, 8]), w), RangeError, 'conv2d_relu', "'input'");
    expectError(() => lr.conv2dRelu(x, w, lr.zeros([5])), RangeError, 'conv2d_relu', "'bias'");
    expectError(() => lr.conv2dRelu(x, lr.zeros([4, 2, 3, 3]), undefined, { groups: 3 }), RangeError, 'conv2d_relu', "'groups'");
    expectError(() => lr.conv2dRelu(x, w, undefined, { stride: 0 }), RangeError, 'conv2d_relu', "'stride'");
    expectError(() => lr.conv2dRelu(lr.zeros([1, 4, 8, 8], 'int32'), w), TypeError, 'conv2d_relu', "'input'");
    expectError(() => lr.conv2dRelu(x, 'w' as unknown as lr.Tensor), TypeError, 'conv2d_relu', "'weight'");
  });
});

/**
 * conv2d and conv2dRelu on `cases` forced through the Winograd kernel, against the float64
 * definition at every ISA, within `bound` of the largest output (seeds from `seed`).
 */
function expectWinogradForward(cases: Case[], seed: number, bound: (ref: Float64Array) => number): void {
  for (const [i, k] of cases.entries()) {
    const xd = uniform(k.n * k.c * k.h * k.w, seed + i);
    const wd = uniform(size(wShape(k)), seed + 10 + i);
    const bd = k.bias ? uniform(k.o, seed + 20 + i) : null;
    const ref = conv2dRef(xd, wd, bd, k);
    const atol = bound(ref.out);
    for (const isa of isas)
      withIsa(isa, () => withAlgo('winograd', () => lr.scope(() => {
        const args = [lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k)] as const;
        const runs = winogradRuns();
        const y = lr.conv2d(...args);
        const yr = lr.conv2dRelu(...args);
        expect(winogradRuns() - runs, `${isa} ${describeCase(k)}`).toBe(2);
        expect(y.shape).toEqual(ref.shape);
        expectClose(y.data(), ref.out, atol, 1e-4);
        expectClose(yr.data(), ref.out.map((v) => Math.max(v, 0)), atol, 1e-4);
        expect(Array.from(yr.data())).toEqual(Array.from(lr.relu(y).data()));
      })));
  }
}

/** The Winograd conv2dRelu on `cases` gives the same bits on 1, 2 and 3 threads, at every ISA. */
function expectWinogradThreadInvariant(cases: Case[], seed: number, bound: (ref: Float64Array) => number): void {
  const saved = lr.numThreads();
  try {
    for (const [i, k] of cases.entries()) {
      const xd = uniform(k.n * k.c * k.h * k.w, seed + i);
      const wd = uniform(size(wShape(k)), seed + 10 + i);
      const bd = k.bias ? uniform(k.o, seed + 20 + i) : null;
      const ref = conv2dRef(xd, wd, bd, k);
      for (const isa of isas)
        withIsa(isa, () => withAlgo('winograd', () => {
          const outputs = [1, 2, 3].map((threads) => {
            lr.setNumThreads(threads);
            return lr.scope(() => {
              const runs = winogradRuns();
              const y = lr.conv2dRelu(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k));
              expect(winogradRuns() - runs, `${isa} ${describeCase(k)}`).toBe(1);
              return y.data();
            });
          });
          expectClose(outputs[0], ref.out.map((v) => Math.max(v, 0)), bound(ref.out), 1e-4);
          expect(Array.from(outputs[1]), `${isa} ${describeCase(k)}: 2 threads`).toEqual(Array.from(outputs[0]));
          expect(Array.from(outputs[2]), `${isa} ${describeCase(k)}: 3 threads`).toEqual(Array.from(outputs[0]));
        }));
    }
  } finally {
    lr.setNumThreads(saved);
  }
}

describe('conv2dAdd and conv2dAddRelu (a residual added in the convolution)', () => {
  // One case per kernel path; each equals add (and relu) after conv2d bit for bit at every ISA,
  // the residual joining after the bias and before the ReLU whichever kernel writes the output.
  const cases: [string, number[], number[], lr.Conv2dOptions, string | undefined][] = [
    ['Winograd 3x3, rows written with the residual', [2, 16, 13, 11], [16, 16, 3, 3], { padding: 1 }, 'winograd'],
    ['Winograd 5x5', [1, 4, 12, 9], [8, 4, 5, 5], { padding: 2 }, 'winograd'],
    ['direct loops (few outputs)', [2, 3, 9, 10], [8, 3, 3, 3], { padding: 1 }, 'gemm'],
    ['GEMM over all images (small planes)', [3, 20, 5, 4], [40, 20, 3, 3], { padding: 1 }, 'gemm'],
    ['GEMM per image', [2, 20, 22, 21], [40, 20, 3, 3], { padding: 1 }, 'gemm'],
    ['1x1 kernel', [2, 24, 6, 7], [20, 24, 1, 1], {}, undefined],
    ['strided', [2, 4, 9, 9], [30, 4, 3, 3], { stride: 2, padding: 1 }, undefined],
    ['depthwise', [2, 6, 7, 7], [6, 1, 3, 3], { groups: 6, stride: 2 }, undefined],
  ];
  it('equals add(conv2d) and relu(add(conv2d)) exactly on every kernel path and instruction set', () => {
    for (const [i, [name, xs, ws, o, algo]] of cases.entries())
      for (const isa of isas)
        withIsa(isa, () => withAlgo(algo, () => lr.scope(() => {
          const x = lr.tensor(uniform(size(xs), 200 + i), xs);
          const w = lr.tensor(uniform(size(ws), 210 + i), ws);
          const b = lr.tensor(uniform(ws[0], 220 + i), [ws[0]]);
          const y = lr.conv2d(x, w, b, o);
          // Values around the conv's own scale, so that the ReLU cuts on both sides.
          const r = lr.tensor(uniform(y.size, 230 + i, -2, 2), y.shape);
          const runs = winogradRuns();
          const fused = lr.conv2dAdd(x, w, b, r, o);
          const fusedRelu = lr.conv2dAddRelu(x, w, b, r, o);
          if (algo === 'winograd') expect(winogradRuns() - runs, `${name}: the Winograd kernel ran`).toBe(2);
          const sum = lr.add(y, r);
          expect(fused.shape, name).toEqual(y.shape);
          expect(Array.from(fused.data()), `${name} ${isa}`).toEqual(Array.from(sum.data()));
          expect(Array.from(fusedRelu.data()), `${name} ${isa} + relu`).toEqual(Array.from(lr.relu(sum).data()));
        })));
  });

  it('gradients match finite differences, the residual included', () => {
    for (const [xs, ws, o] of [[[1, 2, 5, 4], [3, 2, 3, 3], { padding: 1 }], [[2, 16, 5, 6], [16, 16, 3, 3], { padding: 1 }], [[2, 3, 4, 4], [2, 3, 1, 1], {}]] as const) {
      const outShape = [xs[0], ws[0], xs[2], xs[3]];
      const [xd, wd, bd] = [uniform(size([...xs]), 240), uniform(size([...ws]), 241), uniform(ws[0], 242)];
      // The residual puts each pre-activation at least 0.3 from the ReLU's kink: r = target - conv.
      const conv = lr.conv2d(lr.tensor(xd, [...xs]), lr.tensor(wd, [...ws]), lr.tensor(bd, [ws[0]]), o).data();
      const target = uniform(conv.length, 243).map((v) => v + Math.sign(v) * 0.3);
      const inputs = [
        { data: xd, shape: [...xs] },
        { data: wd, shape: [...ws] },
        { data: bd, shape: [ws[0]] },
        { data: target.map((v, k) => v - conv[k]), shape: outShape },
      ];
      gradcheck((x, w, b, r) => lr.conv2dAdd(x, w, b, r, o), inputs, { maxElements: 24 });
      gradcheck((x, w, b, r) => lr.conv2dAddRelu(x, w, b, r, o), inputs, { maxElements: 24 });
      gradcheck((x, w, b, r) => lr.conv2dAddRelu(x, w, b, r, o), [inputs[0], { ...inputs[1], grad: false }, { ...inputs[2], grad: false }, inputs[3]], { maxElements: 24 });
    }
  });

  it('rejects a residual of another shape or type, naming the op and the argument', () => {
    const x = lr.zeros([2, 3, 6, 6]);
    const w = lr.zeros([4, 3, 3, 3]);
    expectError(() => lr.conv2dAdd(x, w, undefined, lr.zeros([2, 4, 5, 5])), RangeError, 'conv2d_add', "'residual'", '[2, 4, 4, 4]');
    expectError(() => lr.conv2dAddRelu(x, w, undefined, lr.zeros([2, 4, 6, 6]), { stride: 2 }), RangeError, 'conv2d_add_relu', "'residual'", '[2, 4, 2, 2]');
    expectError(() => lr.conv2dAdd(x, w, undefined, lr.zeros([2, 4, 6, 6], 'int32'), { padding: 1 }), TypeError, 'conv2d_add', "'residual'");
    expectError(() => lr.conv2dAdd(x, w, undefined, undefined as unknown as lr.Tensor, { padding: 1 }), TypeError, 'conv2d_add', "'residual'");
    expectError(() => lr.conv2dAdd(x, w, undefined, lr.zeros([2, 4, 6, 6]), { padding: 1, residual: 1 } as lr.Conv2dOptions), TypeError, 'conv2d_add', "'residual'");
  });
});

describe('conv2d through the Winograd F(4x4, 3x3) kernel', () => {
  // Sizes that are not multiples of the 4x4 output tile, padding 0 to 3 (3: the flipped
  // input-gradient convolution has negative padding), channel counts off the register blocks,
  // several images, blocks of tiles that span images, tile rows longer than a block; images
  // up to 6 tiles wide (input padded up front) and wider (rows padded as they are read).
  const wcases: Case[] = [
    { n: 2, c: 17, h: 13, w: 11, o: 19, kh: 3, kw: 3, padding: [1, 1], bias: true },
    { n: 1, c: 16, h: 9, w: 22, o: 33, kh: 3, kw: 3 },
    { n: 3, c: 20, h: 10, w: 7, o: 16, kh: 3, kw: 3, padding: [2, 2], bias: true },
    { n: 2, c: 18, h: 12, w: 9, o: 24, kh: 3, kw: 3, padding: [0, 2, 1, 0] },
    { n: 2, c: 18, h: 12, w: 29, o: 24, kh: 3, kw: 3, padding: [0, 2, 1, 0] },
    { n: 1, c: 16, h: 7, w: 8, o: 17, kh: 3, kw: 3, padding: [3, 3], bias: true },
    { n: 1, c: 16, h: 7, w: 30, o: 17, kh: 3, kw: 3, padding: [3, 3], bias: true },
    { n: 2, c: 16, h: 30, w: 41, o: 16, kh: 3, kw: 3, padding: [1, 1], bias: true }, // 2 x 88 tiles
    { n: 1, c: 16, h: 6, w: 450, o: 16, kh: 3, kw: 3, padding: [1, 1] }, // 113 tiles in a row
    { n: 1, c: 64, h: 12, w: 13, o: 40, kh: 3, kw: 3, padding: [1, 1], bias: true },
  ];
  // F(4x4, 3x3) rounds more than a direct sum (its transforms scale values up and cancel):
  // about 1e-6 of the largest output here, 2e-6 at 128 channels. A bound of 1e-5 of the
  // largest output still catches any wrong tap, tile or channel, which errs by O(1).
  const bound = (ref: Float64Array) => 1e-5 * ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  it('matches the direct definition, with bias and fused ReLU, with every micro-kernel', () => expectWinogradForward(wcases, 300, bound));

  it('gives the same outputs on 1, 2 and 3 threads where the tiles are cut into smaller blocks', () => {
    // 128 tiles (four blocks of 32 on two threads), 512 (sixteen of 32), 40 over two images (a
    // block of 32 and a last one of 8: one vector of columns at the widest ISA), 1024 (blocks of
    // 48 kept): each tile is transformed and summed alike whatever its block, so bit for bit.
    const tcases: Case[] = [
      { n: 8, c: 16, h: 16, w: 16, o: 24, kh: 3, kw: 3, padding: [1, 1], bias: true },
      { n: 2, c: 17, h: 64, w: 16, o: 16, kh: 3, kw: 3, padding: [1, 1] },
      { n: 2, c: 16, h: 16, w: 20, o: 19, kh: 3, kw: 3, padding: [1, 1], bias: true },
      { n: 1, c: 16, h: 128, w: 128, o: 16, kh: 3, kw: 3, padding: [1, 1] },
    ];
    expectWinogradThreadInvariant(tcases, 380, bound);
  });

  it('carries the input gradient (a flipped stride-1 convolution) and matches the transposed definition', () => {
    for (const [i, k] of wcases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const wd = uniform(size(wShape(k)), 330 + i);
      const y0 = conv2dRef(new Float32Array(size(xs)), wd, null, k);
      const gy = uniform(size(y0.shape), 340 + i);
      // conv2d's input gradient is the transposed convolution of gy by the same weights.
      const [oh, ow] = y0.shape.slice(2);
      const ref = convT2dRef(gy, wd, null, { ...k, c: k.o, o: k.c, h: oh, w: ow });
      const atol = bound(ref.out);
      for (const isa of isas)
        withIsa(isa, () => withAlgo('winograd', () => lr.scope(() => {
          const x = lr.tensor(uniform(size(xs), 350 + i), xs).requiresGrad_();
          const runs = winogradRuns();
          lr.conv2d(x, lr.tensor(wd, wShape(k)), undefined, opts(k)).backward(lr.tensor(gy, y0.shape));
          expect(winogradRuns() - runs, `${isa} ${describeCase(k)}: forward and input gradient`).toBe(2);
          expect(ref.shape).toEqual(xs);
          expectClose(x.grad!.data(), ref.out, atol, 1e-4);
        })));
    }
  });

  it('carries the weight gradient through the adjoint transforms and matches its definition', () => {
    // Plus output channel counts that leave 1, 2 (two strips of 2) or 3 vectors in the last
    // strip of the products, and input channels off every row block.
    const gcases: Case[] = [
      ...wcases,
      { n: 2, c: 5, h: 9, w: 10, o: 64, kh: 3, kw: 3, padding: [1, 1] },
      { n: 1, c: 3, h: 14, w: 9, o: 70, kh: 3, kw: 3, padding: [2, 2] },
      { n: 3, c: 9, h: 5, w: 5, o: 1, kh: 3, kw: 3 },
    ];
    for (const [i, k] of gcases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const xd = uniform(size(xs), 370 + i);
      const outShape = convOutShape(k);
      const gy = uniform(size(outShape), 380 + i);
      const ref = convFilterGradRef(xd, gy, k);
      const atol = bound(ref);
      for (const isa of isas)
        withIsa(isa, () => withAlgo('winograd', () => lr.scope(() => {
          const w = lr.tensor(uniform(size(wShape(k)), 390 + i), wShape(k)).requiresGrad_();
          const runs = winogradFilterRuns();
          lr.conv2d(lr.tensor(xd, xs), w, undefined, opts(k)).backward(lr.tensor(gy, outShape));
          expect(winogradFilterRuns() - runs, `${isa} ${describeCase(k)}: weight gradient`).toBe(1);
          expectClose(w.grad!.data(), ref, atol, 1e-4);
        })));
    }
  });

  it('gradients match finite differences', () => {
    const k: Case = { n: 2, c: 16, h: 7, w: 6, o: 17, kh: 3, kw: 3, padding: [1, 1], bias: true };
    const xs = [k.n, k.c, k.h, k.w];
    const inputs = [{ data: uniform(size(xs), 360), shape: xs }, { data: uniform(size(wShape(k)), 361), shape: wShape(k) }, { data: uniform(k.o, 362), shape: [k.o] }];
    withAlgo('winograd', () => {
      const runs = winogradRuns(), filterRuns = winogradFilterRuns();
      gradcheck((x, w, b) => lr.conv2dRelu(x, w, b, opts(k)), inputs, { maxElements: 24 });
      expect(winogradRuns()).toBeGreaterThan(runs);
      expect(winogradFilterRuns()).toBeGreaterThan(filterRuns);
    });
  });

  it('is chosen by shape unless LRFACE_CONV_ALGO says otherwise', () => {
    const run = (c: number, o: number, h: number, options: lr.Conv2dOptions = { padding: 1 }, n = 1) => {
      const runs = winogradRuns();
      lr.scope(() => lr.conv2d(lr.tensor(uniform(n * c * h * h, 1), [n, c, h, h]), lr.tensor(uniform((o * c * 9) / (options.groups ?? 1), 2), [o, c / (options.groups ?? 1), 3, 3]), undefined, options).data());
      return winogradRuns() - runs;
    };
    withAlgo(undefined, () => {
      expect(run(16, 16, 40)).toBe(1); // 10 x 10 tiles of 4 x 4 outputs
      expect(run(8, 32, 40)).toBe(0); // few input channels: the transforms outweigh the savings
      expect(run(32, 8, 40)).toBe(0); // few outputs: the direct loops
      expect(run(32, 32, 32)).toBe(1); // 64 tiles, enough channel pairs
      expect(run(16, 16, 32)).toBe(0); // 64 tiles, too few channel pairs to pay for the filter transform
      expect(run(64, 64, 16)).toBe(1); // 16 tiles of one image, which the direct loops would run slowly
      expect(run(32, 32, 16)).toBe(0); // ... with too few channel pairs
      expect(run(64, 64, 8, { padding: 1 }, 8)).toBe(0); // 32 tiles over 8 images: the batched GEMM
      expect(run(64, 64, 12)).toBe(0); // 9 tiles
      expect(run(32, 32, 40, { padding: 1, stride: 2 })).toBe(0);
      expect(run(32, 32, 40, { padding: 2, dilation: 2 })).toBe(0);
      expect(run(32, 32, 40, { padding: 1, groups: 2 })).toBe(0);
    });
    withAlgo('auto', () => expect(run(16, 16, 40)).toBe(1));
    withAlgo('gemm', () => expect(run(16, 16, 40)).toBe(0));
    withAlgo('winograd', () => {
      expect(run(1, 1, 3)).toBe(1);
      expect(run(32, 32, 40, { padding: 1, stride: 2 })).toBe(0); // does not apply: the usual kernels
    });
    withAlgo('fft', () => expectError(() => run(16, 16, 40), RangeError, 'LRFACE_CONV_ALGO', 'fft'));
  });
});

describe('conv2d through the Winograd F(4x4, 5x5) kernel', () => {
  // The transforms as written in winograd.cpp (points 0, 1, -1, 2, -2, 1/2, -1/2, infinity).
  const BT = [
    [1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
    [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
    [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
    [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
    [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
    [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
    [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
    [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1],
  ];
  const G = [
    [1, 0, 0, 0, 0],
    [-2 / 9, -2 / 9, -2 / 9, -2 / 9, -2 / 9],
    [-2 / 9, 2 / 9, -2 / 9, 2 / 9, -2 / 9],
    [1 / 90, 1 / 45, 2 / 45, 4 / 45, 8 / 45],
    [1 / 90, -1 / 45, 2 / 45, -4 / 45, 8 / 45],
    [32 / 45, 16 / 45, 8 / 45, 4 / 45, 2 / 45],
    [32 / 45, -16 / 45, 8 / 45, -4 / 45, 2 / 45],
    [0, 0, 0, 0, 1],
  ];
  const AT = [
    [1, 1, 1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
    [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
    [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 1],
  ];
  const matmul = (a: number[][], b: number[][]) => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
  const transpose = (a: number[][]) => a[0].map((_, j) => a.map((row) => row[j]));

  it('has transforms that give the 4x4 correlation of an 8x8 tile with a 5x5 filter exactly', () => {
    for (let seed = 0; seed < 5; seed++) {
      const d = Array.from({ length: 8 }, (_, i) => Array.from(uniform(8, 500 + seed * 16 + i)));
      const g = Array.from({ length: 5 }, (_, i) => Array.from(uniform(5, 600 + seed * 16 + i)));
      const u = matmul(matmul(G, g), transpose(G));
      const v = matmul(matmul(BT, d), transpose(BT));
      const y = matmul(matmul(AT, u.map((row, i) => row.map((x, j) => x * v[i][j]))), transpose(AT));
      for (let i = 0; i < 4; i++)
        for (let j = 0; j < 4; j++) {
          let direct = 0;
          for (let a = 0; a < 5; a++) for (let b = 0; b < 5; b++) direct += g[a][b] * d[i + a][j + b];
          expect(Math.abs(y[i][j] - direct), `seed ${seed} (${i}, ${j})`).toBeLessThan(1e-12);
        }
    }
  });

  // Planes off the 4x4 tile (partial tiles at the edges), padding 0 to 4 (4 and more: the
  // flipped input-gradient convolution of padding 0 and negative ones), channels off the
  // register blocks, several images, blocks of tiles that span images, tile rows longer than a
  // block; images up to 6 tiles wide (input padded up front) and wider (rows padded as read).
  const wcases: Case[] = [
    { n: 2, c: 17, h: 13, w: 11, o: 19, kh: 5, kw: 5, padding: [2, 2], bias: true },
    { n: 1, c: 16, h: 9, w: 33, o: 33, kh: 5, kw: 5 },
    { n: 3, c: 20, h: 10, w: 7, o: 16, kh: 5, kw: 5, padding: [4, 4], bias: true },
    { n: 2, c: 18, h: 12, w: 9, o: 24, kh: 5, kw: 5, padding: [0, 3, 1, 0] },
    { n: 2, c: 18, h: 12, w: 31, o: 24, kh: 5, kw: 5, padding: [0, 3, 1, 0] },
    { n: 1, c: 16, h: 9, w: 10, o: 17, kh: 5, kw: 5, padding: [5, 5], bias: true },
    { n: 2, c: 32, h: 30, w: 41, o: 32, kh: 5, kw: 5, padding: [2, 2], bias: true }, // 2 x 88 tiles
    { n: 1, c: 16, h: 8, w: 450, o: 16, kh: 5, kw: 5, padding: [2, 2] }, // 113 tiles in a row
    { n: 1, c: 64, h: 12, w: 13, o: 40, kh: 5, kw: 5, padding: [2, 2], bias: true },
  ];
  // F(4x4, 5x5)'s transforms scale values up more than F(4x4, 3x3)'s: 5e-6 of the largest
  // output at 32 channels, 6e-6 at 128. A bound of 1e-5 of it still catches any wrong tap, tile
  // or channel, which errs by O(1).
  const bound = (ref: Float64Array) => 1e-5 * ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  it('matches the direct definition, with bias and fused ReLU, with every micro-kernel', () => expectWinogradForward(wcases, 700, bound));

  it('gives the same outputs on 1, 2 and 3 threads where the tiles are cut into smaller blocks', () => {
    const tcases: Case[] = [
      { n: 8, c: 16, h: 16, w: 16, o: 24, kh: 5, kw: 5, padding: [2, 2], bias: true }, // 128 tiles
      { n: 2, c: 17, h: 64, w: 16, o: 16, kh: 5, kw: 5, padding: [2, 2] }, // 512
      { n: 2, c: 16, h: 16, w: 20, o: 19, kh: 5, kw: 5, padding: [2, 2], bias: true }, // 40
    ];
    expectWinogradThreadInvariant(tcases, 730, bound);
  });

  it('carries the input gradient (a flipped 5x5 convolution); the weight gradient stays on its usual kernels', () => {
    for (const [i, k] of wcases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const wd = uniform(size(wShape(k)), 760 + i);
      const y0 = conv2dRef(new Float32Array(size(xs)), wd, null, k);
      const gy = uniform(size(y0.shape), 770 + i);
      const [oh, ow] = y0.shape.slice(2);
      const ref = convT2dRef(gy, wd, null, { ...k, c: k.o, o: k.c, h: oh, w: ow });
      const xd = uniform(size(xs), 780 + i);
      const gwRef = convFilterGradRef(xd, gy, k);
      for (const isa of isas)
        withIsa(isa, () => withAlgo('winograd', () => lr.scope(() => {
          const x = lr.tensor(xd, xs).requiresGrad_();
          const w = lr.tensor(wd, wShape(k)).requiresGrad_();
          const runs = winogradRuns(), filterRuns = winogradFilterRuns();
          lr.conv2d(x, w, undefined, opts(k)).backward(lr.tensor(gy, y0.shape));
          expect(winogradRuns() - runs, `${isa} ${describeCase(k)}: forward and input gradient`).toBe(2);
          expect(winogradFilterRuns() - filterRuns, `${isa} ${describeCase(k)}: weight gradient`).toBe(0);
          expect(ref.shape).toEqual(xs);
          expectClose(x.grad!.data(), ref.out, bound(ref.out), 1e-4);
          expectClose(w.grad!.data(), gwRef, 1e-4 * gwRef.reduce((m, v) => Math.max(m, Math.abs(v)), 0), 1e-4);
        })));
    }
  });

  it('is chosen by shape unless LRFACE_CONV_ALGO says otherwise', () => {
    const run = (c: number, o: number, h: number, n = 1) => {
      const runs = winogradRuns();
      lr.scope(() => lr.conv2d(lr.tensor(uniform(n * c * h * h, 1), [n, c, h, h]), lr.tensor(uniform(o * c * 25, 2), [o, c, 5, 5]), undefined, { padding: 2 }).data());
      return winogradRuns() - runs;
    };
    withAlgo(undefined, () => {
      expect(run(32, 32, 128)).toBe(1); // SRINC's 5x5 branch
      expect(run(32, 32, 16)).toBe(1); // 4 x 4 tiles
      expect(run(3, 32, 40)).toBe(1);
      expect(run(32, 6, 40)).toBe(1);
      expect(run(32, 3, 40, 2)).toBe(0); // SRCNN's last layer: few outputs, the direct loops
      expect(run(32, 5, 40)).toBe(0);
      expect(run(2, 32, 40)).toBe(0); // few input channels: the transforms outweigh the savings
      expect(run(128, 128, 12)).toBe(0); // 9 tiles: too few to pay for the filter transform
    });
    withAlgo('auto', () => expect(run(32, 32, 16)).toBe(1));
    withAlgo('gemm', () => expect(run(32, 32, 40)).toBe(0));
    withAlgo('winograd', () => expect(run(1, 1, 3)).toBe(1));
  });
});

describe('conv2d weight gradient with output (or input) channels along the vector lanes', () => {
  // Strides, dilations and asymmetric padding (the taps are broadcast, so any of them), output
  // channel counts that leave 1 to 4 vectors in the last strip at every width, several bands of
  // rows per image (a band keeps gy^T near 32768 floats), images and tap counts off the blocks.
  const bcases: Case[] = [
    { n: 2, c: 3, h: 13, w: 11, o: 64, kh: 9, kw: 9, padding: [4, 4] },
    { n: 1, c: 3, h: 40, w: 37, o: 33, kh: 5, kw: 5, padding: [2, 1, 0, 2] }, // 25 rows a band
    { n: 3, c: 5, h: 9, w: 10, o: 70, kh: 3, kw: 3, stride: [2, 3], padding: [1, 1] },
    { n: 1, c: 5, h: 12, w: 11, o: 40, kh: 3, kw: 5, dilation: [2, 1], padding: [1, 2] },
    { n: 2, c: 9, h: 7, w: 8, o: 128, kh: 3, kw: 3, stride: [2, 2] },
    { n: 1, c: 33, h: 6, w: 5, o: 25, kh: 2, kw: 2, padding: [0, 1] },
    { n: 2, c: 70, h: 5, w: 5, o: 48, kh: 1, kw: 1 },
  ];

  it('matches the definition with every micro-kernel', () => {
    for (const [i, k] of bcases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const xd = uniform(size(xs), 400 + i);
      const outShape = convOutShape(k);
      const gy = uniform(size(outShape), 410 + i);
      const ref = convFilterGradRef(xd, gy, k);
      for (const isa of isas)
        withIsa(isa, () => lr.scope(() => {
          const w = lr.tensor(uniform(size(wShape(k)), 420 + i), wShape(k)).requiresGrad_();
          const runs = byOutputsRuns();
          lr.conv2d(lr.tensor(xd, xs), w, undefined, opts(k)).backward(lr.tensor(gy, outShape));
          expect(byOutputsRuns() - runs, `${isa} ${describeCase(k)}`).toBe(1);
          expectClose(w.grad!.data(), ref, 1e-4, 1e-4);
        }));
    }
  });

  it('gradients match finite differences', () => {
    const k = bcases[2];
    const xs = [k.n, k.c, k.h, k.w];
    const runs = byOutputsRuns();
    gradcheck((x, w) => lr.conv2d(x, w, undefined, opts(k)), [{ data: uniform(size(xs), 430), shape: xs }, { data: uniform(size(wShape(k)), 431), shape: wShape(k) }], { maxElements: 24 });
    expect(byOutputsRuns()).toBeGreaterThan(runs);
  });

  // Stride 1 and few outputs: input channels along the lanes, through the flipped convolution
  // from gy to x, whose padding turns negative when the layer's exceeds the kernel's reach.
  const icases: Case[] = [
    { n: 2, c: 32, h: 13, w: 11, o: 3, kh: 5, kw: 5, padding: [2, 2] },
    { n: 1, c: 16, h: 9, w: 20, o: 1, kh: 3, kw: 3, padding: [1, 1] },
    { n: 3, c: 48, h: 7, w: 6, o: 8, kh: 3, kw: 2, dilation: [2, 1], padding: [0, 1, 2, 0] },
    { n: 1, c: 16, h: 5, w: 5, o: 2, kh: 1, kw: 1, padding: [1, 1] },
  ];

  it('with the input channels along the lanes, matches the definition with every micro-kernel', () => {
    for (const [i, k] of icases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const xd = uniform(size(xs), 440 + i);
      const outShape = convOutShape(k);
      const gy = uniform(size(outShape), 450 + i);
      const ref = convFilterGradRef(xd, gy, k);
      for (const isa of isas)
        withIsa(isa, () => lr.scope(() => {
          const w = lr.tensor(uniform(size(wShape(k)), 460 + i), wShape(k)).requiresGrad_();
          const runs = byInputsRuns();
          lr.conv2d(lr.tensor(xd, xs), w, undefined, opts(k)).backward(lr.tensor(gy, outShape));
          expect(byInputsRuns() - runs, `${isa} ${describeCase(k)}`).toBe(1);
          expectClose(w.grad!.data(), ref, 1e-4, 1e-4);
        }));
    }
  });

  it('with the input channels along the lanes, gradients match finite differences', () => {
    const k = icases[2];
    const xs = [k.n, k.c, k.h, k.w];
    const runs = byInputsRuns();
    gradcheck((x, w) => lr.conv2d(x, w, undefined, opts(k)), [{ data: uniform(size(xs), 470), shape: xs }, { data: uniform(size(wShape(k)), 471), shape: wShape(k) }], { maxElements: 24 });
    expect(byInputsRuns()).toBeGreaterThan(runs);
  });

  it('with the input channels along the lanes, is chosen at stride 1 for up to 8 outputs from whole vectors of inputs', () => {
    const run = (c: number, o: number, options: lr.Conv2dOptions = {}) => {
      const runs = byInputsRuns();
      lr.scope(() => {
        const w = lr.tensor(uniform((o * c * 9) / (options.groups ?? 1), 1), [o, c / (options.groups ?? 1), 3, 3]).requiresGrad_();
        lr.sum(lr.conv2d(lr.tensor(uniform(c * 100, 2), [1, c, 10, 10]), w, undefined, options)).backward();
      });
      return byInputsRuns() - runs;
    };
    expect(run(64, 1, { padding: 1 })).toBe(1); // VDSR's last layer
    expect(run(32, 8)).toBe(1);
    expect(run(32, 9)).toBe(0);
    expect(run(24, 3)).toBe(0); // inputs off the vectors: the direct sums
    expect(run(32, 3, { stride: 2 })).toBe(0);
    expect(run(32, 4, { groups: 2 })).toBe(0);
  });

  it('is chosen for ungrouped layers of up to 128 outputs that the direct sums do not take', () => {
    const run = (c: number, o: number, kh: number, options: lr.Conv2dOptions = {}) => {
      const runs = byOutputsRuns();
      lr.scope(() => {
        const w = lr.tensor(uniform((o * c * kh * kh) / (options.groups ?? 1), 1), [o, c / (options.groups ?? 1), kh, kh]).requiresGrad_();
        lr.sum(lr.conv2d(lr.tensor(uniform(c * 100, 2), [1, c, 10, 10]), w, undefined, options)).backward();
      });
      return byOutputsRuns() - runs;
    };
    expect(run(3, 64, 9, { padding: 4 })).toBe(1); // SRCNN's first layer
    expect(run(8, 128, 3, { stride: 2 })).toBe(1);
    expect(run(8, 129, 3, { stride: 2 })).toBe(0); // many outputs: the GEMM
    expect(run(8, 24, 3, { stride: 2 })).toBe(1); // the direct sums take only unit column strides
    expect(run(8, 24, 3)).toBe(0); // few outputs: the direct sums
    expect(run(4, 64, 3)).toBe(0); // 36 taps: the direct sums
    expect(run(8, 64, 3, { stride: 2, groups: 2 })).toBe(0);
  });
});

describe('conv2d on small planes as one GEMM over the batch, weights read in place', () => {
  /** How many convolutions have run as one GEMM over a batch of small planes so far. */
  const batchedRuns = () => kernels.batched_forward_count() as number;
  /** How many products have read their A operand (the weights) in place so far. */
  const storedRuns = () => kernels.gemm_stored_a_count() as number;
  // Output channels off the micro-kernels' row strips (12, 6 and 4 rows), so that the last
  // rows run a shorter kernel (4 or 8 rows at AVX-512, 3 at AVX2) on the rows as stored (AVX-512:
  // 40, 44; AVX2: 33) or copied above zero rows (AVX-512: 33, 34, 43; AVX2: 34, 40, 43, 44), or
  // a partial packed strip (scalar: 33, 34, 43), one k block and several (k = 576, 2700: 3 and 11 blocks),
  // column counts off the 32, 16 and 8 wide strips (2 x 35, 3 x 16), a plane of one pixel, runs
  // of 4 to 7 pixels per output row, dilation, groups (one GEMM each), and a strided layer
  // (whose im2col rows are gathered one pixel at a time).
  const bcases: Case[] = [
    { n: 3, c: 5, h: 4, w: 4, o: 33, kh: 3, kw: 3, padding: [1, 1], bias: true },
    { n: 2, c: 37, h: 7, w: 5, o: 44, kh: 3, kw: 3, padding: [1, 1] },
    { n: 8, c: 64, h: 8, w: 8, o: 40, kh: 3, kw: 3, padding: [1, 1], bias: true },
    { n: 4, c: 300, h: 3, w: 3, o: 34, kh: 3, kw: 3, padding: [1, 1], bias: true },
    { n: 5, c: 9, h: 3, w: 3, o: 43, kh: 3, kw: 3 },
    { n: 2, c: 6, h: 9, w: 10, o: 36, kh: 3, kw: 3, padding: [2, 2], dilation: [2, 2], bias: true },
    { n: 2, c: 10, h: 6, w: 6, o: 70, kh: 3, kw: 3, padding: [1, 1], groups: 2, bias: true },
    { n: 2, c: 8, h: 9, w: 9, o: 33, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1] },
  ];

  it('matches the direct definition, with and without bias and fused ReLU, with every micro-kernel', () => {
    for (const [i, k] of bcases.entries()) {
      const xd = uniform(k.n * k.c * k.h * k.w, 900 + i);
      const wd = uniform(size(wShape(k)), 910 + i);
      const bd = k.bias ? uniform(k.o, 920 + i) : null;
      const ref = conv2dRef(xd, wd, bd, k);
      for (const isa of isas)
        withIsa(isa, () => lr.scope(() => {
          const args = [lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k)] as const;
          const [batched, stored] = [batchedRuns(), storedRuns()];
          const y = lr.conv2d(...args);
          const yr = lr.conv2dRelu(...args);
          const what = `${isa} ${describeCase(k)}`;
          expect(batchedRuns() - batched, what).toBe(2);
          expect(storedRuns() - stored, what).toBe(2 * (k.groups ?? 1));
          expect(y.shape, what).toEqual(ref.shape);
          expectClose(y.data(), ref.out, 1e-5, 1e-4);
          expectClose(yr.data(), ref.out.map((v) => Math.max(v, 0)), 1e-5, 1e-4);
          expect(Array.from(yr.data()), what).toEqual(Array.from(lr.relu(y).data()));
        }));
    }
  });

  it('gives the same outputs, bit for bit, on 1, 2 and 3 threads', () => {
    // 512 columns (a part per strip), 128 columns (too few strips for two threads: the rows are
    // cut as well), 70 (a last, partial strip), 9 (less than one strip).
    const tcases: Case[] = [
      { n: 8, c: 32, h: 8, w: 8, o: 64, kh: 3, kw: 3, padding: [1, 1], bias: true },
      { n: 8, c: 32, h: 4, w: 4, o: 100, kh: 3, kw: 3, padding: [1, 1] },
      { n: 2, c: 37, h: 7, w: 5, o: 45, kh: 3, kw: 3, padding: [1, 1], bias: true },
      { n: 9, c: 40, h: 1, w: 1, o: 50, kh: 3, kw: 3, padding: [1, 1], bias: true },
    ];
    const saved = lr.numThreads();
    try {
      for (const [i, k] of tcases.entries()) {
        const xd = uniform(k.n * k.c * k.h * k.w, 940 + i);
        const wd = uniform(size(wShape(k)), 950 + i);
        const bd = k.bias ? uniform(k.o, 960 + i) : null;
        const ref = conv2dRef(xd, wd, bd, k);
        for (const isa of isas)
          withIsa(isa, () => {
            const outputs = [1, 2, 3].map((threads) => {
              lr.setNumThreads(threads);
              return lr.scope(() => {
                const runs = batchedRuns();
                const y = lr.conv2dRelu(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k));
                expect(batchedRuns() - runs, `${isa} ${describeCase(k)}`).toBe(1);
                return y.data();
              });
            });
            expectClose(outputs[0], ref.out.map((v) => Math.max(v, 0)), 1e-5, 1e-4);
            expect(Array.from(outputs[1]), `${isa} ${describeCase(k)}: 2 threads`).toEqual(Array.from(outputs[0]));
            expect(Array.from(outputs[2]), `${isa} ${describeCase(k)}: 3 threads`).toEqual(Array.from(outputs[0]));
          });
      }
    } finally {
      lr.setNumThreads(saved);
    }
  });

  it('carries gradients that match finite differences', () => {
    const k: Case = { n: 3, c: 4, h: 4, w: 3, o: 34, kh: 3, kw: 3, padding: [1, 1], bias: true };
    const xs = [k.n, k.c, k.h, k.w];
    const ws = wShape(k);
    const inputs = [{ data: uniform(size(xs), 970), shape: xs }, { data: uniform(size(ws), 971), shape: ws }, { data: uniform(k.o, 972), shape: [k.o] }];
    const runs = batchedRuns();
    gradcheck((x, w, b) => lr.conv2d(x, w, b, opts(k)), inputs, { maxElements: 24 });
    expect(batchedRuns()).toBeGreaterThan(runs);
  });

  it('is not taken for one image or planes over 20x20 pixels', () => {
    const runs = batchedRuns();
    lr.scope(() => {
      lr.conv2d(lr.tensor(uniform(16 * 8 * 8, 980), [1, 16, 8, 8]), lr.tensor(uniform(40 * 16 * 9, 981), [40, 16, 3, 3]), undefined, { padding: [1, 1] });
      lr.conv2d(lr.tensor(uniform(2 * 4 * 21 * 20, 982), [2, 4, 21, 20]), lr.tensor(uniform(40 * 4 * 9, 983), [40, 4, 3, 3]), undefined, { padding: [1, 1] });
    });
    expect(batchedRuns()).toBe(runs);
  });
});

describe('conv2d through the 1x1 kernel', () => {
  // Pixel counts below one vector, between vectors, past whole 48-pixel units and exact
  // multiples; output channels off the 8- and 4-channel blocks; one to three images.
  const pcases: Case[] = [
    { n: 1, c: 128, h: 5, w: 13, o: 32, kh: 1, kw: 1, bias: true }, // 65 pixels: a unit, a vector, 1 pixel
    { n: 3, c: 7, h: 7, w: 7, o: 19, kh: 1, kw: 1, bias: true },
    { n: 2, c: 33, h: 1, w: 5, o: 9, kh: 1, kw: 1 }, // fewer pixels than one vector
    { n: 2, c: 16, h: 16, w: 20, o: 40, kh: 1, kw: 1, bias: true }, // 320 = 6 x 48 + 32
    { n: 1, c: 3, h: 11, w: 11, o: 1, kh: 1, kw: 1 },
    { n: 2, c: 1, h: 4, w: 24, o: 12, kh: 1, kw: 1, bias: true }, // 96: whole units at every width
    { n: 1, c: 64, h: 3, w: 17, o: 130, kh: 1, kw: 1, dilation: [2, 3] }, // dilation means nothing at 1x1
    // Output channels in whole 16-channel blocks and planes of whole 16-pixel vectors (image rows
    // on cache lines): the 16 x 1 kernel where the machine has AVX-512.
    { n: 1, c: 128, h: 8, w: 16, o: 32, kh: 1, kw: 1, bias: true },
    { n: 3, c: 19, h: 4, w: 12, o: 48, kh: 1, kw: 1 },
    { n: 2, c: 1, h: 1, w: 16, o: 16, kh: 1, kw: 1, bias: true }, // one vector per image
    // From 512 vectors on, that kernel stages its input through packed slabs: one large plane,
    // and three images whose units run across image boundaries.
    { n: 1, c: 24, h: 128, w: 128, o: 32, kh: 1, kw: 1, bias: true },
    { n: 3, c: 5, h: 64, w: 96, o: 16, kh: 1, kw: 1 },
  ];

  it('matches the direct definition, with bias and fused ReLU, with every micro-kernel', () => {
    for (const [i, k] of pcases.entries()) {
      const xd = uniform(k.n * k.c * k.h * k.w, 500 + i);
      const wd = uniform(size(wShape(k)), 510 + i);
      const bd = k.bias ? uniform(k.o, 520 + i) : null;
      const ref = conv2dRef(xd, wd, bd, k);
      for (const isa of isas)
        withIsa(isa, () => withAlgo(undefined, () => lr.scope(() => {
          const args = [lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, wShape(k)), bd ? lr.tensor(bd) : undefined, opts(k)] as const;
          const runs = pointwiseRuns();
          const y = lr.conv2d(...args);
          const yr = lr.conv2dRelu(...args);
          expect(pointwiseRuns() - runs, `${isa} ${describeCase(k)}`).toBe(2);
          expect(y.shape).toEqual(ref.shape);
          expectClose(y.data(), ref.out, 1e-5, 1e-5);
          expectClose(yr.data(), ref.out.map((v) => Math.max(v, 0)), 1e-5, 1e-5);
          expect(Array.from(yr.data())).toEqual(Array.from(lr.relu(y).data()));
        })));
    }
  });

  it('carries the input gradient, a 1x1 convolution by the transposed weights', () => {
    for (const [i, k] of pcases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const xd = uniform(size(xs), 530 + i);
      const wd = uniform(size(wShape(k)), 540 + i);
      const gy = uniform(k.n * k.o * k.h * k.w, 550 + i);
      // Input gradient: gx[n, c, p] = sum_o w[o, c] gy[n, o, p], the transposed definition.
      const gxRef = convT2dRef(gy, wd, null, { ...k, c: k.o, o: k.c, dilation: undefined });
      for (const isa of isas)
        withIsa(isa, () => withAlgo(undefined, () => lr.scope(() => {
          const x = lr.tensor(xd, xs).requiresGrad_();
          const runs = pointwiseRuns();
          lr.conv2d(x, lr.tensor(wd, wShape(k)), undefined, opts(k)).backward(lr.tensor(gy, [k.n, k.o, k.h, k.w]));
          expect(pointwiseRuns() - runs, `${isa} ${describeCase(k)}: forward and input gradient`).toBe(2);
          expect(gxRef.shape).toEqual(xs);
          expectClose(x.grad!.data(), gxRef.out, 1e-5, 1e-5);
        })));
    }
  });

  it('reads inputs that are views at an offset (image rows off the cache-line boundary)', () => {
    // A view one float into its storage: every channel row starts 4 bytes past a 64-byte line,
    // so even with whole 16-channel blocks and 16-pixel vectors the 8 x 3 kernel runs.
    const k: Case = { n: 2, c: 19, h: 4, w: 12, o: 32, kh: 1, kw: 1, bias: true };
    const flat = uniform(1 + 2 * 19 * 48, 560);
    const wd = uniform(32 * 19, 561), bd = uniform(32, 562);
    const ref = conv2dRef(flat.subarray(1), wd, bd, k);
    for (const isa of isas)
      withIsa(isa, () => lr.scope(() => {
        const x = lr.reshape(lr.narrow(lr.tensor(flat), 0, 1, 2 * 19 * 48), [2, 19, 4, 12]);
        const runs = pointwiseRuns();
        const y = lr.conv2dRelu(x, lr.tensor(wd, [32, 19, 1, 1]), lr.tensor(bd));
        expect(pointwiseRuns() - runs, isa).toBe(1);
        expectClose(y.data(), ref.out.map((v) => Math.max(v, 0)), 1e-5, 1e-5);
      }));
  });

  it('sends ReLU NaN to 0 in whole vectors and in the last pixels', () => {
    const pixels = 53; // 48 in a unit, 5 past it
    const x = new Float32Array(2 * pixels).fill(1);
    x[3] = NaN; // a vector lane
    x[pixels - 1] = NaN; // a pixel past the last whole vector
    const y = lr.conv2dRelu(lr.tensor(x, [1, 2, 1, pixels]), lr.tensor([[[[1]], [[1]]]]), lr.tensor([-1]));
    const want = Array.from({ length: pixels }, (_, p) => (p === 3 || p === pixels - 1 ? 0 : 1));
    expect(Array.from(y.data())).toEqual(want);
  });

  it('applies to 1x1 stride-1 unpadded ungrouped convolutions unless LRFACE_CONV_ALGO=gemm', () => {
    const run = (c: number, o: number, options: lr.Conv2dOptions = {}) => {
      const runs = pointwiseRuns();
      lr.scope(() => lr.conv2d(lr.tensor(uniform(c * 64, 3), [1, c, 8, 8]), lr.tensor(uniform((o * c) / (options.groups ?? 1), 4), [o, c / (options.groups ?? 1), 1, 1]), undefined, options).data());
      return pointwiseRuns() - runs;
    };
    withAlgo(undefined, () => {
      expect(run(16, 16)).toBe(1);
      expect(run(16, 16, { stride: 2 })).toBe(0);
      expect(run(16, 16, { padding: 1 })).toBe(0);
      expect(run(16, 16, { groups: 2 })).toBe(0);
    });
    withAlgo('winograd', () => expect(run(16, 16)).toBe(1)); // Winograd does not apply
    withAlgo('gemm', () => expect(run(16, 16)).toBe(0));
    withAlgo('fft', () => expectError(() => run(16, 16), RangeError, 'LRFACE_CONV_ALGO', 'fft'));
  });
});

describe('native convolution kernels', () => {
  it('re-check the geometry they are given', () => {
    const t = lr.zeros([64]);
    const call = (geom: number[]) => () => kernels.conv2d_forward(...ref(t), ...ref(t), ...ref(t), null, 0, geom);
    //            N  C  H  W  O kh kw sh sw pt pl dh dw  g outH outW
    const good = [1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1, 2, 2];
    expect(call(good)).not.toThrow();
    const bad = (k: number, v: number) => good.map((g, i) => (i === k ? v : g));
    expectError(call(bad(9, -1)), RangeError, 'conv2d_forward', 'padding');
    expectError(call(bad(13, 2)), RangeError, 'conv2d_forward', 'groups');
    expectError(call(bad(7, 0)), RangeError, 'conv2d_forward');
    expectError(call(bad(14, 0)), RangeError, 'conv2d_forward');
    expectError(call(bad(14, 2 ** 31)), RangeError, 'conv2d_forward');
    expectError(call(bad(14, 40)), RangeError, 'conv2d_forward', 'exceeds its storage');
    expectError(call(good.slice(1)), RangeError, 'conv2d_forward', '16 entries');
  });
});

describe('convTranspose2d', () => {
  // c: input channels (Cin), o: output channels (Cout).
  const tcases: Case[] = [
    { n: 1, c: 2, h: 3, w: 3, o: 3, kh: 3, kw: 3 },
    { n: 2, c: 3, h: 4, w: 3, o: 2, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], outputPadding: [1, 1], bias: true },
    { n: 1, c: 4, h: 3, w: 5, o: 4, kh: 2, kw: 3, stride: [3, 2], groups: 2, bias: true },
    { n: 1, c: 2, h: 4, w: 4, o: 2, kh: 3, kw: 3, dilation: [2, 2], padding: [1, 2, 0, 1] },
    { n: 2, c: 3, h: 1, w: 1, o: 2, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1] },
    { n: 1, c: 3, h: 5, w: 4, o: 3, kh: 3, kw: 3, groups: 3, padding: [1, 1], bias: true }, // depthwise, stride 1
    { n: 2, c: 2, h: 4, w: 5, o: 4, kh: 3, kw: 3, groups: 2, stride: [2, 2], outputPadding: [0, 1] }, // depthwise x2, strided
    { n: 1, c: 4, h: 5, w: 5, o: 30, kh: 3, kw: 3, padding: [1, 1], bias: true }, // stride 1 into many channels: gemm
    { n: 1, c: 2, h: 6, w: 6, o: 2, kh: 2, kw: 2, padding: [2, 2] }, // padding beyond the kernel
    { n: 1, c: 2, h: 3, w: 4, o: 3, kh: 3, kw: 2, stride: [1, 3], dilation: [2, 1], outputPadding: [1, 2] },
  ];
  const topts = (k: Case) => ({ ...opts(k), outputPadding: k.outputPadding });
  const twShape = (k: Case) => [k.c, k.o / (k.groups ?? 1), k.kh, k.kw];

  it('matches the scatter definition, with every micro-kernel', () => {
    for (const isa of isas)
      withIsa(isa, () => {
        for (const [i, k] of tcases.entries()) {
          const xd = uniform(k.n * k.c * k.h * k.w, 70 + i);
          const wd = uniform(size(twShape(k)), 80 + i);
          const bd = k.bias ? uniform(k.o, 90 + i) : null;
          lr.scope(() => {
            const y = lr.convTranspose2d(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, twShape(k)), bd ? lr.tensor(bd) : undefined, topts(k));
            const ref = convT2dRef(xd, wd, bd, k);
            expect(y.shape, describeCase(k)).toEqual(ref.shape);
            expectClose(y.data(), ref.out, 1e-5, 1e-4);
          });
        }
      });
  });

  it('gradients match finite differences', () => {
    for (const [i, k] of tcases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const ws = twShape(k);
      try {
        gradcheck((x, w, b) => lr.convTranspose2d(x, w, b, topts(k)), [{ data: uniform(size(xs), 100 + i), shape: xs }, { data: uniform(size(ws), 110 + i), shape: ws }, { data: uniform(k.o, 120 + i), shape: [k.o] }], { maxElements: 24 });
      } catch (err) {
        throw new Error(`${describeCase(k)}: ${(err as Error).message}`);
      }
    }
  });

  it('is the input gradient of conv2d', () => {
    const k: Case = { n: 2, c: 3, h: 7, w: 6, o: 5, kh: 3, kw: 2, stride: [2, 1], padding: [1, 0, 0, 1], dilation: [1, 2] };
    const x = lr.tensor(uniform(2 * 3 * 7 * 6, 1), [2, 3, 7, 6]).requiresGrad_();
    const w = lr.tensor(uniform(5 * 3 * 3 * 2, 2), [5, 3, 3, 2]);
    const y = lr.conv2d(x, w, undefined, opts(k));
    const gy = lr.tensor(uniform(y.size, 3), y.shape);
    y.backward(gy);
    const viaT = lr.convTranspose2d(gy, w, undefined, { ...opts(k), outputPadding: [(7 + 1 - 2 - 1) % 2, 0] });
    expect(viaT.shape).toEqual(x.shape);
    expectClose(viaT.data(), x.grad!.data(), 1e-5, 1e-4);
  });

  it('reads inputs that are views at an offset', () => {
    const big = lr.tensor(uniform(3 * 2 * 4 * 4, 7), [3, 2, 4, 4]);
    const x = lr.narrow(big, 0, 2, 1);
    const wd = uniform(2 * 3 * 3 * 3, 8);
    const k: Case = { n: 1, c: 2, h: 4, w: 4, o: 3, kh: 3, kw: 3, stride: [2, 2] };
    const y = lr.convTranspose2d(x, lr.tensor(wd, [2, 3, 3, 3]), undefined, { stride: 2 });
    expectClose(y.data(), convT2dRef(x.data(), wd, null, k).out, 1e-5, 1e-4);
  });

  it('large strided outputs go through the column buffer in bands', () => {
    // Cout 32 with a 3x3 kernel: 288 rows per column, so a 125x150 input needs several bands.
    const k: Case = { n: 1, c: 2, h: 125, w: 150, o: 32, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], bias: true };
    const xd = uniform(2 * 125 * 150, 11), wd = uniform(2 * 32 * 9, 12), bd = uniform(32, 13);
    const y = lr.convTranspose2d(lr.tensor(xd, [1, 2, 125, 150]), lr.tensor(wd, [2, 32, 3, 3]), lr.tensor(bd), { stride: 2, padding: 1 });
    expectClose(y.data(), convT2dRef(xd, wd, bd, k).out, 1e-5, 1e-4);
  });

  it('rejects bad arguments naming them', () => {
    const x = lr.zeros([1, 4, 5, 5]);
    const w = lr.zeros([4, 2, 3, 3]);
    expectError(() => lr.convTranspose2d(x, lr.zeros([3, 2, 3, 3])), RangeError, 'conv_transpose2d', "'weight'");
    expectError(() => lr.convTranspose2d(x, lr.zeros([4, 2, 3])), RangeError, "'weight'", 'rank 4');
    expectError(() => lr.convTranspose2d(lr.zeros([4, 5, 5]), w), RangeError, "'input'", 'rank 4');
    expectError(() => lr.convTranspose2d(x, lr.zeros([4, 0, 3, 3])), RangeError, "'weight'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { stride: 2, outputPadding: 2 }), RangeError, "'outputPadding'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { outputPadding: -1 }), RangeError, "'outputPadding'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { outputPadding: 0.5 }), TypeError, "'outputPadding'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { groups: 3 }), RangeError, "'groups'");
    expectError(() => lr.convTranspose2d(x, w, lr.zeros([3])), RangeError, "'bias'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { padding: 9 }), RangeError, "'padding'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { padding: [1, 1, 1] }), RangeError, "'padding'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { stride: -2 }), RangeError, "'stride'");
    expectError(() => lr.convTranspose2d(x, w, undefined, { dilation: [1, 1.5] }), TypeError, "'dilation'");
    expectError(() => lr.convTranspose2d(lr.zeros([1, 4, 0, 5]), w), RangeError, "'input'");
    expectError(() => lr.convTranspose2d(lr.cast(x, 'uint8'), w), TypeError, "'input'");
  });
});

// The input gradient of a conv2d by its definition, float64: every output pixel's gradient goes
// back along the taps that read its input pixels.
function convInputGradRef(gy: ArrayLike<number>, w: ArrayLike<number>, k: Case) {
  const [sh, sw] = k.stride ?? [1, 1];
  const [dh, dw] = k.dilation ?? [1, 1];
  const [pt, , pl] = pads(k.padding);
  const [, , oh, ow] = convOutShape(k);
  const g = k.groups ?? 1;
  const cg = k.c / g, og = k.o / g;
  const gx = new Float64Array(k.n * k.c * k.h * k.w);
  for (let n = 0; n < k.n; n++)
    for (let o = 0; o < k.o; o++) {
      const gr = Math.floor(o / og);
      for (let y = 0; y < oh; y++)
        for (let xo = 0; xo < ow; xo++) {
          const v = gy[((n * k.o + o) * oh + y) * ow + xo];
          for (let ci = 0; ci < cg; ci++)
            for (let i = 0; i < k.kh; i++)
              for (let j = 0; j < k.kw; j++) {
                const iy = y * sh - pt + i * dh;
                const ix = xo * sw - pl + j * dw;
                if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                gx[((n * k.c + gr * cg + ci) * k.h + iy) * k.w + ix] += v * w[((o * cg + ci) * k.kh + i) * k.kw + j];
              }
        }
    }
  return gx;
}

describe('strided input gradient and transposed convolution by sub-pixel phases', () => {
  // Output pixel (y, x) of a transposed convolution with stride s > 1 (dilation 1) is reached
  // only by the taps i = (y + pt) mod s (mod s): each phase is a stride-1 convolution on its own
  // sub-grid. Kernels shorter than the stride (phases no tap reaches: bias only), equal to it,
  // longer and not a multiple of it; every padding from 0 to k - 1; unequal strides; groups.
  // Each runs on the sub-pixel path, on the column buffer and as chosen by shape.
  // c: input channels (Cin), o: output channels (Cout).
  const tcases: Case[] = [
    { n: 2, c: 3, h: 4, w: 5, o: 2, kh: 12, kw: 12, stride: [8, 8], padding: [2, 2], bias: true }, // DIC's projection
    { n: 1, c: 4, h: 5, w: 3, o: 3, kh: 8, kw: 8, stride: [4, 4], padding: [2, 2], bias: true }, // DIC's last layer
    { n: 2, c: 3, h: 5, w: 6, o: 4, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1], bias: true },
    { n: 2, c: 2, h: 4, w: 5, o: 3, kh: 5, kw: 5, stride: [3, 3], padding: [1, 1], outputPadding: [2, 1], bias: true },
    { n: 1, c: 2, h: 4, w: 3, o: 3, kh: 5, kw: 5, stride: [3, 3], padding: [4, 3, 0, 2] },
    { n: 2, c: 3, h: 3, w: 4, o: 2, kh: 1, kw: 1, stride: [2, 2], outputPadding: [1, 0], bias: true }, // kernel < stride
    { n: 1, c: 2, h: 4, w: 4, o: 3, kh: 2, kw: 2, stride: [3, 3], padding: [0, 1], outputPadding: [2, 2], bias: true },
    { n: 2, c: 2, h: 4, w: 3, o: 2, kh: 2, kw: 2, stride: [3, 3], padding: [1, 1], bias: true },
    { n: 1, c: 3, h: 5, w: 5, o: 2, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], outputPadding: [1, 1] },
    { n: 1, c: 2, h: 4, w: 5, o: 2, kh: 3, kw: 3, stride: [2, 2], padding: [2, 2] },
    { n: 2, c: 2, h: 3, w: 5, o: 3, kh: 4, kw: 4, stride: [4, 4], bias: true }, // kernel = stride: 1x1 phases
    { n: 1, c: 2, h: 3, w: 4, o: 2, kh: 7, kw: 6, stride: [4, 4], padding: [3, 5], outputPadding: [3, 0] },
    { n: 2, c: 3, h: 4, w: 3, o: 2, kh: 3, kw: 4, stride: [2, 3], padding: [1, 2], outputPadding: [0, 2], bias: true }, // sh != sw
    { n: 1, c: 2, h: 5, w: 4, o: 3, kh: 5, kw: 2, stride: [3, 2], padding: [0, 1, 2, 0] },
    { n: 2, c: 2, h: 4, w: 3, o: 3, kh: 3, kw: 7, stride: [2, 5], padding: [1, 2], outputPadding: [1, 3], bias: true },
    { n: 1, c: 2, h: 6, w: 3, o: 2, kh: 3, kw: 3, stride: [1, 3], padding: [1, 1] }, // stride 1 along rows only
    { n: 2, c: 4, h: 4, w: 5, o: 6, kh: 5, kw: 5, stride: [3, 3], padding: [1, 1], groups: 2, bias: true },
    { n: 1, c: 6, h: 3, w: 4, o: 3, kh: 12, kw: 12, stride: [8, 8], padding: [2, 2], groups: 3, bias: true },
    { n: 2, c: 4, h: 5, w: 4, o: 8, kh: 4, kw: 3, stride: [2, 2], padding: [1, 1], groups: 4, bias: true }, // one input per group
    // Wider layers, so the phases' convolutions run the GEMM (per image and over the batch),
    // direct, 1x1 and Winograd kernels.
    { n: 2, c: 40, h: 6, w: 7, o: 36, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1], bias: true },
    { n: 4, c: 30, h: 3, w: 4, o: 12, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1], bias: true },
    { n: 1, c: 24, h: 8, w: 9, o: 16, kh: 12, kw: 12, stride: [8, 8], padding: [2, 2] },
    { n: 2, c: 20, h: 5, w: 6, o: 40, kh: 2, kw: 2, stride: [2, 2], bias: true },
    { n: 1, c: 16, h: 40, w: 40, o: 16, kh: 6, kw: 6, stride: [2, 2], padding: [2, 2], bias: true }, // 3x3 phases
  ];
  const topts = (k: Case) => ({ ...opts(k), outputPadding: k.outputPadding });
  const twShape = (k: Case) => [k.c, k.o / (k.groups ?? 1), k.kh, k.kw];
  const algos = ['subpixel', 'columns', 'auto'];
  // Phases of 3x3 taps go through Winograd, which rounds to about 1e-6 of the largest output
  // (see its tests); a wrong tap, phase or channel errs by O(1).
  const atol = (ref: Float64Array) => Math.max(1e-5, 1e-5 * ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0));

  /** Runs fn with LRFACE_DECONV_ALGO set. */
  const withDeconvAlgo = <T,>(algo: string | undefined, fn: () => T): T => withEnv('LRFACE_DECONV_ALGO', algo, fn);

  it('convTranspose2d matches the scatter definition on every path, with every micro-kernel', () => {
    const winograd = winogradRuns(), pointwise = pointwiseRuns();
    for (const [i, k] of tcases.entries()) {
      const xd = uniform(k.n * k.c * k.h * k.w, 200 + i);
      const wd = uniform(size(twShape(k)), 300 + i);
      const bd = k.bias ? uniform(k.o, 400 + i) : null;
      const ref = convT2dRef(xd, wd, bd, k);
      for (const isa of isas)
        for (const algo of algos)
          withIsa(isa, () => withDeconvAlgo(algo, () => lr.scope(() => {
            const y = lr.convTranspose2d(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, twShape(k)), bd ? lr.tensor(bd) : undefined, topts(k));
            expect(y.shape, describeCase(k)).toEqual(ref.shape);
            try {
              expectClose(y.data(), ref.out, atol(ref.out), 1e-4);
            } catch (err) {
              throw new Error(`${isa} ${algo} ${describeCase(k)}: ${(err as Error).message}`);
            }
          })));
    }
    // The 6x6 stride-2 layer's phases are 3x3 convolutions (Winograd), the 4x4 stride-4 layer's 1x1.
    expect(winogradRuns()).toBeGreaterThan(winograd);
    expect(pointwiseRuns()).toBeGreaterThan(pointwise);
  });

  it('conv2d input gradient matches its definition on every path, with every micro-kernel', () => {
    // The same geometries seen from the convolution: c inputs, o outputs, stride and padding
    // as given (the transposed cases' output padding becomes input rows no tap reads).
    const ccases: Case[] = tcases.map((k) => {
      const [sh, sw] = k.stride ?? [1, 1];
      const [pt, pb, pl, pr] = pads(k.padding);
      const [oph, opw] = k.outputPadding ?? [0, 0];
      return { n: k.n, c: k.o, h: (k.h - 1) * sh - pt - pb + k.kh + oph, w: (k.w - 1) * sw - pl - pr + k.kw + opw, o: k.c, kh: k.kh, kw: k.kw, stride: k.stride, padding: k.padding, groups: k.groups };
    });
    for (const [i, k] of ccases.entries()) {
      const xs = [k.n, k.c, k.h, k.w];
      const xd = uniform(size(xs), 600 + i);
      const wd = uniform(size(wShape(k)), 500 + i);
      const gy = uniform(size(convOutShape(k)), 700 + i);
      const ref = convInputGradRef(gy, wd, k);
      for (const isa of isas)
        for (const algo of algos)
          withIsa(isa, () => withDeconvAlgo(algo, () => lr.scope(() => {
            const x = lr.tensor(xd, xs).requiresGrad_();
            const y = lr.conv2d(x, lr.tensor(wd, wShape(k)), undefined, opts(k));
            expect(y.shape, describeCase(k)).toEqual(convOutShape(k));
            y.backward(lr.tensor(gy, y.shape));
            try {
              expectClose(x.grad!.data(), ref, atol(ref), 1e-4);
            } catch (err) {
              throw new Error(`${isa} ${algo} ${describeCase(k)}: ${(err as Error).message}`);
            }
          })));
    }
  });

  it('gradients match finite differences on the sub-pixel path', () => {
    withDeconvAlgo('subpixel', () => {
      for (const i of [0, 3, 4, 5, 12, 14, 16, 17]) {
        const k = tcases[i];
        const xs = [k.n, k.c, k.h, k.w];
        const ws = twShape(k);
        try {
          gradcheck((x, w, b) => lr.convTranspose2d(x, w, b, topts(k)), [{ data: uniform(size(xs), 800 + i), shape: xs }, { data: uniform(size(ws), 810 + i), shape: ws }, { data: uniform(k.o, 820 + i), shape: [k.o] }], { maxElements: 24 });
        } catch (err) {
          throw new Error(`convTranspose2d ${describeCase(k)}: ${(err as Error).message}`);
        }
      }
      for (const k of [
        { n: 2, c: 3, h: 11, w: 10, o: 2, kh: 5, kw: 4, stride: [3, 2], padding: [1, 2] },
        { n: 1, c: 2, h: 17, w: 14, o: 3, kh: 12, kw: 12, stride: [8, 8], padding: [2, 2] },
        { n: 1, c: 4, h: 9, w: 8, o: 4, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], groups: 2 },
      ] as Case[]) {
        const xs = [k.n, k.c, k.h, k.w];
        try {
          gradcheck((x, w) => lr.conv2d(x, w, undefined, opts(k)), [{ data: uniform(size(xs), 830), shape: xs }, { data: uniform(size(wShape(k)), 831), shape: wShape(k) }], { maxElements: 30 });
        } catch (err) {
          throw new Error(`conv2d ${describeCase(k)}: ${(err as Error).message}`);
        }
      }
    });
  });

  it('gives the same output, bit for bit, on 1, 2 and 3 threads', () => {
    const saved = lr.numThreads();
    try {
      for (const i of [0, 3, 14, 17, 19, 20]) {
        const k = tcases[i];
        const x = lr.tensor(uniform(k.n * k.c * k.h * k.w, 900 + i), [k.n, k.c, k.h, k.w]);
        const w = lr.tensor(uniform(size(twShape(k)), 910 + i), twShape(k));
        const b = lr.tensor(uniform(k.o, 920 + i));
        const outputs = [1, 2, 3].map((threads) => {
          lr.setNumThreads(threads);
          return withDeconvAlgo('subpixel', () => lr.scope(() => Float32Array.from(lr.convTranspose2d(x, w, b, topts(k)).data())));
        });
        expect(Array.from(outputs[1]), `${describeCase(k)}: 2 threads`).toEqual(Array.from(outputs[0]));
        expect(Array.from(outputs[2]), `${describeCase(k)}: 3 threads`).toEqual(Array.from(outputs[0]));
        [x, w, b].forEach((t) => t.dispose());
      }
    } finally {
      lr.setNumThreads(saved);
    }
  });

  it('is chosen by shape: overlapping windows, several taps per phase, gx of 8 channels or more', () => {
    // Bit for bit the path's own result (the two round differently here): DIC's 12/8/2 and
    // k4s2p1 on 8 output channels take the phases; k3s2p1 (a product per phase), 3 output
    // channels and 160 input channels at k4s2p1 keep the column buffer.
    const run = (k: Case, xd: Float32Array, wd: Float32Array) =>
      lr.scope(() => Float32Array.from(lr.convTranspose2d(lr.tensor(xd, [k.n, k.c, k.h, k.w]), lr.tensor(wd, twShape(k)), undefined, topts(k)).data()));
    for (const [k, want] of [
      [{ n: 1, c: 16, h: 6, w: 5, o: 8, kh: 12, kw: 12, stride: [8, 8], padding: [2, 2] }, 'subpixel'],
      [{ n: 1, c: 16, h: 9, w: 7, o: 8, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1] }, 'subpixel'],
      [{ n: 1, c: 16, h: 9, w: 7, o: 8, kh: 3, kw: 3, stride: [2, 2], padding: [1, 1], outputPadding: [1, 1] }, 'columns'],
      [{ n: 1, c: 16, h: 9, w: 7, o: 3, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1] }, 'columns'],
      [{ n: 1, c: 160, h: 5, w: 4, o: 8, kh: 4, kw: 4, stride: [2, 2], padding: [1, 1] }, 'columns'],
    ] as [Case, string][]) {
      const xd = uniform(k.n * k.c * k.h * k.w, 940), wd = uniform(size(twShape(k)), 941);
      const [auto, phases, columns] = ['auto', 'subpixel', 'columns'].map((algo) => withDeconvAlgo(algo, () => run(k, xd, wd)));
      expect(Array.from(auto), `${describeCase(k)}: ${want}`).toEqual(Array.from(want === 'subpixel' ? phases : columns));
      expect(Array.from(phases)).not.toEqual(Array.from(columns));
      expectClose(phases, columns, 1e-5, 1e-4);
    }
  });

  it('runs a batch whose outputs exceed the phase buffer a few images at a time', () => {
    // 3 images of 2 x 1200 x 1200 outputs: 8.6M floats, over the 8M kept for the phases.
    const k: Case = { n: 3, c: 2, h: 150, w: 150, o: 2, kh: 8, kw: 8, stride: [8, 8], bias: true };
    const xd = uniform(size([3, 2, 150, 150]), 950), wd = uniform(2 * 2 * 64, 951), bd = uniform(2, 952);
    withDeconvAlgo('subpixel', () => lr.scope(() => {
      const y = lr.convTranspose2d(lr.tensor(xd, [3, 2, 150, 150]), lr.tensor(wd, [2, 2, 8, 8]), lr.tensor(bd), { stride: 8 });
      expect(y.shape).toEqual([3, 2, 1200, 1200]);
      expectClose(y.data(), convT2dRef(xd, wd, bd, k).out, 1e-5, 1e-4);
    }));
  });

  it('rejects an unknown LRFACE_DECONV_ALGO naming it', () => {
    const x = lr.zeros([1, 2, 3, 3]), w = lr.zeros([2, 2, 4, 4]);
    withDeconvAlgo('phases', () => expectError(() => lr.convTranspose2d(x, w, undefined, { stride: 2 }), RangeError, 'LRFACE_DECONV_ALGO', "'phases'"));
    withDeconvAlgo('auto', () => expect(lr.convTranspose2d(x, w, undefined, { stride: 2 }).shape).toEqual([1, 2, 8, 8]));
  });
});

describe('bias gradients', () => {
  // Sizes with planes of one pixel and of many (the accumulators' tail), an empty batch, and
  // gradients of mixed magnitude, where a float sum (or one rounded between axes) drifts.
  const shapes = [[3, 5, 17, 13], [2, 3, 1, 1], [0, 4, 3, 3], [2, 2, 130, 129]];
  for (const [op, run] of [
    ['conv2d', (x: lr.Tensor, c: number, b: lr.Tensor) => lr.conv2d(x, lr.ones([c, c, 1, 1]), b)],
    ['convTranspose2d', (x: lr.Tensor, c: number, b: lr.Tensor) => lr.convTranspose2d(x, lr.ones([c, c, 1, 1]), b)],
  ] as const)
    it(`${op}: the per-channel sum of the output gradient, in double precision`, () => {
      for (const [n, c, h, w] of shapes) {
        const g = uniform(n * c * h * w, 5).map((v, i) => (i % 7 === 0 ? v * 1e4 : v));
        const b = lr.zeros([c]).requiresGrad_();
        const y = run(lr.zeros([n, c, h, w]), c, b);
        y.backward(lr.tensor(g, [n, c, h, w]));
        const want = Array.from({ length: c }, (_, ch) => {
          let s = 0;
          for (let i = 0; i < n; i++) for (let p = 0; p < h * w; p++) s += g[(i * c + ch) * h * w + p];
          return Math.fround(s);
        });
        expect(Array.from(b.grad!.data()), `[${n}, ${c}, ${h}, ${w}]`).toEqual(want);
      }
    });
});

describe('conv2d weight gradient across threads', () => {
  // Threads take chunks of the work as they free up, so which thread sums what varies from run
  // to run; the gradient must not (training on two devices, or twice, must agree bit for bit).
  it('is the same on every run, on the Winograd and the by-output-channels paths', () => {
    const saved = lr.numThreads();
    lr.setNumThreads(4); // more threads than this machine may have cores: uneven progress
    try {
      for (const [xs, ws, counter] of [
        [[4, 16, 41, 41], [16, 16, 3, 3], winogradFilterRuns],
        [[2, 32, 24, 24], [48, 32, 3, 3], byOutputsRuns],
      ] as const) {
        const x = lr.tensor(uniform(size(xs), 7), [...xs]);
        const w = lr.tensor(uniform(size(ws), 8), [...ws]);
        const r = lr.tensor(uniform(xs[0] * ws[0] * xs[2] * xs[3], 9), [xs[0], ws[0], xs[2], xs[3]]);
        const before = counter();
        const gradient = () =>
          lr.scope(() => {
            const wg = w.detach().requiresGrad_();
            lr.sum(lr.mul(lr.conv2d(x, wg, undefined, { padding: 1 }), r)).backward();
            return Float32Array.from(wg.grad!.data());
          });
        const first = gradient();
        for (let run = 1; run < 20; run++) {
          const again = gradient();
          const at = again.findIndex((v, i) => !Object.is(v, first[i]));
          expect(at, `${JSON.stringify(ws)} run ${run}: element ${at} is ${again[at]}, first run ${first[at]}`).toBe(-1);
        }
        expect(counter() - before).toBe(20);
        [x, w, r].forEach((t) => t.dispose());
      }
    } finally {
      lr.setNumThreads(saved);
    }
  });
});
