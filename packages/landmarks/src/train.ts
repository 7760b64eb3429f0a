// Training of the LR landmark pipeline: the labelled / unlabelled face sets, batches with
// augmentation, one step of each stage (G1/D1; G2 with D2 and D3 per setting S1-S4; the
// supervised HR-LD), JSON-lines logs and atomic checkpoints.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { Adam, MultiStepLR, loadCheckpoint, saveCheckpoint, type Module } from '@lrface/nn';
import { Rng, augmentFace, bicubicResize, decodeImage, heatmapTensor, imageToTensor, type RawImage } from '@lrface/datasets';
import { HeatmapAutoencoderDiscriminator, HeatmapUNet, HighToLowGenerator, ResidualDiscriminator } from './models.js';
import {
  HeatmapBalance, averagePoolDown, confidenceDiscriminatorLoss, confidenceGeneratorLoss, heatmapEnergy,
  heatmapGeneratorLoss, highToLowDiscriminatorLoss, highToLowGeneratorLoss,
} from './gan.js';
import { AUGMENT_CONFIG_KEYS, HIGH_TO_LOW_STAGE_CONFIG_KEYS, LANDMARK_STAGE_CONFIG_KEYS, OPTIMIZER_CONFIG_KEYS, SUPERVISED_CONFIG_KEYS } from './config-keys.js';
import { SETTING_SPECS, type AugmentConfig, type HighToLowStageConfig, type LandmarkStageConfig, type OptimizerConfig, type SupervisedConfig } from './presets.js';

/** 68 reference points. */
export const POINTS = 68;

// ---------------------------------------------------------------------------------------------
// Data

/** The parts of a face corpus (tools/face-corpus) training reads. */
export interface FaceCorpusView {
  size: number;
  hr: { id: string; landmarks: number[] | null; split: 'train' | 'test' }[];
  lr: { id: string }[];
  path(item: { id: string }): string;
}

/** A labelled HR face: the corpus crop and its 68 points in crop pixels. */
export interface LabelledFace {
  id: string;
  image: RawImage<Uint8Array>;
  landmarks: Float32Array;
}

function checkCorpus(fn: string, corpus: unknown): FaceCorpusView {
  const c = corpus as FaceCorpusView;
  if (c === null || typeof c !== 'object' || !Array.isArray(c.hr) || !Array.isArray(c.lr) || typeof c.path !== 'function')
    throw typeError(fn, 'corpus', 'an opened face corpus (hr, lr, path)', corpus);
  return c;
}

/** The labelled HR faces of a corpus split (faces without reference points are skipped). */
export async function loadLabelledFaces(corpus: FaceCorpusView, split: 'train' | 'test'): Promise<LabelledFace[]> {
  checkCorpus('loadLabelledFaces', corpus);
  if (split !== 'train' && split !== 'test') throw rangeError('loadLabelledFaces', 'split', "'train' or 'test'", split);
  const out: LabelledFace[] = [];
  for (const item of corpus.hr) {
    if (item.split !== split || !item.landmarks || item.landmarks.length !== 2 * POINTS) continue;
    out.push({ id: item.id, image: await decodeImage(corpus.path(item)), landmarks: Float32Array.from(item.landmarks) });
  }
  return out;
}

/** Real tiny faces resized (MATLAB bicubic) to `size` x `size`, as [3, size, size] planes in [-1, 1]. */
export async function loadRealLowResFaces(corpus: FaceCorpusView, size = 32): Promise<Float32Array[]> {
  checkCorpus('loadRealLowResFaces', corpus);
  if (!Number.isInteger(size) || size < 1) throw rangeError('loadRealLowResFaces', 'size', 'an integer >= 1', size);
  const out: Float32Array[] = [];
  for (const item of corpus.lr) {
    const img = await decodeImage(corpus.path(item));
    const plane = ops.scope(() => {
      const t = imageToTensor(img);
      const r = t.shape[2] === size && t.shape[3] === size ? t : bicubicResize(t, { size: [size, size] });
      return ops.affine(ops.clamp(r, 0, 1), 2, -1).data() as Float32Array;
    });
    out.push(Float32Array.from(plane));
  }
  return out;
}

