// A training loop: steps over a data source, optimiser and schedule, periodic validation
// and checkpoints, a progress bar on a TTY (plain log lines otherwise), JSONL metrics, a
// stop on NaN/Inf naming the step, a checkpoint on Ctrl-C, and exact resumption.
import { appendFileSync, existsSync } from 'node:fs';
import { checkKeys, getRngState, scope, setRngState } from '@lrface/cuda-core';
import type { Tensor } from '@lrface/cuda-core';
import type { Module } from './module.js';
import type { Optimizer } from './optim.js';
import type { LRScheduler } from './schedulers.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';

export interface TrainStepResult {
  loss: number;
  /** Samples in the batch (for samples/s). */
  samples?: number;
  [metric: string]: number | undefined;
}

export interface TrainerOptions<B> {
  model: Module;
  /** The optimiser `loss` mode steps; its learning rate is logged. */
  optimizer: Optimizer;
  scheduler?: LRScheduler;
  /** Computes the loss of one batch; the trainer runs backward and the update. Give this or `trainStep`. */
  loss?: (batch: B, step: number) => Tensor;
  /**
   * Runs one whole training step itself (zeroGrad, backward, updates: a GAN's alternating
   * discriminator and generator updates, a centre update) and reports its loss and metrics.
   */
  trainStep?: (batch: B, step: number) => TrainStepResult | Promise<TrainStepResult>;
  /** Further parts saved in and restored from checkpoints (a GAN's discriminators and their optimisers). */
  models?: Record<string, Module>;
  optimizers?: Record<string, Optimizer>;
  /** Further schedules, stepped with `scheduler`. */
  schedulers?: Record<string, LRScheduler>;
  /** JSON state outside any module kept in checkpoints (BEGAN's k_t, a best metric). */
  extraState?: { save: () => Record<string, unknown>; load: (state: Record<string, unknown>) => void };
  /**
   * Batches, as a re-iterable array, iterable or async iterable; one pass is an epoch. For an
   * exact resume, iterating it must give the same batches again (seed any shuffling from the
   * engine's generator, whose state the checkpoint restores).
   */
  data: Iterable<B> | AsyncIterable<B>;
  epochs?: number;
  /** Stop after this many steps (overrides epochs when reached first). */
  maxSteps?: number;
  /** Called every validateEvery steps (and at the end) with the model in eval mode; returns metrics. */
  validate?: (step: number) => Promise<Record<string, number>> | Record<string, number>;
  validateEvery?: number;
  checkpointPath?: string;
  checkpointEvery?: number;
  /**
   * Continue from checkpointPath when that file exists: restores model, optimiser, schedule,
   * step, epoch and the random generator, and skips the batches of the epoch already done.
   */
  resume?: boolean;
  /** Append one JSON line of metrics per logged step. */
  metricsPath?: string;
  logEvery?: number;
  /** Step the scheduler per 'epoch' (default) or per 'step'. */
  scheduleEvery?: 'epoch' | 'step';
  /** Where progress goes (default process.stderr). */
  output?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Batch size, for samples/s. */
  batchSize?: number;
}

const TRAINER_OPTION_KEYS: Record<keyof TrainerOptions<unknown>, true> = {
  model: true, optimizer: true, scheduler: true, loss: true, trainStep: true, models: true, optimizers: true, schedulers: true, extraState: true, data: true,
  epochs: true, maxSteps: true, validate: true, validateEvery: true, checkpointPath: true, checkpointEvery: true, resume: true, metricsPath: true, logEvery: true,
  scheduleEvery: true, output: true, batchSize: true,
};

interface TrainerExtra {
  epoch: number;
  /** Batches of `epoch` already trained on. */
  epochStep: number;
  user?: Record<string, unknown>;
}

export class Trainer<B> {
  step = 0;
  epoch = 0;
  /** Batches of the current epoch already trained on. */
  epochStep = 0;
  private interrupted = false;
  constructor(readonly options: TrainerOptions<B>) {
    checkKeys('Trainer', options, TRAINER_OPTION_KEYS);
    const { epochs, maxSteps, logEvery, validateEvery, checkpointEvery } = options;
    const positive = (name: string, v: number | undefined, min: number) => {
      if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new RangeError(`Trainer: '${name}' must be an integer >= ${min}, got ${v}`);
    };
    positive('epochs', epochs, 0);
    positive('maxSteps', maxSteps, 0);
    positive('logEvery', logEvery, 1);
    positive('validateEvery', validateEvery, 1);
    positive('checkpointEvery', checkpointEvery, 1);
    if (options.resume && !options.checkpointPath) throw new RangeError("Trainer: 'resume' needs 'checkpointPath'");
    if (!options.loss === !options.trainStep) throw new RangeError("Trainer: give exactly one of 'loss' and 'trainStep'");
  }

