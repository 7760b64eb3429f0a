// The training pipeline on a handful of real corpus faces (built into a temp folder from the
// shared data with the reference 68-point detector).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ops from '@lrface/cuda-core';
import { Rng } from '@lrface/datasets';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { buildFaceCorpus, loadReferenceDetector, openFaceCorpus } from '@lrface/face-corpus';
import {
  HighToLowTrainer, JsonLinesLog, LandmarkTrainer, SupervisedTrainer, DEFAULT_AUGMENT, DEFAULT_HIGH_TO_LOW, groundTruthHeatmaps, labelledBatch,
  landmarkPreset, subsampledLowRes, loadLabelledFaces, loadRealLowResFaces, realLowResBatch, type LabelledFace,
} from '../src/index.js';

const haveData = haveSharedData('widerface/wider_face_split/wider_face_val.mat', 'dlib-faces/training_with_face_landmarks.xml');
const tmp = () => mkdtempSync(join(tmpdir(), 'landmarks-'));

const tinyG1 = { ...DEFAULT_HIGH_TO_LOW.generator, stemWidth: 4, encoderWidths: [4, 4, 4, 4, 4, 4, 4, 4], decoderWidths: [4, 4, 4, 4, 4, 4] };
const tinyUNet = { widths: [4, 8, 8, 8], blocksPerGroup: 2, upsample: 'nearest' as const };
const tinyDisc = { widths: [4, 8, 8, 8], poolCount: 3, spectral: true };

