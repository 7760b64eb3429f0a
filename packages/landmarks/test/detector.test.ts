import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import * as ops from '@lrface/cuda-core';
import { decodeImage, heatmapTensor, imageToTensor } from '@lrface/datasets';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { MIRROR_68 } from '@lrface/datasets';
import { HeatmapUNet, SHIPPED_MODELS, averageMirrored, weightsDir, loadLandmarkDetector, loadLandmarkWeights, saveLandmarkWeights, sha256Hex, type LandmarkModelSpec } from '../src/index.js';

const image = sharedDataDir + 'misc-faces/face-alignment/aflw-test.jpg';
const haveData = haveSharedData('misc-faces/face-alignment/aflw-test.jpg');
const tmp = () => mkdtempSync(join(tmpdir(), 'landmarks-det-'));
const spec: LandmarkModelSpec = { points: 68, inputSize: 32, margin: 0.2, network: { widths: [4, 4, 8, 8], blocksPerGroup: 2, upsample: 'nearest' } };

describe.skipIf(!haveData)('loadLandmarkDetector / detect', () => {
  let weights: string;
  beforeAll(() => {
    ops.manualSeed(11);
    weights = join(tmp(), 'tiny.safetensors');
    saveLandmarkWeights(weights, new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network }), spec, { note: 'test' });
  });

  it('decodes to image coordinates through the crop: heatmaps of known crop points come back at their image positions', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const box = { x: 40, y: 30, width: 50, height: 60 };
    // Points on the 32x32 network input, and by hand where they lie in the image: the crop is the
    // square of side max(w, h) * 1.4 = 84 about the box centre, shrunk 32 / 84.
    const crop = Array.from({ length: 68 }, (_, k) => [4 + (k % 12) * 2, 5 + Math.floor(k / 12) * 4]).flat();
    const side = 60 * 1.4;
    const s = 32 / side;
    const cx = 40 + 25 - 0.5;
    const cy = 30 + 30 - 0.5;
    const expected = [];
    for (let k = 0; k < 68; k++) expected.push([(crop[2 * k] - 15.5) / s + cx, (crop[2 * k + 1] - 15.5) / s + cy]);
    det.network.forward = () => heatmapTensor([crop], { size: [32, 32], sigma: 1, background: true });
    const { points, confidence } = await det.detect(image, { box, refine: 'none', flip: false });
    expect(points.length).toBe(68);
    for (let k = 0; k < 68; k++) {
      expect(points[k][0]).toBeCloseTo(expected[k][0], 3);
      expect(points[k][1]).toBeCloseTo(expected[k][1], 3);
      expect(confidence[k]).toBeCloseTo(1, 5);
    }
  });

  it('takes a path, bytes, a sharp instance, decoded pixels or a tensor, with the same result', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const box = { x: 20, y: 25, width: 70, height: 80 };
    const ref = await det.detect(image, { box });
    expect(ref.points.length).toBe(68);
    expect(ref.confidence.length).toBe(68);
    expect(ref.points.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))).toBe(true);
    const px = await decodeImage(image);
    for (const input of [readFileSync(image), sharp(image), px, imageToTensor(px), imageToTensor(px, { batch: false })]) {
      const r = await det.detect(input as never, { box });
      for (let k = 0; k < 68; k += 5) {
        expect(r.points[k][0]).toBeCloseTo(ref.points[k][0], 3);
        expect(r.points[k][1]).toBeCloseTo(ref.points[k][1], 3);
      }
    }
  });

  it('moves the points with the face: a shifted crop of the image gives the same points shifted', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const px = await decodeImage(image);
    const box = { x: 60, y: 50, width: 40, height: 40 };
    const a = await det.detect(px, { box });
    const [ox, oy] = [30, 20];
    const shifted = { data: new Uint8Array((px.width - ox) * (px.height - oy) * 3), width: px.width - ox, height: px.height - oy, channels: 3 };
    for (let y = 0; y < shifted.height; y++) shifted.data.set(px.data.subarray(((y + oy) * px.width + ox) * 3, ((y + oy) * px.width + px.width) * 3), y * shifted.width * 3);
    // The network sees the same crop ...
    const ca = det.crop(px, box).pixels.data;
    const cb = det.crop(shifted, { ...box, x: box.x - ox, y: box.y - oy }).pixels.data;
    expect(cb.length).toBe(32 * 32 * 3);
    let maxDiff = 0;
    for (let i = 0; i < ca.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ca[i] - cb[i]));
    expect(maxDiff).toBeLessThanOrEqual(1);
    // ... so the points come back shifted by the offset.
    const b = await det.detect(shifted, { box: { ...box, x: box.x - ox, y: box.y - oy } });
    const moved = a.points.filter((p, k) => Math.abs(b.points[k][0] + ox - p[0]) < 1e-3 && Math.abs(b.points[k][1] + oy - p[1]) < 1e-3).length;
    // Near-ties in an untrained network's flat maps may flip an argmax or two after 8-bit rounding.
    expect(moved).toBeGreaterThan(60);
  });

  it('runs batches: an array input gives one result per image, equal to the single results', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const boxes = [{ x: 10, y: 10, width: 60, height: 60 }, { x: 40, y: 35, width: 50, height: 55 }];
    const batch = await det.detect([image, image], { box: boxes });
    expect(batch.length).toBe(2);
    for (let i = 0; i < 2; i++) {
      const one = await det.detect(image, { box: boxes[i] });
      for (let k = 0; k < 68; k += 3) expect(batch[i].points[k][0]).toBeCloseTo(one.points[k][0], 3);
      expect(batch[i].box).toEqual(boxes[i]);
    }
    // Without a box: the whole image.
    const px = await decodeImage(image);
    expect((await det.detect(image)).box).toEqual({ x: 0, y: 0, width: px.width, height: px.height });
  });

  it('rejects bad boxes, inputs and options with clear errors', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    await expect(det.detect(image, { box: { x: 0, y: 0, width: -5, height: 10 } })).rejects.toThrow(/'box' must be a box with .* positive width/);
    await expect(det.detect(image, { box: { x: NaN, y: 0, width: 5, height: 10 } })).rejects.toThrow(RangeError);
    await expect(det.detect(image, { box: '1,2,3,4' as never })).rejects.toThrow(TypeError);
    await expect(det.detect([image, image], { box: [{ x: 0, y: 0, width: 5, height: 5 }] })).rejects.toThrow(/one box per image/);
    await expect(det.detect(42 as never)).rejects.toThrow(TypeError);
    await expect(det.detect([] as never)).rejects.toThrow(/non-empty/);
    await expect(det.detect('/no/such/face.png')).rejects.toThrow(/face\.png/);
    await expect(det.detect(Buffer.from('not an image'))).rejects.toThrow(/decode/);
    await expect(det.detect({ data: new Uint8Array(5), width: 2, height: 2, channels: 3 })).rejects.toThrow(RangeError);
    await expect(det.detect(ops.zeros([2, 2]))).rejects.toThrow(/image tensor/);
    await expect(det.detect(image, { boxes: [] } as never)).rejects.toThrow(/options/);
    await expect(det.detect(image, { flip: 'yes' } as never)).rejects.toThrow(/'flip' must be a boolean/);
  });

  it('flip test is mirror-symmetric: the mirrored face gives the mirrored points, left and right swapped', async () => {
    // The shipped model: its maps have distinct peaks (an untrained one's flat maps tie).
    const det = await loadLandmarkDetector('lr68');
    // A quarter-size image: the crop is upsampled (no antialiasing prefilter, whose pixel grid
    // is not mirror-symmetric), so the mirrored image gives exactly the mirrored crop.
    const full = await decodeImage(image);
    const px = await decodeImage(await sharp(image).resize(Math.round(full.width / 4), Math.round(full.height / 4)).png().toBuffer());
    const W = px.width;
    const mirrored = new Uint8Array(px.data.length);
    for (let y = 0; y < px.height; y++)
      for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) mirrored[(y * W + x) * 3 + c] = px.data[(y * W + (W - 1 - x)) * 3 + c];
    const box = { x: 5.5, y: 6.25, width: 17.5, height: 20 };
    const a = await det.detect(px, { box });
    const b = await det.detect({ data: mirrored, width: W, height: px.height, channels: 3 }, { box: { ...box, x: W - box.x - box.width } });
    for (let k = 0; k < 68; k++) {
      expect(b.points[k][0]).toBeCloseTo(W - 1 - a.points[MIRROR_68[k]][0], 3);
      expect(b.points[k][1]).toBeCloseTo(a.points[MIRROR_68[k]][1], 3);
    }
    // Without flip the network's own asymmetry shows.
    const c = await det.detect(px, { box, flip: false });
    expect(c.points.some((p, k) => Math.abs(p[0] - a.points[k][0]) > 1e-3)).toBe(true);
  });
});

