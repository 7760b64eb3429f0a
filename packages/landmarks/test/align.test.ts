import { describe, expect, it } from 'vitest';
import { tensor } from '@lrface/cuda-core';
import { invertAffine, transformPoints, type Affine, type RawImage } from '@lrface/datasets';
import { ARCFACE_TEMPLATE_112, alignFace, estimateSimilarity, scaledTemplate } from '../src/index.js';

const T = Array.from(ARCFACE_TEMPLATE_112);

function similarity(scale: number, theta: number, tx: number, ty: number): Affine {
  const c = Math.cos(theta) * scale;
  const s = Math.sin(theta) * scale;
  return [c, -s, tx, s, c, ty];
}

/** Independent reference: x' = p x - q y + tx, y' = q x + p y + ty is linear in (p, q, tx, ty); solve the normal equations. */
function linearLeastSquares(src: number[], dst: number[]): Affine {
  const A: number[][] = [];
  const b: number[] = [];
  for (let k = 0; k < src.length / 2; k++) {
    const [x, y] = [src[2 * k], src[2 * k + 1]];
    A.push([x, -y, 1, 0]);
    b.push(dst[2 * k]);
    A.push([y, x, 0, 1]);
    b.push(dst[2 * k + 1]);
  }
  const N = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => A.reduce((s, r) => s + r[i] * r[j], 0)));
  const r = [0, 1, 2, 3].map((i) => A.reduce((s, row, k) => s + row[i] * b[k], 0));
  // Gaussian elimination with partial pivoting.
  for (let i = 0; i < 4; i++) {
    let piv = i;
    for (let k = i + 1; k < 4; k++) if (Math.abs(N[k][i]) > Math.abs(N[piv][i])) piv = k;
    [N[i], N[piv]] = [N[piv], N[i]];
    [r[i], r[piv]] = [r[piv], r[i]];
    for (let k = i + 1; k < 4; k++) {
      const f = N[k][i] / N[i][i];
      for (let j = i; j < 4; j++) N[k][j] -= f * N[i][j];
      r[k] -= f * r[i];
    }
  }
  const x = [0, 0, 0, 0];
  for (let i = 3; i >= 0; i--) x[i] = (r[i] - [0, 1, 2, 3].slice(i + 1).reduce((s, j) => s + N[i][j] * x[j], 0)) / N[i][i];
  const [p, q, tx, ty] = x;
  return [p, -q, tx, q, p, ty];
}