/** 8-bit pixels to a [-1, 1] CHW block of `out` at `offset`. */
function writeSigned(img: RawImage, out: Float32Array, offset: number): void {
  const { width: w, height: h, channels: c, data } = img;
  const plane = w * h;
  for (let ch = 0; ch < c; ch++) for (let p = 0, q = ch; p < plane; p++, q += c) out[offset + ch * plane + p] = (data[q] / 255) * 2 - 1;
}

/** A batch of labelled faces: images [N, 3, S, S] in [-1, 1] and the points moved with the pixels. */
export interface LabelledBatch {
  images: Tensor;
  landmarks: Float32Array[];
}

/**
 * Draws `batchSize` labelled faces with augmentation (scale / rotation / translation about the
 * crop centre, mirror flips with the 68-point mirror map) at `size` x `size`.
 */
export function labelledBatch(faces: LabelledFace[], rng: Rng, batchSize: number, size: number, augment: AugmentConfig | null): LabelledBatch {
  const fn = 'labelledBatch';
  if (!Array.isArray(faces) || faces.length === 0) throw rangeError(fn, 'faces', 'a non-empty array of labelled faces', faces);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw rangeError(fn, 'batchSize', 'an integer >= 1', batchSize);
  if (!Number.isInteger(size) || size < 1) throw rangeError(fn, 'size', 'an integer >= 1', size);
  if (augment !== null) checkKeys(fn, augment, AUGMENT_CONFIG_KEYS, 'augment');
  const data = new Float32Array(batchSize * 3 * size * size);
  const landmarks: Float32Array[] = [];
  for (let i = 0; i < batchSize; i++) {
    const face = faces[rng.int(faces.length)];
    const box = { x: 0, y: 0, width: face.image.width, height: face.image.height };
    const out = augmentFace({ image: face.image, boxes: [box], landmarks: [face.landmarks] }, rng, {
      size: [size, size], margin: 0, jitter: false, fill: 'replicate', deterministic: augment === null,
      ...(augment ? { scale: augment.scale, rotation: augment.rotation, translation: augment.translation * (size / face.image.width), flip: augment.flip } : {}),
    });
    writeSigned(out.image, data, i * 3 * size * size);
    landmarks.push(out.landmarks![0]);
  }
  return { images: ops.tensor(data, [batchSize, 3, size, size]), landmarks };
}

/** A batch of real LR faces [N, 3, S, S] in [-1, 1], each mirrored with probability 0.5. */
export function realLowResBatch(faces: Float32Array[], rng: Rng, batchSize: number, size = 32): Tensor {
  if (!Array.isArray(faces) || faces.length === 0) throw rangeError('realLowResBatch', 'faces', 'a non-empty array of LR faces', faces);
  const plane = size * size;
  const data = new Float32Array(batchSize * 3 * plane);
  for (let i = 0; i < batchSize; i++) {
    const src = faces[rng.int(faces.length)];
    if (src.length !== 3 * plane) throw rangeError('realLowResBatch', 'faces', `[3, ${size}, ${size}] planes`, `${src.length} values`, true);
    const dst = i * 3 * plane;
    if (!rng.chance(0.5)) data.set(src, dst);
    else for (let c = 0; c < 3; c++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data[dst + c * plane + y * size + x] = src[c * plane + y * size + (size - 1 - x)];
  }
  return ops.tensor(data, [batchSize, 3, size, size]);
}

/** Ground-truth heatmaps (N + background) at `size` for points given in `imageSize` pixels. */
export function groundTruthHeatmaps(landmarks: Float32Array[], size: number, imageSize: number, sigma: number): Tensor {
  return heatmapTensor(landmarks, { size: [size, size], imageSize: [imageSize, imageSize], sigma, background: true });
}

/** S1's input: the HR image Gaussian-smoothed, then average-pooled to the LR size. */
export function subsampledLowRes(hr: Tensor, size: number, smoothingSigma: number): Tensor {
  return ops.scope(() => averagePoolDown(ops.gaussianBlur(hr, { sigma: smoothingSigma, mode: 'replicate' }), size));
}

// ---------------------------------------------------------------------------------------------
// Optimisation helpers

function adamWithSchedule(fn: string, module: Module, o: OptimizerConfig): { optimizer: Adam; scheduler: MultiStepLR } {
  // A misspelt lr would leave Adam's default (1e-3) in place without a word.
  checkKeys(fn, o, OPTIMIZER_CONFIG_KEYS, 'optimizer');
  const optimizer = new Adam(module.parameters(), { lr: o.lr, betas: o.betas });
  return { optimizer, scheduler: new MultiStepLR(optimizer, o.milestones, o.decay) };
}

function finite(fn: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) if (!Number.isFinite(v)) throw new RangeError(`${fn}: the loss term '${k}' became ${v}; training stopped`);
}

