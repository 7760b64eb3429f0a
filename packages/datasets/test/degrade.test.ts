import { join } from 'node:path';
import { tensor, type Tensor } from '@lrface/cuda-core';
import { describe, expect, it } from 'vitest';
import {
  bicubicDegrade, bicubicDownsample, bicubicResize, blurPool, decodeImage, degrade, gaussianNoise, imageToTensor, jpegImage, jpegTensor,
  modcrop, noiseImage, psnr, tensorToImage, Rng, type RawImage,
} from '../src/index.js';
import { data, expectArgError, have } from './helpers.js';

/** MATLAB imresize along one axis, written from its documentation (contributions(), 'bicubic', symmetric borders). */
function matlabResize1d(input: number[], outLen: number, scale: number, antialias = true): number[] {
  const cubic = (x: number) => {
    const a = Math.abs(x);
    return a <= 1 ? 1.5 * a ** 3 - 2.5 * a ** 2 + 1 : a <= 2 ? -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2 : 0;
  };
  const shrink = scale < 1 && antialias;
  const width = shrink ? 4 / scale : 4;
  const n = input.length;
  const out: number[] = [];
  for (let x = 1; x <= outLen; x++) {
    const u = x / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - width / 2);
    const P = Math.ceil(width) + 2;
    let total = 0;
    let acc = 0;
    for (let p = 0; p < P; p++) {
      const j = left + p; // 1-based source position
      const w = shrink ? scale * cubic(scale * (u - j)) : cubic(u - j);
      // Symmetric padding: positions outside 1..n reflect, repeating the edge sample.
      let k = j;
      while (k < 1 || k > n) k = k < 1 ? 1 - k : 2 * n + 1 - k;
      acc += w * input[k - 1];
      total += w;
    }
    out.push(acc / total);
  }
  return out;
}

/** Separable reference on a [N, C, H, W] array: along H first, then W. */
function matlabResize2d(x: Float32Array, shape: number[], outH: number, outW: number, sh: number, sw: number): Float64Array {
  const [n, c, h, w] = shape;
  const out = new Float64Array(n * c * outH * outW);
  for (let p = 0; p < n * c; p++) {
    const cols: number[][] = [];
    for (let j = 0; j < w; j++) cols.push(matlabResize1d(Array.from({ length: h }, (_, i) => x[p * h * w + i * w + j]), outH, sh));
    for (let i = 0; i < outH; i++) {
      const row = matlabResize1d(cols.map((col) => col[i]), outW, sw);
      for (let j = 0; j < outW; j++) out[p * outH * outW + i * outW + j] = row[j];
    }
  }
  return out;
}

function random(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.next());
}

