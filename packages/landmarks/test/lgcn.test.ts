// LGCN: the network's parts against naive references, the masked loss and its gradient,
// training on real corpus faces, weights with the shape model, and the detector.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ops from '@lrface/cuda-core';
import { Rng, gaussianHeatmaps, type RawImage } from '@lrface/datasets';
import { saveSafetensors, decodeSafetensors, saveCheckpoint, SGD, Adam } from '@lrface/nn';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { buildFaceCorpus, loadReferenceDetector, openFaceCorpus } from '@lrface/face-corpus';
import {
  HeatmapUNet, Lgcn, LgcnTrainer, PcaShapeModel, DEFAULT_LGCN, defaultDilations, globalReceptiveField, landmarkMask, loadLabelledFaces,
  loadLandmarkWeights, loadLgcnDetector, loadLgcnWeights, maskedHeatmapLoss, rgbToGreyTensor, saveLandmarkWeights, saveLgcnWeights, type LabelledFace,
  type LgcnConfig,
} from '../src/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'lgcn-'));
const small: LgcnConfig = { inputSize: 48, localLayers: 4, localWidth: 16, globalDilations: [1, 2, 4], globalWidth: 16, kernelSigma: 1 };

/** Depth-wise 'same' convolution with zero padding, written out: the reference for the kernel convolution. */
function naiveGaussianBlur(x: Float32Array, channels: number, size: number, sigma: number, k: number): Float64Array {
  const half = (k - 1) / 2;
  const w: number[][] = [];
  let total = 0;
  for (let i = 0; i < k; i++) {
    w.push([]);
    for (let j = 0; j < k; j++) {
      const v = Math.exp(-((i - half) ** 2 + (j - half) ** 2) / (2 * sigma * sigma));
      w[i].push(v);
      total += v;
    }
  }
  const out = new Float64Array(channels * size * size);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < size; y++)
      for (let xx = 0; xx < size; xx++) {
        let s = 0;
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) {
            const yy = y + i - half, xs = xx + j - half;
            if (yy >= 0 && yy < size && xs >= 0 && xs < size) s += (w[i][j] / total) * x[c * size * size + yy * size + xs];
          }
        out[c * size * size + y * size + xx] = s;
      }
  return out;
}

