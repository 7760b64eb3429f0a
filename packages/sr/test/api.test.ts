import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { bicubicResize, decodeImage, encodeImage, imageToTensor, type RawImage } from '@lrface/datasets';
import {
  DEMO_FACE,
  MODEL_REGISTRY,
  Vdsr,
  WeightsFileError,
  WEIGHTS_DIR,
  Srcnn,
  listModels,
  loadSuperResolver,
  readDemoFace,
  saveSrWeights,
  upscaleImage,
  BicubicIdentity,
  readSrWeights,
  sha256,
  evaluateNetwork,
  bicubicDownImage,
  type LoadOptions,
  type UpscaleOptions,
} from '../src/index.js';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import {
  SuperResolver, evaluateImage, evaluateImages, loadHrImages, loadSrNetwork, ssim, tiledForward, trainSuperResolution,
} from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'lrface-sr-api-'));

/** A small real face: the demo crop reduced to 40x40 (8-bit RGB). */
async function tinyFace(): Promise<RawImage<Uint8Array>> {
  const face = await readDemoFace();
  const t = imageToTensor(face);
  const small = bicubicResize(t, { size: [40, 40] });
  const d = small.data();
  const out = new Uint8Array(40 * 40 * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1600; p++) out[p * 3 + c] = Math.min(255, Math.max(0, Math.round(d[c * 1600 + p] * 255)));
  return { data: out, width: 40, height: 40, channels: 3 };
}

describe('colour pipeline', () => {
  it('Y models: bicubic chroma, Y clamped to [16, 235]; bicubic equals MATLAB bicubic of each YCbCr channel', async () => {
    const face = await tinyFace();
    const out = upscaleImage(new BicubicIdentity(1), face, 4);
    expect(out.image.width).toBe(160);
    expect(out.image.channels).toBe(3);
    expect(out.y.channels).toBe(1);
    expect(Math.min(...out.y.data)).toBeGreaterThanOrEqual(16);
    expect(Math.max(...out.y.data)).toBeLessThanOrEqual(235);
    // Independent reference: Y of the face in [0, 1], MATLAB bicubic x4, clamped, 8-bit.
    const y = new Float32Array(1600);
    for (let p = 0; p < 1600; p++) y[p] = (16 + 65.481 * face.data[3 * p] / 255 + 128.553 * face.data[3 * p + 1] / 255 + 24.966 * face.data[3 * p + 2] / 255) / 255;
    const up = bicubicResize(lr.tensor(y, [1, 1, 40, 40]), { size: [160, 160] }).data();
    let maxDiff = 0;
    for (let p = 0; p < up.length; p++) maxDiff = Math.max(maxDiff, Math.abs(Math.round(Math.min(235, Math.max(16, up[p] * 255))) - out.y.data[p]));
    expect(maxDiff).toBeLessThanOrEqual(1);
  });

  it('grey input stays one channel; RGB models need RGB', () => {
    const grey: RawImage<Uint8Array> = { data: new Uint8Array(64).fill(100), width: 8, height: 8, channels: 1 };
    const out = upscaleImage(new BicubicIdentity(1), grey, 2);
    expect(out.image.channels).toBe(1);
    expect([...new Set(out.image.data)]).toEqual([100]);
    expect(() => upscaleImage(new BicubicIdentity(3), grey, 2)).toThrow(/an RGB image for an RGB model/);
    expect(() => upscaleImage(new BicubicIdentity(1), grey, 0)).toThrow(/'scale' must be an integer >= 1/);
  });

  it('RGB models get bicubic RGB in [0, 1] and return RGB', async () => {
    const face = await tinyFace();
    const out = upscaleImage(new BicubicIdentity(3), face, 2);
    expect(out.tensor.shape).toEqual([1, 3, 80, 80]);
    expect(out.image.channels).toBe(3);
  });

  it("an RGB model's tensor is clamped to [0, 1] as its 8-bit image is", () => {
    // A checkerboard: bicubic enlargement overshoots both ends, so the identity network returns values outside [0, 1].
    const data = new Float32Array(8 * 8 * 3).map((_, i) => ((Math.floor(i / 3) % 8) + Math.floor(i / 24)) % 2);
    const board: RawImage = { data, width: 8, height: 8, channels: 3 };
    const planar = Float32Array.from({ length: 3 * 64 }, (_, i) => data[(i % 64) * 3 + Math.floor(i / 64)]);
    const enlarged = bicubicResize(lr.tensor(planar, [1, 3, 8, 8]), { scale: 2 }).data() as Float32Array;
    expect(Math.max(...enlarged)).toBeGreaterThan(1.01);
    expect(Math.min(...enlarged)).toBeLessThan(-0.01);
    const out = upscaleImage(new BicubicIdentity(3), board, 2);
    const t = out.tensor.data() as Float32Array;
    expect(Math.max(...t)).toBeLessThanOrEqual(1);
    expect(Math.min(...t)).toBeGreaterThanOrEqual(0);
    // The tensor is planar [1, 3, H, W], the image interleaved: both say the same pixels.
    for (let p = 0; p < 16 * 16; p++) for (let c = 0; c < 3; c++) expect(out.image.data[p * 3 + c]).toBe(Math.round(t[c * 256 + p] * 255));
  });
});

