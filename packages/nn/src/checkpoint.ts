// Training checkpoints: models, optimisers, schedules, RNG state and step in one safetensors
// file, written atomically so an interrupted save never destroys the previous checkpoint.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { checkKeys, getRngState, setRngState, tensor, writeFileAtomic, type RngState, type Tensor } from '@lrface/cuda-core';
import type { Module } from './module.js';
import type { Optimizer, OptimizerState } from './optim.js';
import type { LRScheduler, SchedulerState } from './schedulers.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

export interface CheckpointParts {
  model: Module;
  optimizer?: Optimizer;
  scheduler?: LRScheduler;
  /** Further named models (a GAN's discriminators, a centre-loss module), saved beside `model`. */
  models?: Record<string, Module>;
  /** Further named optimisers (one per network of a GAN). */
  optimizers?: Record<string, Optimizer>;
  schedulers?: Record<string, LRScheduler>;
  /** Training steps done. */
  step: number;
  /** Any JSON-serialisable extras (epoch, best metric, ...). */
  extra?: Record<string, unknown>;
}

// A misspelt part (optimiser, schedulers for scheduler) would be left out of the file, or not restored, without a word.
const LOAD_PART_KEYS: Record<keyof Omit<CheckpointParts, 'step' | 'extra'>, true> = { model: true, optimizer: true, scheduler: true, models: true, optimizers: true, schedulers: true };
const SAVE_PART_KEYS: Record<keyof CheckpointParts, true> = { ...LOAD_PART_KEYS, step: true, extra: true };

type SavedOptimizer = { step: number; lrs: number[]; paramSteps: number[]; buffers: Record<string, number[]> };

interface CheckpointMeta {
  format: 'lrface-checkpoint-1';
  step: number;
  rng: RngState;
  optimizer?: SavedOptimizer;
  scheduler?: SchedulerState;
  optimizers?: Record<string, SavedOptimizer>;
  schedulers?: Record<string, SchedulerState>;
  models?: string[];
  extra?: Record<string, unknown>;
}

function checkNames(kind: string, names: string[]): void {
  for (const n of names) if (!/^[A-Za-z0-9_-]+$/.test(n)) throw new RangeError(`saveCheckpoint: '${kind}' names must be letters, digits, '_' or '-', got '${n}'`);
}

/** Writes the parts to `path` atomically (temp file, fsync, rename). */
export function saveCheckpoint(path: string, parts: CheckpointParts): void {
  checkKeys('saveCheckpoint', parts, SAVE_PART_KEYS, 'parts');
  const models = parts.models ?? {};
  const optimizers = parts.optimizers ?? {};
  checkNames('models', Object.keys(models));
  checkNames('optimizers', Object.keys(optimizers));
  checkNames('schedulers', Object.keys(parts.schedulers ?? {}));
  const tensors = new Map<string, Tensor>();
  for (const [k, v] of parts.model.stateDict()) tensors.set(`model.${k}`, v);
  for (const [name, m] of Object.entries(models)) for (const [k, v] of m.stateDict()) tensors.set(`models.${name}.${k}`, v);
  const temporaries: Tensor[] = [];
  const saveOptimizer = (opt: Optimizer, prefix: string): SavedOptimizer => {
    const s = opt.stateDict();
    const saved: SavedOptimizer = { step: s.step, lrs: s.lrs, paramSteps: s.paramSteps, buffers: {} };
    for (const [name, arrays] of Object.entries(s.buffers)) {
      saved.buffers[name] = arrays.map((a) => a.length);
      arrays.forEach((a, i) => {
        if (a.length === 0) return;
        const t = tensor(a);
        temporaries.push(t);
        tensors.set(`${prefix}.${name}.${i}`, t);
      });
    }
    return saved;
  };
  try {
    const meta: CheckpointMeta = {
      format: 'lrface-checkpoint-1',
      step: parts.step,
      rng: getRngState(),
      optimizer: parts.optimizer ? saveOptimizer(parts.optimizer, 'optimizer') : undefined,
      scheduler: parts.scheduler?.stateDict(),
      optimizers: Object.keys(optimizers).length ? Object.fromEntries(Object.entries(optimizers).map(([n, o]) => [n, saveOptimizer(o, `optimizers.${n}`)])) : undefined,
      schedulers: parts.schedulers ? Object.fromEntries(Object.entries(parts.schedulers).map(([n, s]) => [n, s.stateDict()])) : undefined,
      models: Object.keys(models).length ? Object.keys(models) : undefined,
      extra: parts.extra,
    };
    writeFileAtomic(path, encodeSafetensors(tensors, { lrface: JSON.stringify(meta) }), 'saveCheckpoint');
  } finally {
    temporaries.forEach((t) => t.dispose());
  }
}

