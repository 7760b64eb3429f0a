// Training configurations: the paper's ablation settings S1-S4 as named presets, and the
// architectures of the shipped models. Every value the paper leaves open (widths, pooling,
// loss weights, gamma, lambda_k, the k_t update period, the schedule) is a field here.
import { checkKeys, rangeError, typeError } from '@lrface/cuda-core';
import type { HighToLowGeneratorConfig } from './models.js';
import type { HeatmapBalanceConfig, HeatmapGeneratorLossWeights, HighToLowLossWeights } from './gan.js';
import { LANDMARK_STAGE_CONFIG_KEYS } from './config-keys.js';

/** The paper's ablation settings (section 4.1). */
export type Setting = 'S1' | 'S2' | 'S3' | 'S4';
export const SETTINGS: readonly Setting[] = ['S1', 'S2', 'S3', 'S4'];

/** What each setting trains G2 on and with. */
export interface SettingSpec {
  /** Where G2's labelled LR images come from: 'subsampled' = Gaussian-smoothed average-pooled HR (S1), 'generated' = G1 outputs. */
  labelledInput: 'subsampled' | 'generated';
  /** D2 (autoencoder heatmap discriminator, BEGAN balance) active. */
  heatmapDiscriminator: boolean;
  /** D3 (confidence discriminator) active, fed real LR faces as well. */
  confidenceDiscriminator: boolean;
}

export const SETTING_SPECS: Readonly<Record<Setting, SettingSpec>> = {
  S1: { labelledInput: 'subsampled', heatmapDiscriminator: false, confidenceDiscriminator: false },
  S2: { labelledInput: 'generated', heatmapDiscriminator: false, confidenceDiscriminator: false },
  S3: { labelledInput: 'generated', heatmapDiscriminator: true, confidenceDiscriminator: false },
  S4: { labelledInput: 'generated', heatmapDiscriminator: true, confidenceDiscriminator: true },
};

/** Adam with a step schedule (the paper: lr 2e-4, betas (0.5, 0.9), halved at 40% and 80% of training). */
export interface OptimizerConfig {
  lr: number;
  betas: [number, number];
  /** Steps at which the learning rate is multiplied by `decay`. */
  milestones: number[];
  decay: number;
}

/** The heatmap U-Net's shape (G2, HR-LD, D2). */
export interface UNetShape {
  widths: number[];
  blocksPerGroup: number;
  upsample: 'nearest' | 'bilinear';
}

/** The residual discriminator's shape (D1, D3). */
export interface DiscriminatorShape {
  widths: number[];
  poolCount: number;
  spectral: boolean;
}

/** Augmentation of the labelled HR faces (datasets' augmentFace ranges). */
export interface AugmentConfig {
  scale: [number, number];
  /** Degrees, uniform in [-r, r]. */
  rotation: number;
  /** HR pixels, uniform in [-t, t]. */
  translation: number;
  flip: number;
}

/** Stage 1: G1 / D1. */
export interface HighToLowStageConfig {
  generator: HighToLowGeneratorConfig;
  discriminator: DiscriminatorShape;
  weights: HighToLowLossWeights;
  optimizer: OptimizerConfig;
  steps: number;
  batchSize: number;
}

/** Stage 2: G2 with D2 and D3 as the setting asks. */
export interface LandmarkStageConfig {
  setting: Setting;
  generator: UNetShape;
  heatmapDiscriminator: UNetShape;
  confidenceDiscriminator: DiscriminatorShape;
  weights: HeatmapGeneratorLossWeights;
  balance: HeatmapBalanceConfig;
  optimizer: OptimizerConfig;
  steps: number;
  batchSize: number;
  /** Heatmap Gaussian sigma in LR pixels (the paper: 2). */
  sigma: number;
  /** Foreground weight w of the supervised heatmap term, see heatmapEnergy (the paper's eq. 10: 0, the default). */
  foregroundWeight?: number;
  /** S1's Gaussian smoothing before average pooling, sigma in HR pixels (UNCERTAIN; default 1.5). */
  smoothingSigma: number;
  /** Run the frozen G1 with batch statistics (true, default) or its running averages. */
  highToLowBatchStatistics?: boolean;
  /**
   * S2-S4: the fraction of each labelled batch (its first images) fed as S1's subsampled faces
   * instead of G1's outputs (default 0, the paper). Keeps G2 calibrated on plainly downscaled
   * faces while G1's outputs bring the real LR look; not in the paper.
   */
  subsampledFraction?: number;
}