describe('Lgcn network', () => {
  it('has the placeholder defaults, and its parameter count matches the layer-by-layer count', () => {
    const net = new Lgcn();
    expect(net.config).toMatchObject({ inputSize: 96, numLandmarks: 68, localLayers: 15, localWidth: 128, dropoutRate: 0.1, combination: 'refine-blurred', kernelSize: 13 });
    expect(net.config).toMatchObject(DEFAULT_LGCN);
    expect(net.config.globalDilations).toEqual([1, 2, 4, 8, 16, 32]);
    expect(defaultDilations(96)).toEqual([1, 2, 4, 8, 16, 32]);
    expect(globalReceptiveField([1, 2, 4, 8, 16, 32])).toBe(129);
    expect(globalReceptiveField([1, 2, 4, 8, 16])).toBeLessThan(96);
    const conv = (i: number, o: number, k = 3) => i * o * k * k + o;
    const expected = conv(1, 128) + 14 * conv(128, 128) + conv(128, 68) + conv(68, 128) + 5 * conv(128, 128) + conv(128, 68);
    expect(net.numParameters()).toBe(expected);
    expect(expected).toBe(3040648);
    net.dispose();
  });

  it('returns local, blurred and output maps of the input size; the kernel convolution is a fixed depth-wise Gaussian', () => {
    ops.manualSeed(1);
    const net = new Lgcn({ ...small, numLandmarks: 5, kernelSigma: 1.5 });
    net.eval();
    const x = ops.randn([2, 1, 48, 48]);
    const { local, blurred, output } = net.forward(x);
    for (const t of [local, blurred, output]) expect(t.shape).toEqual([2, 5, 48, 48]);
    // blurred = the naive Gaussian depth-wise convolution of local (zero padding), per image.
    const k = net.config.kernelSize;
    expect(k).toBe(2 * Math.ceil(3 * 1.5) + 1);
    const l = local.data() as Float32Array;
    const b = blurred.data() as Float32Array;
    const plane = 5 * 48 * 48;
    for (let i = 0; i < 2; i++) {
      const ref = naiveGaussianBlur(l.subarray(i * plane, (i + 1) * plane), 5, 48, 1.5, k);
      for (let q = 0; q < plane; q += 7) expect(b[i * plane + q]).toBeCloseTo(ref[q], 5);
    }
    // The same as the engine's separable gaussianBlur with zero borders.
    const viaOp = ops.gaussianBlur(local, { sigma: 1.5, kernelSize: k, mode: 'zeros' }).data() as Float32Array;
    for (let q = 0; q < b.length; q += 11) expect(b[q]).toBeCloseTo(viaOp[q], 5);
    // Frozen: a buffer in the state dict, not a parameter; an optimiser step leaves it alone.
    expect(net.stateDict().has('kernelConv.weight')).toBe(true);
    expect(net.parameters()).not.toContain(net.kernelConv.weight);
    const before = Float32Array.from(net.kernelConv.weight.data() as Float32Array);
    net.train();
    const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
    opt.zeroGrad();
    ops.sum(ops.square(net.forward(x).output)).backward();
    opt.step();
    expect(Array.from(net.kernelConv.weight.data() as Float32Array)).toEqual(Array.from(before));
  });

  it('combines as configured: refine-blurred gives global(blurred), sum adds the blurred maps; local is supervised on request', () => {
    ops.manualSeed(2);
    const a = new Lgcn({ ...small, numLandmarks: 4 });
    const b = new Lgcn({ ...small, numLandmarks: 4, combination: 'sum' });
    // A non-zero global output conv so the two modes differ visibly.
    ops.manualSeed(3);
    a.globalOutput.weight.assign(ops.randn(a.globalOutput.weight.shape));
    b.loadStateDict(a.stateDict());
    a.eval();
    b.eval();
    const x = ops.randn([1, 1, 48, 48]);
    const ra = a.forward(x), rb = b.forward(x);
    const sum = ops.add(ra.blurred, ra.output).data() as Float32Array;
    const got = rb.output.data() as Float32Array;
    for (let q = 0; q < got.length; q += 5) expect(got[q]).toBeCloseTo(sum[q], 5);
    expect(Math.abs((ra.output.data() as Float32Array)[100] - got[100])).toBeGreaterThan(0);
  });

  it('has the receptive field its dilations give (measured by the input gradient of one output pixel)', () => {
    ops.manualSeed(4);
    // Leaky ReLU: no exactly-dead paths, so every pixel inside the field gets a gradient.
    const cfg: LgcnConfig = { ...small, numLandmarks: 3, activation: 'leaky-relu', dropoutRate: 0, inputSize: 96, localLayers: 2 };
    const net = new Lgcn(cfg);
    ops.manualSeed(5);
    net.globalOutput.weight.assign(ops.randn(net.globalOutput.weight.shape));
    net.eval();
    const x = ops.zeros([1, 1, 96, 96]).requiresGrad_(true);
    const out = net.forward(x).output;
    const pick = ops.tensor(Float32Array.from({ length: 3 * 96 * 96 }, (_, i) => (i % (96 * 96) === 48 * 96 + 48 ? 1 : 0)), [1, 3, 96, 96]);
    ops.sum(ops.mul(out, pick)).backward();
    const g = x.grad!.data() as Float32Array;
    // The engine's convolutions leave round-off of about 1e-9 of the peak outside the true support.
    const floor = 1e-6 * Math.max(...Array.from(g, Math.abs));
    let lo = 96, hi = -1;
    for (let xx = 0; xx < 96; xx++) if (Math.abs(g[48 * 96 + xx]) > floor) {
      lo = Math.min(lo, xx);
      hi = Math.max(hi, xx);
    }
    // local: 2 hidden + output 3x3 convs (+6), kernel (k - 1), global: 2 (1 + 2 + 4 + 1).
    const field = 1 + 2 * 3 + (net.config.kernelSize - 1) + 2 * (1 + 2 + 4 + 1);
    expect(hi - lo + 1).toBe(field);
    expect(lo).toBe(48 - (field - 1) / 2);
  });

  it('drops out only in train mode, at the configured position', () => {
    ops.manualSeed(6);
    const x = ops.randn([1, 1, 48, 48]);
    for (const dropoutPosition of ['local-output', 'global-output', 'every-layer'] as const) {
      const net = new Lgcn({ ...small, numLandmarks: 2, dropoutRate: 0.5, dropoutPosition });
      ops.manualSeed(7);
      net.globalOutput.weight.assign(ops.randn(net.globalOutput.weight.shape));
      net.train();
      const p = net.forward(x), q = net.forward(x);
      const differ = (a: ops.Tensor, b: ops.Tensor) => (a.data() as Float32Array).some((v, i) => v !== (b.data() as Float32Array)[i]);
      // Dropout before the local output changes the local maps; after the kernel convolution only the output.
      expect(differ(p.local, q.local)).toBe(dropoutPosition !== 'global-output');
      expect(differ(p.output, q.output)).toBe(true);
      net.eval();
      expect(differ(net.forward(x).output, net.forward(x).output)).toBe(false);
    }
  });

  it('rejects bad inputs and config values', () => {
    const net = new Lgcn({ ...small, numLandmarks: 2 });
    expect(() => net.forward(ops.zeros([1, 48, 48]))).toThrow(/Lgcn.forward: 'x' must be a grey batch \[N, 1, 48, 48\]/);
    expect(() => net.forward(ops.zeros([1, 3, 48, 48]))).toThrow(RangeError);
    expect(() => net.forward(ops.zeros([1, 1, 32, 32]))).toThrow(RangeError);
    expect(() => net.forward('x' as never)).toThrow(TypeError);
    const bad: [LgcnConfig, RegExp][] = [
      [{ localLayers: 0 }, /localLayers/], [{ localKernel: 2 }, /localKernel/], [{ dropoutRate: 1 }, /dropoutRate/],
      [{ kernelSize: 4 }, /kernelSize/], [{ kernelSigma: 0 }, /kernelSigma/], [{ globalDilations: [1, 0] }, /globalDilations\[1\]/],
      [{ combination: 'mean' as never }, /combination/], [{ dropoutPosition: 'x' as never }, /dropoutPosition/],
      [{ activation: 'tanh' as never }, /activation/], [{ localLossWeight: -1 }, /localLossWeight/], [{ width: 3 } as never, /width/],
    ];
    for (const [cfg, re] of bad) expect(() => new Lgcn({ ...small, ...cfg })).toThrow(re);
    expect(() => new Lgcn({ inputSize: '96' as never })).toThrow(TypeError);
    expect(() => new Lgcn(null as never)).toThrow(TypeError);
    // A uint8 batch and a disposed network used to fail inside conv2d, naming only the op.
    expect(() => net.forward(ops.tensor(new Uint8Array(48 * 48), [1, 1, 48, 48], 'uint8'))).toThrow("Lgcn.forward: 'x' must be a float32 tensor [N, 1, 48, 48] (grey in [-1, 1]), got a uint8 tensor");
    net.dispose();
    expect(() => net.forward(ops.zeros([1, 1, 48, 48]))).toThrow('Lgcn.forward: the LGCN network was disposed');
    expect(() => saveLgcnWeights(join(tmp(), 'x.safetensors'), net)).toThrow("saveLgcnWeights: the LGCN network ('network') was disposed");
  });
});

