import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { decodeImage } from '@lrface/datasets';
import { saveSafetensors } from '@lrface/nn';
import { FaceRecognizer, Frnet, LightCnn9, RecognitionWeightsError, loadRecognitionNetwork, loadRecognizer, saveRecognitionWeights, writeFace } from '../src/index.js';
import { FACE_FILES, LFW_FACE_BOX, haveFaces } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lrface-recognition-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tinyFrnet = () => new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [1, 0, 1, 0], embeddingDim: 16, numClasses: 3 });

describe('weights files', () => {
  it('save and load rebuild the same network from the file alone (architecture and config in its metadata)', () => {
    lr.manualSeed(1);
    const net = tinyFrnet().eval();
    const file = join(dir, 'frnet.safetensors');
    saveRecognitionWeights(file, net, { note: 'test' });
    const loaded = loadRecognitionNetwork(file).eval();
    expect(loaded.arch).toBe('frnet');
    expect(loaded.config).toEqual(net.config);
    const x = lr.rand([2, 3, 56, 48]);
    expect(Array.from(loaded.forward(x).data())).toEqual(Array.from(net.forward(x).data()));
    const l9 = new LightCnn9({ inputSize: 16, pools: [true, false, false, true] });
    saveRecognitionWeights(join(dir, 'l9.safetensors'), l9);
    expect(loadRecognitionNetwork(join(dir, 'l9.safetensors')).config).toEqual(l9.config);
  });

  it('names the file and the problem for missing, corrupt, foreign and mismatched files', () => {
    const net = tinyFrnet();
    const good = join(dir, 'good.safetensors');
    saveRecognitionWeights(good, net);
    const bytes = readFileSync(good);
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    expect(() => loadRecognitionNetwork(truncated)).toThrow(RecognitionWeightsError);
    expect(() => loadRecognitionNetwork(truncated)).toThrow(new RegExp(`^${truncated}: corrupt weights`));
    expect(() => loadRecognitionNetwork(join(dir, 'missing.safetensors'))).toThrow(/missing\.safetensors: cannot read weights \(ENOENT\)/);
    expect(() => loadRecognitionNetwork(join(dir, 'weights.onnx'))).toThrow(/unknown weights format/);
    expect(() => loadRecognitionNetwork(join(dir, 'x.pth'))).toThrow(/pass options\.arch/);
    // A safetensors file of someone else's: needs the architecture, then must fit it.
    const foreign = join(dir, 'foreign.safetensors');
    saveSafetensors(foreign, new Map([['fc5.weight', lr.zeros([2, 2])]]));
    expect(() => loadRecognitionNetwork(foreign)).toThrow(/not an lrface recognition weights file/);
    expect(() => loadRecognitionNetwork(foreign, { arch: 'frnet', config: { inputSize: 48 } })).toThrow(/the weights do not fit a frnet/);
    expect(() => loadRecognitionNetwork(good, { arch: 'lightcnn9' })).toThrow(/holds a 'frnet' network/);
    expect(() => loadRecognitionNetwork(good, { config: { embeddingDim: 8 } })).toThrow(/do not fit/);
    expect(() => loadRecognitionNetwork(42 as unknown as string)).toThrow(TypeError);
    // A failed save leaves the previous file whole.
    expect(() => saveRecognitionWeights(join(dir, 'no-such-dir', 'x.safetensors'), net)).toThrow();
    expect(readFileSync(good).equals(bytes)).toBe(true);
  });
});

