// Every model trains on real faces (the loss on a fixed held batch falls after a few steps),
// saves, loads and infers on the CPU.
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { DlibXml, modcrop, type RawImage } from '@lrface/datasets';
import { sharedDataDir } from '@lrface/test-data';
import { loadCheckpoint } from '@lrface/nn';
import {
  Drcn,
  Srcnn,
  Srinc,
  Srnet,
  Vdsr,
  cropBorder,
  defaultRecipe,
  degradePlanes,
  loadHrImages,
  loadSuperResolver,
  saveSrWeights,
  trainSuperResolution,
  type SrNetwork,
  type TrainOptions,
} from '../src/index.js';
import { faceCrops, haveFaceData } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'lrface-sr-train-'));

/** A fixed batch from held-out faces: centre 48x48 crops, bicubic-degraded by `scale`, as [N, C, 48, 48]. */
function heldBatch(images: RawImage[], channels: number, scale: number): { x: lr.Tensor; y: lr.Tensor } {
  const size = 48;
  const xs: Float32Array[] = [], ys: Float32Array[] = [];
  for (const img of images) {
    const hr = modcrop(img, scale);
    const { width: w, height: h } = hr;
    const planes = new Float32Array(channels * w * h);
    for (let p = 0; p < w * h; p++) {
      const [r, g, b] = [hr.data[3 * p] / 255, hr.data[3 * p + 1] / 255, hr.data[3 * p + 2] / 255];
      if (channels === 1) planes[p] = (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255;
      else [planes[p], planes[w * h + p], planes[2 * w * h + p]] = [r, g, b];
    }
    const degraded = degradePlanes(planes, channels, h, w, scale);
    const cut = (src: Float32Array) => {
      const out = new Float32Array(channels * size * size);
      const y0 = (h - size) >> 1, x0 = (w - size) >> 1;
      for (let c = 0; c < channels; c++) for (let r = 0; r < size; r++) for (let q = 0; q < size; q++) out[(c * size + r) * size + q] = src[c * w * h + (y0 + r) * w + x0 + q];
      return out;
    };
    xs.push(cut(degraded));
    ys.push(cut(planes));
  }
  const join = (a: Float32Array[]) => {
    const out = new Float32Array(a.length * a[0].length);
    a.forEach((v, i) => out.set(v, i * v.length));
    return out;
  };
  return { x: lr.tensor(join(xs), [images.length, channels, size, size]), y: lr.tensor(join(ys), [images.length, channels, size, size]) };
}

function heldLoss(net: SrNetwork, batch: { x: lr.Tensor; y: lr.Tensor }): number {
  return lr.noGrad(() => lr.scope(() => {
    const m = Math.min(net.receptiveRadius, 8);
    return lr.mean(lr.square(lr.sub(cropBorder(net.forward(batch.x), m), cropBorder(batch.y, m)))).item();
  }));
}

describe.skipIf(!haveFaceData)('training on real faces', () => {
  let train: RawImage[];
  let held: RawImage[];
  beforeAll(async () => {
    train = await faceCrops('train', 6);
    held = await faceCrops('test', 3);
  });

  const cases: [string, () => SrNetwork, Partial<TrainOptions>][] = [
    ['SRCNN 9-1-5 (valid padding)', () => new Srcnn(), { optimizer: 'adam', lr: 1e-3, batchSize: 8, steps: 12 }],
    ['SRCNN 9-5-5', () => new Srcnn({ kernels: [9, 5, 5] }), { optimizer: 'adam', lr: 1e-3, batchSize: 8, steps: 12 }],
    ['SRNET (RGB)', () => new Srnet(), { optimizer: 'adam', lr: 1e-3, batchSize: 8, steps: 12 }],
    // The paper's optimiser and rate (SGD 0.1) with the default clip: the recipe itself trains.
    ['VDSR (paper recipe, adjustable norm clipping)', () => new Vdsr({ depth: 8, features: 16 }), { batchSize: 8, steps: 12, scales: [3], patchSize: 32 }],
    ['DRCN (recursive supervision)', () => new Drcn({ features: 16, recursions: 3 }), { optimizer: 'adam', lr: 1e-3, batchSize: 8, steps: 12, patchSize: 32, alphaDecaySteps: 6 }],
    ['SRINC', () => new Srinc({ features: 16, modules: 2, module: [[{ conv: 1, out: 8 }], [{ conv: 1, out: 4 }, { conv: 3, out: 8 }]], scales: [3] }), { lr: 1e-3, batchSize: 8, steps: 12, patchSize: 32 }],
    ['SRINC-F (scales 1-3)', () => new Srinc({ features: 16, modules: 2, module: [[{ conv: 1, out: 8 }], [{ conv: 3, out: 8 }]], scales: [1, 2, 3] }), { lr: 1e-3, batchSize: 8, steps: 12, patchSize: 32 }],
  ];

  for (const [name, make, options] of cases)
    it(`${name}: the held-out loss falls, and the trained net saves, loads and infers`, { timeout: 180_000 }, async () => {
      lr.manualSeed(4);
      const net = make();
      const batch = heldBatch(held, net.channels, 3);
      const before = heldLoss(net, batch);
      const result = await trainSuperResolution(net, { images: train, seed: 3, ...options } as TrainOptions);
      expect(result.steps).toBe(options.steps);
      expect(result.losses.every(Number.isFinite)).toBe(true);
      const after = heldLoss(net, batch);
      expect(after).toBeLessThan(before * 0.9);
      // Save, load through the public API, infer on a real tiny face.
      const file = join(tmp, `${net.arch}-${Math.random().toString(36).slice(2)}.safetensors`);
      saveSrWeights(file, net, { scales: [3] });
      const sr = await loadSuperResolver(net.arch === 'srinc-f' ? 'srinc-f' : net.arch, { weights: file });
      const x = lr.rand([1, net.channels, 20, 20]);
      const a = sr.network.forward(x).data();
      const b = lr.noGrad(() => net.forward(x)).data();
      a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5));
      const out = await sr.upscale(held[0], { scale: 3 });
      expect([out.image.width, out.image.height]).toEqual([384, 384]);
    });

  it('adjustable clipping bounds each SGD update by theta: the global norm, or each element', { timeout: 60_000 }, async () => {
    const step = async (clip: NonNullable<TrainOptions['clip']>) => {
      lr.manualSeed(5);
      const net = new Vdsr({ depth: 4, features: 8 });
      const before = net.parameters().map((p) => Float32Array.from(p.data() as Float32Array));
      await trainSuperResolution(net, { images: train, steps: 1, batchSize: 4, scales: [3], patchSize: 32, optimizer: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0, clip });
      const deltas = net.parameters().flatMap((p, i) => Array.from(p.data() as Float32Array, (v, j) => v - before[i][j]));
      return { norm: Math.hypot(...deltas), max: Math.max(...deltas.map(Math.abs)) };
    };
    // From He init the gradient is far above theta / lr, so the bounds are reached.
    const byNorm = await step({ kind: 'adjustable-norm', theta: 1e-3 });
    expect(byNorm.norm).toBeCloseTo(1e-3, 5);
    const byElement = await step({ kind: 'adjustable', theta: 1e-3 });
    expect(byElement.max).toBeCloseTo(1e-3, 6);
    expect(byElement.norm).toBeGreaterThan(10 * byNorm.norm);
  });

  it("full-size VDSR on the paper's SGD 0.1 stays finite with the default clip (the per-element reading jumps to ~1e14)", { timeout: 60_000 }, async () => {
    const losses = async (clip?: TrainOptions['clip']) => {
      lr.manualSeed(1);
      const options = { images: train, steps: 3, batchSize: 4, seed: 2, ...(clip ? { clip } : {}) };
      return (await trainSuperResolution(new Vdsr(), options)).losses;
    };
    const byDefault = await losses();
    expect(Math.max(...byDefault)).toBeLessThan(2 * byDefault[0]);
    const perElement = await losses({ kind: 'adjustable', theta: 0.01 });
    expect(perElement[0]).toBeCloseTo(byDefault[0], 4);
    expect(Math.max(...perElement)).toBeGreaterThan(1e6 * byDefault[0]);
  });

  it('a diverging run stops naming the step the log would have shown next (1-based)', async () => {
    lr.manualSeed(3);
    const logged: number[] = [];
    const run = trainSuperResolution(new Srcnn(), { images: train, steps: 20, batchSize: 4, optimizer: 'sgd', lr: 1e9, onLog: (e) => logged.push(e.step) });
    await expect(run).rejects.toThrow(/trainSuperResolution: the loss became (NaN|-?Infinity) at step \d+ \(lower 'lr' or enable 'clip'\)/);
    const failed = Number((await run.catch((e: Error) => e.message)).match(/at step (\d+)/)![1]);
    expect(logged).toEqual(Array.from({ length: failed - 1 }, (_, i) => i + 1));
  });

  it("full-size DRCN on its paper's SGD 0.01 stays finite with the default clip (unclipped, the loss becomes NaN)", { timeout: 120_000 }, async () => {
    const run = (clip?: TrainOptions['clip']) => {
      lr.manualSeed(1);
      return trainSuperResolution(new Drcn(), { images: train, steps: 3, batchSize: 2, seed: 2, ...(clip !== undefined ? { clip } : {}) });
    };
    const byDefault = (await run()).losses;
    expect(byDefault.every(Number.isFinite)).toBe(true);
    await expect(run(null)).rejects.toThrow(/the loss became NaN at step [23]/);
  });

  it('refuses a clip it does not know instead of training unclipped', async () => {
    const run = (clip: unknown) => trainSuperResolution(new Vdsr({ depth: 3, features: 4 }), { images: train, steps: 1, clip } as TrainOptions);
    await expect(run({ kind: 'Norm', maxNorm: 1 })).rejects.toThrow(/trainSuperResolution: 'clip\.kind' must be one of 'adjustable-norm', 'adjustable', 'value', 'norm'/);
    await expect(run({ kind: 'norm', theta: 1 })).rejects.toThrow(/'theta' must be one of the known clip fields \(kind, maxNorm\)/);
    await expect(run({ kind: 'adjustable', theta: -1 })).rejects.toThrow(/'clip\.theta' must be a finite number > 0/);
    await expect(run(0.4)).rejects.toThrow(TypeError);
  });

  it('uses each paper recipe by default', () => {
    const vdsr = defaultRecipe(new Vdsr({ depth: 3, features: 4 }));
    expect(vdsr).toMatchObject({ patchSize: 41, batchSize: 64, optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4, clip: { kind: 'adjustable-norm', theta: 0.01 }, scales: [2, 3, 4], augment: true });
    expect(defaultRecipe(new Srcnn())).toMatchObject({ patchSize: 33, optimizer: 'sgd', lr: 1e-4, lrMultipliers: { conv3: 0.1 }, validPadding: true });
    expect(defaultRecipe(new Drcn({ features: 4, recursions: 2 }))).toMatchObject({ patchSize: 41, lr: 0.01, weightDecay: 1e-4, loss: 'half-sum', clip: { kind: 'adjustable-norm', theta: 0.01 } });
    expect(defaultRecipe(new Srinc({ features: 4, modules: 1, scales: [8, 12, 16] }))).toMatchObject({ patchSize: 51, scales: [8, 12, 16] });
  });

  it('writes a checkpoint, resumes from it, and evaluates against bicubic during training', { timeout: 180_000 }, async () => {
    lr.manualSeed(9);
    const net = new Vdsr({ depth: 4, features: 8 });
    const checkpoint = join(tmp, 'vdsr.ckpt.safetensors');
    const logs: unknown[] = [];
    const first = await trainSuperResolution(net, { images: train, steps: 4, batchSize: 4, scales: [4], patchSize: 32, checkpoint, checkpointEvery: 2, evalImages: held.slice(0, 1), evalEvery: 2, evalScale: 4, onLog: (e) => logs.push(e) });
    expect(existsSync(checkpoint)).toBe(true);
    expect(first.evals).toHaveLength(2);
    const e = first.evals[0].eval!;
    expect(e.bicubicPsnr).toBeGreaterThan(20);
    expect(e.psnr).toBeGreaterThan(10);
    const atStep4 = join(tmp, 'vdsr.step4.safetensors');
    copyFileSync(checkpoint, atStep4);
    const resumed = new Vdsr({ depth: 4, features: 8 });
    const second = await trainSuperResolution(resumed, { images: train, steps: 6, batchSize: 4, scales: [4], patchSize: 32, checkpoint, resume: true });
    expect(second.losses).toHaveLength(2);
    expect(second.steps).toBe(6);
    // The resumed steps draw other patches than a fresh run's first steps: the checkpoint's
    // weights on the seed's first batch would give that run's first loss again.
    const restarted = new Vdsr({ depth: 4, features: 8 });
    loadCheckpoint(atStep4, { model: restarted });
    const fromStart = await trainSuperResolution(restarted, { images: train, steps: 1, batchSize: 4, scales: [4], patchSize: 32 });
    expect(fromStart.losses[0]).not.toBeCloseTo(second.losses[0], 6);
  });

  it('reads HR images from a folder and face crops from a datasets reader, and trains on them', { timeout: 120_000 }, async () => {
    const folder = await loadHrImages(`${sharedDataDir}set5`);
    expect(folder).toHaveLength(5);
    expect(folder[0].channels).toBe(3);
    const reader = await DlibXml.open({ file: `${sharedDataDir}dlib-faces/training.xml` });
    const crops = await loadHrImages(reader, { limit: 12 });
    expect(crops).toHaveLength(12);
    // (Nearly) square crops of the annotated boxes with a 20 % margin.
    for (const c of crops) expect(Math.abs(c.width - c.height)).toBeLessThanOrEqual(1);
    const net = new Vdsr({ depth: 3, features: 4 });
    const r = await trainSuperResolution(net, { images: reader, steps: 2, batchSize: 2, patchSize: 24, scales: [2] });
    expect(r.losses).toHaveLength(2);
  });

  it('rejects bad options', async () => {
    const net = new Vdsr({ depth: 3, features: 4 });
    await expect(trainSuperResolution(net, { images: train, steps: -1 })).rejects.toThrow(/'steps' must be an integer >= 0/);
    await expect(trainSuperResolution(net, { images: train, steps: 1, scales: [] })).rejects.toThrow(/'scales'/);
    await expect(trainSuperResolution(net, { images: train, steps: 1, patchSize: 400 })).rejects.toThrow(/images of at least 400x400/);
    await expect(trainSuperResolution(new Srcnn({ padding: 'valid' }), { images: train, steps: 1, patchSize: 12 })).rejects.toThrow(/'patchSize' must be an integer > 12/);
    await expect(trainSuperResolution(net, { images: '/nonexistent/folder', steps: 1 })).rejects.toThrow(/cannot read the folder/);
  });
});