/** Appends one JSON object per line (the per-step training log). */
export class JsonLinesLog {
  constructor(readonly file: string) {
    if (typeof file !== 'string' || file === '') throw typeError('JsonLinesLog', 'file', 'a file path', file);
    mkdirSync(dirname(file), { recursive: true });
  }
  write(record: Record<string, unknown>): void {
    appendFileSync(this.file, JSON.stringify(record) + '\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Stage 1: G1 / D1

export interface HighToLowStepResult {
  step: number;
  lossD1: number;
  lossG1: number;
  gan: number;
  pixel: number;
}

/** Stage 1: the high-to-low generator G1 against the spectrally normalised D1 (hinge), plus the pixel loss. */
export class HighToLowTrainer {
  readonly generator: HighToLowGenerator;
  readonly discriminator: ResidualDiscriminator;
  readonly optimizerG: Adam;
  readonly optimizerD: Adam;
  readonly schedulerG: MultiStepLR;
  readonly schedulerD: MultiStepLR;
  step = 0;
  constructor(readonly config: HighToLowStageConfig) {
    if (config === null || typeof config !== 'object') throw typeError('HighToLowTrainer', 'config', 'an object', config);
    checkKeys('HighToLowTrainer', config, HIGH_TO_LOW_STAGE_CONFIG_KEYS, 'config');
    this.generator = new HighToLowGenerator(config.generator);
    this.discriminator = new ResidualDiscriminator({ inChannels: 3, ...config.discriminator });
    ({ optimizer: this.optimizerG, scheduler: this.schedulerG } = adamWithSchedule('HighToLowTrainer', this.generator, config.optimizer));
    ({ optimizer: this.optimizerD, scheduler: this.schedulerD } = adamWithSchedule('HighToLowTrainer', this.discriminator, config.optimizer));
  }
  /** Noise on the generator's device. */
  private noise(n: number): Tensor {
    return ops.randn([n, this.generator.config.noiseDim], { device: this.generator.device as ops.DeviceSpec });
  }
  /** One D1 update then one G1 update on HR faces `hr` [N, 3, 128, 128] and real LR faces `realLr` [M, 3, 32, 32], all in [-1, 1]. */
  trainStep(hr: Tensor, realLr: Tensor): HighToLowStepResult {
    this.generator.train();
    this.discriminator.train();
    const result = ops.scope(() => {
      const fake = this.generator.forward(hr, this.noise(hr.shape[0]));
      this.optimizerD.zeroGrad();
      const lossD = highToLowDiscriminatorLoss(this.discriminator.forward(realLr), this.discriminator.forward(fake.detach()));
      lossD.backward();
      this.optimizerD.step();
      this.optimizerG.zeroGrad();
      const g = highToLowGeneratorLoss(this.discriminator.forward(fake), fake, hr, this.config.weights);
      g.loss.backward();
      this.optimizerG.step();
      return { lossD1: lossD.item(), lossG1: g.loss.item(), gan: g.gan.item(), pixel: g.pixel.item() };
    });
    finite('HighToLowTrainer.trainStep', result);
    this.schedulerG.step();
    this.schedulerD.step();
    this.step++;
    return { step: this.step, ...result };
  }
  save(path: string, extra: Record<string, unknown> = {}): void {
    saveCheckpoint(path, { model: this.generator, models: { d1: this.discriminator }, optimizers: { g1: this.optimizerG, d1: this.optimizerD }, schedulers: { g1: this.schedulerG, d1: this.schedulerD }, step: this.step, extra });
  }
  load(path: string): Record<string, unknown> | undefined {
    const r = loadCheckpoint(path, { model: this.generator, models: { d1: this.discriminator }, optimizers: { g1: this.optimizerG, d1: this.optimizerD }, schedulers: { g1: this.schedulerG, d1: this.schedulerD } });
    this.step = r.step;
    return r.extra;
  }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: G2 with D2 / D3

export interface LandmarkStepInput {
  /** Labelled HR faces [N, 3, H, H] in [-1, 1]. */
  hr: Tensor;
  /** Their points in HR pixels. */
  landmarks: Float32Array[];
  /** Unlabelled real LR faces [M, 3, S, S] in [-1, 1] (S4). */
  realLr?: Tensor;
}

export interface LandmarkStepResult {
  step: number;
  setting: string;
  lossG2: number;
  mse: number;
  kp?: number;
  conf?: number;
  lossD2?: number;
  realEnergy?: number;
  fakeEnergy?: number;
  k?: number;
  lossD3?: number;
}

const LANDMARK_TRAINER_OPTION_KEYS: Record<'lowResSize', true> = { lowResSize: true };

/**
 * Stage 2: G2 on LR faces. Labelled LR inputs are G1's outputs on the HR faces (S2-S4) or the
 * smoothed average-pooled HR faces (S1), with the HR points scaled down as ground truth. S3
 * adds D2 (autoencoder, BEGAN balance k_t); S4 adds D3 (least squares) on (generated LR, GT)
 * = real, (generated LR, predicted) and (real LR, predicted) = fake.
 */
export class LandmarkTrainer {
  readonly generator: HeatmapUNet;
  readonly heatmapDiscriminator: HeatmapAutoencoderDiscriminator | null;
  readonly confidenceDiscriminator: ResidualDiscriminator | null;
  readonly balance: HeatmapBalance;
  readonly optimizers: Record<string, Adam> = {};
  readonly schedulers: Record<string, MultiStepLR> = {};
  readonly lowResSize: number;
  step = 0;
  constructor(readonly config: LandmarkStageConfig, readonly highToLow: HighToLowGenerator | null, options: { lowResSize?: number } = {}) {
    const fn = 'LandmarkTrainer';
    if (config === null || typeof config !== 'object') throw typeError(fn, 'config', 'an object', config);
    checkKeys(fn, config, LANDMARK_STAGE_CONFIG_KEYS, 'config');
    checkKeys(fn, options, LANDMARK_TRAINER_OPTION_KEYS);
    const spec = SETTING_SPECS[config.setting];
    if (!spec) throw rangeError(fn, 'config.setting', 'one of S1, S2, S3, S4', config.setting);
    if (spec.labelledInput === 'generated' && !(highToLow instanceof HighToLowGenerator))
      throw typeError(fn, 'highToLow', `a trained HighToLowGenerator (setting ${config.setting} trains on G1 outputs)`, highToLow);
    const fraction = config.subsampledFraction ?? 0;
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) throw rangeError(fn, 'config.subsampledFraction', 'a number in [0, 1]', fraction);
    this.lowResSize = options.lowResSize ?? highToLow?.config.outputSize ?? 32;
    const maps = POINTS + 1;
    this.generator = new HeatmapUNet({ inChannels: 3, outChannels: maps, ...config.generator });
    this.heatmapDiscriminator = spec.heatmapDiscriminator ? new HeatmapAutoencoderDiscriminator({ maps, ...config.heatmapDiscriminator }) : null;
    this.confidenceDiscriminator = spec.confidenceDiscriminator ? new ResidualDiscriminator({ inChannels: 3 + maps, ...config.confidenceDiscriminator }) : null;
    this.balance = new HeatmapBalance(config.balance);
    for (const [name, m] of [['g2', this.generator], ['d2', this.heatmapDiscriminator], ['d3', this.confidenceDiscriminator]] as const) {
      if (!m) continue;
      const { optimizer, scheduler } = adamWithSchedule(fn, m, config.optimizer);
      this.optimizers[name] = optimizer;
      this.schedulers[name] = scheduler;
    }
  }
  get spec() {
    return SETTING_SPECS[this.config.setting];
  }
  /** The labelled LR images of HR faces `hr`: G1's outputs (no gradient into G1) or, in S1, the subsampled faces. */
  labelledLowRes(hr: Tensor): Tensor {
    if (this.spec.labelledInput === 'subsampled') return subsampledLowRes(hr, this.lowResSize, this.config.smoothingSigma);
    const n = hr.shape[0];
    const subsampled = Math.round(n * (this.config.subsampledFraction ?? 0));
    if (subsampled > 0) {
      return ops.scope(() => {
        const parts = [subsampledLowRes(ops.narrow(hr, 0, 0, subsampled), this.lowResSize, this.config.smoothingSigma)];
        if (subsampled < n) parts.push(this.generatedLowRes(ops.narrow(hr, 0, subsampled, n - subsampled)));
        return parts.length === 1 ? parts[0] : ops.concat(parts, 0);
      });
    }
    return this.generatedLowRes(hr);
  }
  /** G1's outputs on `hr` (no gradient into G1). */
  private generatedLowRes(hr: Tensor): Tensor {
    const g1 = this.highToLow!;
    // Batch statistics by default, as G1 ran while it was trained (its running averages lag
    // behind a short, fast stage 1); G1 itself is not updated here.
    if (this.config.highToLowBatchStatistics ?? true) g1.train();
    else g1.eval();
    return ops.noGrad(() => g1.forward(hr, ops.randn([hr.shape[0], g1.config.noiseDim], { device: hr.deviceId as ops.DeviceSpec })));
  }
  trainStep(input: LandmarkStepInput): LandmarkStepResult {
    const fn = 'LandmarkTrainer.trainStep';
    if (input === null || typeof input !== 'object') throw typeError(fn, 'input', 'an object', input);
    if (!ops.isTensor(input.hr)) throw typeError(fn, 'input.hr', 'a Tensor', input.hr);
    if (!Array.isArray(input.landmarks) || input.landmarks.length !== input.hr.shape[0])
      throw rangeError(fn, 'input.landmarks', `one point array per image (${input.hr.shape[0]})`, input.landmarks);
    const d2 = this.heatmapDiscriminator;
    const d3 = this.confidenceDiscriminator;
    if (d3 && !ops.isTensor(input.realLr)) throw typeError(fn, 'input.realLr', `a Tensor of real LR faces (setting ${this.config.setting} uses D3)`, input.realLr);
    for (const m of [this.generator, d2, d3]) m?.train();
    const S = this.lowResSize;
    const result = ops.scope(() => {
      const lr = this.labelledLowRes(input.hr);
      // Drawn on the host, used where the faces are (to() is a view when that is the host).
      const gt = groundTruthHeatmaps(input.landmarks, S, input.hr.shape[2], this.config.sigma).to(input.hr.deviceId as ops.DeviceSpec);
      const pred = this.generator.forward(lr);
      const predReal = d3 ? this.generator.forward(input.realLr!) : null;
      const out: Omit<LandmarkStepResult, 'step' | 'setting'> = { lossG2: 0, mse: 0 };
      // D2: reconstruct GT heatmaps well, predicted ones badly, balanced by k_t (eqs. 5-8).
      if (d2) {
        this.optimizers.d2.zeroGrad();
        const predDetached = pred.detach();
        const realEnergy = heatmapEnergy(gt, d2.forward(lr, gt));
        const fakeEnergy = heatmapEnergy(predDetached, d2.forward(lr, predDetached));
        const lossD2 = this.balance.discriminatorLoss(realEnergy, fakeEnergy);
        lossD2.backward();
        this.optimizers.d2.step();
        out.lossD2 = lossD2.item();
        out.realEnergy = realEnergy.item();
        out.fakeEnergy = fakeEnergy.item();
        out.k = this.balance.k;
        this.balance.observe(out.realEnergy, out.fakeEnergy);
      }
      // D3: least squares on the three input kinds (eq. 9).
      if (d3) {
        this.optimizers.d3.zeroGrad();
        const lossD3 = confidenceDiscriminatorLoss(
          d3.forward(ops.concat([lr, gt], 1)),
          d3.forward(ops.concat([lr, pred.detach()], 1)),
          d3.forward(ops.concat([input.realLr!, predReal!.detach()], 1)),
        );
        lossD3.backward();
        this.optimizers.d3.step();
        out.lossD3 = lossD3.item();
      }
      // G2: eq. 13.
      this.optimizers.g2.zeroGrad();
      const mse = heatmapEnergy(gt, pred, this.config.foregroundWeight ?? 0);
      const kp = d2 ? heatmapEnergy(pred, d2.forward(lr, pred)) : undefined;
      const conf = d3 ? confidenceGeneratorLoss(d3.forward(ops.concat([lr, pred], 1)), d3.forward(ops.concat([input.realLr!, predReal!], 1))) : undefined;
      const lossG = heatmapGeneratorLoss({ mse, kp, conf }, this.config.weights);
      lossG.backward();
      this.optimizers.g2.step();
      out.lossG2 = lossG.item();
      out.mse = mse.item();
      if (kp) out.kp = kp.item();
      if (conf) out.conf = conf.item();
      return out;
    });
    finite(fn, result as unknown as Record<string, number>);
    for (const s of Object.values(this.schedulers)) s.step();
    this.step++;
    return { step: this.step, setting: this.config.setting, ...result, ...(d2 ? { k: this.balance.k } : {}) };
  }
  private parts() {
    const models: Record<string, Module> = {};
    if (this.heatmapDiscriminator) models.d2 = this.heatmapDiscriminator;
    if (this.confidenceDiscriminator) models.d3 = this.confidenceDiscriminator;
    if (this.highToLow) models.g1 = this.highToLow;
    return { model: this.generator, models, optimizers: this.optimizers, schedulers: this.schedulers };
  }
  save(path: string, extra: Record<string, unknown> = {}): void {
    saveCheckpoint(path, { ...this.parts(), step: this.step, extra: { ...extra, k: this.balance.k } });
  }
  load(path: string): Record<string, unknown> | undefined {
    const r = loadCheckpoint(path, this.parts());
    this.step = r.step;
    if (typeof r.extra?.k === 'number') this.balance.k = r.extra.k;
    return r.extra;
  }
}

// ---------------------------------------------------------------------------------------------
// Supervised HR-LD

export interface SupervisedStepResult {
  step: number;
  mse: number;
}

/** HR-LD: the U-Net trained with the heatmap loss of eq. 10 alone on HR faces. */
export class SupervisedTrainer {
  readonly generator: HeatmapUNet;
  readonly optimizer: Adam;
  readonly scheduler: MultiStepLR;
  step = 0;
  constructor(readonly config: SupervisedConfig) {
    if (config === null || typeof config !== 'object') throw typeError('SupervisedTrainer', 'config', 'an object', config);
    checkKeys('SupervisedTrainer', config, SUPERVISED_CONFIG_KEYS, 'config');
    this.generator = new HeatmapUNet({ inChannels: 3, outChannels: POINTS + 1, ...config.generator });
    ({ optimizer: this.optimizer, scheduler: this.scheduler } = adamWithSchedule('SupervisedTrainer', this.generator, config.optimizer));
  }
  /** One update on `images` [N, 3, S, S] in [-1, 1] with their points in image pixels. */
  trainStep(images: Tensor, landmarks: Float32Array[]): SupervisedStepResult {
    this.generator.train();
    const mse = ops.scope(() => {
      this.optimizer.zeroGrad();
      const gt = groundTruthHeatmaps(landmarks, images.shape[2], images.shape[2], this.config.sigma).to(images.deviceId as ops.DeviceSpec);
      const loss = heatmapEnergy(gt, this.generator.forward(images), this.config.foregroundWeight ?? 0);
      loss.backward();
      this.optimizer.step();
      return loss.item();
    });
    finite('SupervisedTrainer.trainStep', { mse });
    this.scheduler.step();
    this.step++;
    return { step: this.step, mse };
  }
  save(path: string, extra: Record<string, unknown> = {}): void {
    saveCheckpoint(path, { model: this.generator, optimizer: this.optimizer, scheduler: this.scheduler, step: this.step, extra });
  }
  load(path: string): Record<string, unknown> | undefined {
    const r = loadCheckpoint(path, { model: this.generator, optimizer: this.optimizer, scheduler: this.scheduler });
    this.step = r.step;
    return r.extra;
  }
}
