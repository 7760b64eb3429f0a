// DIC / DICGAN: shapes, the attention parts against naive loops, the global skip against a
// naive bilinear x8, the hourglass residual against hand-built convolutions, weight sharing
// across steps, the hourglass freeze, training on real corpus faces, weights and checkpoints,
// DICGAN steps, inference, evaluation and every error path.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Conv2d, Module, encodeSafetensors, l1Loss } from '@lrface/nn';
import { Rng, bicubicResize, decodeImage, imageToTensor, tensorToImage, type RawImage } from '@lrface/datasets';
import {
  DEFAULT_DIC_CONFIG,
  DIC_68_LANDMARK_GROUPS,
  Dic,
  DicGanTrainer,
  DicTrainer,
  FeatureHeatmapFusion,
  HourglassResidual,
  LightCnnDiscriminator,
  Vdsr,
  WeightsFileError,
  bceWithLogits,
  decodeDicLandmarks,
  dicBatch,
  dicLosses,
  disposeDicBatch,
  evaluateDic,
  landmarkNme,
  loadDicWeights,
  mergeHeatmaps,
  sampleDicFaces,
  saveDicWeights,
  saveSrWeights,
  srScores,
  superResolveFace,
  type DicConfig,
  type DicGanTrainConfig,
  type DicFace,
} from '../src/index.js';
import { faceCorpusDir, faceCrops, haveFaceData } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'lrface-dic-'));

/** The small DIC of the tests: 16x16 -> 128x128, a few thousand times cheaper than the released one. */
const SMALL: Partial<DicConfig> = { numFeatures: 8, numGroups: 2, numSteps: 2, hgNumFeature: 16, hgDepth: 2, numFusionBlocks: 1 };

