import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AFLW19_NAMES, AFLW21_NAMES, LazyImage, MIRROR_19, MIRROR_21, MIRROR_5, MIRROR_68, Rng, applyAffine, augmentFace, augmentFaceFrom, colorJitter,
  composeAffine, cropAffine, decodeImage, invertAffine, mirrorMapFor, randomAugmentation, transformBox, transformPoints, warpAffine, writeImage,
  type Affine, type RawImage,
} from '../src/index.js';
import { data, expectArgError, have, tmp } from './helpers.js';

function randomImage(w: number, h: number, c: number, seed: number): RawImage<Float32Array> {
  const r = new Rng(seed);
  return { data: Float32Array.from({ length: w * h * c }, () => r.next() * 255), width: w, height: h, channels: c };
}

/** Naive bilinear warp with zero outside (the reference). */
function naiveWarp(img: RawImage, m: Affine, w: number, h: number): Float64Array {
  const inv = invertAffine(m);
  const out = new Float64Array(w * h * img.channels);
  const at = (x: number, y: number, c: number) => (x < 0 || y < 0 || x >= img.width || y >= img.height ? 0 : img.data[(y * img.width + x) * img.channels + c]);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const sx = inv[0] * x + inv[1] * y + inv[2];
      const sy = inv[3] * x + inv[4] * y + inv[5];
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      for (let c = 0; c < img.channels; c++)
        out[(y * w + x) * img.channels + c] = (1 - fx) * (1 - fy) * at(x0, y0, c) + fx * (1 - fy) * at(x0 + 1, y0, c) + (1 - fx) * fy * at(x0, y0 + 1, c) + fx * fy * at(x0 + 1, y0 + 1, c);
    }
  return out;
}