describe('estimateSimilarity', () => {
  it('recovers a known similarity exactly', () => {
    const m = similarity(1.7, 0.35, -12.5, 40.25);
    const src = Array.from(transformPoints(T, invertAffine(m)));
    const fit = estimateSimilarity(src, T);
    for (let i = 0; i < 6; i++) expect(fit.affine[i]).toBeCloseTo(m[i], 4); // Float32 points
    expect(fit.scale).toBeCloseTo(1.7, 5);
    expect(fit.rotation).toBeCloseTo(0.35, 5);
    expect(fit.reflection).toBe(false);
    expect(fit.rmse).toBeLessThan(1e-4);
    // Float64 input: to rounding.
    const src64 = Float64Array.from({ length: 10 }, (_, i) => T[i] * 0.5 + (i % 2 ? 7 : -3));
    const dst64 = Float64Array.from({ length: 10 }, (_, k) => {
      const j = k - (k % 2);
      const [x, y] = [src64[j], src64[j + 1]];
      return k % 2 === 0 ? m[0] * x + m[1] * y + m[2] : m[3] * x + m[4] * y + m[5];
    });
    const exact = estimateSimilarity(src64, dst64);
    for (let i = 0; i < 6; i++) expect(exact.affine[i]).toBeCloseTo(m[i], 10);
  });

  it('matches the linear least-squares solution on noisy points', () => {
    const src = [10, 12, 40, 11, 26, 30, 14, 45, 37, 47, 25, 60];
    const dst = [31.2, 50.1, 70.9, 52.3, 54.0, 73.8, 40.3, 93.1, 72.2, 90.0, 57.5, 108.4];
    const fit = estimateSimilarity(src, dst);
    const ref = linearLeastSquares(src, dst);
    for (let i = 0; i < 6; i++) expect(fit.affine[i]).toBeCloseTo(ref[i], 9);
    expect(fit.rmse).toBeGreaterThan(0.1);
  });

  it('keeps a proper rotation for mirrored points unless reflections are allowed', () => {
    const mirror: Affine = [-1.2, 0, 150, 0, 1.2, 10]; // a horizontal flip and a scale
    const src = T;
    const dst = Array.from(transformPoints(src, mirror));
    const proper = estimateSimilarity(src, dst);
    expect(proper.reflection).toBe(false);
    expect(proper.affine[0] * proper.affine[4] - proper.affine[1] * proper.affine[3]).toBeGreaterThan(0);
    expect(proper.rmse).toBeGreaterThan(1);
    const free = estimateSimilarity(src, dst, { allowReflection: true });
    expect(free.reflection).toBe(true);
    for (let i = 0; i < 6; i++) expect(free.affine[i]).toBeCloseTo(mirror[i], 5); // Float32 points
    expect(free.rmse).toBeLessThan(1e-4);
    // A proper fit is kept when reflections are allowed but do not fit better.
    expect(estimateSimilarity(src, T, { allowReflection: true }).reflection).toBe(false);
  });

  it('maps the template onto itself with the identity', () => {
    const fit = estimateSimilarity(T, T);
    const id = [1, 0, 0, 0, 1, 0];
    for (let i = 0; i < 6; i++) expect(fit.affine[i]).toBeCloseTo(id[i], 12);
  });

  it('rejects bad input', () => {
    expect(() => estimateSimilarity([1, 2], [1, 2])).toThrow(/estimateSimilarity: 'src' must be an even number of coordinates for 2 or more points/);
    expect(() => estimateSimilarity(T, T.slice(2))).toThrow(/'dst' must be 5 points like src, got 4 points/);
    expect(() => estimateSimilarity([1, 1, 1, 1], [0, 0, 1, 1])).toThrow(/coincident/);
    expect(() => estimateSimilarity([NaN, 1, 2, 3], [0, 0, 1, 1])).toThrow(/src\[0\] = NaN/);
    expect(() => estimateSimilarity('ab' as never, T)).toThrow(TypeError);
    expect(() => estimateSimilarity(T, T, { allowReflection: 1 as never })).toThrow(TypeError);
  });
});

/** A grey image with a small bright Gaussian blob centred at (x, y). */
function markerImage(W: number, H: number, x: number, y: number): RawImage<Float32Array> {
  const data = new Float32Array(W * H);
  for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) data[j * W + i] = 10 + 200 * Math.exp(-((i - x) ** 2 + (j - y) ** 2) / (2 * 1.2 ** 2));
  return { data, width: W, height: H, channels: 1 };
}

/** Centroid of the marker (values above the background). */
function centroid(img: RawImage<Float32Array>): [number, number] {
  let sx = 0;
  let sy = 0;
  let sw = 0;
  for (let j = 0; j < img.height; j++)
    for (let i = 0; i < img.width; i++) {
      const w = Math.max(0, img.data[j * img.width + i] - 10);
      sx += w * i;
      sy += w * j;
      sw += w;
    }
  return [sx / sw, sy / sw];
}

