// Training checkpoints: model, optimiser, schedule, RNG state and step in one safetensors
// file, written atomically so an interrupted save never destroys the previous checkpoint.
import { readFileSync } from 'node:fs';
import { getRngState, setRngState, tensor, type RngState, type Tensor } from '@lrface/cuda-core';
import type { Module } from './module.js';
import type { Optimizer, OptimizerState } from './optim.js';
import type { LRScheduler, SchedulerState } from './schedulers.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { writeFileAtomic } from './atomic.js';

export interface CheckpointParts {
  model: Module;
  optimizer?: Optimizer;
  scheduler?: LRScheduler;
  /** Training steps done. */
  step: number;
  /** Any JSON-serialisable extras (epoch, best metric, ...). */
  extra?: Record<string, unknown>;
}

interface CheckpointMeta {
  format: 'lrface-checkpoint-1';
  step: number;
  rng: RngState;
  optimizer?: { step: number; lrs: number[]; paramSteps: number[]; buffers: Record<string, number[]> };
  scheduler?: SchedulerState;
  extra?: Record<string, unknown>;
}

export function saveCheckpoint(path: string, parts: CheckpointParts): void {
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of parts.model.stateDict()) tensors.set(`model.${k}`, v);
  const temporaries: Tensor[] = [];
  let optimizer: CheckpointMeta['optimizer'];
  if (parts.optimizer) {
    const s = parts.optimizer.stateDict();
    optimizer = { step: s.step, lrs: s.lrs, paramSteps: s.paramSteps, buffers: {} };
    for (const [name, arrays] of Object.entries(s.buffers)) {
      optimizer.buffers[name] = arrays.map((a) => a.length);
      arrays.forEach((a, i) => {
        if (a.length === 0) return;
        const t = tensor(a);
        temporaries.push(t);
        tensors.set(`optimizer.${name}.${i}`, t);
      });
    }
  }
  const meta: CheckpointMeta = { format: 'lrface-checkpoint-1', step: parts.step, rng: getRngState(), optimizer, scheduler: parts.scheduler?.stateDict(), extra: parts.extra };
  try {
    writeFileAtomic(path, encodeSafetensors(tensors, { lrface: JSON.stringify(meta) }));
  } finally {
    temporaries.forEach((t) => t.dispose());
  }
}

/** Restores what saveCheckpoint wrote into the given parts; returns the step and extras. */
export function loadCheckpoint(path: string, parts: Omit<CheckpointParts, 'step' | 'extra'>): { step: number; extra?: Record<string, unknown> } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`loadCheckpoint: cannot read '${path}': ${(err as Error).message}`);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  try {
    let meta: CheckpointMeta;
    try {
      meta = JSON.parse(metadata.lrface ?? '');
    } catch {
      throw new RangeError(`${path}: not an lrface checkpoint (no 'lrface' metadata)`);
    }
    if (meta.format !== 'lrface-checkpoint-1') throw new RangeError(`${path}: unknown checkpoint format '${String(meta.format)}'`);
    const model = new Map<string, Tensor>();
    for (const [k, v] of tensors) if (k.startsWith('model.')) model.set(k.slice(6), v);
    parts.model.loadStateDict(model);
    if (parts.optimizer) {
      if (!meta.optimizer) throw new RangeError(`${path}: the checkpoint holds no optimiser state`);
      const buffers: OptimizerState['buffers'] = {};
      for (const [name, lengths] of Object.entries(meta.optimizer.buffers))
        buffers[name] = lengths.map((len, i) => (len === 0 ? new Float32Array(0) : (tensors.get(`optimizer.${name}.${i}`)?.data() as Float32Array)));
      parts.optimizer.loadStateDict({ step: meta.optimizer.step, lrs: meta.optimizer.lrs, paramSteps: meta.optimizer.paramSteps, buffers });
    }
    if (parts.scheduler && meta.scheduler) parts.scheduler.loadStateDict(meta.scheduler);
    setRngState(meta.rng);
    return { step: meta.step, extra: meta.extra };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