function values(t: lr.Tensor): number[] {
  return Array.from(t.data());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Smooth synthetic faces (only for the shape / plumbing tests; training uses real faces). */
function syntheticFace(size: number, seed: number): DicFace {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = Math.round(127 + 100 * Math.sin(0.05 * (x + 2 * c) + 0.07 * y + seed));
  const rng = new Rng(seed);
  const landmarks = Array.from({ length: 136 }, () => rng.uniform(4, size - 5));
  return { image: { data, width: size, height: size, channels: 3 }, landmarks };
}

describe('DIC network', () => {
  it('has the released defaults and gives one SR image and heatmap stack per step (default config, 16x16 -> 128x128)', () => {
    expect(DEFAULT_DIC_CONFIG).toMatchObject({ numFeatures: 48, numSteps: 4, numGroups: 6, hgNumFeature: 256, numKeypoints: 68, numFusionBlocks: 7, scale: 8, hgDepth: 4, detachAttention: false });
    expect(DEFAULT_DIC_CONFIG.projection).toEqual({ kernel: 12, stride: 8, padding: 2 });
    expect(DEFAULT_DIC_CONFIG.rgbMean).toEqual([0.509, 0.424, 0.378]);
    lr.manualSeed(1);
    const net = new Dic();
    const out = lr.noGrad(() => net.forward(lr.rand([1, 3, 16, 16], { low: -0.5, high: 0.5 })));
    expect(out.sr.map((t) => t.shape)).toEqual(Array(4).fill([1, 3, 128, 128]));
    expect(out.heatmaps.map((t) => t.shape)).toEqual(Array(4).fill([1, 68, 32, 32]));
    // Parameter names are those of the released state dict.
    const keys = [...net.stateDict().keys()];
    for (const k of ['conv_in.0.weight', 'conv_in.1.weight', 'first_block.upBlocks.5.0.weight', 'block.uptranBlocks.4.0.weight', 'block.fusion_block.resnet.6.res.2.weight', 'HG.hg.res4_1.conv_block.2.weight', 'HG.hg.res_center.conv_block.3.weight', 'HG.hg_conv_out.1.conv_block.0.weight', 'out.0.weight', 'conv_out.0.weight'])
      expect(keys).toContain(k);
    expect(net.block.fusion_block!.resnet.at(0)).toBeDefined();
    const grouped = (net.block.fusion_block!.resnet.at(0) as unknown as { res: { at(i: number): Conv2d } }).res.at(0);
    expect(grouped.weight.shape).toEqual([240, 48, 3, 3]);
    expect(grouped.options.groups).toBe(5);
    expect(net.first_block.upBlocks.length).toBe(6);
    expect((net.first_block.upBlocks.at(0) as unknown as { at(i: number): { weight: lr.Tensor } }).at(0).weight.shape).toEqual([48, 48, 12, 12]);
    net.dispose();
  }, 60_000);

  it('takes any LR size that is a multiple of 2^(hgDepth - 1), non-square included', () => {
    lr.manualSeed(2);
    const net = new Dic(SMALL);
    expect(net.sizeMultiple).toBe(2);
    const out = lr.noGrad(() => net.forward(lr.rand([2, 3, 8, 12])));
    expect(out.sr.map((t) => t.shape)).toEqual([[2, 3, 64, 96], [2, 3, 64, 96]]);
    expect(out.heatmaps[1].shape).toEqual([2, 68, 16, 24]);
    // The step count does not add parameters: later steps reuse the attentive block.
    expect(new Dic({ ...SMALL, numSteps: 4 }).numParameters()).toBe(net.numParameters());
  });

  it('merges heatmaps as the released merge_heatmap_5: max-normalised (max clamped >= 0.05), summed per group', () => {
    lr.manualSeed(3);
    const [b, k, h, w] = [2, 68, 3, 4];
    const raw = lr.rand([b, k, h, w], { low: -0.2, high: 1 }).data() as Float32Array;
    // Some maps with a small peak, where the clamp decides.
    for (let i = 0; i < b * k; i += 3) for (let p = 0; p < h * w; p++) raw[i * h * w + p] *= 0.02;
    const x = lr.tensor(raw, [b, k, h, w]);
    const check = (groups: number[][]) => {
      const got = mergeHeatmaps(x, groups).data();
      expect(got.length).toBe(b * groups.length * h * w);
      for (let n = 0; n < b; n++)
        groups.forEach((g, gi) => {
          for (let p = 0; p < h * w; p++) {
            let s = 0;
            for (const j of g) {
              let m = -Infinity;
              for (let q = 0; q < h * w; q++) m = Math.max(m, raw[(n * k + j) * h * w + q]);
              s += raw[(n * k + j) * h * w + p] / Math.max(m, 0.05);
            }
            expect(Math.abs(got[(n * groups.length + gi) * h * w + p] - s)).toBeLessThan(1e-5);
          }
        });
    };
    check(DIC_68_LANDMARK_GROUPS.map((g) => [...g]));
    expect(DIC_68_LANDMARK_GROUPS.map((g) => [g[0], g[g.length - 1]])).toEqual([[36, 41], [42, 47], [27, 35], [48, 67], [0, 26]]);
    // Non-contiguous groups (as the Helen-194 grouping).
    check([[0, 5, 6, 7, 60], [3]]);
  });

  it('fuses features with a per-pixel softmax over the components, each component on its own channel group', () => {
    lr.manualSeed(4);
    const [C, K, B, H, W] = [3, 5, 2, 4, 3];
    const fusion = new FeatureHeatmapFusion(C, K, 2, 0.2);
    const feature = lr.rand([B, C, H, W], { low: -1, high: 1 });
    const merged = lr.rand([B, K, H, W], { low: -2, high: 3 });
    const got = fusion.forward(feature, merged).data();
    const f = lr.noGrad(() => fusion.resnet.forward(fusion.conv_in.forward(feature))).data();
    const m = merged.data();
    for (let n = 0; n < B; n++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const logits = Array.from({ length: K }, (_, kk) => m[((n * K + kk) * H + y) * W + x]);
          const z = logits.reduce((s, v) => s + Math.exp(v), 0);
          for (let c = 0; c < C; c++) {
            let s = 0;
            for (let kk = 0; kk < K; kk++) s += (Math.exp(logits[kk]) / z) * f[((n * K * C + kk * C + c) * H + y) * W + x];
            expect(Math.abs(got[((n * C + c) * H + y) * W + x] - s)).toBeLessThan(1e-5);
          }
        }
    // The grouped residual blocks keep the components apart: changing component 1's channels leaves the others.
    const wide = lr.rand([1, C * K, H, W]);
    const before = lr.noGrad(() => fusion.resnet.forward(wide)).data();
    const bumped = wide.data().slice() as Float32Array;
    for (let i = C * H * W; i < 2 * C * H * W; i++) bumped[i] += 1;
    const after = lr.noGrad(() => fusion.resnet.forward(lr.tensor(bumped, wide.shape))).data();
    const plane = C * H * W;
    for (let kk = 0; kk < K; kk++) {
      const d = maxAbsDiff(before.slice(kk * plane, (kk + 1) * plane), after.slice(kk * plane, (kk + 1) * plane));
      if (kk === 1) expect(d).toBeGreaterThan(1e-3);
      else expect(d).toBe(0);
    }
  });

  it('adds a bilinear x8 (align corners false) of the LR input as the global skip', () => {
    lr.manualSeed(5);
    const net = new Dic(SMALL);
    const [h, w] = [4, 6];
    const x = lr.rand([1, 3, h, w]);
    // Zero reconstruction: every step's image is the skip alone.
    for (const p of net.conv_out.parameters()) p.assign(new Float32Array(p.size));
    const out = lr.noGrad(() => net.forward(x));
    const src = x.data();
    const axis = (o: number, n: number) => {
      const s = Math.max(0, (o + 0.5) / 8 - 0.5);
      const i0 = Math.min(Math.floor(s), n - 1);
      return [i0, Math.min(i0 + 1, n - 1), s - i0] as const;
    };
    const naive = new Float32Array(3 * 8 * h * 8 * w);
    for (let c = 0; c < 3; c++)
      for (let oy = 0; oy < 8 * h; oy++)
        for (let ox = 0; ox < 8 * w; ox++) {
          const [y0, y1, ly] = axis(oy, h);
          const [x0, x1, lx] = axis(ox, w);
          const v = (yy: number, xx: number) => src[(c * h + yy) * w + xx];
          naive[(c * 8 * h + oy) * 8 * w + ox] = (1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1));
        }
    for (const s of out.sr) expect(maxAbsDiff(s.data(), naive)).toBeLessThan(1e-5);
  });

  it("builds the hourglass residual without a ReLU after its 3x3 (as the released code)", () => {
    lr.manualSeed(6);
    const res = new HourglassResidual(4, 8);
    const x = lr.rand([1, 4, 5, 5], { low: -1, high: 1 });
    const [c1, , c3, c4] = res.conv_block.children() as Conv2d[];
    const skip = res.skip_layer!;
    const reference = (reluAfter3x3: boolean) =>
      lr.scope(() => {
        let t = lr.relu(lr.conv2d(x, c1.weight, c1.bias!));
        t = lr.conv2d(t, c3.weight, c3.bias!, { padding: 1 });
        if (reluAfter3x3) t = lr.relu(t);
        return lr.add(lr.conv2d(t, c4.weight, c4.bias!), lr.conv2d(x, skip.weight, skip.bias!)).data();
      });
    const got = lr.noGrad(() => res.forward(x)).data();
    expect(maxAbsDiff(got, reference(false))).toBeLessThan(1e-6);
    // The two readings differ on this input, so the check above tells them apart.
    expect(maxAbsDiff(got, reference(true))).toBeGreaterThan(1e-3);
    // Equal widths: the identity skip.
    const same = new HourglassResidual(6, 6);
    expect(same.skip_layer).toBeNull();
  });

  it('shares the attentive block across steps >= 1, with weights separate from the first block', () => {
    lr.manualSeed(7);
    const net = new Dic({ ...SMALL, numSteps: 3 });
    const x = lr.rand([1, 3, 16, 16]);
    const a = lr.noGrad(() => net.forward(x));
    const bias = (net.block.compress_out.at(0) as Conv2d).bias!;
    bias.assign(lr.affine(bias, 1, 0.3));
    const b = lr.noGrad(() => net.forward(x));
    expect(values(b.sr[0])).toEqual(values(a.sr[0]));
    expect(values(b.heatmaps[0])).toEqual(values(a.heatmaps[0]));
    for (const t of [1, 2]) expect(maxAbsDiff(a.sr[t].data(), b.sr[t].data())).toBeGreaterThan(1e-4);
    const firstParams = new Set(net.first_block.parameters());
    expect(net.block.parameters().some((p) => firstParams.has(p))).toBe(false);
    // The attention reaches the SR branch: detaching it leaves the values, not the gradient path.
    const detached = new Dic({ ...SMALL, numSteps: 3, detachAttention: true });
    detached.loadStateDict(net.stateDict());
    const d = lr.noGrad(() => detached.forward(x));
    expect(maxAbsDiff(d.sr[2].data(), b.sr[2].data())).toBeLessThan(1e-6);
  });

  it('rejects bad configs and inputs, naming Dic and the argument', () => {
    expect(() => new Dic({ scale: 4 })).toThrow(RangeError);
    expect(() => new Dic({ scale: 4 })).toThrow(/Dic: 'scale' must be 8/);
    expect(() => new Dic({ projection: { kernel: 12, stride: 8, padding: 3 } })).toThrow(/Dic: 'projection' must be kernel - 2 \* padding = stride/);
    expect(() => new Dic({ numFeatures: 0 })).toThrow(/Dic: 'numFeatures' must be an integer >= 1/);
    expect(() => new Dic({ hgNumFeature: 10 })).toThrow(/'hgNumFeature' must be a multiple of 4/);
    expect(() => new Dic({ landmarkGroups: [[0, 70]] })).toThrow(/'landmarkGroups\[0\]' must be indices in \[0, 68\)/);
    expect(() => new Dic({ numFeaturs: 8 } as Partial<DicConfig>)).toThrow(/Dic: 'numFeaturs' must be one of the known config fields \(inChannels, /);
    const net = new Dic(SMALL);
    expect(() => net.forward(lr.rand([1, 1, 16, 16]))).toThrow(RangeError);
    expect(() => net.forward(lr.rand([1, 1, 16, 16]))).toThrow(/Dic.forward: 'lr' must be shape \[B, 3, h, w\], got \[1,1,16,16\]/);
    expect(() => net.forward(lr.rand([1, 3, 15, 16]))).toThrow(/Dic.forward: 'lr' must be a size h x w with h and w positive multiples of 2/);
    expect(() => net.forward([1, 2, 3] as unknown as lr.Tensor)).toThrow(TypeError);
    expect(() => new Dic().forward(lr.rand([1, 3, 12, 12]))).toThrow(/multiples of 8 \(hourglass depth 4\)/);
  });
});

describe('DIC losses, data and decoding', () => {
  it('computes BCE with logits as -[y log s(x) + (1 - y) log(1 - s(x))], finite for large logits', () => {
    const xs = [-4, -0.7, 0, 0.3, 2.5, 6];
    const t = lr.tensor(xs, [2, 3]);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const naive = (y: number) => xs.reduce((s, v) => s - (y * Math.log(sig(v)) + (1 - y) * Math.log(1 - sig(v))), 0) / xs.length;
    expect(Math.abs(bceWithLogits(t, 1).item() - naive(1))).toBeLessThan(1e-5);
    expect(Math.abs(bceWithLogits(t, 0).item() - naive(0))).toBeLessThan(1e-5);
    const big = lr.tensor([80, -80], [2]);
    expect(Math.abs(bceWithLogits(big, 1).item() - 40)).toBeLessThan(1e-3);
    expect(() => bceWithLogits(t, 2 as 1)).toThrow(/'target' must be 0 or 1/);
  });

  it('prepares batches: mean-subtracted HR, 8-bit LR by bicubic 1/8, Gaussian heatmaps at x / 4 with peak 1, mirrored flips', () => {
    const net = new Dic(SMALL);
    const face = syntheticFace(128, 1);
    // A point on the heatmap grid: its Gaussian peaks at 1.
    const pts = Float32Array.from(face.landmarks as number[]);
    pts[0] = 40;
    pts[1] = 60;
    const batch = dicBatch(net, [{ image: face.image, landmarks: pts }]);
    expect(batch.lr.shape).toEqual([1, 3, 16, 16]);
    expect(batch.hr.shape).toEqual([1, 3, 128, 128]);
    expect(batch.heatmaps!.shape).toEqual([1, 68, 32, 32]);
    const hm = batch.heatmaps!.data();
    for (const [j, i] of [[15, 10], [16, 9], [14, 12]]) expect(Math.abs(hm[j * 32 + i] - Math.exp(-((i - 10) ** 2 + (j - 15) ** 2) / 2))).toBeLessThan(1e-6);
    const mean = DEFAULT_DIC_CONFIG.rgbMean;
    const hr = batch.hr.data();
    expect(Math.abs(hr[0] + mean[0] - face.image.data[0] / 255)).toBeLessThan(1e-6);
    expect(Math.abs(hr[128 * 128 + 5] + mean[1] - face.image.data[5 * 3 + 1] / 255)).toBeLessThan(1e-6);
    // LR: the antialiased bicubic of the HR, rounded to 8 bits, minus the mean.
    const hr01 = lr.tensor(Float32Array.from(hr, (v, i) => v + mean[Math.floor(i / (128 * 128))]), [1, 3, 128, 128]);
    const ref = bicubicResize(hr01, { size: [16, 16] }).data();
    const lrv = batch.lr.data();
    for (let i = 0; i < lrv.length; i++) {
      const v = lrv[i] + mean[Math.floor(i / 256)];
      expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-3);
      expect(Math.abs(v - ref[i])).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    }
    // A flipped face: the mirrored image, points mirrored and re-labelled (left eye <-> right eye).
    const flipped = dicBatch(net, [{ image: face.image, landmarks: pts }], { flips: [true] });
    expect(flipped.hr.data()[127]).toBeCloseTo(hr[0], 6);
    expect(flipped.landmarks![0][2 * 45]).toBeCloseTo(127 - pts[2 * 36], 5);
    expect(flipped.landmarks![0][2 * 45 + 1]).toBeCloseTo(pts[2 * 36 + 1], 5);
    expect(flipped.landmarks![0][2 * 16]).toBeCloseTo(127 - pts[0], 5);
    const custom = dicBatch(net, [face], { downscale: (x, s) => lr.avgPool2d(x, { kernelSize: s }), quantizeLr: false });
    expect(custom.lr.shape).toEqual([1, 3, 16, 16]);
    for (const b of [batch, flipped, custom]) disposeDicBatch(b);
    expect(() => dicBatch(net, [syntheticFace(100, 2)])).toThrow(/'faces' must be HR images whose sides are positive multiples of 16/);
    expect(() => dicBatch(net, [{ ...face, landmarks: [1, 2] }])).toThrow(/'faces\[0\].landmarks' must be 136 numbers/);
    expect(() => dicBatch(net, [face], { downscale: () => lr.zeros([1, 3, 4, 4]) })).toThrow(/'downscale' must be a function returning a \[1,3,16,16\] tensor/);
  });

  it('decodes landmarks as the first maximum of each map times 4, and measures NME', () => {
    const maps = new Float32Array(2 * 2 * 3 * 4);
    maps[0 * 12 + 1 * 4 + 2] = 1; // face 0, point 0: (x 2, y 1)
    maps[1 * 12 + 2 * 4 + 0] = 0.5; // face 0, point 1: a tie, the first in row-major order wins
    maps[1 * 12 + 2 * 4 + 3] = 0.5;
    maps[2 * 12 + 0 * 4 + 3] = 2; // face 1, point 0: (3, 0)
    for (let i = 3 * 12; i < 4 * 12; i++) maps[i] = -1;
    maps[3 * 12 + 2 * 4 + 1] = -0.1; // face 1, point 1: all negative, max -0.1 at (1, 2)
    const got = decodeDicLandmarks(lr.tensor(maps, [2, 2, 3, 4]));
    expect(Array.from(got[0])).toEqual([8, 4, 0, 8]);
    expect(Array.from(got[1])).toEqual([12, 0, 4, 8]);
    const gt = Array.from({ length: 136 }, (_, i) => (i % 2 === 0 ? (i / 2) * 1.5 : 40 + (i % 7)));
    gt[72] = 30; gt[73] = 50; gt[90] = 90; gt[91] = 50; // outer eye corners 60 px apart
    const pred = gt.map((v, i) => v + (i % 2 === 0 ? 3 : 4)); // every point off by 5 px
    expect(landmarkNme(pred, gt)).toBeCloseTo(5 / 60, 10);
    expect(landmarkNme(pred, gt, 'width')).toBeCloseTo(5 / (Math.max(...gt.filter((_, i) => i % 2 === 0)) - Math.min(...gt.filter((_, i) => i % 2 === 0))), 10);
    expect(landmarkNme(pred, gt, 'released-eye-width')).toBeCloseTo(5 / Math.abs(gt[74] - gt[92]), 10);
    expect(() => landmarkNme(pred.slice(2), gt)).toThrow(RangeError);
  });

  it("applies the released GAN solver's pixel-loss quirk only when asked (numSteps x L1 of the last step)", () => {
    lr.manualSeed(8);
    const net = new Dic({ ...SMALL, numSteps: 3 });
    const batch = dicBatch(net, [syntheticFace(128, 3)]);
    const out = lr.noGrad(() => net.forward(batch.lr));
    const perStep = out.sr.reduce((s, t) => s + l1Loss(t, batch.hr).item(), 0);
    const quirk = 3 * l1Loss(out.sr[2], batch.hr).item();
    expect(Math.abs(perStep - quirk)).toBeGreaterThan(1e-4);
    expect(dicLosses(out, batch.hr, batch.heatmaps!).pixel.item()).toBeCloseTo(perStep, 5);
    expect(dicLosses(out, batch.hr, batch.heatmaps!, { lastStepPixelOnly: true }).pixel.item()).toBeCloseTo(quirk, 5);
    const align = out.heatmaps.reduce((s, h) => s + lr.mean(lr.square(lr.sub(h, batch.heatmaps!))).item(), 0);
    expect(dicLosses(out, batch.hr, batch.heatmaps!).align.item()).toBeCloseTo(align, 6);
  });
});

