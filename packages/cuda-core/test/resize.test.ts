import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectClose, expectError, gradcheck } from './helpers/check.js';
import { decodePng, sharedDataDir } from '@lrface/test-data';
import { size, uniform } from './helpers/random.js';

// PyTorch's nearest and bilinear (align_corners both ways), written as direct 2-D formulas.
function interpRef(x: Float32Array, shape: number[], oh: number, ow: number, mode: 'nearest' | 'bilinear', alignCorners = false, scale?: [number, number]) {
  const [n, c, h, w] = shape;
  const sh = scale ? 1 / scale[0] : h / oh, sw = scale ? 1 / scale[1] : w / ow;
  const out = new Float64Array(n * c * oh * ow);
  const src = (i: number, inS: number, outS: number, s: number) =>
    alignCorners ? (outS > 1 ? (i * (inS - 1)) / (outS - 1) : 0) : Math.max((i + 0.5) * s - 0.5, 0);
  for (let p = 0; p < n * c; p++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let v: number;
        if (mode === 'nearest') v = x[(p * h + Math.min(Math.floor(i * sh), h - 1)) * w + Math.min(Math.floor(j * sw), w - 1)];
        else {
          const y = Math.min(src(i, h, oh, sh), h - 1), xx = Math.min(src(j, w, ow, sw), w - 1);
          const y0 = Math.floor(y), x0 = Math.floor(xx), y1 = Math.min(y0 + 1, h - 1), x1 = Math.min(x0 + 1, w - 1);
          const ly = y - y0, lx = xx - x0;
          const at = (a: number, b: number) => x[(p * h + a) * w + b];
          v = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
        }
        out[(p * oh + i) * ow + j] = v;
      }
  return out;
}

// MATLAB imresize 'bicubic' along one axis, straight from its documented definition
// (contributions(): u = x/scale + 0.5*(1 - 1/scale), kernel stretched by 1/scale when shrinking,
// symmetric boundary, weights normalised), applied as a dense matrix.
function matlabMatrix(inS: number, outS: number, scale: number): number[][] {
  const keys = (t: number) => {
    const a = Math.abs(t);
    return a <= 1 ? 1.5 * a ** 3 - 2.5 * a ** 2 + 1 : a <= 2 ? -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2 : 0;
  };
  const h = (t: number) => (scale < 1 ? scale * keys(scale * t) : keys(t));
  const width = scale < 1 ? 4 / scale : 4;
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
      while (idx < 1 || idx > inS) idx = idx < 1 ? 1 - idx : 2 * inS + 1 - idx; // mirror: 0 -> 1, inS+1 -> inS
      m[x - 1][idx - 1] += ws[k] / total;
    }
  }
  return m;
}

function matlabResizeRef(x: Float32Array, h: number, w: number, oh: number, ow: number, scale: [number, number]) {
  const mh = matlabMatrix(h, oh, scale[0]), mw = matlabMatrix(w, ow, scale[1]);
  const out = new Float64Array(oh * ow);
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++) {
      let acc = 0;
      for (let a = 0; a < h; a++) {
        if (mh[i][a] === 0) continue;
        for (let b = 0; b < w; b++) acc += mh[i][a] * mw[j][b] * x[a * w + b];
      }
      out[i * ow + j] = acc;
    }
  return out;
}

describe('upsample: nearest and bilinear (PyTorch)', () => {
  const cases: [number[], [number, number]][] = [[[1, 1, 4, 4], [8, 8]], [[2, 3, 5, 7], [3, 4]], [[1, 2, 3, 2], [7, 5]], [[1, 1, 1, 1], [3, 2]]];
  for (const mode of ['nearest', 'bilinear'] as const)
    for (const alignCorners of mode === 'bilinear' ? [false, true] : [false])
      it(`${mode}${alignCorners ? ' alignCorners' : ''} matches the reference and its gradient`, () => {
        for (const [shape, out] of cases) {
          const x = uniform(size(shape), 1);
          const y = lr.upsample(lr.tensor(x, shape), { size: out, mode, alignCorners });
          expect(y.shape).toEqual([shape[0], shape[1], ...out]);
          expectClose(y.data(), interpRef(x, shape, out[0], out[1], mode, alignCorners), 1e-5, 1e-4);
          gradcheck((t) => lr.upsample(t, { size: out, mode, alignCorners }), [{ data: x, shape }]);
        }
      });
  it('scaleFactor gives floor(in * s)', () => {
    const x = uniform(2 * 3 * 5, 2);
    const y = lr.upsample(lr.tensor(x, [1, 2, 3, 5]), { scaleFactor: 2, mode: 'bilinear' });
    expect(y.shape).toEqual([1, 2, 6, 10]);
    expectClose(y.data(), interpRef(x, [1, 2, 3, 5], 6, 10, 'bilinear', false, [2, 2]), 1e-5, 1e-4);
  });
});