describe('detect: inputs it cannot use are rejected, not turned into points', () => {
  let weights: string;
  beforeAll(() => {
    ops.manualSeed(12);
    weights = join(tmp(), 'tiny.safetensors');
    saveLandmarkWeights(weights, new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network }), spec);
  });
  const raw = (width: number, height: number) => ({ data: new Uint8Array(width * height * 3).fill(128), width, height, channels: 3 });
  const float = (width: number, height: number, v: number) => ({ data: new Float32Array(width * height * 3).fill(0.5).fill(v, 7, 8), width, height, channels: 3 });

  it('a box that does not overlap the image is a RangeError naming the box and the image size', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const img = raw(32, 32);
    const outside = det.detect(img, { box: { x: 1000, y: 1000, width: 10, height: 10 } });
    await expect(outside).rejects.toThrow(RangeError);
    await expect(det.detect(img, { box: { x: 1000, y: 1000, width: 10, height: 10 } })).rejects.toThrow(
      "LandmarkDetector.detect: 'box' must be a box overlapping the image (32x32), got {x: 1000, y: 1000, width: 10, height: 10}",
    );
    // Beside the image on each side, touching the border included (the box covers [x, x + width)).
    for (const box of [{ x: -20, y: 5, width: 10, height: 10 }, { x: -10, y: 5, width: 10, height: 10 }, { x: 32, y: 5, width: 10, height: 10 }, { x: 5, y: -30, width: 10, height: 30 }, { x: 5, y: 32.5, width: 10, height: 10 }])
      await expect(det.detect(img, { box })).rejects.toThrow(/'box' must be a box overlapping the image \(32x32\)/);
    // Partly outside stays allowed.
    for (const box of [{ x: -5, y: -5, width: 20, height: 20 }, { x: 25, y: 28, width: 20, height: 20 }, { x: -9.5, y: 31.5, width: 10, height: 10 }]) {
      const r = await det.detect(img, { box, flip: false });
      expect(r.points.length).toBe(68);
    }
    // Batches: a shared box is checked against every image; one box per image against its own.
    await expect(det.detect([raw(64, 64), raw(16, 16)], { box: { x: 20, y: 20, width: 10, height: 10 } })).rejects.toThrow(/'box' must be a box overlapping input\[1\] \(16x16\)/);
    await expect(det.detect([raw(64, 64), raw(16, 16)], { box: [{ x: 0, y: 0, width: 8, height: 8 }, { x: 0, y: 16, width: 8, height: 8 }] })).rejects.toThrow(/'box\[1\]' must be a box overlapping input\[1\] \(16x16\), got \{x: 0, y: 16, width: 8, height: 8\}/);
  });

  it('float pixels outside [0, 1], NaN or Infinity are a RangeError pointing to Uint8Array for 8-bit values', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const box = { x: 0, y: 0, width: 16, height: 16 };
    await expect(det.detect(float(16, 16, 255), { box })).rejects.toThrow(RangeError);
    await expect(det.detect(float(16, 16, 255), { box })).rejects.toThrow(
      "LandmarkDetector.detect: 'input' must be float pixels in [0, 1] (8-bit values belong in a Uint8Array, or divide them by 255), got 255 at index 7",
    );
    for (const v of [-0.5, 1.5]) await expect(det.detect(float(16, 16, v), { box })).rejects.toThrow(new RegExp(`'input' must be float pixels in \\[0, 1\\].*got ${v} at index 7`));
    for (const v of [NaN, Infinity, -Infinity]) await expect(det.detect(float(16, 16, v), { box })).rejects.toThrow(new RegExp(`'input' must be float pixels in \\[0, 1\\].*got a non-finite value \\(${v}\\) at index 7`));
    await expect(det.detect([float(16, 16, 0.5), float(16, 16, 2)], { box })).rejects.toThrow(/'input\[1\]' must be float pixels/);
    // Float tensors too; the hint names the uint8 tensor.
    const t = ops.tensor(new Float32Array(3 * 16 * 16).fill(0.5).fill(200, 3), [3, 16, 16]);
    await expect(det.detect(t, { box })).rejects.toThrow(/'input' must be float pixels in \[0, 1\] \(8-bit values belong in a uint8 tensor, or divide them by 255\), got 200 at index 3/);
    await expect(det.detect(ops.tensor(new Float32Array(2 * 3 * 16 * 16).fill(NaN, 800), [2, 3, 16, 16]), { box })).rejects.toThrow(/got a non-finite value \(NaN\) at index 800/);
    // In range, with the slack of bicubic overshoot, the points come back.
    for (const v of [0, 1, -0.25, 1.25]) expect((await det.detect(float(16, 16, v), { box, flip: false })).points.length).toBe(68);
    expect((await det.detect(ops.rand([3, 16, 16]), { box, flip: false })).points.length).toBe(68);
  });

  it('a box given as an array [x, y, w, h] is a TypeError saying a box is an object', async () => {
    const det = await loadLandmarkDetector('lr68', { weights });
    const expected = "LandmarkDetector.detect: 'box' must be a box object { x, y, width, height } (or an array of such boxes, one per image), got [2, 3, 10, 12]";
    await expect(det.detect(raw(32, 32), { box: [2, 3, 10, 12] as never })).rejects.toThrow(TypeError);
    await expect(det.detect(raw(32, 32), { box: [2, 3, 10, 12] as never })).rejects.toThrow(expected);
    // Even where the batch happens to hold four images.
    const four = [raw(32, 32), raw(32, 32), raw(32, 32), raw(32, 32)];
    await expect(det.detect(four, { box: [2, 3, 10, 12] as never })).rejects.toThrow(expected);
    // An array of box objects stays one box per image.
    expect((await det.detect([raw(32, 32), raw(32, 32)], { box: [{ x: 2, y: 3, width: 10, height: 12 }, { x: 0, y: 0, width: 32, height: 32 }], flip: false })).length).toBe(2);
  });
});