  /** Asks the run to stop after the current step, saving a checkpoint as Ctrl-C does. */
  requestStop(): void {
    this.interrupted = true;
  }

  private get out(): NodeJS.WritableStream & { isTTY?: boolean; columns?: number } {
    return this.options.output ?? process.stderr;
  }

  /** A permanent line (clears a progress bar first on a TTY). */
  private log(line: string): void {
    this.out.write(this.out.isTTY ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  private metrics(record: Record<string, unknown>): void {
    if (this.options.metricsPath) appendFileSync(this.options.metricsPath, `${JSON.stringify(record)}\n`);
  }

  private checkpoint(): void {
    const { checkpointPath, model, optimizer, scheduler, models, optimizers, schedulers, extraState } = this.options;
    if (!checkpointPath) return;
    const extra: TrainerExtra = { epoch: this.epoch, epochStep: this.epochStep, ...(extraState ? { user: extraState.save() } : {}) };
    saveCheckpoint(checkpointPath, { model, optimizer, scheduler, models, optimizers, schedulers, step: this.step, extra: { ...extra } });
  }

  private stepSchedules(): void {
    this.options.scheduler?.step();
    for (const s of Object.values(this.options.schedulers ?? {})) s.step();
  }

  /** Steps in the whole run when the data has a known length. */
  private totalSteps(): number | undefined {
    const o = this.options;
    const perEpoch = Array.isArray(o.data) ? o.data.length : undefined;
    const byEpochs = perEpoch === undefined ? undefined : perEpoch * (o.epochs ?? 1);
    if (o.maxSteps !== undefined) return byEpochs === undefined ? o.maxSteps : Math.min(o.maxSteps, byEpochs);
    return byEpochs;
  }

  private progress(loss: number, rate: number): void {
    const o = this.options;
    const epochs = o.epochs ?? 1;
    const text = `epoch ${this.epoch + 1}/${epochs} step ${this.step} loss ${loss.toExponential(4)} ${rate.toFixed(1)} samples/s`;
    if (!this.out.isTTY) {
      this.out.write(`${text}\n`);
      return;
    }
    const total = this.totalSteps();
    let bar = '';
    if (total) {
      // Sized from the terminal only, so the bar does not jitter as the text changes length.
      const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - 70));
      const done = Math.min(width, Math.round((width * this.step) / total));
      bar = `[${'#'.repeat(done)}${'-'.repeat(width - done)}] ${Math.floor((100 * this.step) / total)}% `;
    }
    this.out.write(`\r\x1b[K${bar}${text}`);
  }

  /** Restores the run from the checkpoint; returns the generator state to apply once the done batches are skipped. */
  private restore(): ReturnType<typeof getRngState> | undefined {
    const o = this.options;
    if (!o.resume || !o.checkpointPath || !existsSync(o.checkpointPath)) return undefined;
    const { step, extra } = loadCheckpoint(o.checkpointPath, { model: o.model, optimizer: o.optimizer, scheduler: o.scheduler, models: o.models, optimizers: o.optimizers, schedulers: o.schedulers });
    const e = (extra ?? {}) as Partial<TrainerExtra>;
    if (o.extraState && e.user) o.extraState.load(e.user);
    this.step = step;
    this.epoch = Number.isInteger(e.epoch) ? e.epoch! : 0;
    this.epochStep = Number.isInteger(e.epochStep) ? e.epochStep! : 0;
    this.log(`resumed from ${o.checkpointPath} at step ${step} (epoch ${this.epoch + 1}, batch ${this.epochStep})`);
    return getRngState();
  }