describe('LgcnTrainer inputs', () => {
  const tiny: LgcnConfig = { inputSize: 16, numLandmarks: 68, localLayers: 1, localWidth: 4, globalDilations: [1], globalWidth: 4, kernelSigma: 1 };
  const points = () => [Float32Array.from({ length: 136 }, (_, i) => 3 + (i % 10))];

  it('rejects misspelt options, bad betas, point lists and 8-bit images, naming LgcnTrainer', () => {
    // Misspelt keys used to train silently with the defaults; bad betas failed inside Adam ("betas.join is not a function").
    expect(() => new LgcnTrainer({ networks: tiny } as never)).toThrow(
      new TypeError("LgcnTrainer: 'networks' must be one of the known config fields (network, optimizer, heatmapSigma, augment, clipGradNorm), got an unknown config field"),
    );
    expect(() => new LgcnTrainer({ network: tiny, optimizer: { learningRate: 1 } as never })).toThrow(/LgcnTrainer: 'learningRate' must be one of the known optimizer fields \(kind, lr, .*\)/);
    expect(() => new LgcnTrainer({ network: tiny }, { logs: 'x' } as never)).toThrow(/LgcnTrainer: 'logs' must be one of the known options \(log\)/);
    expect(() => new LgcnTrainer({ network: tiny, optimizer: { kind: 'adam', betas: 'x' as never } })).toThrow(/LgcnTrainer: 'optimizer.betas' must be two numbers in \[0, 1\)/);
    const trainer = new LgcnTrainer({ network: tiny, augment: null });
    const x = ops.zeros([1, 1, 16, 16]);
    expect(() => trainer.trainStep(x, [new Float32Array(10)])).toThrow("LgcnTrainer.trainStep: 'landmarks[0]' must be 136 numbers (x, y per point, NaN = unlabelled), got 10 numbers");
    expect(() => trainer.trainStep(x, [null as never])).toThrow(TypeError);
    // 8-bit grey values used to train without complaint.
    expect(() => trainer.trainStep(ops.full([1, 1, 16, 16], 128), points())).toThrow("LgcnTrainer.trainStep: 'images' must be grey pixels in [-1, 1] (as LgcnTrainer.batch makes them), got 128 at index 0");
    expect(() => trainer.trainStep(ops.full([1, 1, 16, 16], NaN), points())).toThrow(/'images' must be grey pixels in \[-1, 1\].*got NaN/);
    expect(trainer.step).toBe(0);
    expect(() => trainer.save('')).toThrow("LgcnTrainer.save: 'path' must be a file path");
    expect(() => trainer.load(undefined as never)).toThrow(TypeError);
  });

  it('keeps the engine memory flat over training steps (the unweighted local loss holds no graph)', () => {
    ops.manualSeed(3);
    const trainer = new LgcnTrainer({ network: tiny, augment: null, optimizer: { kind: 'adam' } });
    const x = ops.mul(ops.rand([1, 1, 16, 16]), 0.5);
    trainer.trainStep(x, points());
    const before = ops.memory();
    for (let i = 0; i < 4; i++) trainer.trainStep(x, points());
    const after = ops.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
  });

  it('refuses a checkpoint of a network configured otherwise, or of another model, before changing anything', () => {
    const dir = tmp();
    const file = join(dir, 'ckpt.safetensors');
    const trainer = new LgcnTrainer({ network: tiny, augment: null });
    trainer.save(file);
    // The dropout rate changes no tensor shape: such a checkpoint used to load into another model.
    const other = new LgcnTrainer({ network: { ...tiny, dropoutRate: 0.3 }, augment: null });
    const before = Array.from(other.network.parameters()[0].data() as Float32Array);
    expect(() => other.load(file)).toThrow(`${file}: the checkpoint's LGCN is configured otherwise than this trainer's network (dropoutRate: 0.1 in the file, 0.3 here)`);
    expect(Array.from(other.network.parameters()[0].data() as Float32Array)).toEqual(before);
    const foreign = join(dir, 'foreign.safetensors');
    saveCheckpoint(foreign, { model: new Lgcn(tiny), step: 3, extra: { arch: 'dic' } });
    expect(() => trainer.load(foreign)).toThrow(`${foreign}: holds a checkpoint of another model (no LGCN config in it), not one LgcnTrainer.save wrote`);
    // Other failures name the file too.
    const wide = new LgcnTrainer({ network: { ...tiny, localWidth: 8 }, augment: null });
    const noExtra = join(dir, 'no-extra.safetensors');
    const plainTrainer = new LgcnTrainer({ network: tiny, augment: null });
    saveCheckpoint(noExtra, { model: plainTrainer.network, optimizer: plainTrainer.optimizer, scheduler: plainTrainer.scheduler, step: 1 });
    expect(() => wide.load(noExtra)).toThrow(new RegExp(`^${noExtra.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*does not fit`));
    expect(new LgcnTrainer({ network: tiny, augment: null }).load(file)).toEqual({ lgcn: trainer.network.config });
  });
});

