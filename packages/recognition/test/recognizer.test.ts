import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { decodeImage } from '@lrface/datasets';
import { saveSafetensors } from '@lrface/nn';
import { FaceRecognizer, Frnet, LightCnn9, RecognitionWeightsError, loadRecognitionNetwork, loadRecognizer, saveRecognitionWeights, writeFace } from '../src/index.js';
import { FACE_FILES, LFW_FACE_BOX, haveFaceApi, haveFaces } from './helpers.js';
import { encodeImage, type RawImage } from '@lrface/datasets';
import { faceApiModelDir } from '@lrface/nn';
import {
  evaluateIdentification, evaluatePairs, evaluateVideoPairs, identificationMetrics, identityBatches, loadFaceApiRecognizer, loadFaceApiResNet29,
} from '../src/index.js';

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

describe('options of the recognition functions refuse unknown keys', () => {
  // A misspelt key (normalise, boxB as boxb, lowResoluton) would otherwise be dropped and the default used.
  const keysDir = mkdtempSync(join(tmpdir(), 'lrface-recognition-keys-'));
  const texture = (seed: number): RawImage<Uint8Array> => ({ data: Uint8Array.from({ length: 56 * 48 * 3 }, (_, i) => (i * 37 + seed * 101 + (i % 5) * 7) % 256), width: 48, height: 56, channels: 3 });
  const net = tinyFrnet();
  const weights = join(keysDir, 'frnet.safetensors');
  saveRecognitionWeights(weights, net);
  const recognizer = new FaceRecognizer(net);
  const files: string[] = [];
  const box = { x: 2, y: 2, width: 40, height: 40 };
  const ready = (async () => {
    for (let i = 0; i < 4; i++) {
      files.push(join(keysDir, `face${i}.png`));
      writeFileSync(files[i], await encodeImage(texture(i)));
    }
  })();
  const pairs = () => ([[0, 1, true, 0], [0, 2, false, 0], [1, 3, true, 1], [3, 2, false, 1]] as const).map(([a, b, same, fold]) => ({ images: [files[a], files[b]] as [string, string], same, fold }));
  const videoPairs = () => pairs().map((p) => ({ videos: [[{ image: p.images[0], box }], [{ image: p.images[1], box }]] as [{ image: string }[], { image: string }[]], same: p.same, fold: p.fold }));
  const enhance = (f: RawImage) => f;
  // [function, call with the given keys, every documented key, what the object is called in the message (default: option)]
  const cases: [string, (o: object) => unknown, object, string?][] = [
    ['FaceRecognizer', (o) => new FaceRecognizer(net, o), { margin: 0.1, device: 'cpu' }],
    ['FaceRecognizer.input', (o) => recognizer.input(texture(0), o), { box }],
    ['FaceRecognizer.features', (o) => recognizer.features(lr.rand([1, 3, 56, 48]), o), { normalize: false }],
    ['FaceRecognizer.embed', (o) => recognizer.embed(texture(0), o), { box, normalize: false }],
    ['FaceRecognizer.match', (o) => recognizer.match(texture(0), texture(1), o), { boxA: box, boxB: box }],
    ['FaceRecognizer.compare', (o) => recognizer.compare(texture(0), texture(1), o), { boxA: box, boxB: box }],
    ['FaceRecognizer.distance', (o) => recognizer.distance(texture(0), texture(1), o), { boxA: box, boxB: box }],
    ['loadRecognizer', (o) => loadRecognizer(weights, o), { arch: 'frnet', config: {}, margin: 0.1, device: 'cpu' }],
    ['loadRecognitionNetwork', (o) => loadRecognitionNetwork(weights, o), { arch: 'frnet', config: {} }],
    ['saveRecognitionWeights', (o) => saveRecognitionWeights(join(keysDir, 'meta.safetensors'), net, o), { note: 'a note' }, 'meta field'],
    ['identificationMetrics', (o) => identificationMetrics([[1, 0], [0, 1]], [1, 2], [1, 2], o), { ranks: [1, 2] }],
    ['identityBatches', (o) => identityBatches([{ image: texture(0), identity: 0 }], { batchSize: 1, inputShape: [3, 56, 48], ...o }),
      { augment: null, margin: 0.1, lowResolutionScale: 2, border: 1, seed: 3, keepPartial: true }],
    ['evaluatePairs', async (o) => { await ready; return evaluatePairs(recognizer, pairs(), o); }, { box, lowResolution: 16, enhance, score: 'distance', onProgress: () => {} }],
    ['evaluateIdentification', async (o) => { await ready; return evaluateIdentification(recognizer, [{ image: files[0], identity: 1 }], [{ image: files[1], identity: 1 }, { image: files[2], identity: null }], o); },
      { box, lowResolution: 16, enhance, ranks: [1], chunk: 1, onProgress: () => {} }],
    ['evaluateVideoPairs', async (o) => { await ready; return evaluateVideoPairs(recognizer, videoPairs(), o); }, { lowResolution: 16, enhance, framesPerVideo: 1, onProgress: () => {} }],
    // Refused before face-api's weights are looked for.
    ['loadFaceApiRecognizer', (o) => loadFaceApiRecognizer(o), {}],
    ['loadFaceApiResNet29', (o) => loadFaceApiResNet29(o), {}],
  ];
  it.each(cases)('%s names itself and the misspelt key', async (fn, call, _documented, what = 'option') => {
    const run = async () => call({ normalise: false });
    await expect(run()).rejects.toThrow(TypeError);
    await expect(run()).rejects.toThrow(`${fn}: 'normalise' must be one of the known ${what}s (`);
  });
  it.each(cases)('%s still takes every documented key', async (_fn, call, documented) => {
    await call(documented);
  });
  it('evaluateVideoPairs refuses a box (each frame has its own), which it used to drop', async () => {
    await ready;
    await expect(evaluateVideoPairs(recognizer, videoPairs(), { box } as object)).rejects.toThrow("evaluateVideoPairs: 'box' must be one of the known options (lowResolution, enhance, framesPerVideo, onProgress), got an unknown option");
  });
  it.skipIf(!haveFaceApi)('loadFaceApiRecognizer and loadFaceApiResNet29 still take every documented key', async () => {
    expect((await loadFaceApiRecognizer({ modelDir: faceApiModelDir(), margin: 0.1, device: 'cpu' })).margin).toBe(0.1);
    expect((await loadFaceApiResNet29({ modelDir: faceApiModelDir(), numClasses: 3 })).config.numClasses).toBe(3);
  });
  it('the checked keys still take effect', async () => {
    const raw = await recognizer.embed(texture(0), { normalize: false });
    const unit = await recognizer.embed(texture(0));
    const norm = Math.hypot(...raw);
    expect(norm).toBeGreaterThan(0);
    raw.forEach((v, i) => expect(unit[i]).toBeCloseTo(v / norm, 5));
  });
});
