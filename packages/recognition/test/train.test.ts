import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Rng } from '@lrface/datasets';
import { Srnet } from '@lrface/sr';
import { Frnet, LightCnn9, RecognitionTrainer, identityBatches, type IdentityBatchOptions, type IdentityFace } from '../src/index.js';
import { haveFaces, identityFaces, mean } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lrface-recognition-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const smallFrnet = (numClasses: number) => new Frnet({ numClasses, channels: [16, 32, 32, 64, 64], units: [1, 1, 1, 1] });

function gray(width: number, height: number, value: number): IdentityFace['image'] {
  return { data: new Uint8Array(width * height * 3).fill(value), width, height, channels: 3 };
}

describe('identityBatches', () => {
  it('makes shuffled batches of the network input size, reshuffled each epoch, the same again for the same seed', () => {
    const faces = Array.from({ length: 10 }, (_, i) => ({ image: gray(30 + i, 40, 20 * i), identity: i }));
    const epochs = (seed: number) => {
      const batches = identityBatches(faces, { batchSize: 4, inputShape: [3, 48, 40], seed, augment: null });
      return [0, 1].map(() => [...batches].map((b) => ({ shape: b.images.shape, labels: Array.from(b.labels.data()), first: b.images.data()[0] })));
    };
    const [e1, e2] = epochs(5);
    // 10 faces in batches of 4: the partial last batch is dropped.
    expect(e1.map((b) => b.shape)).toEqual([[4, 3, 48, 40], [4, 3, 48, 40]]);
    expect(e1.flatMap((b) => b.labels).sort()).toHaveLength(8);
    expect(new Set(e1.flatMap((b) => b.labels)).size).toBe(8);
    expect(e1.flatMap((b) => b.labels)).not.toEqual(e2.flatMap((b) => b.labels));
    // Without augmentation a flat face keeps its value: pixel = identity's grey level / 255.
    for (const b of e1) expect(b.first).toBeCloseTo((20 * b.labels[0]) / 255, 5);
    expect(epochs(5)).toEqual([e1, e2]);
    const all = [...identityBatches(faces, { batchSize: 4, inputShape: [1, 8, 8], keepPartial: true })];
    expect(all.map((b) => b.images.shape[0])).toEqual([4, 4, 2]);
    expect(all[0].images.shape[1]).toBe(1);
  });

  it('joint batches: a 4x bicubic-degraded input and the face as target, the input larger by the border', () => {
    const faces = Array.from({ length: 3 }, (_, i) => ({ image: gray(50, 50, 100 + i), identity: i }));
    const [b] = [...identityBatches(faces, { batchSize: 3, inputShape: [3, 32, 24], lowResolutionScale: 4, border: 6, augment: null })];
    expect(b.images.shape).toEqual([3, 3, 44, 36]);
    expect(b.targets!.shape).toEqual([3, 3, 32, 24]);
    // A flat face stays flat through the degradation.
    const label = b.labels.data()[0];
    expect(Math.abs(b.images.data()[44 * 18 + 18] - (100 + label) / 255)).toBeLessThan(1e-3);
    expect(Math.abs(b.targets!.data()[0] - (100 + label) / 255)).toBeLessThan(1e-5);
  });

  it("refuses unknown augment keys at the call, naming identityBatches, and honours every documented one", () => {
    const r = new Rng(3);
    const faces = Array.from({ length: 4 }, (_, i) => ({ image: { data: Uint8Array.from({ length: 20 * 24 * 3 }, () => Math.floor(r.next() * 256)), width: 20, height: 24, channels: 3 }, identity: i }));
    // Refused when the batches are made, not when the first one is drawn (under randomAugmentation's name).
    expect(() => identityBatches(faces, { batchSize: 2, inputShape: [3, 24, 20], augment: { rotate: 5 } as never })).toThrow(
      new TypeError("identityBatches: 'rotate' must be one of the known options.augment fields (scale, rotation, translation, flip), got an unknown options.augment field"),
    );
    expect(() => identityBatches(faces, { batchSize: 2, inputShape: [3, 24, 20], augment: 5 as never })).toThrow(new TypeError("identityBatches: 'options.augment' must be an object, got 5"));
    const first = (augment: IdentityBatchOptions['augment']) => {
      const [b] = [...identityBatches(faces, { batchSize: 4, inputShape: [3, 24, 20], seed: 9, augment })];
      return { labels: Array.from(b.labels.data()), pixels: b.images.data() as Float32Array };
    };
    const plain = first(null);
    // Every key, at no change: the faces as without augmentation.
    const none = first({ scale: [1, 1], rotation: 0, translation: 0, flip: 0 });
    expect(none.labels).toEqual(plain.labels);
    expect(Math.max(...none.pixels.map((v, i) => Math.abs(v - plain.pixels[i])))).toBeLessThan(1e-5);
    // flip: 1 mirrors every face: column x of each plane is column 19 - x of the plain one (to
    // the 8-bit rounding of the warp; neighbouring random pixels differ by ~85 levels).
    const flipped = first({ scale: [1, 1], rotation: 0, translation: 0, flip: 1 });
    expect(flipped.labels).toEqual(plain.labels);
    let worst = 0;
    for (let p = 0; p < 4 * 3 * 24; p++) for (let x = 0; x < 20; x++) worst = Math.max(worst, Math.abs(flipped.pixels[p * 20 + x] - plain.pixels[p * 20 + 19 - x]));
    expect(worst).toBeLessThanOrEqual(1 / 255 + 1e-6);
  });

  it('rejects bad faces and options naming the argument', () => {
    const faces = [{ image: gray(10, 10, 1), identity: 0 }];
    expect(() => identityBatches([], { batchSize: 1, inputShape: [3, 8, 8] })).toThrow(/identityBatches: 'faces'/);
    expect(() => identityBatches([{ image: gray(10, 10, 1), identity: -1 }], { batchSize: 1, inputShape: [3, 8, 8] })).toThrow(/'faces\[0\]\.identity'/);
    expect(() => identityBatches([{ image: 'x' as unknown as IdentityFace['image'], identity: 0 }], { batchSize: 1, inputShape: [3, 8, 8] })).toThrow(TypeError);
    expect(() => identityBatches([{ image: gray(10, 10, 1), identity: 0, box: { x: 10, y: 0, width: 4, height: 4 } }], { batchSize: 1, inputShape: [3, 8, 8] })).toThrow(
      /identityBatches: 'faces\[0\]\.box' must be a box overlapping the image \(10x10\)/,
    );
    expect(() => identityBatches(faces, { batchSize: 0, inputShape: [3, 8, 8] })).toThrow(/'batchSize'/);
    expect(() => identityBatches(faces, { batchSize: 1, inputShape: [3, 8] as unknown as [number, number, number] })).toThrow(/'inputShape'/);
    expect(() => identityBatches(faces, { batchSize: 1, inputShape: [3, 8, 8], lowResolutionScale: 1 })).toThrow(/'lowResolutionScale'/);
    expect(() => identityBatches(faces, { batchSize: 1, inputShape: [3, 8, 8], border: 2 })).toThrow(/'border'/);
  });
});