describe('augmentation', () => {
  it('warps by inverse-mapped bilinear sampling', async () => {
    const img = randomImage(23, 17, 3, 1);
    const id = warpAffine(img, [1, 0, 0, 0, 1, 0], 23, 17);
    expect(Array.from(id.data)).toEqual(Array.from(img.data));
    const shifted = warpAffine(img, [1, 0, 2, 0, 1, -3], 23, 17);
    expect(shifted.data[(5 * 23 + 7) * 3 + 1]).toBe(img.data[(8 * 23 + 5) * 3 + 1]);
    for (const seed of [2, 3, 4]) {
      const r = new Rng(seed);
      const th = r.uniform(-1, 1);
      const s = r.uniform(0.6, 1.6);
      const m: Affine = [s * Math.cos(th), -s * Math.sin(th), r.uniform(-5, 5), s * Math.sin(th), s * Math.cos(th), r.uniform(-5, 5)];
      const got = warpAffine(img, m, 19, 21, { antialias: false });
      const ref = naiveWarp(img, m, 19, 21);
      for (let i = 0; i < ref.length; i++) expect(got.data[i]).toBeCloseTo(ref[i], 3);
    }
    // 8-bit images are rounded and keep their type.
    const u8: RawImage<Uint8Array> = { data: Uint8Array.from(img.data, (v) => Math.floor(v)), width: 23, height: 17, channels: 3 };
    const m: Affine = [0.9, 0.1, 1.3, -0.1, 0.9, 0.7];
    const g = warpAffine(u8, m, 20, 15, { antialias: false });
    expect(g.data).toBeInstanceOf(Uint8Array);
    const ref = naiveWarp(u8, m, 20, 15);
    for (let i = 0; i < ref.length; i++) expect(Math.abs(g.data[i] - ref[i])).toBeLessThanOrEqual(0.5 + 1e-9);
  });

  it('averages before shrinking 2x or more, so fine patterns do not alias', async () => {
    const w = 64;
    const checker: RawImage<Float32Array> = { data: Float32Array.from({ length: w * w }, (_, i) => ((i % w) + Math.floor(i / w)) % 2 ? 255 : 0), width: w, height: w, channels: 1 };
    const m: Affine = [0.25, 0, 0, 0, 0.25, 0];
    const aa = warpAffine(checker, m, 16, 16);
    const raw = warpAffine(checker, m, 16, 16, { antialias: false });
    for (let y = 1; y < 15; y++) for (let x = 1; x < 15; x++) expect(aa.data[y * 16 + x]).toBeCloseTo(127.5, 3);
    // Point sampling every 4th pixel sees one colour of the checkerboard: the mean is lost.
    for (let y = 1; y < 15; y++) for (let x = 1; x < 15; x++) expect(Math.abs(raw.data[y * 16 + x] - 127.5)).toBeGreaterThan(100);
    // 'replicate' extends edges instead of zeros.
    const edge = warpAffine(checker, [1, 0, 5, 0, 1, 0], 8, 8, { fill: 'replicate' });
    expect(edge.data[0]).toBe(checker.data[0]);
  });

  it('mirror maps are involutions that swap left and right', async () => {
    for (const [map, n] of [[MIRROR_68, 68], [MIRROR_21, 21], [MIRROR_19, 19], [MIRROR_5, 5]] as const) {
      expect(map.length).toBe(n);
      expect(mirrorMapFor(n)).toBe(map);
      map.forEach((j, i) => expect(map[j]).toBe(i));
    }
    const swap = (s: string) => s.replace(/Left|Right/g, (m) => (m === 'Left' ? 'Right' : 'Left'));
    AFLW21_NAMES.forEach((name, i) => expect(AFLW21_NAMES[MIRROR_21[i]]).toBe(swap(name)));
    AFLW19_NAMES.forEach((name, i) => expect(AFLW19_NAMES[MIRROR_19[i]]).toBe(swap(name)));
    // 68-point scheme: jaw ends, outer eye corners, mouth corners swap; nose tip and chin stay.
    expect([MIRROR_68[0], MIRROR_68[36], MIRROR_68[39], MIRROR_68[48], MIRROR_68[30], MIRROR_68[8], MIRROR_68[62], MIRROR_68[66]]).toEqual([16, 45, 42, 54, 30, 8, 62, 66]);
    expect(() => mirrorMapFor(7)).toThrow(RangeError);
  });

  it('moves landmarks with the pixels under random scale, rotation, translation and flip', async () => {
    // Five coloured dots at the 5-point landmarks; after augmentation point i must sit on the dot
    // of original point i (or of its mirror partner when the output is flipped).
    const W = 120;
    const H = 100;
    const pts = [40, 40, 80, 40, 60, 60, 45, 78, 75, 78];
    const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]];
    const img: RawImage<Uint8Array> = { data: new Uint8Array(W * H * 3), width: W, height: H, channels: 3 };
    pts.forEach((_, k) => {
      if (k % 2) return;
      const [x, y] = [pts[k], pts[k + 1]];
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) img.data.set(colours[k / 2], ((y + dy) * W + x + dx) * 3);
    });
    const vis = Uint8Array.from([1, 1, 0, 1, 1]);
    let flips = 0;
    for (let seed = 0; seed < 12; seed++) {
      const out = augmentFace({ image: img, boxes: [{ x: 30, y: 25, width: 60, height: 65 }], landmarks: [Float32Array.from(pts)], visibility: [vis] }, seed, { size: [64, 64], margin: 0.15, jitter: false });
      const flipped = out.params!.flip;
      if (flipped) flips++;
      for (let i = 0; i < 5; i++) {
        const src = flipped ? MIRROR_5[i] : i;
        const [x, y] = [out.landmarks![0][2 * i], out.landmarks![0][2 * i + 1]];
        // The dot's colour dominates at the landmark (sampled at the nearest pixel).
        const px = Math.round(x);
        const py = Math.round(y);
        if (px < 1 || py < 1 || px > 62 || py > 62) continue;
        const o = (py * 64 + px) * 3;
        const c = colours[src];
        const score = [0, 1, 2].reduce((s, k) => s + (c[k] ? out.image.data[o + k] : -out.image.data[o + k]), 0);
        expect(score, `seed ${seed} point ${i}`).toBeGreaterThan(60);
        expect(out.visibility![0][i]).toBe(vis[src]);
      }
      // The face box follows too: its transformed corners are inside the box the output reports.
      const b = out.boxes![0];
      const corners = transformPoints([30 - 0.5, 25 - 0.5, 90 - 0.5, 90 - 0.5], out.affine);
      expect(Math.min(corners[0], corners[2])).toBeGreaterThanOrEqual(b.x - 0.5 - 1e-6);
      expect(Math.max(corners[1], corners[3])).toBeLessThanOrEqual(b.y + b.height - 0.5 + 1e-6);
    }
    expect(flips).toBeGreaterThan(0);
    expect(flips).toBeLessThan(12);
  });

  it('crops about a box with a margin; composes and inverts maps; transforms boxes', async () => {
    const m = cropAffine({ x: 10, y: 20, width: 50, height: 50 }, [100, 100], 0.5);
    // The 50-px box with 50 % margin spans 100 px -> scale 1, box centre (34.5, 44.5) -> output centre (49.5, 49.5).
    expect(Array.from(transformPoints([34.5, 44.5], m))).toEqual([49.5, 49.5]);
    expect(m[0]).toBeCloseTo(1, 12);
    const r = new Rng(3);
    const a: Affine = [1.2, 0.3, 4, -0.2, 0.8, 1];
    const p = [r.next() * 10, r.next() * 10];
    const back = transformPoints(transformPoints(p, a), invertAffine(a));
    expect(back[0]).toBeCloseTo(p[0], 5);
    const c = composeAffine([2, 0, 1, 0, 2, 1], [1, 0, 3, 0, 1, 4]);
    expect(c).toEqual([2, 0, 7, 0, 2, 9]);
    expect(transformBox({ x: 0, y: 0, width: 4, height: 2 }, [-1, 0, 10, 0, 1, 0])).toEqual({ x: 6, y: 0, width: 4, height: 2 });
    const flipped = applyAffine({ image: randomImage(10, 10, 1, 1), boxes: [{ x: 2, y: 3, width: 3, height: 4 }] }, { size: [10, 10], affine: [-1, 0, 9, 0, 1, 0] });
    expect(flipped.boxes![0]).toEqual({ x: 5, y: 3, width: 3, height: 4 });
    expect(() => invertAffine([1, 2, 0, 2, 4, 0])).toThrow(RangeError);
  });

  it('Rng.resumed: the seed itself at step 0, another reproducible stream per resumed step', () => {
    const first = (r: Rng) => Array.from({ length: 4 }, () => r.nextUint32());
    expect(first(Rng.resumed(5, 0))).toEqual(first(new Rng(5)));
    expect(first(Rng.resumed(5, 40))).toEqual(first(Rng.resumed(5, 40)));
    expect(first(Rng.resumed(5, 40))).not.toEqual(first(new Rng(5)));
    expect(first(Rng.resumed(5, 40))).not.toEqual(first(Rng.resumed(5, 41)));
    expect(first(Rng.resumed(6, 40))).not.toEqual(first(Rng.resumed(5, 40)));
    expect(() => Rng.resumed(5, -1)).toThrow(/Rng.resumed: 'step'/);
    expect(() => Rng.resumed(-5, 3)).toThrow(/Rng: 'seed'/);
  });

  it('draws parameters in the configured ranges, reproducibly', async () => {
    const r1 = new Rng(5);
    const r2 = new Rng(5);
    for (let i = 0; i < 200; i++) {
      const p = randomAugmentation(r1);
      expect(p).toEqual(randomAugmentation(r2));
      expect(p.scale).toBeGreaterThanOrEqual(0.9);
      expect(p.scale).toBeLessThanOrEqual(1.1);
      expect(Math.abs(p.rotation)).toBeLessThanOrEqual(30);
      expect(Math.abs(p.tx)).toBeLessThanOrEqual(20);
    }
    const none = randomAugmentation(new Rng(1), { scale: [1, 1], rotation: 0, translation: 0, flip: 0 });
    expect(none).toEqual({ scale: 1, rotation: 0, tx: 0, ty: 0, flip: false });
    await expectArgError(() => randomAugmentation(new Rng(1), { flip: 2 }), RangeError, 'randomAugmentation', 'flip');
    await expectArgError(() => randomAugmentation(new Rng(1), { scale: [1.2, 0.8] }), RangeError, 'randomAugmentation', 'scale');
  });

  it('jitters colour within range, reproducibly, and not at all with zero ranges', async () => {
    const img: RawImage<Uint8Array> = { data: Uint8Array.from(randomImage(30, 20, 3, 8).data, (v) => v), width: 30, height: 20, channels: 3 };
    const a = colorJitter(img, 4, { brightness: 0.4, contrast: 0.4, saturation: 0.4 });
    expect(Array.from(a.data)).toEqual(Array.from(colorJitter(img, 4, { brightness: 0.4, contrast: 0.4, saturation: 0.4 }).data));
    expect(Array.from(a.data)).not.toEqual(Array.from(img.data));
    expect(Array.from(colorJitter(img, 4, { brightness: 0, contrast: 0, saturation: 0 }).data)).toEqual(Array.from(img.data));
    const f = colorJitter(randomImage(8, 8, 3, 1), 2, { max: 255, brightness: 1 });
    expect(f.data.every((v) => v >= 0 && v <= 255)).toBe(true);
    // Against the definition: factors b, c, s drawn in that order; brightness, contrast about the
    // mean grey, saturation about each pixel's grey (grey = 0.299 R + 0.587 G + 0.114 B).
    const src = randomImage(6, 5, 3, 12);
    const out = colorJitter(src, 21, { brightness: 0.3, contrast: 0.3, saturation: 0.3, max: 1000 });
    const r = new Rng(21);
    const [b, c, sat] = [r.uniform(0.7, 1.3), r.uniform(0.7, 1.3), r.uniform(0.7, 1.3)];
    const grey = (d: ArrayLike<number>, p: number) => 0.299 * d[3 * p] + 0.587 * d[3 * p + 1] + 0.114 * d[3 * p + 2];
    const bright = src.data.map((v) => v * b);
    let mean = 0;
    for (let p = 0; p < 30; p++) mean += grey(bright, p) / 30;
    const contrast = bright.map((v) => (v - mean) * c + mean);
    for (let p = 0; p < 30; p++) for (let k = 0; k < 3; k++) expect(out.data[3 * p + k]).toBeCloseTo(grey(contrast, p) + (contrast[3 * p + k] - grey(contrast, p)) * sat, 2);
  });

  it.skipIf(!have('widerface/WIDER_val/images/19--Couple/19_Couple_Couple_19_110.jpg'))('augmentFaceFrom (region decode) matches augmentFace on the full image', async () => {
    const file = join(data, 'widerface/WIDER_val/images/19--Couple/19_Couple_Couple_19_110.jpg');
    const full = await decodeImage(file);
    const boxes = [{ x: 430, y: 210, width: 60, height: 70 }, { x: 600, y: 150, width: 200, height: 240 }];
    for (const [face, size] of [[0, 64], [1, 96], [1, 48]] as const) {
      for (const seed of [1, 2]) {
        const a = augmentFace({ image: full, boxes }, seed, { size: [size, size], face });
        const b = await augmentFaceFrom(new LazyImage(file), { boxes }, seed, { size: [size, size], face });
        expect(b.params).toEqual(a.params);
        expect(b.boxes).toEqual(a.boxes);
        let diff = 0;
        for (let i = 0; i < a.image.data.length; i++) diff += Math.abs(a.image.data[i] - b.image.data[i]);
        // Identical up to where the shrink-averaging blocks start (only when shrinking 2x or more).
        expect(diff / a.image.data.length).toBeLessThan(size === 48 ? 6 : 0.01);
      }
    }
  });

  it("refuses unknown jitter keys (and augmentFaceFrom's unknown options) up front, naming the function and the key", async () => {
    const img: RawImage<Uint8Array> = { data: Uint8Array.from(randomImage(40, 30, 3, 5).data, (v) => v), width: 40, height: 30, channels: 3 };
    const input = { image: img, boxes: [{ x: 8, y: 5, width: 20, height: 18 }] };
    const jitterKeyError = (fn: string) => new TypeError(`${fn}: 'brightnes' must be one of the known options.jitter fields (brightness, contrast, saturation, max), got an unknown options.jitter field`);
    // Whether or not jitter is drawn: with deterministic: true it never reached colorJitter's check.
    for (const deterministic of [false, true])
      expect(() => augmentFace(input, 1, { size: [16, 16], deterministic, jitter: { brightnes: 0.5 } as never })).toThrow(jitterKeyError('augmentFace'));
    expect(() => augmentFace(input, 1, { size: [16, 16], jitter: true as never })).toThrow(new TypeError("augmentFace: 'options.jitter' must be an object, got true"));
    // Every documented jitter key: zero ranges leave the warped image as it is without jitter.
    const still = augmentFace(input, 3, { size: [16, 16], jitter: { brightness: 0, contrast: 0, saturation: 0, max: 255 } });
    const plain = augmentFace(input, 3, { size: [16, 16], jitter: false });
    expect(still.params).toEqual(plain.params);
    expect(Array.from(still.image.data)).toEqual(Array.from(plain.image.data));

    // augmentFaceFrom checks its options before anything is decoded (this file does not exist).
    const nowhere = new LazyImage(join(tmp(), 'missing.png'));
    const boxes = input.boxes;
    await expect(augmentFaceFrom(nowhere, { boxes }, 1, { size: [16, 16], marign: 0.3 } as never)).rejects.toThrow(
      new TypeError(
        "augmentFaceFrom: 'marign' must be one of the known options (size, margin, face, jitter, mirrorMap, deterministic, scale, rotation, translation, flip, fill, antialias, color), got an unknown option",
      ),
    );
    await expect(augmentFaceFrom(nowhere, { boxes }, 1, { size: [16, 16], orientation: 'exif' } as never)).rejects.toThrow(/^augmentFaceFrom: 'orientation' must be one of the known options/);
    for (const deterministic of [false, true])
      await expect(augmentFaceFrom(nowhere, { boxes }, 1, { size: [16, 16], deterministic, jitter: { brightnes: 0.5 } as never })).rejects.toThrow(jitterKeyError('augmentFaceFrom'));
    // Every documented option of augmentFaceFrom, on a real file: the same draws and pixels as augmentFace.
    const file = join(tmp(), 'face.png');
    await writeImage(file, img);
    const all = {
      size: [16, 16] as [number, number], margin: 0.1, face: 0, jitter: { brightness: 0.2, contrast: 0.1, saturation: 0.3, max: 255 }, mirrorMap: MIRROR_5, deterministic: false,
      scale: [0.95, 1.05] as [number, number], rotation: 5, translation: 2, flip: 0.5, fill: 'replicate' as const, antialias: true,
    };
    const fromFile = await augmentFaceFrom(new LazyImage(file), { boxes }, 7, { ...all, color: 'rgb' });
    const inMemory = augmentFace(input, 7, all);
    expect(fromFile.params).toEqual(inMemory.params);
    expect(fromFile.boxes).toEqual(inMemory.boxes);
    let diff = 0;
    for (let i = 0; i < inMemory.image.data.length; i++) diff = Math.max(diff, Math.abs(fromFile.image.data[i] - inMemory.image.data[i]));
    expect(diff).toBeLessThanOrEqual(1);
  });

  it('rejects bad arguments, naming them', async () => {
    const img = randomImage(10, 10, 1, 1);
    await expectArgError(() => augmentFace({ image: img, boxes: [] }, 1, { size: [8, 8] }), RangeError, 'augmentFace', 'face');
    await expectArgError(() => applyAffine({ image: img, landmarks: [new Float32Array(10)] }, { size: [8, 8], affine: [-1, 0, 9, 0, 1, 0], mirrorMap: [1, 2, 0, 3, 4] }), RangeError, 'applyAffine', 'mirrorMap');
    await expectArgError(() => warpAffine(img, [1, 0, 0] as unknown as Affine, 4, 4), TypeError, 'warpAffine', 'm');
    await expectArgError(() => warpAffine(img, [1, 0, 0, 0, 1, 0], 0, 4), RangeError, 'warpAffine', 'width');
    await expectArgError(() => augmentFace({ image: img, boxes: [{ x: 0, y: 0, width: 5, height: 5 }] }, 1, { size: [8, 8], rotate: 3 } as never), TypeError, 'augmentFace', 'rotate');
  });
});