/**
 * Restores what saveCheckpoint wrote into the given parts (each one asked for must be in the
 * file); returns the step and extras. The random generator is restored too.
 */
export function loadCheckpoint(path: string, parts: Omit<CheckpointParts, 'step' | 'extra'>): { step: number; extra?: Record<string, unknown> } {
  checkKeys('loadCheckpoint', parts, LOAD_PART_KEYS, 'parts');
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
    const stateWithPrefix = (prefix: string) => {
      const out = new Map<string, Tensor>();
      for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
      return out;
    };
    const loadOptimizer = (opt: Optimizer, saved: SavedOptimizer | undefined, prefix: string, what: string) => {
      if (!saved) throw new RangeError(`${path}: the checkpoint holds no state for ${what}`);
      const buffers: OptimizerState['buffers'] = {};
      for (const [name, lengths] of Object.entries(saved.buffers))
        buffers[name] = lengths.map((len, i) => {
          if (len === 0) return new Float32Array(0);
          const t = tensors.get(`${prefix}.${name}.${i}`);
          if (!t) throw new RangeError(`${path}: ${what} buffer '${name}' of parameter ${i} is missing`);
          return t.data() as Float32Array;
        });
      opt.loadStateDict({ step: saved.step, lrs: saved.lrs, paramSteps: saved.paramSteps, buffers });
    };
    // Check that everything asked for is present before changing anything.
    for (const name of Object.keys(parts.models ?? {}))
      if (!(meta.models ?? []).includes(name)) throw new RangeError(`${path}: the checkpoint holds no model '${name}' (it has: ${(meta.models ?? []).join(', ') || 'none'})`);
    for (const name of Object.keys(parts.optimizers ?? {})) if (!meta.optimizers?.[name]) throw new RangeError(`${path}: the checkpoint holds no optimiser '${name}'`);
    for (const name of Object.keys(parts.schedulers ?? {})) if (!meta.schedulers?.[name]) throw new RangeError(`${path}: the checkpoint holds no schedule '${name}'`);
    if (parts.optimizer && !meta.optimizer) throw new RangeError(`${path}: the checkpoint holds no optimiser state`);

    parts.model.loadStateDict(stateWithPrefix('model.'));
    for (const [name, m] of Object.entries(parts.models ?? {})) m.loadStateDict(stateWithPrefix(`models.${name}.`));
    if (parts.optimizer) loadOptimizer(parts.optimizer, meta.optimizer, 'optimizer', 'the optimiser');
    for (const [name, o] of Object.entries(parts.optimizers ?? {})) loadOptimizer(o, meta.optimizers?.[name], `optimizers.${name}`, `optimiser '${name}'`);
    if (parts.scheduler && meta.scheduler) parts.scheduler.loadStateDict(meta.scheduler);
    for (const [name, s] of Object.entries(parts.schedulers ?? {})) s.loadStateDict(meta.schedulers![name]);
    setRngState(meta.rng);
    return { step: meta.step, extra: meta.extra };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** What {@link readCheckpointInfo} reads from a checkpoint's header. */
export interface CheckpointInfo {
  step: number;
  extra?: Record<string, unknown>;
  /**
   * The names of the main optimiser's per-parameter buffers (Adam: exp_avg, exp_avg_sq; SGD with
   * momentum: momentum), which tell its kind; null when the checkpoint holds no optimiser.
   */
  optimizerBuffers: string[] | null;
  /** The learning rate the run was started with (its schedule's base rate, else the optimiser's first group's); null when not saved. */
  baseLr: number | null;
}

/**
 * The step and extras of a checkpoint, read from its safetensors header alone (no tensor is
 * decoded): what a trainer checks before resuming, e.g. that the checkpoint was written for the
 * same architecture and config. Null when `path` is not a readable lrface checkpoint.
 */
export function readCheckpointInfo(path: string): CheckpointInfo | null {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return null;
    const n = Number(head.readBigUInt64LE(0));
    // A header beyond 100 MB is no checkpoint's (they hold a few kB of JSON).
    if (!(n > 0 && n < 100_000_000)) return null;
    const json = Buffer.alloc(n);
    if (readSync(fd, json, 0, n, 8) !== n) return null;
    const text = JSON.parse(json.toString('utf8')).__metadata__?.lrface;
    if (typeof text !== 'string') return null;
    const meta = JSON.parse(text) as Partial<CheckpointMeta>;
    if (meta.format !== 'lrface-checkpoint-1' || typeof meta.step !== 'number') return null;
    return {
      step: meta.step,
      extra: meta.extra,
      optimizerBuffers: meta.optimizer ? Object.keys(meta.optimizer.buffers ?? {}) : null,
      baseLr: meta.scheduler?.baseLrs?.[0] ?? meta.optimizer?.lrs?.[0] ?? null,
    };
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
