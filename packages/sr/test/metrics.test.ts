import { describe, expect, it } from 'vitest';
import { gaussianWindow, lumaUint8, srScores, ssim } from '../src/index.js';
import type { RawImage } from '@lrface/datasets';

const gray = (w: number, h: number, f: (x: number, y: number) => number): RawImage<Uint8Array> => {
  const d = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d[y * w + x] = f(x, y);
  return { data: d, width: w, height: h, channels: 1 };
};

/** Direct SSIM: for every valid window position, weighted means/variances with the 2-D Gaussian (no separability). */
function naiveSsim(a: RawImage, b: RawImage, win = 11, sigma = 1.5): number {
  const c1 = (0.01 * 255) ** 2, c2 = (0.03 * 255) ** 2;
  const r = (win - 1) / 2;
  const g: number[][] = [];
  let s = 0;
  for (let i = 0; i < win; i++) {
    g.push([]);
    for (let j = 0; j < win; j++) {
      const v = Math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sigma * sigma));
      g[i].push(v);
      s += v;
    }
  }
  let total = 0, n = 0;
  for (let y = 0; y + win <= a.height; y++)
    for (let x = 0; x + win <= a.width; x++) {
      let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
      for (let i = 0; i < win; i++)
        for (let j = 0; j < win; j++) {
          const w = g[i][j] / s;
          const p = a.data[(y + i) * a.width + x + j], q = b.data[(y + i) * b.width + x + j];
          mx += w * p; my += w * q; sxx += w * p * p; syy += w * q * q; sxy += w * p * q;
        }
      const vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
      total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      n++;
    }
  return total / n;
}

describe('ssim', () => {
  it('builds a normalised, symmetric Gaussian window', () => {
    const g = gaussianWindow(11, 1.5);
    expect(g.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(g[0]).toBeCloseTo(g[10], 15);
    // Hand value: exp(-25 / 4.5) relative to the centre.
    expect(g[0] / g[5]).toBeCloseTo(Math.exp(-25 / 4.5), 12);
  });

  it('is 1 for identical images', () => {
    const a = gray(20, 16, (x, y) => (x * 13 + y * 7) % 256);
    expect(ssim(a, a)).toBeCloseTo(1, 12);
  });

  it('matches the hand value for two constant images (only the luminance term remains)', () => {
    const a = gray(11, 11, () => 100);
    const b = gray(11, 11, () => 120);
    const c1 = (0.01 * 255) ** 2;
    expect(ssim(a, b)).toBeCloseTo((2 * 100 * 120 + c1) / (100 ** 2 + 120 ** 2 + c1), 12);
  });

  it('matches a direct (non-separable) implementation on textured images, with and without a border', () => {
    const a = gray(31, 27, (x, y) => Math.round(128 + 100 * Math.sin(x * 0.7) * Math.cos(y * 0.4)));
    const b = gray(31, 27, (x, y) => Math.min(255, Math.max(0, a.data[y * 31 + x] + ((x * 7 + y * 3) % 11) - 5)));
    expect(ssim(a, b)).toBeCloseTo(naiveSsim(a, b), 10);
    const crop = (img: RawImage, k: number) => gray(img.width - 2 * k, img.height - 2 * k, (x, y) => img.data[(y + k) * img.width + x + k]);
    expect(ssim(a, b, { border: 3 })).toBeCloseTo(naiveSsim(crop(a, 3), crop(b, 3)), 10);
    expect(ssim(a, b)).toBeLessThan(1);
  });

  it('rejects bad input with the argument named', () => {
    const a = gray(12, 12, () => 0);
    expect(() => ssim(a, gray(13, 12, () => 0))).toThrow(/ssim: 'b' must be the size of 'a'/);
    expect(() => ssim({ ...a, channels: 3, data: new Uint8Array(432) }, a)).toThrow(RangeError);
    expect(() => ssim(a, a, { border: 1 })).toThrow(/at least 11x11/);
    expect(() => ssim(a, a, { windowSize: 4 })).toThrow(/'windowSize' must be an odd integer/);
    expect(() => ssim(a, a, { sigma: 0 })).toThrow(/'sigma'/);
    expect(() => ssim(null as unknown as RawImage, a)).toThrow(TypeError);
  });
});

describe('Y metrics', () => {
  it('computes MATLAB rgb2ycbcr Y of 8-bit RGB (hand values)', () => {
    const rgb: RawImage<Uint8Array> = { data: Uint8Array.from([0, 0, 0, 255, 255, 255, 255, 0, 0, 10, 200, 30]), width: 4, height: 1, channels: 3 };
    // 16 + (65.481 R + 128.553 G + 24.966 B) / 255, rounded.
    expect([...lumaUint8(rgb).data]).toEqual([16, 235, Math.round(16 + 65.481), Math.round(16 + (654.81 + 25710.6 + 748.98) / 255)]);
    expect(() => lumaUint8({ data: new Float32Array(3), width: 1, height: 1, channels: 3 })).toThrow(TypeError);
  });

  it('scores PSNR and SSIM on Y with the border shaved', () => {
    const hr = gray(24, 24, (x, y) => (x * 9 + y * 5) % 250);
    const sr = gray(24, 24, (x, y) => hr.data[y * 24 + x] + (x >= 2 && x < 22 && y >= 2 && y < 22 ? 2 : 0));
    // Inside the 2-px border every pixel is off by 2: MSE 4.
    const s = srScores(sr, hr, 2);
    expect(s.psnr).toBeCloseTo(10 * Math.log10((255 * 255) / 4), 10);
    expect(s.ssim).toBeLessThan(1);
    expect(() => srScores(sr, gray(20, 24, () => 0), 2)).toThrow(/srScores: 'hr'/);
  });
});