describe.skipIf(!haveFaces)('RecognitionTrainer on real faces', () => {
  it('softmax + center loss: FRNET learns six identities from seven real photographs (loss falls, centres move)', async () => {
    lr.manualSeed(1);
    const net = smallFrnet(6);
    const trainer = new RecognitionTrainer(net, { optimizer: 'adam', lr: 1e-3 });
    const batches = identityBatches(await identityFaces(), { batchSize: 7, inputShape: net.inputShape, seed: 3 });
    const log = [];
    for (let epoch = 0; epoch < 24; epoch++) for (const b of batches) log.push(trainer.trainStep(b));
    const softmax = log.map((r) => r.softmax);
    expect(softmax[0]).toBeGreaterThan(1.5); // ~ ln 6 at the start
    expect(mean(softmax.slice(-4))).toBeLessThan(0.5 * mean(softmax.slice(0, 4)));
    expect(mean(log.slice(-4).map((r) => r.accuracy))).toBeGreaterThan(0.8);
    expect(log.every((r) => r.pixel === 0 && r.samples === 7)).toBe(true);
    const centers = trainer.centerLoss.centers.data();
    expect(Math.max(...Array.from(centers, Math.abs))).toBeGreaterThan(0.01);
    expect(trainer.step).toBe(24);
  });

  it('joint training (Wu et al.): SRNET and FRNET together, pixel and identity losses both fall on 4x-degraded faces', async () => {
    lr.manualSeed(2);
    const sr = new Srnet({ features: [16, 8] });
    const net = smallFrnet(6);
    const trainer = new RecognitionTrainer(net, { hallucinator: sr, optimizer: 'adam', lr: 1e-3, pixelLossWeight: 10 });
    const batches = identityBatches(await identityFaces(), { batchSize: 7, inputShape: net.inputShape, lowResolutionScale: 4, seed: 4 });
    const srBefore = Array.from(sr.conv1.weight.data());
    const log = [];
    for (let epoch = 0; epoch < 20; epoch++) for (const b of batches) log.push(trainer.trainStep(b));
    expect(mean(log.slice(-4).map((r) => r.pixel))).toBeLessThan(0.7 * mean(log.slice(0, 4).map((r) => r.pixel)));
    expect(mean(log.slice(-4).map((r) => r.softmax))).toBeLessThan(0.7 * mean(log.slice(0, 4).map((r) => r.softmax)));
    // The hallucinator is trained too.
    expect(Math.max(...Array.from(sr.conv1.weight.data(), (v, i) => Math.abs(v - srBefore[i])))).toBeGreaterThan(1e-4);
    expect(Object.keys(trainer.models)).toEqual(['centerLoss', 'hallucinator']);
  });

  it('LightCNN-9 with two pools trains on 32x32 grayscale faces', async () => {
    lr.manualSeed(3);
    const net = new LightCnn9({ inputSize: 32, pools: [true, true, false, false], numClasses: 6, dropout: 0 });
    const trainer = new RecognitionTrainer(net, { optimizer: 'adam', lr: 3e-4, centerLossWeight: 0.003 });
    const batches = identityBatches(await identityFaces(), { batchSize: 7, inputShape: net.inputShape, seed: 5 });
    const log = [];
    for (let epoch = 0; epoch < 30; epoch++) for (const b of batches) log.push(trainer.trainStep(b).softmax);
    expect(mean(log.slice(-3))).toBeLessThan(0.6 * mean(log.slice(0, 3)));
  });

  it('a saved trainer resumes exactly: the next step from the checkpoint equals the uninterrupted one', async () => {
    const faces = await identityFaces();
    const make = () => {
      lr.manualSeed(6);
      const net = smallFrnet(6);
      return new RecognitionTrainer(net, { optimizer: 'sgd', lr: 0.01 });
    };
    const batchList = [...identityBatches(faces, { batchSize: 7, inputShape: [3, 112, 96], seed: 6, augment: null })];
    const a = make();
    a.trainStep(batchList[0]);
    a.trainStep(batchList[0]);
    const path = join(dir, 'resume.safetensors');
    a.save(path, { note: 'two steps' });
    const next = a.trainStep(batchList[0]);
    const b = make();
    expect(b.load(path)).toEqual({ note: 'two steps' });
    expect(b.step).toBe(2);
    expect(Array.from(b.centerLoss.centers.data())).not.toEqual(new Array(6 * 512).fill(0));
    const resumed = b.trainStep(batchList[0]);
    expect(resumed.loss).toBeCloseTo(next.loss, 5);
    expect(resumed.center).toBeCloseTo(next.center, 5);
  });

  it('rejects a network without a head, bad settings and bad batches', () => {
    expect(() => new RecognitionTrainer(new Frnet({ inputSize: 48, channels: [2, 2, 2, 2, 2], units: [0, 0, 0, 0] }))).toThrow(/numClasses >= 1/);
    expect(() => new RecognitionTrainer({} as Frnet)).toThrow(/RecognitionTrainer: 'network'/);
    const net = new Frnet({ inputSize: 48, channels: [2, 2, 2, 2, 2], units: [0, 0, 0, 0], numClasses: 2 });
    expect(() => new RecognitionTrainer(net, { optimizer: 'rmsprop' as 'sgd' })).toThrow(/'optimizer'/);
    expect(() => new RecognitionTrainer(net, { lr: -1 })).toThrow(/'lr'/);
    expect(() => new RecognitionTrainer(net, { centerAlpha: 2 })).toThrow(/'alpha'/);
    const t = new RecognitionTrainer(net);
    expect(() => t.trainStep({ images: lr.rand([2, 3, 48, 48]) } as unknown as Parameters<typeof t.trainStep>[0])).toThrow(/'batch'/);
    expect(() => t.trainStep({ images: lr.rand([2, 3, 40, 48]), labels: lr.tensor(new Int32Array([0, 1]), [2], 'int32') })).toThrow(/Frnet\.forward: 'x'/);
    const joint = new RecognitionTrainer(new Frnet({ inputSize: 48, channels: [2, 2, 2, 2, 2], units: [0, 0, 0, 0], numClasses: 2 }), { hallucinator: new Srnet({ features: [4, 4] }) });
    expect(() => joint.trainStep({ images: lr.rand([2, 3, 48, 48]), labels: lr.tensor(new Int32Array([0, 1]), [2], 'int32') })).toThrow(/'batch\.targets'/);
  });
});