describe('averageMirrored', () => {
  it('averages each map with its partner map of the mirror image, flipped back', () => {
    // 1 image, 2 points (partners of each other) + background, 1 x 3 maps.
    const direct = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
    const mirror = [[10, 20, 30], [40, 50, 60], [70, 80, 90]];
    const out = averageMirrored(ops.tensor(Float32Array.from([...direct.flat(), ...mirror.flat()]), [2, 3, 1, 3]), 1, [1, 0]);
    expect(out.shape).toEqual([1, 3, 1, 3]);
    // Point 0 takes the mirror's point-1 map reversed: (1 + 60) / 2, (2 + 50) / 2, (3 + 40) / 2.
    // Point 1: (4 + 30) / 2, ...; the background map its own mirror: (7 + 90) / 2, ...
    expect(Array.from(out.data())).toEqual([30.5, 26, 21.5, 17, 12.5, 8, 48.5, 44, 39.5]);
    expect(() => averageMirrored(ops.zeros([3, 3, 1, 3]), 1, [1, 0])).toThrow(/averageMirrored/);
  });
});

describe('weights files', () => {
  it('round-trips a network and its spec; the loaded network predicts the same heatmaps', () => {
    const file = join(tmp(), 'w.safetensors');
    const net = new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network });
    net.eval();
    saveLandmarkWeights(file, net, spec);
    const loaded = loadLandmarkWeights(file);
    expect(loaded.spec).toEqual(spec);
    const x = ops.randn([1, 3, 32, 32]);
    const a = net.forward(x).data();
    const b = loaded.network.forward(x).data();
    for (let i = 0; i < a.length; i += 17) expect(b[i]).toBeCloseTo(a[i], 6);
    // The digest check passes with the right sha256.
    expect(() => loadLandmarkWeights(file, { expectedSha256: sha256Hex(readFileSync(file)) })).not.toThrow();
  });

  it('corrupt or wrong files give errors naming the file and what is wrong', async () => {
    const dir = tmp();
    const good = join(dir, 'good.safetensors');
    saveLandmarkWeights(good, new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network }), spec);
    const bytes = readFileSync(good);
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    expect(() => loadLandmarkWeights(truncated)).toThrow(/truncated\.safetensors: corrupt weights file/);
    await expect(loadLandmarkDetector('lr68', { weights: truncated })).rejects.toThrow(/truncated\.safetensors/);
    const flipped = join(dir, 'flipped.safetensors');
    const copy = Buffer.from(bytes);
    copy[copy.length - 3] ^= 0xff;
    writeFileSync(flipped, copy);
    expect(() => loadLandmarkWeights(flipped, { expectedSha256: sha256Hex(bytes) })).toThrow(/flipped\.safetensors: corrupt weights file: sha256 [0-9a-f]{64} does not match/);
    const garbage = join(dir, 'garbage.safetensors');
    writeFileSync(garbage, 'hello');
    expect(() => loadLandmarkWeights(garbage)).toThrow(/garbage\.safetensors: corrupt weights file/);
    expect(() => loadLandmarkWeights(join(dir, 'missing.safetensors'))).toThrow(/missing\.safetensors: weights file not found/);
    // A valid file of a different architecture.
    const other = join(dir, 'other.safetensors');
    saveLandmarkWeights(other, new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network }), { ...spec, network: { ...spec.network, widths: [4, 4, 8, 16] } });
    expect(() => loadLandmarkWeights(other)).toThrow(/other\.safetensors: tensor '.*' has shape/);
  });

  it('a weights file that is not .safetensors, or a directory, is named with what is wrong before anything is read', async () => {
    const dir = tmp();
    const pth = join(dir, 'x.pth');
    // A PyTorch zip checkpoint's first bytes: read as safetensors they give an absurd header length.
    writeFileSync(pth, Buffer.from('PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl', 'latin1'));
    const only = /x\.pth: only \.safetensors weight files are supported, got a '\.pth' file/;
    await expect(loadLandmarkDetector('lr68', { weights: pth })).rejects.toThrow(only);
    await expect(loadLandmarkDetector('lr68', { weights: pth })).rejects.toThrow(RangeError);
    await expect(loadLandmarkDetector('lr68', { weights: pth })).rejects.not.toThrow(/header length/);
    expect(() => loadLandmarkWeights(pth)).toThrow(only);
    // By extension: whether or not the file exists.
    expect(() => loadLandmarkWeights(join(dir, 'missing.ckpt'))).toThrow(/missing\.ckpt: only \.safetensors weight files are supported/);
    expect(() => loadLandmarkWeights(join(dir, 'weights'))).toThrow(/weights: only \.safetensors weight files are supported, got a file without an extension/);
    // Directories, with or without the extension in their name.
    for (const name of ['models', 'w.safetensors']) {
      const sub = join(dir, name);
      mkdirSync(sub);
      const message = new RegExp(`${name.replace('.', '\\.')}: is a directory, not a weights file`);
      await expect(loadLandmarkDetector('lr68', { weights: sub })).rejects.toThrow(message);
      await expect(loadLandmarkDetector('lr68', { weights: sub })).rejects.not.toThrow(/EISDIR/);
      expect(() => loadLandmarkWeights(sub)).toThrow(message);
    }
    // Upper case is the same extension.
    const upper = join(dir, 'UPPER.SAFETENSORS');
    saveLandmarkWeights(upper, new HeatmapUNet({ inChannels: 3, outChannels: 69, ...spec.network }), spec);
    expect(loadLandmarkWeights(upper).spec).toEqual(spec);
  });

  it('rejects unknown models, devices and options', async () => {
    await expect(loadLandmarkDetector('xx68')).rejects.toThrow(/'name' must be one of lr68, hr68/);
    await expect(loadLandmarkDetector(5 as never)).rejects.toThrow(TypeError);
    await expect(loadLandmarkDetector('lr68', { device: 'tpu' })).rejects.toThrow(/'device'/);
    await expect(loadLandmarkDetector('lr68', { weights: '' })).rejects.toThrow(/'weights'/);
    await expect(loadLandmarkDetector('lr68', { size: 3 } as never)).rejects.toThrow(new TypeError("loadLandmarkDetector: 'size' must be one of the known options (weights, device), got an unknown option"));
    const det = await loadLandmarkDetector('lr68');
    await expect(det.detect(ops.rand([3, 32, 32]), { flipped: false } as never)).rejects.toThrow(new TypeError("LandmarkDetector.detect: 'flipped' must be one of the known options (box, refine, flip), got an unknown option"));
  });

  it('shipped models load with their recorded sha256 and find 68 points', async () => {
    for (const [name, size] of [['lr68', 32], ['hr68', 128]] as const) {
      expect(SHIPPED_MODELS[name].sha256).toMatch(/^[0-9a-f]{64}$/);
      const det = await loadLandmarkDetector(name);
      expect(det.inputSize).toBe(size);
      const r = await det.detect(ops.rand([3, 64, 64]), { box: { x: 8, y: 8, width: 48, height: 48 } });
      expect(r.points.length).toBe(68);
      expect(r.points.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y))).toBe(true);
    }
    // A damaged copy of a shipped file fails the digest check, naming the file.
    const copy = join(tmp(), 'lr68.safetensors');
    const bytes = Buffer.from(readFileSync(det68File()));
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(copy, bytes);
    expect(() => loadLandmarkWeights(copy, { expectedSha256: SHIPPED_MODELS.lr68.sha256 })).toThrow(/lr68\.safetensors: corrupt weights file: sha256/);
  });
});

// Shipped weights only: this runs without the shared test data.
describe('LandmarkDetector after its network is disposed', () => {
  it('detect says the detector was disposed, naming the model, instead of failing inside a layer', async () => {
    const det = await loadLandmarkDetector('lr68');
    const img = ops.rand([3, 40, 40]);
    expect((await det.detect(img, { flip: false })).points.length).toBe(68);
    det.network.dispose();
    await expect(det.detect(img)).rejects.toThrow(new Error("LandmarkDetector.detect: the 'lr68' detector's network was disposed"));
    await expect(det.detect([img, img])).rejects.toThrow(/'lr68' detector's network was disposed/);
  });
});

function det68File(): string {
  return join(weightsDir(), SHIPPED_MODELS.lr68.file);
}