describe('degradations', () => {
  it('bicubic resizing equals MATLAB imresize written from its documented kernel', async () => {
    const cases: [number[], { scale?: number; size?: [number, number] }, [number, number]][] = [
      [[2, 3, 12, 10], { scale: 1 / 2 }, [6, 5]],
      [[1, 2, 9, 7], { scale: 1 / 3 }, [3, 3]],
      [[1, 1, 5, 4], { scale: 2 }, [10, 8]],
      [[1, 1, 4, 5], { scale: 3 }, [12, 15]],
      [[1, 2, 11, 13], { size: [8, 5] }, [8, 5]],
      [[1, 1, 7, 6], { size: [11, 2] }, [11, 2]],
    ];
    for (const [shape, opt, [oh, ow]] of cases) {
      const x = random(shape.reduce((a, b) => a * b, 1), shape[2] * 31 + shape[3]);
      const y = bicubicResize(tensor(x, shape), opt);
      expect(y.shape).toEqual([shape[0], shape[1], oh, ow]);
      const ref = matlabResize2d(x, shape, oh, ow, opt.scale ?? oh / shape[2], opt.scale ?? ow / shape[3]);
      const got = y.data();
      for (let i = 0; i < ref.length; i++) expect(got[i]).toBeCloseTo(ref[i], 5);
      y.dispose();
    }
  });

  it('reproduces linear ramps in the interior (the cubic kernel with a = -0.5 is exact for them)', async () => {
    // Source sample j (1-based) holds j; output x then holds u = x / s + (1 - 1 / s) / 2.
    for (const s of [1 / 4, 1 / 2, 2, 3]) {
      const n = 24;
      const x = tensor(Float32Array.from({ length: n }, (_, i) => i + 1), [1, 1, 1, n]);
      const out = Math.ceil(n * s);
      const y = bicubicResize(x, { size: [1, out] }).data();
      const margin = Math.ceil((s < 1 ? 4 / s : 4) * s) + 2;
      for (let k = margin; k < out - margin; k++) expect(y[k]).toBeCloseTo((k + 1) / s + 0.5 * (1 - 1 / s), 4);
    }
  });

  it.skipIf(!have('set5/baby_GT.png'))('gives the published Set5 bicubic PSNR: 33.66 / 30.39 / 28.42 dB (Y, border = scale)', async () => {
    const published: Record<number, number> = { 2: 33.66, 3: 30.39, 4: 28.42 };
    for (const scale of [2, 3, 4]) {
      let total = 0;
      for (const name of ['baby', 'bird', 'butterfly', 'head', 'woman']) {
        // Y of the modcropped ground truth, down and up with imresize, the result stored as 8 bits.
        const y = modcrop(await decodeImage(join(data, `set5/${name}_GT.png`), { color: 'y' }), scale);
        const [hr, deg] = bicubicDegrade(imageToTensor(y), scale);
        total += psnr(tensorToImage(hr), tensorToImage(deg), { border: scale });
        hr.dispose();
        deg.dispose();
      }
      expect(Math.abs(total / 5 - published[scale])).toBeLessThan(0.005);
    }
    // PSNR on RGB input with y: true equals PSNR of the Y channels.
    const rgb = modcrop(await decodeImage(join(data, 'set5/head_GT.png')), 2);
    const [hr, lr] = bicubicDownsample(imageToTensor(rgb), 2);
    expect(lr.shape).toEqual([1, 3, rgb.height / 2, rgb.width / 2]);
    const up = bicubicResize(lr, { scale: 2 });
    const a = psnr(hr, up, { y: true, peak: 1, border: 2 });
    const b = psnr(tensorToImage(hr, { float: true }), tensorToImage(up, { float: true }), { y: true, border: 2 });
    expect(a).toBeCloseTo(b, 3);
    expect(a).toBeGreaterThan(25);
  });

  it('blurs then average-pools (the LR-landmark sub-sampling)', async () => {
    const shape = [1, 2, 9, 12];
    const x = random(2 * 9 * 12, 5);
    const sigma = 1.2;
    const y = blurPool(tensor(x, shape), { factor: 3, sigma }).data();
    // Reference: normalised Gaussian of size 2*ceil(3 sigma)+1, replicated borders, then 3x3 means.
    const r = Math.ceil(3 * sigma);
    const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
    const ks = k.reduce((a, b) => a + b, 0);
    const at = (p: number, i: number, j: number) => x[p * 108 + Math.min(8, Math.max(0, i)) * 12 + Math.min(11, Math.max(0, j))];
    for (let p = 0; p < 2; p++)
      for (let oi = 0; oi < 3; oi++)
        for (let oj = 0; oj < 4; oj++) {
          let acc = 0;
          for (let di = 0; di < 3; di++)
            for (let dj = 0; dj < 3; dj++) {
              const i = oi * 3 + di;
              const j = oj * 3 + dj;
              let b = 0;
              for (let a = -r; a <= r; a++) for (let c = -r; c <= r; c++) b += (k[a + r] * k[c + r] * at(p, i + a, j + c)) / (ks * ks);
              acc += b / 9;
            }
          expect(y[p * 12 + oi * 4 + oj]).toBeCloseTo(acc, 5);
        }
    expect(blurPool(tensor(x, shape), { factor: 2, sigma: 0 }).shape).toEqual([1, 2, 4, 6]);
    await expectArgError(() => blurPool(tensor(x, shape), { factor: 0 }), RangeError, 'blurPool', 'factor');
  });

  it('adds seeded Gaussian noise', async () => {
    const x = tensor(new Float32Array(100000).fill(0.5), [1, 1, 250, 400]);
    const a = gaussianNoise(x, { std: 0.1, seed: 7 }).data();
    const b = gaussianNoise(x, { std: 0.1, seed: 7 }).data();
    const c = gaussianNoise(x, { std: 0.1, seed: 8 }).data();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    let m = 0;
    let v = 0;
    for (const t of a) m += t;
    m /= a.length;
    for (const t of a) v += (t - m) ** 2;
    expect(m).toBeCloseTo(0.5, 2);
    expect(Math.sqrt(v / a.length)).toBeCloseTo(0.1, 2);
    const clamped = gaussianNoise(x, { std: 1, seed: 1, clamp: [0, 1] }).data();
    expect(Math.min(...clamped.subarray(0, 5000))).toBe(0);
    const img: RawImage<Uint8Array> = { data: new Uint8Array(3000).fill(128), width: 100, height: 10, channels: 3 };
    const n1 = noiseImage(img, { std: 5, seed: 3 });
    expect(Buffer.from(n1.data).equals(Buffer.from(noiseImage(img, { std: 5, seed: 3 }).data))).toBe(true);
    expect(n1.data.some((q) => q !== 128)).toBe(true);
    await expectArgError(() => gaussianNoise(x, { std: -1 }), RangeError, 'gaussianNoise', 'std');
  });

  it.skipIf(!have('lfw/images/Anthony_Hopkins_0001.jpg'))('round-trips JPEG at a quality, deterministically', async () => {
    const img = await decodeImage(join(data, 'lfw/images/Anthony_Hopkins_0001.jpg'));
    const q10 = await jpegImage(img, 10);
    const q90 = await jpegImage(img, 90);
    expect([q10.width, q10.height, q10.channels]).toEqual([250, 250, 3]);
    expect(Buffer.from(q10.data).equals(Buffer.from((await jpegImage(img, 10)).data))).toBe(true);
    expect(psnr(q90, img)).toBeGreaterThan(psnr(q10, img) + 5);
    const y = await decodeImage(join(data, 'lfw/images/Anthony_Hopkins_0001.jpg'), { color: 'y' });
    expect((await jpegImage(y, 50)).channels).toBe(1);
    const t = imageToTensor(img);
    const jt = await jpegTensor(t, 10);
    expect(jt.shape).toEqual(t.shape);
    expect(psnr(tensorToImage(jt), q10)).toBe(Infinity);
  });

  it('chains steps reproducibly from one seed; modcrops', async () => {
    const x = tensor(random(3 * 24 * 20, 9), [1, 3, 24, 20]);
    const steps = [{ op: 'blurPool', factor: 2, sigma: 1 }, { op: 'noise', std: 0.02 }, { op: 'jpeg', quality: 60 }, { op: 'bicubic', scale: 2 }, { op: 'upsample', scale: 4 }] as const;
    const a = await degrade(x, [...steps], 11);
    const b = await degrade(x, [...steps], 11);
    expect(a.shape).toEqual([1, 3, 24, 20]);
    expect(Array.from(a.data())).toEqual(Array.from(b.data()));
    await expect(degrade(x, [{ op: 'sharpen' } as never])).rejects.toThrow(/degrade: 'steps\[0\]\.op' must be one of/);
    // Every field is honoured: a blurPool step is blurPool with the step's factor and sigma ...
    const pooled = await degrade(x, [{ op: 'blurPool', factor: 2, sigma: 3 }]);
    expect(Array.from(pooled.data())).toEqual(Array.from(blurPool(x, { factor: 2, sigma: 3 }).data()));
    expect(Array.from(pooled.data())).not.toEqual(Array.from(blurPool(x, { factor: 2 }).data()));
    // ... and a misspelt one is refused, where it would leave sigma at its default.
    await expect(degrade(x, [{ op: 'noise', std: 0.1 }, { op: 'blurPool', factor: 2, sigm: 3 } as never])).rejects.toThrow(
      new TypeError("degrade: 'sigm' must be one of the known steps[1] fields (op, factor, sigma), got an unknown steps[1] field"),
    );
    await expect(degrade(x, [{ op: 'bicubic', factor: 2 } as never])).rejects.toThrow(new TypeError("degrade: 'factor' must be one of the known steps[0] fields (op, scale), got an unknown steps[0] field"));
    await expect(degrade(x, [{ op: 'jpeg', quality: 50, qualty: 10 } as never])).rejects.toThrow(/^degrade: 'qualty' must be one of the known steps\[0\] fields \(op, quality\)/);
    const img: RawImage<Uint8Array> = { data: Uint8Array.from({ length: 7 * 5 }, (_, i) => i), width: 7, height: 5, channels: 1 };
    const m = modcrop(img, 3);
    expect([m.width, m.height, Array.from(m.data.subarray(0, 8))]).toEqual([6, 3, [0, 1, 2, 3, 4, 5, 7, 8]]);
    const mt = modcrop(tensor(Float32Array.from({ length: 35 }, (_, i) => i), [1, 1, 5, 7]), 3) as Tensor;
    expect([mt.shape, Array.from(mt.data()).slice(0, 8)]).toEqual([[1, 1, 3, 6], [0, 1, 2, 3, 4, 5, 7, 8]]);
  });
});