describe('loadSuperResolver', () => {
  it('registers every model of the issue', () => {
    for (const name of ['bicubic', 'srcnn', 'srnet', 'vdsr', 'drcn', 'srinc', 'srinc-f', 'face-x4']) expect(listModels()).toContain(name);
    expect(MODEL_REGISTRY['face-x4'].weights?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('upscales a path, a Buffer, a sharp instance, a RawImage, a tensor and an array of them', async () => {
    const sr = await loadSuperResolver('bicubic');
    const face = await tinyFace();
    const png = await encodeImage(face);
    const file = join(tmp, 'tiny.png');
    writeFileSync(file, png);
    const inputs = [file, png, sharp(png), face, imageToTensor(face)];
    const outs = await sr.upscale(inputs, { scale: 4 });
    expect(outs).toHaveLength(5);
    for (const o of outs) {
      expect(o.image.width).toBe(160);
      expect(o.scale).toBe(4);
      // Every input form gives the same pixels (the tensor holds the same 8-bit values / 255).
      expect(Buffer.from(o.image.data).equals(Buffer.from(outs[0].image.data))).toBe(true);
    }
    const pngOut = await outs[0].png();
    expect((await sharp(pngOut).metadata()).width).toBe(160);
    await outs[0].save(join(tmp, 'out.png'));
    expect((await decodeImage(join(tmp, 'out.png'))).height).toBe(160);
    // Default scale: the model's first.
    expect((await sr.upscale(face)).scale).toBe(2);
  });

  it('rejects bad names, inputs, scales and devices with clear errors', async () => {
    await expect(loadSuperResolver('esrgan')).rejects.toThrow(/loadSuperResolver: 'name' must be one of bicubic/);
    await expect(loadSuperResolver('vdsr')).rejects.toThrow(/'vdsr' has no shipped weights/);
    await expect(loadSuperResolver('bicubic', { device: 'tpu' })).rejects.toThrow(RangeError);
    if (!lr.buildInfo().cudaAvailable) await expect(loadSuperResolver('bicubic', { device: 'cuda' })).rejects.toThrow(/device 'cuda' is not available/);
    const sr = await loadSuperResolver('bicubic');
    await expect(sr.upscale(42 as unknown as string)).rejects.toThrow(/upscale: 'input' must be a file path, a Buffer/);
    await expect(sr.upscale(join(tmp, 'missing.png'))).rejects.toThrow(/missing.png/);
    await expect(sr.upscale(lr.zeros([2, 3, 4, 4]))).rejects.toThrow(/\[1, C, H, W\]/);
    await expect(sr.upscale(await tinyFace(), { scale: 2.5 })).rejects.toThrow(/'scale' must be an integer/);
    await expect(sr.upscale(await tinyFace(), { scale: 0 })).rejects.toThrow(/'scale' must be in \[1, 16\]/);
  });

  it('takes the device ids of devices() (and cuda for the first GPU), as loadLandmarkDetector does', async () => {
    const known = lr.devices().map((d) => d.id);
    for (const device of known) {
      // Bicubic holds no tensors to move: a network with weights shows where it went.
      const sr = await loadSuperResolver('srcnn', { device, untrained: true });
      expect(sr.network.device).toBe(device);
      sr.dispose();
    }
    const listed = `one of the devices here (${known.join(', ')})`;
    for (const device of ['tpu', 'cuda:99', 'CPU', '']) {
      await expect(loadSuperResolver('bicubic', { device })).rejects.toThrow(RangeError);
      await expect(loadSuperResolver('bicubic', { device })).rejects.toThrow(`loadSuperResolver: 'device' must be ${listed}, got "${device}"`);
    }
    await expect(loadSuperResolver('bicubic', { device: 0 as unknown as string })).rejects.toThrow(TypeError);
    await expect(loadSuperResolver('bicubic', { device: 0 as unknown as string })).rejects.toThrow(/loadSuperResolver: 'device' must be a device id such as 'cpu' or 'cuda:0', got 0/);
    // 'cuda' without a GPU keeps saying why CUDA is unavailable.
    if (!lr.buildInfo().cudaAvailable) await expect(loadSuperResolver('bicubic', { device: 'cuda' })).rejects.toThrow(/^loadSuperResolver: device 'cuda' is not available here \(.+\)$/);
    else expect((await loadSuperResolver('srcnn', { device: 'cuda', untrained: true })).network.device).toMatch(/^cuda/);
  });

  it('refuses to upscale once disposed, naming the model, whether the resolver or its network was disposed', async () => {
    const raw: RawImage = { data: new Uint8Array(8 * 8).fill(120), width: 8, height: 8, channels: 1 };
    for (const name of ['face-x4', 'bicubic']) {
      const sr = await loadSuperResolver(name);
      expect((await sr.upscale(raw, { scale: 4 })).image.width).toBe(32);
      sr.dispose();
      await expect(sr.upscale(raw, { scale: 4 })).rejects.toThrow(new Error(`SuperResolver.upscale: the '${name}' super-resolver was disposed`));
      await expect(sr.upscale([raw, raw])).rejects.toThrow(/was disposed/);
      // Disposing twice is harmless.
      sr.dispose();
    }
    const sr = await loadSuperResolver('face-x4');
    sr.network.dispose();
    await expect(sr.upscale(raw)).rejects.toThrow("SuperResolver.upscale: the 'face-x4' super-resolver was disposed");
  });

  it('loads .safetensors weights with their architecture and config', async () => {
    lr.manualSeed(2);
    const net = new Vdsr({ depth: 4, features: 8 });
    const file = join(tmp, 'small-vdsr.safetensors');
    saveSrWeights(file, net, { scales: [3] });
    const sr = await loadSuperResolver('vdsr', { weights: file });
    expect((sr.network as Vdsr).config.depth).toBe(4);
    expect(sr.scales).toEqual([3]);
    const x = lr.rand([1, 1, 12, 12]);
    expect([...sr.network.forward(x).data()]).toEqual([...lr.noGrad(() => net.forward(x)).data()]);
  });

  it.skipIf(!haveSharedData('weights/vdsr-pytorch/model_epoch_50.pth', 'set5'))('loads the public pytorch-vdsr .pth as vdsr and beats bicubic on a real crop', async () => {
    const sr = await loadSuperResolver('vdsr', { weights: `${sharedDataDir}weights/vdsr-pytorch/model_epoch_50.pth` });
    expect(sr.network).toBeInstanceOf(Vdsr);
    expect(sr.scales).toEqual([2, 3, 4]);
    const butterfly = await decodeImage(`${sharedDataDir}set5/butterfly_GT.png`);
    const crop = { ...butterfly, width: 96, height: 96, data: new Uint8Array(96 * 96 * 3) };
    for (let y = 0; y < 96; y++) crop.data.set(butterfly.data.subarray((y + 80) * butterfly.width * 3 + 80 * 3, (y + 80) * butterfly.width * 3 + 176 * 3), y * 96 * 3);
    const s = evaluateNetwork(sr.network, [crop], 3);
    expect(s.psnr).toBeGreaterThan(s.bicubicPsnr + 1);
  });

  it('names the file and the problem for corrupt, truncated, mismatched or unknown weights', async () => {
    const good = join(tmp, 'good.safetensors');
    saveSrWeights(good, new Vdsr({ depth: 3, features: 4 }), { scales: [2] });
    const bytes = readFileSync(good);
    const truncated = join(tmp, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 10));
    await expect(loadSuperResolver('vdsr', { weights: truncated })).rejects.toThrow(/truncated.safetensors: corrupt weights/);
    // A shipped file is checked against its recorded sha256 before it is parsed.
    expect(() => readSrWeights(good, { sha256: '0'.repeat(64) })).toThrow(/good.safetensors: sha256 mismatch/);
    expect(readSrWeights(good, { sha256: sha256(bytes) }).meta.arch).toBe('vdsr');
    const garbage = join(tmp, 'garbage.safetensors');
    writeFileSync(garbage, 'not weights at all');
    await expect(loadSuperResolver('vdsr', { weights: garbage })).rejects.toThrow(WeightsFileError);
    await expect(loadSuperResolver('drcn', { weights: join(tmp, 'absent.safetensors') })).rejects.toThrow(/absent.safetensors: cannot read weights \(ENOENT\)/);
    await expect(loadSuperResolver('vdsr', { weights: join(tmp, 'x.bin') })).rejects.toThrow(/unknown weights format/);
    const badPth = join(tmp, 'bad.pth');
    writeFileSync(badPth, 'nope');
    await expect(loadSuperResolver('vdsr', { weights: badPth })).rejects.toThrow(/bad.pth: not a usable PyTorch checkpoint/);
    // Weights of one architecture into another (a .safetensors without our metadata).
    const { encodeSafetensors } = await import('@lrface/nn');
    const foreign = join(tmp, 'foreign.safetensors');
    writeFileSync(foreign, encodeSafetensors(new Map([['conv1.weight', lr.zeros([3, 3])]])));
    await expect(loadSuperResolver('vdsr', { weights: foreign })).rejects.toThrow(/foreign.safetensors: weights do not fit the 'vdsr' network/);
  });

  it('refuses weights whose file records another architecture, and any weights for bicubic', async () => {
    const faceX4 = join(WEIGHTS_DIR, 'face-x4.safetensors');
    await expect(loadSuperResolver('srcnn', { weights: faceX4 })).rejects.toThrow(
      /face-x4\.safetensors: holds 'vdsr' weights, but 'srcnn' is a 'srcnn' model \(load it as 'vdsr' or 'face-x4'\)/,
    );
    await expect(loadSuperResolver('drcn', { weights: faceX4 })).rejects.toThrow(WeightsFileError);
    await expect(loadSuperResolver('bicubic', { weights: faceX4 })).rejects.toThrow(
      /loadSuperResolver: 'weights' must be left out for 'bicubic' \(bicubic interpolation has no weights\), got ".*face-x4\.safetensors"/,
    );
    const srcnn = join(tmp, 'small-srcnn.safetensors');
    saveSrWeights(srcnn, new Srcnn({ kernels: [3, 1, 3], features: [4, 2] }), { scales: [3] });
    await expect(loadSuperResolver('vdsr', { weights: srcnn })).rejects.toThrow(/small-srcnn\.safetensors: holds 'srcnn' weights, but 'vdsr' is a 'vdsr' model \(load it as 'srcnn' or 'srcnn-955'\)/);
    // The same architecture loads, under the name asked for.
    const vdsr = await loadSuperResolver('vdsr', { weights: faceX4 });
    expect(vdsr.name).toBe('vdsr');
    expect(vdsr.network.arch).toBe('vdsr');
    vdsr.dispose();
    expect((await loadSuperResolver('srcnn-955', { weights: srcnn })).network.arch).toBe('srcnn');
  });

  it('rejects unknown option keys, naming the key', async () => {
    await expect(loadSuperResolver('face-x4', { wieghts: 'x' } as unknown as LoadOptions)).rejects.toThrow(TypeError);
    await expect(loadSuperResolver('face-x4', { wieghts: 'x' } as unknown as LoadOptions)).rejects.toThrow(/loadSuperResolver: 'wieghts' must be one of the known options \(weights, device/);
    const sr = await loadSuperResolver('bicubic', { tile: 64 });
    const face = await tinyFace();
    await expect(sr.upscale(face, { scael: 2 } as unknown as UpscaleOptions)).rejects.toThrow(/upscale: 'scael' must be one of the known options \(scale, tile/);
    expect((await sr.upscale(face, { scale: 2, tile: 32, overlap: 4, batchSize: 2, blend: 'average' })).image.width).toBe(80);
  });

  it('rejects float pixels outside [0, 1] and non-finite ones, pointing 8-bit values to a Uint8Array', async () => {
    const sr = await loadSuperResolver('bicubic');
    const img = (v: number, c = 3): RawImage => ({ data: new Float32Array(8 * 8 * c).fill(v), width: 8, height: 8, channels: c });
    const msg = /upscale: 'input' must be float pixels in \[0, 1\] \(8-bit values belong in a Uint8Array, or divide them by 255\), got 200 at index 0/;
    await expect(sr.upscale(img(200))).rejects.toThrow(RangeError);
    await expect(sr.upscale(img(200))).rejects.toThrow(msg);
    await expect(sr.upscale(lr.full([1, 3, 8, 8], 200))).rejects.toThrow(msg);
    await expect(sr.upscale(lr.full([1, 8, 8], 200))).rejects.toThrow(msg);
    await expect(sr.upscale(img(-0.5, 1))).rejects.toThrow(/got -0\.5 at index 0/);
    await expect(sr.upscale(img(NaN))).rejects.toThrow(/got a non-finite value \(NaN\) at index 0/);
    await expect(sr.upscale(lr.full([1, 1, 8, 8], Infinity))).rejects.toThrow(/got a non-finite value \(Infinity\) at index 0/);
    // One bad pixel among good ones is enough.
    const one = img(0.5);
    one.data[100] = 255;
    await expect(sr.upscale(one)).rejects.toThrow(/got 255 at index 100/);
    await expect(sr.upscale(img(2))).rejects.toThrow(/got 2 at index 0$/);
    await expect(sr.upscale(img(1.35))).rejects.toThrow(/got 1\.35 at index 0$/);
    // Bicubic overshoot is accepted (and clamped): a hard-edged [0, 1] image shrunk with
    // bicubicDownImage goes well past 1e-3 outside the range.
    const edges: RawImage = { data: new Float32Array(32 * 32), width: 32, height: 32, channels: 1 };
    // An 8x8-pixel checkerboard.
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) edges.data[y * 32 + x] = ((x >> 3) ^ (y >> 3)) & 1;
    const shrunk = bicubicDownImage(edges, 4);
    expect(Math.max(...shrunk.data)).toBeGreaterThan(1.02);
    expect(Math.min(...shrunk.data)).toBeLessThan(-0.02);
    expect((await sr.upscale(shrunk, { scale: 4 })).image.width).toBe(32);
    expect((await sr.upscale(img(1.25))).image.data[0]).toBe(255);
    expect((await sr.upscale(img(-0.25))).image.data[0]).toBe(0);
    // 8-bit data of any value is fine.
    expect((await sr.upscale({ data: new Uint8Array(64).fill(200), width: 8, height: 8, channels: 1 })).image.data[0]).toBe(200);
  });

  it('says a non-empty path is expected for empty weights, from the function called', async () => {
    await expect(loadSuperResolver('vdsr', { weights: '' })).rejects.toThrow(/^loadSuperResolver: 'weights' must be a non-empty file path, got ""$/);
    await expect(loadSuperResolver('vdsr', { weights: '' })).rejects.toThrow(RangeError);
    await expect(loadSuperResolver('vdsr', { weights: 3 as unknown as string })).rejects.toThrow(/loadSuperResolver: 'weights' must be a non-empty file path, got 3/);
    expect(() => readSrWeights('')).toThrow(/^readSrWeights: 'file' must be a non-empty path string, got ""$/);
    expect(() => readSrWeights(undefined as unknown as string)).toThrow(TypeError);
  });

  it('fits the default overlap to a small tile the user chose, and still checks an overlap they set', async () => {
    // VDSR's receptive radius (20) is the default overlap; a tile of 4 could not hold it.
    const sr = await loadSuperResolver('face-x4');
    const raw: RawImage = { data: new Uint8Array(4 * 4).fill(120), width: 4, height: 4, channels: 1 };
    const out = await sr.upscale(raw, { scale: 2, tile: 4 });
    expect([out.image.width, out.image.height]).toEqual([8, 8]);
    await expect(sr.upscale(raw, { scale: 2, tile: 4, overlap: 20 })).rejects.toThrow(/'overlap' must be less than half the tile \(4\), got 20/);
    // The same through tile defaults given at load time.
    const small = await loadSuperResolver('face-x4', { tile: 4 });
    expect((await small.upscale(raw, { scale: 2 })).image.width).toBe(8);
    sr.dispose();
    small.dispose();
  });

  it('checks the sha256 of the shipped demo face', async () => {
    expect(DEMO_FACE.sha256).toMatch(/^[0-9a-f]{64}$/);
    const face = await readDemoFace();
    expect([face.width, face.height]).toEqual([160, 160]);
  });
});

describe('options of the SR functions refuse unknown keys', () => {
  // A misspelt key (clampy, quantiseLr, patchsize) would otherwise be dropped and the default used.
  const dir = mkdtempSync(join(tmpdir(), 'lrface-sr-keys-'));
  const texture = (w: number, h: number, c = 3): RawImage<Uint8Array> => ({ data: Uint8Array.from({ length: w * h * c }, (_, i) => (i * 37 + (i % 7) * 11) % 256), width: w, height: h, channels: c });
  const weightsFile = join(dir, 'srcnn.safetensors');
  const digest = saveSrWeights(weightsFile, new Srcnn(), { scales: [3] });
  const tile = { tile: 16, overlap: 2, batchSize: 2, blend: 'average' };
  // [function, what the object is called in the message, call with the given keys, every documented key]
  const cases: [string, string, (o: object) => unknown, object][] = [
    ['ssim', 'option', (o) => ssim(texture(16, 16, 1), texture(16, 16, 1), o), { border: 1, peak: 255, windowSize: 7, sigma: 1, k1: 0.02, k2: 0.04 }],
    ['tiledForward', 'option', (o) => tiledForward((x) => lr.affine(x, 1, 0), lr.zeros([1, 1, 24, 24]), 1, o), tile],
    ['upscaleImage', 'option', (o) => upscaleImage(new BicubicIdentity(1), texture(12, 12), 2, o), { ...tile, clampY: false }],
    ['evaluateImage', 'option', (o) => evaluateImage(new BicubicIdentity(1), texture(32, 32), 2, o), { ...tile, quantizeLr: true }],
    ['evaluateNetwork', 'option', (o) => evaluateNetwork(new BicubicIdentity(1), [texture(32, 32)], 2, o), { ...tile, quantizeLr: true }],
    ['evaluateImages', 'option', (o) => evaluateImages('bicubic', new BicubicIdentity(1), [texture(32, 32)], 2, o), { ...tile, quantizeLr: true, onImage: () => {} }],
    ['saveSrWeights', 'meta field', (o) => saveSrWeights(join(dir, 'meta.safetensors'), new Srcnn(), { scales: [3], ...o }), { note: 'a note' }],
    ['readSrWeights', 'option', (o) => readSrWeights(weightsFile, o), { sha256: digest }],
    ['loadSrNetwork', 'fallback field', (o) => loadSrNetwork(weightsFile, { arch: 'srcnn', ...o }), { config: {}, sha256: digest, checkMeta: () => {} }],
    ['loadHrImages', 'option', (o) => loadHrImages([texture(8, 8)], o), { limit: 1 }],
    ['trainSuperResolution', 'option', (o) => trainSuperResolution(new Srcnn(), { images: [texture(40, 40)], steps: 0, ...o }), {
      patchSize: 21, batchSize: 2, optimizer: 'adam', lr: 1e-3, lrMultipliers: { conv3: 0.1 }, momentum: 0.9, weightDecay: 0, lrStepEvery: 0, lrGamma: 0.1,
      clip: { kind: 'norm', maxNorm: 1 }, loss: 'mean', scales: [2], augment: true, validPadding: true, alphaDecaySteps: 10,
      evalImages: [], evalEvery: 1, evalScale: 2, checkpoint: join(dir, 'train.ckpt'), checkpointEvery: 1, resume: false, timeLimit: 60, seed: 3, onLog: () => {},
    }],
    ['SuperResolver', 'tileDefaults field', (o) => new SuperResolver('bicubic', new BicubicIdentity(3), [2], o), tile],
  ];
  it.each(cases)('%s names itself and the misspelt key', async (fn, what, call) => {
    const run = async () => call({ clampy: false });
    await expect(run()).rejects.toThrow(TypeError);
    await expect(run()).rejects.toThrow(`${fn}: 'clampy' must be one of the known ${what}s (`);
  });
  it.each(cases)('%s still takes every documented key', async (_fn, _what, call, documented) => {
    await call(documented);
  });
  it('the keys split off for inner calls still take effect', () => {
    // upscaleImage hands its tiling to tiledForward: a margin of half the tile is refused there.
    expect(() => upscaleImage(new BicubicIdentity(1), texture(12, 12), 2, { tile: 4, overlap: 2 })).toThrow("tiledForward: 'overlap' must be less than half the tile (4), got 2");
    // evaluateImage keeps quantizeLr for itself: 8-bit rounding of the LR image changes the bicubic score.
    const hr = texture(32, 32);
    const exact = evaluateImage(new BicubicIdentity(1), hr, 2);
    const rounded = evaluateImage(new BicubicIdentity(1), hr, 2, { quantizeLr: true });
    expect(rounded.bicubicPsnr).not.toBe(exact.bicubicPsnr);
    expect(Math.abs(rounded.bicubicPsnr - exact.bicubicPsnr)).toBeLessThan(1);
  });
});