describe.skipIf(!haveFaces)('FaceRecognizer on real images', () => {
  it('embeds an image file, bytes, pixels and a tensor alike, as unit vectors', async () => {
    lr.manualSeed(2);
    const rec = new FaceRecognizer(tinyFrnet());
    const file = FACE_FILES[0];
    const fromFile = await rec.embed(file);
    expect(fromFile).toHaveLength(16);
    expect(Math.hypot(...fromFile)).toBeCloseTo(1, 5);
    expect(Array.from(await rec.embed(readFileSync(file)))).toEqual(Array.from(fromFile));
    const image = await decodeImage(file);
    expect(Array.from(await rec.embed(image))).toEqual(Array.from(fromFile));
    // The tensor path: the same warp written by hand.
    const pixels = new Float32Array(3 * 56 * 48);
    writeFace(image, undefined, 3, 56, 48, 0, undefined, pixels, 0);
    const t = lr.tensor(pixels, [1, 3, 56, 48]);
    const fromTensor = await rec.embed(t);
    for (let i = 0; i < 16; i++) expect(fromTensor[i]).toBeCloseTo(fromFile[i], 6);
    expect(await rec.compare(file, file)).toBeCloseTo(1, 5);
    const other = await rec.compare(file, FACE_FILES[5], { boxB: LFW_FACE_BOX });
    expect(other).toBeLessThan(1);
    expect(other).toBeGreaterThanOrEqual(-1);
  });

  it('loadRecognizer reads a weights file; a grayscale network takes colour images', async () => {
    lr.manualSeed(3);
    const net = new LightCnn9({ inputSize: 32, pools: [true, true, false, false] });
    const file = join(dir, 'l9-rec.safetensors');
    saveRecognitionWeights(file, net);
    const rec = loadRecognizer(file);
    expect(rec.network.training).toBe(false);
    const f = await rec.embed(FACE_FILES[6], { box: LFW_FACE_BOX });
    expect(f).toHaveLength(256);
    expect(Math.hypot(...f)).toBeCloseTo(1, 5);
    const batch = lr.rand([3, 1, 32, 32]);
    expect(rec.features(batch).shape).toEqual([3, 256]);
  });

  it('bad faces get clear errors: a missing file names it, a wrong tensor names the shape', async () => {
    const rec = new FaceRecognizer(tinyFrnet());
    await expect(rec.embed(join(dir, 'nobody.png'))).rejects.toThrow(/nobody\.png/);
    const corrupt = join(dir, 'corrupt.png');
    writeFileSync(corrupt, readFileSync(FACE_FILES[0]).subarray(0, 200));
    await expect(rec.embed(corrupt)).rejects.toThrow(/corrupt\.png/);
    await expect(rec.embed(lr.rand([1, 3, 10, 10]))).rejects.toThrow(/'x' must be shape \[N, 3, 56, 48\]/);
    await expect(rec.embed(lr.rand([2, 3, 56, 48]))).rejects.toThrow(/one face/);
    await expect(rec.embed(42 as unknown as string)).rejects.toThrow(TypeError);
    // A box outside the image would compare border fill and still give a confident answer.
    const image = await decodeImage(FACE_FILES[0]);
    const outside = { x: image.width + 10, y: 0, width: 30, height: 30 };
    await expect(rec.embed(FACE_FILES[0], { box: outside })).rejects.toThrow(
      new RangeError(`FaceRecognizer.embed: 'box' must be a box overlapping the image (${image.width}x${image.height}), got {x: ${outside.x}, y: 0, width: 30, height: 30}`),
    );
    await expect(rec.match(FACE_FILES[0], FACE_FILES[1], { boxB: { x: 0, y: -40, width: 30, height: 30 } })).rejects.toThrow(/FaceRecognizer\.match: 'boxB' must be a box overlapping the image/);
    await expect(rec.compare(FACE_FILES[0], FACE_FILES[1], { boxA: { x: 0, y: 0, width: 0, height: 30 } })).rejects.toThrow(/'boxA' must be a box with finite x, y and a positive width and height/);
    await expect(rec.embed(FACE_FILES[0], { box: [0, 0, 30, 30] as never })).rejects.toThrow(TypeError);
    await expect(rec.embed(lr.rand([1, 3, 56, 48]), { box: LFW_FACE_BOX })).rejects.toThrow(/'box' must be left out for a network-input tensor/);
    // A box partly outside (a face at the border) is still a face.
    expect((await rec.embed(FACE_FILES[0], { box: { x: -10, y: -10, width: 60, height: 60 } })).length).toBe(16);
    expect(() => new FaceRecognizer({} as Frnet)).toThrow(/'network'/);
    expect(() => new FaceRecognizer(tinyFrnet(), { margin: -1 })).toThrow(/'margin'/);
  });
});