describe.skipIf(!haveData)('training on real corpus faces', () => {
  let faces: LabelledFace[];
  let realLr: Float32Array[];
  beforeAll(async () => {
    const dir = tmp();
    const detector = await loadReferenceDetector();
    await buildFaceCorpus({ outDir: dir, dataDir: sharedDataDir, sources: ['dlib-faces'], limitPerSource: 4, detector });
    const corpus = await openFaceCorpus(dir);
    faces = await loadLabelledFaces(corpus, 'train');
    realLr = await loadRealLowResFaces(corpus, 32);
  }, 120_000);

  it('loads labelled HR faces with 68 points and real LR faces resized to 32x32 in [-1, 1]', () => {
    expect(faces.length).toBe(4);
    for (const f of faces) {
      expect([f.image.width, f.image.height, f.image.channels]).toEqual([128, 128, 3]);
      expect(f.landmarks.length).toBe(136);
    }
    expect(realLr.length).toBeGreaterThan(0);
    for (const p of realLr) {
      expect(p.length).toBe(3 * 32 * 32);
      expect(Math.min(...p)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...p)).toBeLessThanOrEqual(1);
    }
  });

  it('augmented batches carry the points; unaugmented ones reproduce them, scaled to the batch size', () => {
    const rng = new Rng(3);
    const b = labelledBatch(faces, rng, 3, 128, DEFAULT_AUGMENT);
    expect(b.images.shape).toEqual([3, 3, 128, 128]);
    // Deterministic batches reproduce the corpus points exactly.
    const plain = labelledBatch([faces[0]], rng, 1, 128, null);
    for (let i = 0; i < 136; i++) expect(plain.landmarks[0][i]).toBeCloseTo(faces[0].landmarks[i], 3);
    // At 32x32 the points scale by 1/4.
    const small = labelledBatch([faces[0]], rng, 1, 32, null);
    for (let i = 0; i < 136; i += 7) expect(small.landmarks[0][i]).toBeCloseTo((faces[0].landmarks[i] + 0.5) / 4 - 0.5, 3);
    const hm = groundTruthHeatmaps(plain.landmarks, 32, 128, 2);
    expect(hm.shape).toEqual([1, 69, 32, 32]);
  });

  it('runs S4 end to end: G1/D1, then G2 with D2 and D3 all active, k_t moving, losses finite and logged', () => {
    ops.manualSeed(5);
    const rng = new Rng(5);
    const stage1 = new HighToLowTrainer({ ...DEFAULT_HIGH_TO_LOW, generator: tinyG1, discriminator: tinyDisc, steps: 2, batchSize: 2 });
    for (let i = 0; i < 2; i++) {
      const r = stage1.trainStep(labelledBatch(faces, rng, 2, 128, DEFAULT_AUGMENT).images, realLowResBatch(realLr, rng, 2));
      for (const v of [r.lossD1, r.lossG1, r.gan, r.pixel]) expect(Number.isFinite(v)).toBe(true);
    }
    const config = landmarkPreset('S4', {
      generator: tinyUNet, heatmapDiscriminator: tinyUNet, confidenceDiscriminator: tinyDisc, batchSize: 2,
      // A start away from 0 and a large gain so k_t visibly moves within a few steps.
      balance: { gamma: 0.5, lambdaK: 0.005, initialK: 0.5, period: 1 },
    });
    const stage2 = new LandmarkTrainer(config, stage1.generator);
    expect(stage2.heatmapDiscriminator).not.toBeNull();
    expect(stage2.confidenceDiscriminator).not.toBeNull();
    const logFile = join(tmp(), 'log.jsonl');
    const log = new JsonLinesLog(logFile);
    const ks: number[] = [];
    for (let i = 0; i < 3; i++) {
      const b = labelledBatch(faces, rng, 2, 128, DEFAULT_AUGMENT);
      const r = stage2.trainStep({ hr: b.images, landmarks: b.landmarks, realLr: realLowResBatch(realLr, rng, 2) });
      log.write(r);
      for (const key of ['lossG2', 'mse', 'kp', 'conf', 'lossD2', 'realEnergy', 'fakeEnergy', 'lossD3', 'k'] as const) expect(Number.isFinite(r[key]), key).toBe(true);
      ks.push(r.k!);
    }
    expect(new Set([0.5, ...ks]).size).toBeGreaterThan(1);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3]);
    expect(lines[2].setting).toBe('S4');
    expect(lines[2].k).toBe(ks[2]);
  });

  it('S1-S3 use their parts only; S2-S4 need G1, S4 needs real LR faces', () => {
    const rng = new Rng(6);
    const s1 = new LandmarkTrainer(landmarkPreset('S1', { generator: tinyUNet }), null);
    expect([s1.heatmapDiscriminator, s1.confidenceDiscriminator]).toEqual([null, null]);
    const b = labelledBatch(faces, rng, 2, 128, null);
    const r = s1.trainStep({ hr: b.images, landmarks: b.landmarks });
    expect(r.kp).toBeUndefined();
    expect(r.lossD3).toBeUndefined();
    expect(() => new LandmarkTrainer(landmarkPreset('S2'), null)).toThrow(/highToLow/);
    const g1 = new HighToLowTrainer({ ...DEFAULT_HIGH_TO_LOW, generator: tinyG1, discriminator: tinyDisc }).generator;
    const s3 = new LandmarkTrainer(landmarkPreset('S3', { generator: tinyUNet, heatmapDiscriminator: tinyUNet }), g1);
    expect(s3.confidenceDiscriminator).toBeNull();
    expect(Number.isFinite(s3.trainStep({ hr: b.images, landmarks: b.landmarks }).lossD2)).toBe(true);
    const s4 = new LandmarkTrainer(landmarkPreset('S4', { generator: tinyUNet, heatmapDiscriminator: tinyUNet, confidenceDiscriminator: tinyDisc }), g1);
    expect(() => s4.trainStep({ hr: b.images, landmarks: b.landmarks })).toThrow(/realLr/);
    expect(() => s4.trainStep({ hr: b.images, landmarks: [b.landmarks[0]] })).toThrow(/landmarks/);
    expect(() => landmarkPreset('S5' as never)).toThrow(/setting/);
  });

  it('subsampledFraction feeds the first images of a labelled batch as S1 inputs and the rest through G1', () => {
    const rng = new Rng(9);
    const g1 = new HighToLowTrainer({ ...DEFAULT_HIGH_TO_LOW, generator: tinyG1, discriminator: tinyDisc }).generator;
    const b = labelledBatch(faces, rng, 4, 128, null);
    const cfg = (f: number) => landmarkPreset('S2', { generator: tinyUNet, subsampledFraction: f });
    const reference = subsampledLowRes(b.images, 32, cfg(0).smoothingSigma).data();
    const plane = 3 * 32 * 32;
    const half = new LandmarkTrainer(cfg(0.5), g1).labelledLowRes(b.images);
    expect(half.shape).toEqual([4, 3, 32, 32]);
    const h = half.data();
    // Images 0 and 1: exactly S1's subsampled faces; 2 and 3: G1's outputs (tanh range, not those).
    for (let i = 0; i < 2 * plane; i += 17) expect(h[i]).toBeCloseTo(reference[i], 6);
    let differ = 0;
    for (let i = 2 * plane; i < 4 * plane; i++) differ = Math.max(differ, Math.abs(h[i] - reference[i]));
    expect(differ).toBeGreaterThan(0.05);
    const all = new LandmarkTrainer(cfg(1), g1).labelledLowRes(b.images).data();
    for (let i = 0; i < all.length; i += 13) expect(all[i]).toBeCloseTo(reference[i], 6);
    for (const bad of [-0.1, 1.5, Number.NaN]) expect(() => new LandmarkTrainer(cfg(bad), g1)).toThrow(/subsampledFraction/);
  });

  it('the supervised G2 loss falls over a few steps', () => {
    ops.manualSeed(7);
    const rng = new Rng(7);
    const trainer = new SupervisedTrainer({ generator: tinyUNet, optimizer: { lr: 2e-3, betas: [0.5, 0.9], milestones: [], decay: 0.5 }, steps: 8, batchSize: 4, sigma: 2, inputSize: 32 });
    const b = labelledBatch(faces, rng, 4, 32, null);
    const losses = Array.from({ length: 10 }, () => trainer.trainStep(b.images, b.landmarks).mse);
    // From the empty-face start (point maps 0, background 1) toward the Gaussians.
    expect(losses[9]).toBeLessThan(losses[0] * 0.85);
    expect(losses[9]).toBeLessThan(losses[4]);
  });

  it('checkpoints round-trip: the restored trainer predicts the same heatmaps and keeps k_t and the step', () => {
    const rng = new Rng(8);
    const g1 = new HighToLowTrainer({ ...DEFAULT_HIGH_TO_LOW, generator: tinyG1, discriminator: tinyDisc }).generator;
    const cfg = landmarkPreset('S4', { generator: tinyUNet, heatmapDiscriminator: tinyUNet, confidenceDiscriminator: tinyDisc, balance: { initialK: 0.3, lambdaK: 0.01 } });
    const a = new LandmarkTrainer(cfg, g1);
    const b = labelledBatch(faces, rng, 2, 128, null);
    a.trainStep({ hr: b.images, landmarks: b.landmarks, realLr: realLowResBatch(realLr, rng, 2) });
    const file = join(tmp(), 'stage2.safetensors');
    a.save(file);
    const g1b = new HighToLowTrainer({ ...DEFAULT_HIGH_TO_LOW, generator: tinyG1, discriminator: tinyDisc }).generator;
    const restored = new LandmarkTrainer(cfg, g1b);
    restored.load(file);
    expect(restored.step).toBe(1);
    expect(restored.balance.k).toBe(a.balance.k);
    a.generator.eval();
    restored.generator.eval();
    const x = realLowResBatch(realLr, rng, 1);
    const ya = a.generator.forward(x).data();
    const yb = restored.generator.forward(x).data();
    for (let i = 0; i < ya.length; i += 31) expect(yb[i]).toBeCloseTo(ya[i], 6);
  });
});
