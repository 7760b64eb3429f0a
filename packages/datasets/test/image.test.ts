import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodePng } from '@lrface/test-data';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  convertColor, cropImage, cropRegion, decodeImage, decodeRegion, encodeImage, imageToTensor, LazyImage, psnr, rgbToYCbCrPixels,
  tensorToImage, writeImage, yCbCrToRgb, type RawImage,
} from '../src/index.js';
import { data, expectArgError, expectFileError, have, tmp, writeTree } from './helpers.js';

const baby = join(data, 'set5/baby_GT.png');
const lfwJpeg = join(data, 'lfw/images/Anthony_Hopkins_0001.jpg');

function randomImage(w: number, h: number, c: number, seed: number): RawImage<Uint8Array> {
  const d = new Uint8Array(w * h * c);
  let s = seed;
  for (let i = 0; i < d.length; i++) d[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return { data: d, width: w, height: h, channels: c };
}

describe('image I/O', () => {
  it.skipIf(!have('set5/baby_GT.png'))('decodes PNG exactly as an independent PNG decoder does', async () => {
    const img = await decodeImage(baby);
    const ref = decodePng(baby);
    expect([img.width, img.height, img.channels]).toEqual([ref.width, ref.height, 3]);
    expect(Buffer.from(img.data).equals(Buffer.from(ref.data))).toBe(true);
  });

  it.skipIf(!have('set5/baby_GT.png'))('converts colour as MATLAB rgb2ycbcr / ycbcr2rgb / rgb2gray', async () => {
    const img = await decodeImage(baby);
    const y = await decodeImage(baby, { color: 'y' });
    const ycc = convertColor(img, 'ycbcr');
    const gray = await decodeImage(baby, { color: 'gray' });
    expect(y.channels).toBe(1);
    for (let p = 0; p < img.width * img.height; p += 997) {
      const [r, g, b] = [img.data[3 * p], img.data[3 * p + 1], img.data[3 * p + 2]];
      // The documented formulas, for uint8 input (rounded as MATLAB converts back to uint8).
      expect(y.data[p]).toBe(Math.round(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255));
      expect(ycc.data[3 * p + 1]).toBe(Math.round(128 + (-37.797 * r - 74.203 * g + 112 * b) / 255));
      expect(ycc.data[3 * p + 2]).toBe(Math.round(128 + (112 * r - 93.786 * g - 18.214 * b) / 255));
      expect(gray.data[p]).toBe(Math.round(0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b));
    }
    expect(y.data.reduce((m, v) => Math.min(m, v), 255)).toBeGreaterThanOrEqual(16);
    expect(y.data.reduce((m, v) => Math.max(m, v), 0)).toBeLessThanOrEqual(235);
    // Round trip through YCbCr and back: within rounding of 8-bit storage.
    const back = yCbCrToRgb(ycc);
    let maxErr = 0;
    for (let i = 0; i < img.data.length; i++) maxErr = Math.max(maxErr, Math.abs(back.data[i] - img.data[i]));
    expect(maxErr).toBeLessThanOrEqual(2);
    // Float data: exact inverse.
    const f = new Float32Array([0, 0.5, 1, 0.2, 0.9, 0.1]);
    const fy = rgbToYCbCrPixels(f, 2);
    expect(fy[0]).toBeCloseTo((16 + 65.481 * 0 + 128.553 * 0.5 + 24.966) / 255, 6);
    const fb = yCbCrToRgb({ data: fy, width: 2, height: 1, channels: 3 });
    for (let i = 0; i < 6; i++) expect(fb.data[i]).toBeCloseTo(f[i], 5);
  });

  it.skipIf(!have('lfw/images/Anthony_Hopkins_0001.jpg'))('converts to and from NCHW tensors (uint8 and float32)', async () => {
    const img = await decodeImage(lfwJpeg);
    expect([img.width, img.height]).toEqual([250, 250]);
    const t = imageToTensor(img);
    expect(t.shape).toEqual([1, 3, 250, 250]);
    const v = t.data();
    // Channel-major: element (c, y, x) is pixel (y, x) channel c, scaled to [0, 1].
    for (const [c, y, x] of [[0, 0, 0], [1, 17, 200], [2, 249, 249], [2, 100, 3]]) expect(v[c * 62500 + y * 250 + x]).toBeCloseTo(img.data[(y * 250 + x) * 3 + c] / 255, 6);
    expect(Buffer.from(tensorToImage(t).data).equals(Buffer.from(img.data))).toBe(true);
    const u = imageToTensor(img, { dtype: 'uint8', batch: false });
    expect([u.dtype, ...u.shape]).toEqual(['uint8', 3, 250, 250]);
    expect(Buffer.from(tensorToImage(u).data).equals(Buffer.from(img.data))).toBe(true);
    const raw = imageToTensor(img, { normalize: false });
    expect(raw.data()[5]).toBe(img.data[15]);
    const lazy = await new LazyImage(lfwJpeg).tensor({ color: 'y' });
    expect(lazy.shape).toEqual([1, 1, 250, 250]);
    for (const x of [t, u, raw, lazy]) x.dispose();
  });

  it('encodes PNG losslessly and JPEG at a quality (higher quality, closer and larger)', async () => {
    const img = randomImage(40, 30, 3, 1);
    const smooth: RawImage<Uint8Array> = { ...img, data: img.data.map((_, i) => Math.floor(i / 3) % 40 * 6) };
    const png = await encodeImage(img);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(Buffer.from((await decodeImage(png)).data).equals(Buffer.from(img.data))).toBe(true);
    const grey = randomImage(9, 7, 1, 2);
    expect(Buffer.from((await decodeImage(await encodeImage(grey), { color: 'rgb' })).data.filter((_, i) => i % 3 === 0)).equals(Buffer.from(grey.data))).toBe(true);
    const q20 = await encodeImage(smooth, { format: 'jpeg', quality: 20 });
    const q95 = await encodeImage(smooth, { format: 'jpeg', quality: 95 });
    expect([q20[0], q20[1]]).toEqual([0xff, 0xd8]);
    expect(q95.length).toBeGreaterThan(q20.length);
    expect(psnr(await decodeImage(q95), smooth)).toBeGreaterThan(psnr(await decodeImage(q20), smooth));
    const dir = tmp();
    await writeImage(join(dir, 'a.jpg'), smooth, { quality: 90 });
    expect(readFileSync(join(dir, 'a.jpg'))[0]).toBe(0xff);
    // The extension decides the format; a name that would lie about the bytes is refused, nothing written.
    await writeImage(join(dir, 'b.PNG'), smooth);
    expect(readFileSync(join(dir, 'b.PNG')).subarray(1, 4).toString()).toBe('PNG');
    await writeImage(join(dir, 'c.out'), smooth, { format: 'jpeg' });
    expect(readFileSync(join(dir, 'c.out'))[0]).toBe(0xff);
    await expectArgError(() => writeImage(join(dir, 'd.bmp'), smooth), RangeError, 'writeImage', 'file');
    await expectArgError(() => writeImage(join(dir, 'e.jpg'), smooth, { format: 'png' }), RangeError, 'writeImage', 'file');
    await expectArgError(() => writeImage('', smooth), TypeError, 'writeImage', 'file');
    expect(existsSync(join(dir, 'd.bmp')) || existsSync(join(dir, 'e.jpg'))).toBe(false);
    await expectArgError(() => encodeImage(img, { quality: 0 }), RangeError, 'encodeImage', 'quality');
    await expectArgError(() => encodeImage(img, { format: 'gif' as 'png' }), RangeError, 'encodeImage', 'format');
    await expectArgError(() => encodeImage({ ...img, width: 41 }), RangeError, 'encodeImage', 'img');
  });

  it("names writeImage and the caller's file when it cannot be written, leaving no temporary file", async () => {
    const img: RawImage = { data: new Uint8Array(4 * 3 * 3).fill(200), width: 4, height: 3, channels: 3 };
    const dir = tmp();
    const inMissing = join(dir, 'missing', 'out.png');
    const missing = await writeImage(inMissing, img).then(() => undefined, (err: Error & { code?: string }) => err);
    expect(missing?.message).toBe(`writeImage: cannot write '${inMissing}': its folder '${join(dir, 'missing')}' does not exist`);
    expect(missing?.code).toBe('ENOENT');
    mkdirSync(join(dir, 'taken.png'));
    await expect(writeImage(join(dir, 'taken.png'), img)).rejects.toThrow(Object.assign(new Error(`writeImage: cannot write '${join(dir, 'taken.png')}': it is a folder`), { code: 'EISDIR' }));
    // A good write next to the failed ones: only it and the folder are there, no temporary file.
    await writeImage(join(dir, 'good.png'), img);
    expect(readdirSync(dir).sort()).toEqual(['good.png', 'taken.png']);
    expect(readdirSync(join(dir, 'taken.png'))).toEqual([]);
    expect(Array.from((await decodeImage(join(dir, 'good.png'))).data)).toEqual(Array.from(img.data));
  });

  it("keeps the stored pixel grid by default and turns a photo upright by its EXIF orientation on request", async () => {
    // 6x4 stored pixels, left half black, right half white; orientation 6: view it rotated 90 degrees clockwise.
    const raw = Buffer.alloc(6 * 4 * 3);
    for (let y = 0; y < 4; y++) for (let x = 3; x < 6; x++) raw.fill(255, (y * 6 + x) * 3, (y * 6 + x) * 3 + 3);
    const jpeg = await sharp(raw, { raw: { width: 6, height: 4, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const stored = await decodeImage(jpeg);
    expect([stored.width, stored.height]).toEqual([6, 4]);
    const upright = await decodeImage(jpeg, { orientation: 'exif' });
    expect([upright.width, upright.height]).toEqual([4, 6]);
    // Rotated clockwise, the stored left (black) half becomes the top: top row dark, bottom row bright.
    expect(upright.data[0]).toBeLessThan(60);
    expect(upright.data[(5 * 4) * 3]).toBeGreaterThan(200);
    await expectArgError(() => decodeImage(jpeg, { orientation: 'auto' as 'exif' }), RangeError, 'decodeImage', 'orientation');
  });

  it('crops a box with a margin, padding outside the image with zeros or edge pixels', () => {
    const img = randomImage(20, 15, 3, 3);
    const box = { x: 15, y: -2, width: 8, height: 6 };
    for (const fill of ['zeros', 'replicate'] as const) {
      const { image, region } = cropImage(img, box, { margin: 0.25, fill });
      // x 15 - 2 = 13 .. 25; y -2 - 1.5 = -3.5 rounds to -3 .. 5.5 rounds to 6.
      expect(region).toEqual({ x: 13, y: -3, width: 12, height: 9 });
      expect([image.width, image.height]).toEqual([12, 9]);
      for (let y = 0; y < 9; y++)
        for (let x = 0; x < 12; x++)
          for (let c = 0; c < 3; c++) {
            let sx = region.x + x;
            let sy = region.y + y;
            const inside = sx >= 0 && sx < 20 && sy >= 0 && sy < 15;
            sx = Math.min(19, Math.max(0, sx));
            sy = Math.min(14, Math.max(0, sy));
            const want = inside || fill === 'replicate' ? img.data[(sy * 20 + sx) * 3 + c] : 0;
            expect(image.data[(y * 12 + x) * 3 + c]).toBe(want);
          }
    }
    expect(cropRegion({ x: 10, y: 10, width: 10, height: 20 }, { square: true })).toEqual({ x: 5, y: 10, width: 20, height: 20 });
    expect(() => cropRegion({ x: 0, y: 0, width: 0, height: 5 })).toThrow(RangeError);
  });

  it.skipIf(!have('lfw/images/Anthony_Hopkins_0001.jpg'))('decodes a region natively, equal to cropping the full decode', async () => {
    const full = await decodeImage(lfwJpeg);
    for (const region of [{ x: 30, y: 40, width: 100, height: 90 }, { x: -10, y: 200, width: 60, height: 70 }, { x: 400, y: 0, width: 5, height: 5 }]) {
      const part = await decodeRegion(lfwJpeg, region);
      const ref = cropImage(full, region).image;
      expect([part.width, part.height]).toEqual([ref.width, ref.height]);
      expect(Buffer.from(part.data).equals(Buffer.from(ref.data))).toBe(true);
    }
    const y = await new LazyImage(lfwJpeg).decodeRegion({ x: 1, y: 2, width: 3, height: 4 }, { color: 'y' });
    expect(y.channels).toBe(1);
  });

  it('names the file of a missing or undecodable image', async () => {
    const dir = tmp();
    writeTree(dir, { 'bad.jpg': 'not a jpeg at all' });
    await expectFileError(() => decodeImage(join(dir, 'none.jpg')), join(dir, 'none.jpg'), {}, 'image not found');
    await expectFileError(() => decodeImage(join(dir, 'bad.jpg')), join(dir, 'bad.jpg'), {}, 'cannot decode image');
    await expectFileError(() => new LazyImage(join(dir, 'bad.jpg')).info(), join(dir, 'bad.jpg'), {}, 'cannot decode image');
    await expectArgError(() => decodeImage(join(dir, 'bad.jpg'), { color: 'hsv' as 'rgb' }), RangeError, 'decodeImage', 'color');
    await expectArgError(() => decodeImage(42 as unknown as string), TypeError, 'decodeImage', 'source');
    await expectArgError(() => imageToTensor({ data: new Uint8Array(5), width: 2, height: 2, channels: 1 }), RangeError, 'imageToTensor', 'img');
  });
});
