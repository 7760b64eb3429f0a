// The fields of the training configs of presets.ts, for checkKeys: each Record<keyof X, true>
// keeps its list in step with the interface. Shared by presets.ts, train.ts and lgcn.ts; not
// exported from the package.
import type { AugmentConfig, HighToLowStageConfig, LandmarkStageConfig, OptimizerConfig, SupervisedConfig } from './presets.js';

export const OPTIMIZER_CONFIG_KEYS: Record<keyof OptimizerConfig, true> = { lr: true, betas: true, milestones: true, decay: true };

export const AUGMENT_CONFIG_KEYS: Record<keyof AugmentConfig, true> = { scale: true, rotation: true, translation: true, flip: true };

export const HIGH_TO_LOW_STAGE_CONFIG_KEYS: Record<keyof HighToLowStageConfig, true> = {
  generator: true, discriminator: true, weights: true, optimizer: true, steps: true, batchSize: true,
};

export const LANDMARK_STAGE_CONFIG_KEYS: Record<keyof LandmarkStageConfig, true> = {
  setting: true, generator: true, heatmapDiscriminator: true, confidenceDiscriminator: true, weights: true, balance: true, optimizer: true,
  steps: true, batchSize: true, sigma: true, foregroundWeight: true, smoothingSigma: true, highToLowBatchStatistics: true, subsampledFraction: true,
};

export const SUPERVISED_CONFIG_KEYS: Record<keyof SupervisedConfig, true> = {
  generator: true, optimizer: true, steps: true, batchSize: true, sigma: true, foregroundWeight: true, inputSize: true,
};
