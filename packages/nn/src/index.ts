/**
 * @lrface/nn: modules and layers with PyTorch's names, losses, optimisers, schedules, weights
 * in and out (safetensors, PyTorch .pth), atomic checkpoints and a trainer.
 * @packageDocumentation
 */
export { Module, ModuleDict, ModuleList, Sequential, chain } from './module.js';
export type { StateDict, LoadOptions, LoadResult } from './module.js';
export * from './layers.js';
export * from './blocks.js';
export { spectralNorm, SpectralNorm } from './spectral-norm.js';
export type { SpectralNormOptions } from './spectral-norm.js';
export * from './init.js';
export * from './losses.js';
export * from './optim.js';
export * from './schedulers.js';
export { encodeSafetensors, decodeSafetensors, saveSafetensors, loadSafetensors } from './safetensors.js';
export { loadTorchCheckpoint, loadTorchStateDict } from './torch-load.js';
export { readTfjsWeights, faceApiModelDir } from './tfjs-weights.js';
export type { TfjsWeight } from './tfjs-weights.js';
export { PickledObject, PickleGlobal, UnpicklingError } from './pickle.js';
export { saveCheckpoint, loadCheckpoint, readCheckpointInfo } from './checkpoint.js';
export type { CheckpointInfo, CheckpointParts } from './checkpoint.js';
// Also here, beside the weights and checkpoint writers that use it.
export { writeFileAtomic } from '@lrface/cuda-core';
export { Trainer } from './trainer.js';
export type { TrainerOptions, TrainStepResult } from './trainer.js';