describe('maskedHeatmapLoss', () => {
  it('equals the naive masked mean of per-map summed squared errors, and masked maps get no gradient', () => {
    ops.manualSeed(8);
    const [N, K, H, W] = [3, 4, 5, 6];
    const pred = ops.randn([N, K, H, W]).requiresGrad_(true);
    const target = ops.rand([N, K, H, W]);
    const m = Float32Array.from([1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1]);
    const loss = maskedHeatmapLoss(pred, target, ops.tensor(m, [N, K]));
    const p = pred.data() as Float32Array, t = target.data() as Float32Array;
    let sum = 0, count = 0;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        if (!m[n * K + k]) continue;
        count++;
        for (let q = 0; q < H * W; q++) sum += (p[(n * K + k) * H * W + q] - t[(n * K + k) * H * W + q]) ** 2;
      }
    expect(loss.item()).toBeCloseTo(sum / count, 4);
    loss.backward();
    const g = pred.grad!.data() as Float32Array;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++)
        for (let q = 0; q < H * W; q += 3) {
          const i = (n * K + k) * H * W + q;
          expect(g[i]).toBeCloseTo(m[n * K + k] ? (2 * (p[i] - t[i])) / count : 0, 5);
        }
    // Nothing labelled: 0.
    expect(maskedHeatmapLoss(pred, target, ops.zeros([N, K])).item()).toBe(0);
    // The mask from points: NaN marks an unlabelled point.
    const lm = Float32Array.from([1, 2, NaN, 3, 4, 5]);
    expect(Array.from(landmarkMask([lm], 3).data() as Float32Array)).toEqual([1, 0, 1]);
  });

  it('rejects mismatched shapes and bad masks', () => {
    const a = ops.zeros([2, 3, 4, 4]);
    expect(() => maskedHeatmapLoss(a, ops.zeros([2, 3, 4, 5]), ops.ones([2, 3]))).toThrow(/'target'/);
    expect(() => maskedHeatmapLoss(a, a, ops.ones([2, 4]))).toThrow(/'mask' must be an \[2, 3\] tensor/);
    expect(() => maskedHeatmapLoss(a, a, ops.full([2, 3], -1))).toThrow(/finite values >= 0/);
    expect(() => maskedHeatmapLoss(ops.zeros([3, 4]), ops.zeros([3, 4]), ops.ones([3, 4]))).toThrow(/'pred'/);
    expect(() => maskedHeatmapLoss(a, a, [1] as never)).toThrow(TypeError);
    expect(() => landmarkMask([new Float32Array(4)], 3)).toThrow(/landmarks\[0\]/);
  });
});