  /** Runs training; resolves with the steps done and the last loss. */
  async fit(): Promise<{ steps: number; lastLoss: number }> {
    const o = this.options;
    const epochs = o.epochs ?? 1;
    const logEvery = o.logEvery ?? 10;
    this.interrupted = false;
    const onSigint = () => {
      this.interrupted = true;
    };
    process.on('SIGINT', onSigint);
    let lastLoss = NaN;
    try {
      // Skipping the done batches may draw from the generator (a shuffling or augmenting data
      // source); the checkpoint's state is applied after them, before the first new batch is drawn.
      let pendingRng = this.restore();
      let skip = this.epochStep;
      if (skip === 0 && pendingRng) {
        setRngState(pendingRng);
        pendingRng = undefined;
      }
      let reachedMax = false;
      epochs: for (; this.epoch < epochs; this.epoch++) {
        let windowStart = performance.now();
        let windowSamples = 0;
        for await (const batch of o.data as AsyncIterable<B>) {
          if (skip > 0) {
            if (--skip === 0 && pendingRng) {
              setRngState(pendingRng);
              pendingRng = undefined;
            }
            continue;
          }
          if (o.maxSteps !== undefined && this.step >= o.maxSteps) {
            reachedMax = true;
            break epochs;
          }
          o.model.train();
          for (const m of Object.values(o.models ?? {})) m.train();
          let loss: number;
          let reported: TrainStepResult | undefined;
          if (o.loss) {
            o.optimizer.zeroGrad();
            loss = scope(() => {
              const l = o.loss!(batch, this.step);
              l.backward();
              return l.item();
            });
          } else {
            reported = await o.trainStep!(batch, this.step);
            loss = reported.loss;
          }
          if (!Number.isFinite(loss)) {
            this.log(`stopped at step ${this.step + 1}: the loss is ${loss}`);
            this.metrics({ step: this.step + 1, epoch: this.epoch, loss: String(loss), stopped: 'non-finite loss' });
            const when = o.loss ? 'training stopped before the update' : 'training stopped';
            throw new RangeError(`Trainer: the loss became ${loss} at step ${this.step + 1} (epoch ${this.epoch + 1}); ${when}`);
          }
          if (o.loss) o.optimizer.step();
          this.step++;
          this.epochStep++;
          if (o.scheduleEvery === 'step') this.stepSchedules();
          lastLoss = loss;
          windowSamples += reported?.samples ?? o.batchSize ?? 1;
          if (this.step % logEvery === 0) {
            const seconds = (performance.now() - windowStart) / 1000;
            const rate = windowSamples / Math.max(seconds, 1e-9);
            this.progress(loss, rate);
            const { loss: _l, samples: _s, ...others } = reported ?? { loss };
            this.metrics({ step: this.step, epoch: this.epoch, loss, ...others, samplesPerSecond: rate, lr: o.optimizer.paramGroups[0].lr });
            windowStart = performance.now();
            windowSamples = 0;
          }
          if (o.validate && o.validateEvery && this.step % o.validateEvery === 0) await this.runValidation();
          if (o.checkpointEvery && this.step % o.checkpointEvery === 0) this.checkpoint();
          // Let the event loop run between steps: timers, I/O and a pending Ctrl-C get their turn.
          await new Promise((resolve) => setImmediate(resolve));
          if (this.interrupted) {
            this.checkpoint();
            this.log(`interrupted at step ${this.step}${o.checkpointPath ? `; checkpoint saved to ${o.checkpointPath}` : ''}`);
            return { steps: this.step, lastLoss };
          }
        }
        if (o.scheduleEvery !== 'step') this.stepSchedules();
        this.epochStep = 0;
      }
      if (reachedMax) this.log(`reached maxSteps (${o.maxSteps})`);
      if (o.validate) await this.runValidation();
      this.checkpoint();
      if (this.out.isTTY) this.out.write('\n');
      return { steps: this.step, lastLoss };
    } finally {
      process.off('SIGINT', onSigint);
    }
  }

  private async runValidation(): Promise<void> {
    const o = this.options;
    o.model.eval();
    for (const m of Object.values(o.models ?? {})) m.eval();
    try {
      const result = await o.validate!(this.step);
      this.log(`validation at step ${this.step}: ${Object.entries(result).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
      this.metrics({ step: this.step, epoch: this.epoch, validation: result });
    } finally {
      o.model.train();
      for (const m of Object.values(o.models ?? {})) m.train();
    }
  }
}