/** The corpus faces that carry 68 reference points (128x128 crops). */
async function labelledFaces(): Promise<DicFace[]> {
  const { openFaceCorpus } = await import('@lrface/face-corpus');
  const corpus = await openFaceCorpus(await faceCorpusDir());
  const items = corpus.hr.filter((it) => it.landmarks !== null);
  return Promise.all(items.map(async (it) => ({ image: await decodeImage(corpus.path(it)), landmarks: it.landmarks! })));
}

/** A 128x128 face at 64x64 (antialiased bicubic, 8-bit; points with pixel centres at integers), to keep the training tests fast. */
function halfSize(face: DicFace): DicFace {
  const small = lr.scope(() => tensorToImage(bicubicResize(imageToTensor(face.image), { size: [64, 64] }))) as RawImage<Uint8Array>;
  return { image: small, landmarks: face.landmarks ? Array.from(face.landmarks, (v) => (v + 0.5) / 2 - 0.5) : null };
}

describe.skipIf(!haveFaceData)('DIC on real faces', () => {
  let faces: DicFace[];
  // 64x64 copies (8x8 LR) for the training runs.
  let faces64: DicFace[];
  let heldOut64: DicFace[];
  beforeAll(async () => {
    faces = await labelledFaces();
    faces64 = faces.map(halfSize);
    heldOut64 = (await faceCrops('test', 4)).map((image) => halfSize({ image }));
  }, 120_000);

  it('has real labelled faces to train on', () => {
    expect(faces.length).toBeGreaterThanOrEqual(6);
    for (const f of faces) expect([f.image.width, f.image.height, f.image.channels, f.landmarks!.length]).toEqual([128, 128, 3, 136]);
  });

  it('trains: the DIC loss falls on real faces and the held-out SR error falls; the hourglass is fixed before its release step', { timeout: 120_000 }, () => {
    lr.manualSeed(11);
    const net = new Dic(SMALL);
    const trainer = new DicTrainer(net, { lr: 3e-3, releaseHgStep: 1 });
    // Fixed batches: every labelled face (the training loss) and held-out test-split faces (SR error only).
    const fixed = dicBatch(net, faces64);
    const held = dicBatch(net, heldOut64);
    const measure = () =>
      lr.noGrad(() =>
        lr.scope(() => {
          net.eval();
          const l = dicLosses(net.forward(fixed.lr), fixed.hr, fixed.heatmaps!);
          const out = net.forward(held.lr);
          return { pixel: l.pixel.item(), align: l.align.item(), total: l.pixel.item() + 0.1 * l.align.item(), held: l1Loss(out.sr[out.sr.length - 1], held.hr).item() };
        }),
      );
    const before = measure();
    const bilinear = lr.noGrad(() => l1Loss(net.globalSkip(held.lr), held.hr).item());
    const rng = new Rng(5);
    const hgBefore = net.HG.parameters().map((p) => values(p));
    const srBefore = values((net.conv_in.at(0) as Conv2d).weight);
    const losses: number[] = [];
    for (let s = 0; s < 50; s++) {
      const pick = sampleDicFaces(faces64, 4, rng, true);
      const batch = dicBatch(net, pick.faces, { flips: pick.flips });
      const r = trainer.trainStep(batch);
      disposeDicBatch(batch);
      losses.push(r.total);
      if (s === 0) {
        // Step 0 < releaseHgStep: the hourglass stays, the SR branch moves.
        expect(r.hourglassTrained).toBe(false);
        net.HG.parameters().forEach((p, i) => expect(values(p)).toEqual(hgBefore[i]));
        expect(maxAbsDiff((net.conv_in.at(0) as Conv2d).weight.data(), srBefore)).toBeGreaterThan(1e-4);
      }
      if (s === 1) {
        expect(r.hourglassTrained).toBe(true);
        const moved = net.HG.parameters().reduce((m, p, i) => Math.max(m, maxAbsDiff(p.data(), hgBefore[i])), 0);
        expect(moved).toBeGreaterThan(1e-4);
      }
    }
    const after = measure();
    const f = (v: number) => v.toFixed(4);
    console.log(
      `DIC small, 8x8 -> 64x64, 50 steps x 4 real faces: loss ${f(before.total)} -> ${f(after.total)} (pixel ${f(before.pixel)} -> ${f(after.pixel)}, align ${f(before.align)} -> ${f(after.align)}); ` +
        `held-out L1 ${f(before.held)} -> ${f(after.held)} (bilinear ${f(bilinear)})`,
    );
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(after.total).toBeLessThan(0.9 * before.total);
    expect(after.align).toBeLessThan(0.3 * before.align);
    expect(after.pixel).toBeLessThan(0.97 * before.pixel);
    // Faces never trained on: the SR error falls too (it starts near the bilinear skip's, logged beside it).
    expect(after.held).toBeLessThan(before.held);
    disposeDicBatch(fixed);
    disposeDicBatch(held);

    // Save / load: the same outputs.
    const file = join(tmp, 'dic-small.safetensors');
    saveDicWeights(file, net, { note: 'test' });
    const loaded = loadDicWeights(file);
    expect(loaded.config).toEqual(net.config);
    const x = dicBatch(net, [faces[0]]).lr;
    net.eval();
    const a = lr.noGrad(() => net.forward(x));
    const b = lr.noGrad(() => loaded.forward(x));
    expect(values(b.sr[1])).toEqual(values(a.sr[1]));
    expect(values(b.heatmaps[1])).toEqual(values(a.heatmaps[1]));

    // Inference on a real 16x16 face (8-bit RawImage or a [0, 1] tensor) and evaluation.
    const lrImage = lr.add(x, lr.tensor(Float32Array.from(net.config.rgbMean), [1, 3, 1, 1]));
    const fromTensor = superResolveFace(loaded, lrImage);
    expect([fromTensor.image.width, fromTensor.image.height, fromTensor.image.channels]).toEqual([128, 128, 3]);
    expect(fromTensor.landmarks.length).toBe(136);
    const rgb8: RawImage = { data: new Uint8Array(16 * 16 * 3), width: 16, height: 16, channels: 3 };
    const planes = lrImage.data();
    for (let p = 0; p < 256; p++) for (let c = 0; c < 3; c++) rgb8.data[p * 3 + c] = Math.round(planes[c * 256 + p] * 255);
    const fromImage = superResolveFace(loaded, rgb8);
    expect(Array.from(fromImage.image.data)).toEqual(Array.from(fromTensor.image.data));
    const ev = evaluateDic(loaded, faces.slice(0, 2));
    const expected = srScores(fromTensor.image, faces[0].image, 8);
    expect(ev.perFace[0].psnr).toBeCloseTo(expected.psnr, 6);
    expect(ev.perFace[0].ssim).toBeCloseTo(expected.ssim, 6);
    expect(ev.perFace[0].nme).toBeCloseTo(landmarkNme(fromTensor.landmarks, faces[0].landmarks!), 6);
    expect(ev.nme).not.toBeNull();
    expect(ev.psnr).toBeGreaterThan(10);
    console.log(`DIC small after 50 steps, on 2 training faces: PSNR ${ev.psnr.toFixed(2)} dB, SSIM ${ev.ssim.toFixed(4)}, NME ${ev.nme!.toFixed(3)}`);
  });

  it('a diverging step is refused naming its 1-based number, before the optimiser moves', { timeout: 60_000 }, () => {
    lr.manualSeed(12);
    const batch = dicBatch(new Dic(SMALL), faces64.slice(0, 2));
    const trainer = new DicTrainer(new Dic(SMALL), { lr: 1e12, releaseHgStep: 0 });
    let done = 0;
    const message = (() => {
      try {
        for (; done < 10; done++) trainer.trainStep(batch);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no divergence';
    })();
    expect(message).toBe(`DicTrainer.trainStep: the loss became ${message.match(/became (\S+) at/)?.[1]} at step ${done + 1} (lower 'lr')`);
    expect(trainer.step).toBe(done);
  });

  it('resumes from a checkpoint with the optimiser state and schedule: the next step matches the uninterrupted run', { timeout: 60_000 }, () => {
    lr.manualSeed(12);
    const batch = dicBatch(new Dic(SMALL), faces64.slice(0, 2));
    const net = new Dic(SMALL);
    const trainer = new DicTrainer(net, { lr: 1e-3, releaseHgStep: 1, milestones: [2], gamma: 0.5 });
    trainer.trainStep(batch);
    trainer.trainStep(batch);
    const file = join(tmp, 'dic.ckpt.safetensors');
    trainer.saveCheckpoint(file);
    const third = trainer.trainStep(batch);
    expect(third.lr).toBeCloseTo(5e-4, 12);
    lr.manualSeed(99);
    const fresh = new Dic(SMALL);
    const resumed = new DicTrainer(fresh, { lr: 1e-3, releaseHgStep: 1, milestones: [2], gamma: 0.5 });
    expect(resumed.loadCheckpoint(file)).toBe(2);
    const again = resumed.trainStep(batch);
    expect(again.lr).toBeCloseTo(5e-4, 12);
    expect(Math.abs(again.total - third.total)).toBeLessThan(1e-6);
    net.parameters().forEach((p, i) => expect(maxAbsDiff(p.data(), fresh.parameters()[i].data())).toBeLessThan(1e-6));
    // A checkpoint of another shape is refused, naming the file.
    const other = new DicTrainer(new Dic({ ...SMALL, numFeatures: 4 }));
    expect(() => other.loadCheckpoint(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*configured otherwise.*numFeatures: 8 in the file, 4 here`));
    expect(() => trainer.trainStep({ ...batch, heatmaps: null })).toThrow(/DicTrainer.trainStep: 'batch' must be a batch with ground-truth heatmaps/);
    disposeDicBatch(batch);
  });

  it('runs DICGAN steps: G and D both move, the frozen feature extractor does not, all losses finite; checkpoints hold both', { timeout: 60_000 }, () => {
    lr.manualSeed(13);
    const net = new Dic(SMALL);
    const discriminator = new LightCnnDiscriminator({ imageSize: 64 });
    class Phi extends Module {
      declare conv: Conv2d;
      constructor() {
        super();
        this.registerModule('conv', new Conv2d(3, 4, 3, { stride: 2, padding: 1 }));
      }
      forward(x: lr.Tensor): lr.Tensor {
        return this.conv.forward(x);
      }
    }
    const phi = new Phi();
    const trainer = new DicGanTrainer(net, { discriminator, featureExtractor: phi }, { releaseHgStep: 0 });
    expect(trainer.config).toMatchObject({ pixelWeight: 1, eta: 0.1, featureWeight: 0.1, advWeight: 0.005, lr: 1e-4, lrD: 1e-4, releasedPixelLossQuirk: false, milestones: [10000, 20000, 40000] });
    const snapshot = (m: Module) => m.parameters().map((p) => values(p));
    const g0 = snapshot(net);
    const hg0 = snapshot(net.HG);
    const d0 = snapshot(discriminator);
    const f0 = snapshot(phi);
    const rng = new Rng(2);
    for (let s = 0; s < 2; s++) {
      const pick = sampleDicFaces(faces64, 2, rng);
      const batch = dicBatch(net, pick.faces);
      const r = trainer.trainStep(batch);
      disposeDicBatch(batch);
      for (const v of [r.pixel, r.align, r.feature, r.adversarial, r.discriminator, r.total]) expect(Number.isFinite(v)).toBe(true);
      expect(r.feature).toBeGreaterThan(0);
      expect(r.discriminator).toBeGreaterThan(0);
    }
    const moved = (m: Module, before: number[][]) => m.parameters().reduce((x, p, i) => Math.max(x, maxAbsDiff(p.data(), before[i])), 0);
    expect(moved(net, g0)).toBeGreaterThan(1e-5);
    expect(moved(net.HG, hg0)).toBeGreaterThan(1e-5);
    expect(moved(discriminator, d0)).toBeGreaterThan(1e-5);
    expect(moved(phi, f0)).toBe(0);
    expect(discriminator.parameters().every((p) => p.requiresGrad)).toBe(true);
    const file = join(tmp, 'dicgan.ckpt.safetensors');
    trainer.saveCheckpoint(file);
    const resumed = new DicGanTrainer(new Dic(SMALL), { discriminator: new LightCnnDiscriminator({ imageSize: 64 }), featureExtractor: phi });
    expect(resumed.loadCheckpoint(file)).toBe(2);
    resumed.discriminator.parameters().forEach((p, i) => expect(values(p)).toEqual(values(discriminator.parameters()[i])));
    expect(() => discriminator.forward(lr.rand([1, 3, 128, 128]))).toThrow(/LightCnnDiscriminator.forward: 'x' must be shape \[B, 3, 64, 64\]/);
    // Phi must return one tensor; the quirk flag must be a boolean.
    class ListPhi extends Module {
      forward(x: lr.Tensor): lr.Tensor[] {
        return [x];
      }
    }
    const listed = new DicGanTrainer(new Dic(SMALL), { discriminator, featureExtractor: new ListPhi() });
    const one = dicBatch(net, faces64.slice(0, 1));
    expect(() => listed.trainStep(one)).toThrow(/DicGanTrainer.trainStep: 'featureExtractor' must be a Module whose forward returns one tensor/);
    disposeDicBatch(one);
    expect(() => new DicGanTrainer(net, { discriminator }, { releasedPixelLossQuirk: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => new DicGanTrainer(net, { discriminator }, { advWeigth: 1 } as Partial<DicGanTrainConfig>)).toThrow(/DicGanTrainer: 'advWeigth' must be one of the known config fields/);
  });
});

describe('DIC weights files', () => {
  it('refuses weights of another architecture, corrupt and missing files, naming the file', () => {
    const vdsrFile = join(tmp, 'vdsr.safetensors');
    saveSrWeights(vdsrFile, new Vdsr({ depth: 3, features: 4 }), { scales: [4] });
    expect(() => loadDicWeights(vdsrFile)).toThrow(WeightsFileError);
    expect(() => loadDicWeights(vdsrFile)).toThrow(`${vdsrFile}: holds 'vdsr' weights, not 'dic'`);
    const file = join(tmp, 'dic-tiny.safetensors');
    saveDicWeights(file, new Dic({ ...SMALL, numFeatures: 4 }));
    const bytes = readFileSync(file);
    const truncated = join(tmp, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    expect(() => loadDicWeights(truncated)).toThrow(WeightsFileError);
    expect(() => loadDicWeights(truncated)).toThrow(new RegExp(`^${truncated.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: corrupt weights`));
    const garbage = join(tmp, 'garbage.safetensors');
    writeFileSync(garbage, Buffer.from('not a safetensors file at all'));
    expect(() => loadDicWeights(garbage)).toThrow(/garbage.safetensors: corrupt weights/);
    expect(() => loadDicWeights(join(tmp, 'missing.safetensors'))).toThrow(/missing.safetensors: cannot read weights \(ENOENT\)/);
    // Tensors that do not fit the config in the metadata.
    const small4 = new Dic({ ...SMALL, numFeatures: 4 });
    const swapped = join(tmp, 'swapped.safetensors');
    writeFileSync(swapped, encodeSafetensors(small4.stateDict(), { format: 'lrface-sr-1', arch: 'dic', config: JSON.stringify({ ...small4.config, numFeatures: 8 }) }));
    expect(() => loadDicWeights(swapped)).toThrow(/swapped.safetensors: weights do not fit the 'dic' network \(shape mismatches/);
  });

  it('rejects bad inference inputs, naming superResolveFace and the argument', () => {
    const net = new Dic(SMALL);
    const grey: RawImage = { data: new Uint8Array(16 * 16), width: 16, height: 16, channels: 1 };
    expect(() => superResolveFace(net, grey)).toThrow(/superResolveFace: 'lr' must be an image of 3 channels, got 1 channels/);
    const odd: RawImage = { data: new Uint8Array(15 * 16 * 3), width: 16, height: 15, channels: 3 };
    expect(() => superResolveFace(net, odd)).toThrow(/superResolveFace: 'lr' must be a size h x w with h and w positive multiples of 2/);
    expect(() => superResolveFace(net, lr.full([1, 3, 16, 16], 200))).toThrow(/superResolveFace: 'lr' must be float pixels in \[0, 1\]/);
    expect(() => superResolveFace(net, 'face.png' as unknown as RawImage)).toThrow(TypeError);
    expect(() => evaluateDic(net, [])).toThrow(TypeError);
  });

  it('names the function for a disposed network, misspelt or mistyped options and non-finite points', () => {
    const net = new Dic(SMALL);
    const face = syntheticFace(128, 3);
    const lr16: RawImage = { data: new Uint8Array(16 * 16 * 3).fill(90), width: 16, height: 16, channels: 3 };
    // Options: a misspelt key or flags that are not an array used to be ignored (no flip, no error).
    expect(() => dicBatch(net, [face], { flip: [true] } as never)).toThrow(TypeError);
    expect(() => dicBatch(net, [face], { flip: [true] } as never)).toThrow(/dicBatch: 'flip' must be one of the known options/);
    expect(() => dicBatch(net, [face], { flips: true } as never)).toThrow(/dicBatch: 'flips' must be an array of booleans/);
    expect(() => dicBatch(net, [face], { flips: [true, false] })).toThrow(/dicBatch: 'flips' must be one flag per face \(1\), got 2 flags/);
    // A NaN point used to become an empty target map; a batch of faces with and without points lost its heatmaps.
    const nan = Float32Array.from(face.landmarks as number[]);
    nan[7] = NaN;
    expect(() => dicBatch(net, [{ image: face.image, landmarks: nan }])).toThrow(/dicBatch: 'faces\[0\].landmarks' must be finite coordinates .*got NaN at index 7/);
    expect(() => dicBatch(net, [face, { image: face.image }])).toThrow(/dicBatch: 'faces' must be faces that all carry landmarks or none does, got 1 of 2/);
    // evaluateDic: batchSize 0 used to fail inside dicBatch, NaN to return NaN scores; the normaliser was checked only after the network ran.
    expect(() => evaluateDic(net, [face], { batchSize: 0 })).toThrow(/evaluateDic: 'batchSize' must be an integer >= 1, got 0/);
    expect(() => evaluateDic(net, [face], { batchSize: NaN })).toThrow(/evaluateDic: 'batchSize' must be an integer >= 1, got NaN/);
    expect(() => evaluateDic(net, [face], { nmeNormalizer: 'eyes' as never })).toThrow(/evaluateDic: 'nmeNormalizer' must be one of/);
    expect(() => evaluateDic(net, [face], { batchsize: 2 } as never)).toThrow(/evaluateDic: 'batchsize' must be one of the known options/);
    expect(() => evaluateDic(net, [{ image: face.image, landmarks: nan }])).toThrow(/evaluateDic: 'faces\[0\].landmarks' must be finite coordinates/);
    expect(() => evaluateDic(net, [{ image: { ...lr16, channels: 1, data: new Uint8Array(128 * 128) } }])).toThrow(/^evaluateDic: 'faces\[0\].image'/);
    expect(() => landmarkNme([NaN, 0], [1, 2], 'width')).toThrow(/landmarkNme: 'pred' must be finite coordinates/);
    // Paths.
    expect(() => saveDicWeights(undefined as never, net)).toThrow(/saveDicWeights: 'file' must be a non-empty path string/);
    expect(() => new DicTrainer(net).saveCheckpoint('')).toThrow(/DicTrainer.saveCheckpoint: 'file' must be a non-empty path string/);
    // A disposed network used to fail inside conv2d ("'weight' was disposed"), naming only the op.
    const batch = dicBatch(net, [face]);
    const trainer = new DicTrainer(net);
    net.dispose();
    expect(() => superResolveFace(net, lr16)).toThrow("superResolveFace: the DIC network ('net') was disposed");
    expect(() => evaluateDic(net, [face])).toThrow("evaluateDic: the DIC network ('net') was disposed");
    expect(() => trainer.trainStep(batch)).toThrow('DicTrainer.trainStep: the DIC network was disposed');
    expect(() => saveDicWeights(join(tmp, 'disposed.safetensors'), net)).toThrow("saveDicWeights: the DIC network ('net') was disposed");
    disposeDicBatch(batch);
  });

  it('refuses a checkpoint of another trainer or of a network configured otherwise, before changing anything', () => {
    const net = new Dic(SMALL);
    const file = join(tmp, 'dic-steps2.ckpt.safetensors');
    new DicTrainer(net).saveCheckpoint(file);
    // numSteps changes no tensor shape: the weights used to load and training went on with 3 steps.
    const threeSteps = new Dic({ ...SMALL, numSteps: 3 });
    const before = values(threeSteps.parameters()[0]);
    const resumed = new DicTrainer(threeSteps);
    expect(() => resumed.loadCheckpoint(file)).toThrow(RangeError);
    expect(() => resumed.loadCheckpoint(file)).toThrow(`${file}: the checkpoint's network is configured otherwise than this trainer's (numSteps: 2 in the file, 3 here)`);
    expect(values(threeSteps.parameters()[0])).toEqual(before);
    expect(resumed.step).toBe(0);
    const gan = new DicGanTrainer(new Dic(SMALL), { discriminator: new LightCnnDiscriminator({ imageSize: 16 }) });
    expect(() => gan.loadCheckpoint(file)).toThrow(`${file}: holds a 'dic' checkpoint, not 'dicgan' (DicGanTrainer)`);
    expect(() => resumed.loadCheckpoint(42 as never)).toThrow(/DicTrainer.loadCheckpoint: 'file' must be a non-empty path string/);
    expect(new DicTrainer(new Dic(SMALL)).loadCheckpoint(file)).toBe(0);
  });
});

describe('options of the DIC functions refuse unknown keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lrface-dic-keys-'));
  const net = new Dic(SMALL);
  const sr = lr.zeros([1, 3, 8, 8]);
  const heatmaps = lr.zeros([1, 2, 2, 2]);
  // [function, what the object is called in the message, call with the given keys, every documented key]
  const cases: [string, string, (o: object) => unknown, object][] = [
    ['dicLosses', 'option', (o) => dicLosses({ sr: [sr], heatmaps: [heatmaps] } as never, sr, heatmaps, o), { lastStepPixelOnly: true }],
    ['LightCnnDiscriminator', 'config field', (o) => new LightCnnDiscriminator({ imageSize: 32, ...o }), { inChannels: 1, imageSize: 32 }],
    ['DicGanTrainer', 'parts field', (o) => new DicGanTrainer(net, { discriminator: new LightCnnDiscriminator({ imageSize: 32 }), ...o }), { featureExtractor: null }],
    ['saveDicWeights', 'meta field', (o) => saveDicWeights(join(dir, 'dic.safetensors'), net, o), { note: 'a note' }],
  ];
  it.each(cases)('%s names itself and the misspelt key', (fn, what, call) => {
    expect(() => call({ lastStepPixel: true })).toThrow(TypeError);
    expect(() => call({ lastStepPixel: true })).toThrow(`${fn}: 'lastStepPixel' must be one of the known ${what}s (`);
  });
  it.each(cases)('%s still takes every documented key', (_fn, _what, call, documented) => {
    expect(() => call(documented)).not.toThrow();
  });
});