const haveData = haveSharedData('dlib-faces/training_with_face_landmarks.xml');

describe.skipIf(!haveData)('LGCN on real corpus faces', () => {
  let faces: LabelledFace[];
  let testImage: RawImage<Uint8Array>;
  let testPoints: Float32Array;
  let trainer: LgcnTrainer;
  let shapeModel: PcaShapeModel;
  const losses: number[] = [];
  beforeAll(async () => {
    const dir = tmp();
    const detector = await loadReferenceDetector();
    await buildFaceCorpus({ outDir: dir, dataDir: sharedDataDir, sources: ['dlib-faces'], limitPerSource: 12, detector });
    const corpus = await openFaceCorpus(dir);
    faces = await loadLabelledFaces(corpus, 'train');
    const test = await loadLabelledFaces(corpus, 'test');
    const held = test[0] ?? faces[faces.length - 1];
    testImage = held.image;
    testPoints = held.landmarks;
    // A small LGCN on one fixed batch of 8 real faces at 48x48, Adam.
    ops.manualSeed(9);
    trainer = new LgcnTrainer({ network: small, optimizer: { kind: 'adam', lr: 1e-3 }, heatmapSigma: 2, augment: null });
    const batch = trainer.batch(faces, new Rng(9), 8);
    for (let i = 0; i < 50; i++) losses.push(trainer.trainStep(batch.images, batch.landmarks).loss);
    // The shape model from the same faces' points in the 48x48 input frame.
    shapeModel = PcaShapeModel.fit(faces.map((f) => Float64Array.from(f.landmarks, (v) => (v + 0.5) * (48 / 128) - 0.5)), { components: 4, imageSize: 48 });
  }, 180_000);

  it('loads grey batches at the input size with the points scaled', () => {
    expect(faces.length).toBeGreaterThanOrEqual(8);
    const t = new LgcnTrainer({ network: small, augment: null });
    const b = t.batch([faces[0]], new Rng(1), 1);
    expect(b.images.shape).toEqual([1, 1, 48, 48]);
    for (let i = 0; i < 136; i += 9) expect(b.landmarks[0][i]).toBeCloseTo((faces[0].landmarks[i] + 0.5) * (48 / 128) - 0.5, 3);
    // Grey = MATLAB's rgb2gray weights of the [-1, 1] RGB values.
    const rgb = ops.tensor(Float32Array.from([0.5, -1, 1]), [1, 3, 1, 1]);
    expect(rgbToGreyTensor(rgb).item()).toBeCloseTo(0.298936 * 0.5 - 0.587043 + 0.114021, 5);
    expect(t.optimizer).toBeInstanceOf(SGD);
    expect(trainer.optimizer).toBeInstanceOf(Adam);
  });

  it('trains: the masked heatmap loss falls clearly on real faces', () => {
    const first = losses[0], last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    // Starts at the target energy (the global output conv starts at zero): pi sigma^2 = 12.57.
    expect(first).toBeCloseTo(Math.PI * 4, 1);
    expect(last).toBeLessThan(0.85 * first);
    // Still falling in the second half, not a single lucky step.
    expect(last).toBeLessThan(losses.slice(20, 25).reduce((a, b) => a + b, 0) / 5);
    expect(losses.every(Number.isFinite)).toBe(true);
    console.log(`LGCN small (48 px, 8 real faces, Adam 1e-3): loss ${first.toFixed(3)} -> ${last.toFixed(3)} over ${losses.length} steps`);
  });

  it('supervises the local output with localLossWeight, and SGD steps stay finite', () => {
    ops.manualSeed(10);
    const logFile = join(tmp(), 'log.jsonl');
    const t = new LgcnTrainer({ network: { ...small, localLossWeight: 0.5 }, optimizer: { lr: 1e-4 }, augment: null }, { log: logFile });
    const b = t.batch(faces, new Rng(10), 2);
    const r = t.trainStep(b.images, b.landmarks);
    expect(r.loss).toBeCloseTo(r.outputLoss + 0.5 * r.localLoss, 4);
    expect(r.step).toBe(1);
    const r2 = t.trainStep(b.images, b.landmarks);
    expect(readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l))).toEqual([r, r2]);
    expect(() => t.trainStep(b.images, [b.landmarks[0]])).toThrow(/landmarks/);
    expect(() => new LgcnTrainer({ optimizer: { kind: 'rmsprop' as never } })).toThrow(/optimizer.kind/);
    expect(() => new LgcnTrainer({ heatmapSigma: 0 })).toThrow(/heatmapSigma/);
    expect(() => new LgcnTrainer({ optimizer: { momentum: 1 } })).toThrow(/momentum/);
  });

  it('resumes from a checkpoint with the same step and predictions', () => {
    const file = join(tmp(), 'ckpt.safetensors');
    trainer.save(file);
    const restored = new LgcnTrainer({ network: small, optimizer: { kind: 'adam', lr: 1e-3 }, heatmapSigma: 2, augment: null });
    restored.load(file);
    expect(restored.step).toBe(50);
    trainer.network.eval();
    restored.network.eval();
    const x = trainer.batch(faces, new Rng(11), 1).images;
    expect(Array.from(restored.network.forward(x).output.data() as Float32Array)).toEqual(Array.from(trainer.network.forward(x).output.data() as Float32Array));
  });

  it('saves and loads the network with its shape model: identical outputs and fits', async () => {
    const file = join(tmp(), 'lgcn.safetensors');
    saveLgcnWeights(file, trainer.network, { shapeModel, metadata: { note: 'test' } });
    const loaded = loadLgcnWeights(file);
    expect(loaded.spec.network).toEqual(trainer.network.config);
    expect(loaded.spec.margin).toBe(0.2);
    expect(loaded.shapeModel!.toJSON()).toEqual(shapeModel.toJSON());
    const x = trainer.batch(faces, new Rng(12), 2).images;
    trainer.network.eval();
    const a = trainer.network.forward(x).output.data() as Float32Array;
    const b = loaded.network.forward(x).output.data() as Float32Array;
    expect(Array.from(b)).toEqual(Array.from(a));
    const maps = a.subarray(0, 68 * 48 * 48);
    expect(Array.from(loaded.shapeModel!.fitHeatmaps(maps).points)).toEqual(Array.from(shapeModel.fitHeatmaps(maps).points));
    // Detectors from the file and from the trainer's network agree.
    const det = await loadLgcnDetector(file);
    const box = { x: 128 * (0.2 / 1.4), y: 128 * (0.2 / 1.4), width: 128 / 1.4, height: 128 / 1.4 };
    const r = await det.detect(testImage, { box });
    expect(r.points.length).toBe(68);
  });

  it('detects on a real face: points in image coordinates inside the face box, with and without the shape model', async () => {
    const file = join(tmp(), 'lgcn.safetensors');
    saveLgcnWeights(file, trainer.network, { shapeModel });
    const det = await loadLgcnDetector(file);
    expect(det.inputSize).toBe(48);
    // The corpus crop is the face box with a 0.2 margin: the box is the crop's central 1/1.4.
    const side = 128 / 1.4, off = (128 - side) / 2;
    const box = { x: off, y: off, width: side, height: side };
    const fitted = await det.detect(testImage, { box });
    const plain = await det.detect(testImage, { box, shapeModel: false });
    for (const r of [fitted, plain]) {
      expect(r.points.length).toBe(68);
      expect(r.confidence.length).toBe(68);
      for (const [x, y] of r.points) {
        expect(x).toBeGreaterThan(box.x - 0.1 * side);
        expect(x).toBeLessThan(box.x + 1.1 * side);
        expect(y).toBeGreaterThan(box.y - 0.1 * side);
        expect(y).toBeLessThan(box.y + 1.1 * side);
      }
    }
    // The fitted shape is a face: eyes above the nose tip above the mouth, left eye left of the right one.
    const p = fitted.points;
    const mean = (idx: number[], axis: 0 | 1) => idx.reduce((s, i) => s + p[i][axis], 0) / idx.length;
    expect(mean([36, 39], 0)).toBeLessThan(mean([42, 45], 0));
    expect(mean([36, 45], 1)).toBeLessThan(p[30][1]);
    expect(p[30][1]).toBeLessThan(mean([48, 54], 1));
    const nme = p.reduce((s, [x, y], k) => s + Math.hypot(x - testPoints[2 * k], y - testPoints[2 * k + 1]), 0) / 68 / Math.hypot(testPoints[72] - testPoints[90], testPoints[73] - testPoints[91]);
    // For scale: the shape model's mean shape placed in the crop (the 48-px frame is the whole 128-px crop).
    const meanShape = Array.from({ length: 68 }, (_, k) => [0, 1].map((a) => (shapeModel.mean[2 * k + a] + 0.5) * (128 / 48) - 0.5));
    const meanNme = meanShape.reduce((s, [x, y], k) => s + Math.hypot(x - testPoints[2 * k], y - testPoints[2 * k + 1]), 0) / 68 / Math.hypot(testPoints[72] - testPoints[90], testPoints[73] - testPoints[91]);
    console.log(`LGCN small on a held-out corpus face: NME ${(100 * nme).toFixed(1)} % (inter-ocular); the mean shape: ${(100 * meanNme).toFixed(1)} %`);
    // A batch: one result per image, the same as one by one.
    const both = await det.detect([testImage, testImage], { box: [box, box], shapeModel: false });
    expect(both.length).toBe(2);
    expect(both[1].points).toEqual(plain.points);
    // A batched tensor [2, 3, H, W] (documented as a batch) used to fail in tensorToImage.
    const planes = new Float32Array(2 * 3 * 128 * 128);
    for (let n = 0; n < 2; n++)
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < 128 * 128; p++) planes[(n * 3 + c) * 128 * 128 + p] = testImage.data[p * 3 + c] / 255;
    const batchTensor = ops.tensor(planes, [2, 3, 128, 128]);
    const before = ops.memory().tensors;
    const fromTensor = await det.detect(batchTensor, { box, shapeModel: false });
    expect(ops.memory().tensors).toBe(before);
    expect(fromTensor.length).toBe(2);
    expect(fromTensor[0].points).toEqual(plain.points);
    expect(fromTensor[1].points).toEqual(plain.points);
  });

  it('maps heatmap peaks back through the crop to image pixels', async () => {
    const file = join(tmp(), 'lgcn.safetensors');
    saveLgcnWeights(file, trainer.network, { shapeModel, margin: 0.25 });
    const det = await loadLgcnDetector(file);
    const box = { x: 30, y: 20, width: 50, height: 40 };
    // Integer points on the 48x48 input; by hand in the image: the square of side 50 * 1.5 = 75
    // about the box centre (54.5, 39.5), shrunk 48 / 75.
    const crop = Array.from({ length: 68 }, (_, k) => [6 + (k % 12) * 3, 6 + Math.floor(k / 12) * 6]).flat();
    const s = 48 / 75;
    det.network.forward = () => {
      const maps = ops.tensor(gaussianHeatmaps(crop, { size: [48, 48], sigma: 1.5, background: false }), [1, 68, 48, 48]);
      return { local: maps, blurred: maps, output: maps };
    };
    const r = await det.detect(testImage, { box, shapeModel: false });
    for (let k = 0; k < 68; k++) {
      expect(r.points[k][0]).toBeCloseTo((crop[2 * k] - 23.5) / s + 54.5, 3);
      expect(r.points[k][1]).toBeCloseTo((crop[2 * k + 1] - 23.5) / s + 39.5, 3);
      expect(r.confidence[k]).toBeCloseTo(1, 5);
    }
  });

  it('refuses other architectures, corrupt files and bad detector options, naming the file', async () => {
    const dir = tmp();
    const unet = join(dir, 'unet.safetensors');
    saveLandmarkWeights(unet, new HeatmapUNet({ inChannels: 3, outChannels: 69, widths: [4, 4, 8, 8] }), { points: 68, inputSize: 32, margin: 0.2, network: { widths: [4, 4, 8, 8], blocksPerGroup: 2, upsample: 'nearest' } });
    expect(() => loadLgcnWeights(unet)).toThrow(new RegExp(`${unet}: holds a U-Net landmark model`));
    await expect(loadLgcnDetector(unet)).rejects.toThrow(/not LGCN/);
    const good = join(dir, 'lgcn.safetensors');
    saveLgcnWeights(good, trainer.network, { shapeModel });
    expect(() => loadLandmarkWeights(good)).toThrow(new RegExp(`${good}: holds an LGCN model`));
    const bytes = readFileSync(good);
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    expect(() => loadLgcnWeights(truncated)).toThrow(new RegExp(`${truncated}: corrupt weights file`));
    expect(() => loadLgcnWeights(join(dir, 'missing.safetensors'))).toThrow(/not found/);
    expect(() => loadLgcnWeights(join(dir, 'model.pth'))).toThrow(/only .safetensors/);
    // Tampered metadata and tensors.
    const { tensors, metadata } = decodeSafetensors(bytes, good);
    const rewrite = (name: string, meta: Record<string, string>, ts = tensors) => {
      const f = join(dir, name);
      saveSafetensors(f, ts, meta);
      return f;
    };
    const noShape = { ...metadata };
    delete noShape['lrface.landmarks.shape-model'];
    const withoutModel = rewrite('no-shape.safetensors', noShape);
    expect(loadLgcnWeights(withoutModel).shapeModel).toBeNull();
    const det = await loadLgcnDetector(withoutModel);
    await expect(det.detect(testImage, { shapeModel: true })).rejects.toThrow(/holds no shape model/);
    expect(() => loadLgcnWeights(rewrite('bad-json.safetensors', { ...metadata, 'lrface.landmarks.lgcn': '{' }))).toThrow(/not valid JSON/);
    const cfg = JSON.parse(metadata['lrface.landmarks.lgcn']);
    expect(() => loadLgcnWeights(rewrite('bad-cfg.safetensors', { ...metadata, 'lrface.landmarks.lgcn': JSON.stringify({ ...cfg, network: { ...cfg.network, localKernel: 4 } }) }))).toThrow(/invalid LGCN config.*localKernel/);
    expect(() => loadLgcnWeights(rewrite('bad-shape.safetensors', { ...metadata, 'lrface.landmarks.shape-model': '{"format":"x"}' }))).toThrow(/invalid shape model/);
    const wide = JSON.stringify({ ...cfg, network: { ...cfg.network, localWidth: 32 } });
    expect(() => loadLgcnWeights(rewrite('wide.safetensors', { ...metadata, 'lrface.landmarks.lgcn': wide }))).toThrow(/tensor 'localLayers.0.weight' has shape \[16,1,3,3\], the model needs \[32,1,3,3\]/);
    const blurredKernel = new Map(tensors);
    blurredKernel.set('kernelConv.weight', ops.affine(tensors.get('kernelConv.weight')!, 2));
    expect(() => loadLgcnWeights(rewrite('kernel.safetensors', metadata, blurredKernel))).toThrow(/'kernelConv.weight' is not the Gaussian of the config/);
    const missing = new Map(tensors);
    missing.delete('globalOutput.bias');
    expect(() => loadLgcnWeights(rewrite('missing-tensor.safetensors', metadata, missing))).toThrow(/lacks tensor 'globalOutput.bias'/);
    // Detector options and inputs.
    const good2 = await loadLgcnDetector(good);
    await expect(good2.detect(testImage, { flip: true } as never)).rejects.toThrow(new TypeError("LgcnDetector.detect: 'flip' must be one of the known options (box, shapeModel, fit), got an unknown option"));
    await expect(good2.detect(testImage, { shapeModel: 'yes' as never })).rejects.toThrow(TypeError);
    await expect(good2.detect(testImage, { box: { x: 500, y: 500, width: 5, height: 5 } })).rejects.toThrow(/LgcnDetector.detect: 'box' must be a box overlapping/);
    await expect(good2.detect(42 as never)).rejects.toThrow(/LgcnDetector.detect: 'input'/);
    await expect(good2.detect(testImage, { fit: { windowSizes: [-1] } })).rejects.toThrow(/windowSizes/);
    // Unknown fit keys are refused under detect's name, with or without the shape-model fit.
    const fitKeyError = new TypeError(
      "LgcnDetector.detect: 'windowSize' must be one of the known options.fit fields (windowSizes, thresh, minWeight, useOrderingConstraints, snapToMaxima, refineRadius), got an unknown options.fit field",
    );
    await expect(good2.detect(testImage, { fit: { windowSize: [20] } as never })).rejects.toThrow(fitKeyError);
    await expect(good2.detect(testImage, { shapeModel: false, fit: { windowSize: [20] } as never })).rejects.toThrow(fitKeyError);
    await expect(good2.detect(testImage, { fit: 'paper' as never })).rejects.toThrow(new TypeError("LgcnDetector.detect: 'options.fit' must be an object, got \"paper\""));
    // Every documented fit key, at the paper's values (the defaults): the same points as no fit options.
    const paperFit = { windowSizes: [20, 7], thresh: 0.1, minWeight: 0.01, useOrderingConstraints: true, snapToMaxima: true, refineRadius: 2 };
    expect((await good2.detect(testImage, { fit: paperFit })).points).toEqual((await good2.detect(testImage)).points);
    await expect(loadLgcnDetector(good, { device: 'tpu' })).rejects.toThrow(/device/);
    await expect(loadLgcnDetector(good, { devices: 'cpu' } as never)).rejects.toThrow(new TypeError("loadLgcnDetector: 'devices' must be one of the known options (device), got an unknown option"));
    await expect(loadLgcnDetector('' as never)).rejects.toThrow(TypeError);
    good2.network.dispose();
    await expect(good2.detect(testImage)).rejects.toThrow(/disposed/);
    expect(() => saveLgcnWeights(join(dir, 'x.safetensors'), {} as never)).toThrow(TypeError);
    expect(() => saveLgcnWeights(join(dir, 'x.safetensors'), trainer.network, { shapeModel: PcaShapeModel.fromJSON({ ...shapeModel.toJSON(), imageSize: 96 }) })).toThrow(/shapeModel/);
  });
});