describe('alignFace', () => {
  it('moves a point marker where the transform says', () => {
    // The face's 5 points are the template pulled back through a known similarity m.
    const m = similarity(1.4, -0.3, -60, 25);
    const points = transformPoints(T, invertAffine(m));
    const marker = [70.3, 50.6];
    const img = markerImage(160, 140, marker[0], marker[1]);
    const out = alignFace(img, points);
    expect([out.image.width, out.image.height, out.image.channels]).toEqual([112, 112, 1]);
    for (let i = 0; i < 6; i++) expect(out.affine[i]).toBeCloseTo(m[i], 4);
    const [ex, ey] = transformPoints(marker, m);
    const [cx, cy] = centroid(out.image);
    expect(Math.hypot(cx - ex, cy - ey)).toBeLessThan(0.15);
  });

  it('leaves a face already in the template frame unchanged, and template points land on themselves', () => {
    const img = markerImage(112, 112, 56, 71.7);
    const out = alignFace(img, T);
    expect(out.rmse).toBeLessThan(1e-9);
    let maxDiff = 0;
    for (let i = 0; i < img.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.image.data[i] - img.data[i]));
    expect(maxDiff).toBeLessThan(1e-3);
    // At another size the template is scaled with aligned pixel centres.
    const big = alignFace(markerImage(224, 224, 10, 10), scaledTemplate(T, [112, 112], [224, 224]), { size: [224, 224] });
    expect(big.rmse).toBeLessThan(1e-9);
    expect(Array.from(scaledTemplate([0, 0, 111, 111], [112, 112], [224, 224]))).toEqual([0.5, 0.5, 222.5, 222.5]);
  });

  it('reduces 68 points to 5 and takes a custom template and output size', () => {
    // 68 points whose eye means, nose tip and mouth corners sit on a 5-point target.
    const five = [20, 30, 60, 30, 40, 50, 25, 70, 55, 70];
    const lm = new Float32Array(136);
    const put = (k: number, x: number, y: number): void => {
      lm[2 * k] = x;
      lm[2 * k + 1] = y;
    };
    for (let k = 36; k < 42; k++) put(k, 20 + (k - 38.5), 30);
    for (let k = 42; k < 48; k++) put(k, 60 + (k - 44.5), 30);
    put(30, 40, 50);
    put(48, 25, 70);
    put(54, 55, 70);
    const template = five.map((v, i) => (i % 2 === 0 ? v / 2 : v / 2 + 5));
    const out = alignFace({ data: new Uint8Array(100 * 90 * 3), width: 100, height: 90, channels: 3 }, lm, { template, templateSize: [64, 48], size: [64, 48] });
    expect([out.image.width, out.image.height, out.image.channels]).toEqual([48, 64, 3]);
    expect(out.image.data).toBeInstanceOf(Uint8Array);
    expect(out.rmse).toBeLessThan(1e-4);
    expect(out.affine[0]).toBeCloseTo(0.5, 6);
    expect(out.affine[5]).toBeCloseTo(5, 5);
  });

  it('warps CHW tensors like images', () => {
    const m = similarity(0.8, 0.2, 10, -5);
    const points = transformPoints(T, invertAffine(m));
    const img = markerImage(128, 128, 60, 64);
    const rgb = new Float32Array(3 * 128 * 128);
    for (let c = 0; c < 3; c++) for (let q = 0; q < 128 * 128; q++) rgb[c * 128 * 128 + q] = img.data[q] * (c + 1);
    const t = alignFace(tensor(rgb, [1, 3, 128, 128]), points);
    expect(t.image.shape).toEqual([1, 3, 112, 112]);
    const ref = alignFace(img, points).image;
    const data = t.image.data() as Float32Array;
    for (const q of [0, 5000, 112 * 56 + 56]) for (let c = 0; c < 3; c++) expect(data[c * 112 * 112 + q]).toBeCloseTo(ref.data[q] * (c + 1), 3);
    expect(alignFace(tensor(rgb, [3, 128, 128]), points).image.shape).toEqual([3, 112, 112]);
  });

  it('rejects bad input', () => {
    const img = markerImage(32, 32, 5, 5);
    expect(() => alignFace(img, [1, 2, 3, 4, 5, 6])).toThrow(/alignFace: 'landmarks' must be 5, 68, 21 or 19 points, got 3 points/);
    expect(() => alignFace(img, T, { size: [0, 112] })).toThrow(/'size' must be a \[height, width\] pair/);
    expect(() => alignFace(img, T, { scale: 2 } as never)).toThrow(/'scale' must be one of the known options/);
    expect(() => alignFace(img, T, { template: [1, 2, 3, 4] })).toThrow(/2 points like the template/);
    expect(() => alignFace({ data: new Uint8Array(5), width: 2, height: 2, channels: 3 }, T)).toThrow(/alignFace/);
    expect(() => alignFace(tensor(new Float32Array(8), [2, 1, 2, 2]), T)).toThrow(/\[C, H, W\] or \[1, C, H, W\]/);
    expect(() => alignFace(tensor(new Int32Array(4), [1, 2, 2]), T)).toThrow(/float32 tensor/);
    expect(() => alignFace(img, T, { fill: 'mirror' as never })).toThrow(/warpAffine: 'fill'/);
  });
});