describe('upsample: bicubic (MATLAB imresize)', () => {
  it('matches imresize\'s definition when shrinking (antialiased) and enlarging', () => {
    for (const [h, w, scale] of [[12, 12, 0.5], [9, 12, 1 / 3], [16, 8, 0.25], [5, 6, 2], [4, 7, 3], [7, 7, 0.6]] as [number, number, number][]) {
      const x = uniform(h * w, 3, 0, 1);
      const y = lr.upsample(lr.tensor(x, [1, 1, h, w]), { scaleFactor: scale, mode: 'bicubic' });
      const oh = Math.ceil(h * scale - 1e-6), ow = Math.ceil(w * scale - 1e-6);
      expect(y.shape).toEqual([1, 1, oh, ow]);
      expectClose(y.data(), matlabResizeRef(x, h, w, oh, ow, [scale, scale]), 1e-5, 1e-4);
    }
  });
  it('keeps a constant image constant and a ramp linear away from the borders', () => {
    const c = lr.upsample(lr.full([1, 1, 9, 9], 0.7), { scaleFactor: 1 / 3, mode: 'bicubic' });
    expectClose(c.data(), new Array(9).fill(0.7), 1e-6, 1e-6);
    const ramp = Float32Array.from({ length: 16 * 16 }, (_, i) => i % 16);
    const up = lr.upsample(lr.tensor(ramp, [1, 1, 16, 16]), { scaleFactor: 2, mode: 'bicubic' }).data();
    // Output column j samples input position u = (j + 1)/2 + 0.25 (1-based) -> value u - 1.
    for (const j of [6, 10, 17, 25]) expect(up[5 * 32 + j]).toBeCloseTo((j + 1) / 2 + 0.25 - 1, 4);
  });
  it('gradient is the transposed resampling', () => {
    gradcheck((t) => lr.upsample(t, { scaleFactor: 0.5, mode: 'bicubic' }), [{ data: uniform(64, 4), shape: [1, 1, 8, 8] }]);
    gradcheck((t) => lr.upsample(t, { size: [7, 5], mode: 'bicubic' }), [{ data: uniform(2 * 12, 5), shape: [1, 2, 4, 3] }]);
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
        const h = img.height - (img.height % scale), w = img.width - (img.width % scale);
        const y = new Float32Array(h * w);
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++) {
            const o = (i * img.width + j) * img.channels;
            y[i * w + j] = Math.round(16 + (65.481 * img.data[o] + 128.553 * img.data[o + 1] + 24.966 * img.data[o + 2]) / 255) / 255;
          }
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
        [hr, small].forEach((t) => t.dispose());
      }
      console.log(`Set5 bicubic x${scale}: ${(total / names.length).toFixed(3)} dB (published ${published[scale]})`);
      expect(Math.abs(total / names.length - published[scale])).toBeLessThan(0.05);
    }
  });

  it('rejects bad options', () => {
    const x = lr.zeros([1, 1, 4, 4]);
    expectError(() => lr.upsample(x, { mode: 'bilinear' }), TypeError, 'upsample', "'size'");
    expectError(() => lr.upsample(x, { size: 2, scaleFactor: 2 }), TypeError, "'size'");
    expectError(() => lr.upsample(x, { size: 0 }), RangeError, "'size'");
    expectError(() => lr.upsample(x, { scaleFactor: -1 }), RangeError, "'scaleFactor'");
    expectError(() => lr.upsample(x, { scaleFactor: 2, mode: 'area' as lr.UpsampleMode }), RangeError, "'mode'");
    expectError(() => lr.upsample(lr.zeros([4, 4]), { scaleFactor: 2 }), RangeError, "'x'");
  });
});

describe('pixelShuffle / pixelUnshuffle', () => {
  it('rearranges as the definition and invert each other', () => {
    const [n, c, r, h, w] = [2, 3, 2, 3, 4];
    const x = uniform(n * c * r * r * h * w, 6);
    const y = lr.pixelShuffle(lr.tensor(x, [n, c * r * r, h, w]), r);
    expect(y.shape).toEqual([n, c, h * r, w * r]);
    const yd = y.data();
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++)
        for (let i = 0; i < h * r; i++)
          for (let j = 0; j < w * r; j++) {
            const src = ((b * c * r * r + ch * r * r + (i % r) * r + (j % r)) * h + Math.floor(i / r)) * w + Math.floor(j / r);
            expect(yd[((b * c + ch) * h * r + i) * w * r + j]).toBe(x[src]);
          }
    expect(Array.from(lr.pixelUnshuffle(y, r).data())).toEqual(Array.from(x));
    gradcheck((t) => lr.pixelShuffle(t, 2), [{ data: uniform(2 * 4 * 2 * 3, 7), shape: [2, 4, 2, 3] }]);
    gradcheck((t) => lr.pixelUnshuffle(t, 2), [{ data: uniform(1 * 2 * 4 * 6, 8), shape: [1, 2, 4, 6] }]);
    expectError(() => lr.pixelShuffle(lr.zeros([1, 3, 2, 2]), 2), RangeError, 'pixel_shuffle', "'factor'");
    expectError(() => lr.pixelUnshuffle(lr.zeros([1, 1, 3, 4]), 2), RangeError, 'pixel_unshuffle', "'factor'");
  });
});