/** Supervised HR-LD on HR faces. */
export interface SupervisedConfig {
  generator: UNetShape;
  optimizer: OptimizerConfig;
  steps: number;
  batchSize: number;
  sigma: number;
  /** Foreground weight w of the heatmap loss, see heatmapEnergy (the paper's eq. 10: 0, the default). */
  foregroundWeight?: number;
  /** Heatmap side (the input side: heatmaps at the input resolution). */
  inputSize: number;
}

export const PAPER_OPTIMIZER: OptimizerConfig = { lr: 2e-4, betas: [0.5, 0.9], milestones: [], decay: 0.5 };

/**
 * The default augmentation: scale / rotation / translation changes and mirror flips. The scale
 * range reaches down to 0.75 because WIDER's face boxes (the test faces and the real tiny faces)
 * are looser than the aligned crops most labelled faces come from.
 */
export const DEFAULT_AUGMENT: AugmentConfig = { scale: [0.75, 1.1], rotation: 15, translation: 10, flip: 0.5 };

/** Narrow defaults that train on a CPU; the paper's widths are unknown. */
export const DEFAULT_HIGH_TO_LOW: HighToLowStageConfig = {
  generator: { inputSize: 128, outputSize: 32, noiseDim: 64, stemWidth: 16, encoderWidths: [16, 16, 32, 32, 32, 32, 32, 32], encoderPoolAfter: [0, 1, 2, 3, 4], decoderWidths: [32, 32, 32, 16, 16, 16], decoderUpsampleAfter: [0, 1, 2] },
  discriminator: { widths: [16, 32, 32, 64], poolCount: 3, spectral: true },
  // alpha*l_GAN > beta*l_pixel (eq. 1); the values themselves are not in the paper.
  weights: { alpha: 1, beta: 0.5 },
  optimizer: { ...PAPER_OPTIMIZER },
  steps: 2000,
  batchSize: 16,
};

function landmarkStage(setting: Setting): LandmarkStageConfig {
  return {
    setting,
    generator: { widths: [16, 32, 32, 64], blocksPerGroup: 2, upsample: 'nearest' },
    heatmapDiscriminator: { widths: [16, 16, 32, 32], blocksPerGroup: 2, upsample: 'nearest' },
    confidenceDiscriminator: { widths: [16, 32, 32, 64], poolCount: 3, spectral: true },
    // a*l_MSE > b*l_kp > c*l_conf (eq. 13); the values are not in the paper.
    weights: { a: 1, b: 0.1, c: 0.01 },
    balance: { gamma: 0.5, lambdaK: 0.001, period: 1, initialK: 0 },
    optimizer: { ...PAPER_OPTIMIZER },
    steps: 4000,
    batchSize: 16,
    sigma: 2,
    smoothingSigma: 1.5,
  };
}

/** The ablation settings S1-S4 as stage-2 presets (override fields with {@link landmarkPreset}'s `overrides`). */
export const LANDMARK_PRESETS: Readonly<Record<Setting, LandmarkStageConfig>> = {
  S1: landmarkStage('S1'),
  S2: landmarkStage('S2'),
  S3: landmarkStage('S3'),
  S4: landmarkStage('S4'),
};

/** A copy of preset `setting` with `overrides` applied (shallow per section). */
export function landmarkPreset(setting: Setting, overrides: Partial<LandmarkStageConfig> = {}): LandmarkStageConfig {
  if (typeof setting !== 'string') throw typeError('landmarkPreset', 'setting', 'a setting name (S1, S2, S3 or S4)', setting);
  if (!SETTINGS.includes(setting)) throw rangeError('landmarkPreset', 'setting', 'one of S1, S2, S3, S4', setting);
  if (overrides === null || typeof overrides !== 'object') throw typeError('landmarkPreset', 'overrides', 'an object', overrides);
  checkKeys('landmarkPreset', overrides, LANDMARK_STAGE_CONFIG_KEYS, 'overrides');
  if (overrides.setting !== undefined && overrides.setting !== setting) throw rangeError('landmarkPreset', 'overrides.setting', `absent or '${setting}'`, overrides.setting);
  const base = structuredClone(LANDMARK_PRESETS[setting]) as LandmarkStageConfig;
  return structuredClone({ ...base, ...overrides, setting }) as LandmarkStageConfig;
}
