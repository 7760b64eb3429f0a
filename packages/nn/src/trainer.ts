// A training loop: steps over a data source, optimiser and schedule, periodic validation
// and checkpoints, a progress line on a TTY (plain log lines otherwise), JSONL metrics,
// a stop on NaN/Inf naming the step, and a checkpoint on Ctrl-C.
import { appendFileSync } from 'node:fs';
import { scope } from '@lrface/cuda-core';
import type { Tensor } from '@lrface/cuda-core';
import type { Module } from './module.js';
import type { Optimizer } from './optim.js';
import type { LRScheduler } from './schedulers.js';
import { saveCheckpoint } from './checkpoint.js';

export interface TrainStepResult {
  loss: number;
  /** Samples in the batch (for samples/s). */
  samples?: number;
  [metric: string]: number | undefined;
}

export interface TrainerOptions<B> {
  model: Module;
  optimizer: Optimizer;
  scheduler?: LRScheduler;
  /** Computes the loss of one batch; the trainer runs backward and the update. */
  loss: (batch: B, step: number) => Tensor;
  /** Batches, as a (re-iterable) array, iterable or async iterable; one pass is an epoch. */
  data: Iterable<B> | AsyncIterable<B>;
  epochs?: number;
  /** Stop after this many steps (overrides epochs when reached first). */
  maxSteps?: number;
  /** Called every validateEvery steps with the model in eval mode; returns metrics. */
  validate?: (step: number) => Promise<Record<string, number>> | Record<string, number>;
  validateEvery?: number;
  checkpointPath?: string;
  checkpointEvery?: number;
  /** Append one JSON line of metrics per logged step. */
  metricsPath?: string;
  logEvery?: number;
  /** Step the scheduler per 'epoch' (default) or per 'step'. */
  scheduleEvery?: 'epoch' | 'step';
  /** Where progress goes (default process.stderr). */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Batch size, for samples/s when the loss function does not say. */
  batchSize?: number;
}

export class Trainer<B> {
  step = 0;
  epoch = 0;
  private interrupted = false;
  constructor(readonly options: TrainerOptions<B>) {}

  private log(line: string, transient = false): void {
    const out = this.options.output ?? process.stderr;
    if (out.isTTY) out.write(transient ? `\r\x1b[K${line}` : `\r\x1b[K${line}\n`);
    else out.write(`${line}\n`);
  }

  private metrics(record: Record<string, unknown>): void {
    if (this.options.metricsPath) appendFileSync(this.options.metricsPath, `${JSON.stringify(record)}\n`);
  }

  private checkpoint(): void {
    const { checkpointPath, model, optimizer, scheduler } = this.options;
    if (checkpointPath) saveCheckpoint(checkpointPath, { model, optimizer, scheduler, step: this.step, extra: { epoch: this.epoch } });
  }

  /** Runs training; resolves with the last loss. */
  async fit(): Promise<{ steps: number; lastLoss: number }> {
    const o = this.options;
    const epochs = o.epochs ?? 1;
    const logEvery = o.logEvery ?? 10;
    const onSigint = () => {
      this.interrupted = true;
    };
    process.on('SIGINT', onSigint);
    let lastLoss = NaN;
    try {
      for (; this.epoch < epochs; this.epoch++) {
        let windowStart = performance.now();
        let windowSamples = 0;
        for await (const batch of o.data as AsyncIterable<B>) {
          if (o.maxSteps !== undefined && this.step >= o.maxSteps) return { steps: this.step, lastLoss };
          o.model.train();
          o.optimizer.zeroGrad();
          const loss = scope(() => {
            const l = o.loss(batch, this.step);
            l.backward();
            return l.item();
          });
          this.step++;
          if (!Number.isFinite(loss)) {
            this.log(`stopped at step ${this.step}: the loss is ${loss}`);
            this.metrics({ step: this.step, epoch: this.epoch, loss: String(loss), stopped: 'non-finite loss' });
            throw new RangeError(`Trainer: the loss became ${loss} at step ${this.step} (epoch ${this.epoch}); training stopped before the update`);
          }
          o.optimizer.step();
          if (o.scheduleEvery === 'step') o.scheduler?.step();
          lastLoss = loss;
          windowSamples += o.batchSize ?? 1;
          if (this.step % logEvery === 0) {
            const seconds = (performance.now() - windowStart) / 1000;
            const rate = windowSamples / Math.max(seconds, 1e-9);
            this.log(`epoch ${this.epoch + 1}/${epochs} step ${this.step} loss ${loss.toExponential(4)} ${rate.toFixed(1)} samples/s`, true);
            this.metrics({ step: this.step, epoch: this.epoch, loss, samplesPerSecond: rate, lr: o.optimizer.paramGroups[0].lr });
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
        if (o.scheduleEvery !== 'step') o.scheduler?.step();
      }
      if (o.validate) await this.runValidation();
      this.checkpoint();
      return { steps: this.step, lastLoss };
    } finally {
      process.off('SIGINT', onSigint);
    }
  }

  private async runValidation(): Promise<void> {
    const o = this.options;
    o.model.eval();
    const result = await o.validate!(this.step);
    o.model.train();
    this.log(`validation at step ${this.step}: ${Object.entries(result).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
    this.metrics({ step: this.step, epoch: this.epoch, validation: result });
  }
}
