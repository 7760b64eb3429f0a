// Learning-rate schedules, stepped once per epoch (or per iteration, as the caller decides).
import type { Optimizer } from './optim.js';

export interface SchedulerState {
  lastEpoch: number;
  baseLrs: number[];
}

export abstract class LRScheduler {
  /** Schedule steps taken. */
  lastEpoch = 0;
  baseLrs: number[];
  constructor(readonly optimizer: Optimizer) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
  }
  /** The learning rate of each group at `epoch`. */
  abstract lrAt(epoch: number, base: number): number;
  step(): void {
    this.lastEpoch++;
    this.apply();
  }
  currentLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }
  /** Sets each group's lr for the current epoch; subclasses call it once their fields are set. */
  protected apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = this.lrAt(this.lastEpoch, this.baseLrs[i])));
  }
  stateDict(): SchedulerState {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs] };
  }
  loadStateDict(state: SchedulerState): void {
    if (!Number.isInteger(state?.lastEpoch) || state.lastEpoch < 0) throw new RangeError(`${this.constructor.name}.loadStateDict: 'lastEpoch' must be a non-negative integer`);
    if (!Array.isArray(state.baseLrs) || state.baseLrs.length !== this.baseLrs.length)
      throw new RangeError(`${this.constructor.name}.loadStateDict: 'baseLrs' must have ${this.baseLrs.length} entries`);
    this.lastEpoch = state.lastEpoch;
    this.baseLrs = [...state.baseLrs];
    this.apply();
  }
}

/** lr = base * gamma^floor(epoch / stepSize). */
export class StepLR extends LRScheduler {
  constructor(optimizer: Optimizer, readonly stepSize: number, readonly gamma = 0.1) {
    if (!Number.isInteger(stepSize) || stepSize < 1) throw new RangeError(`StepLR: 'stepSize' must be an integer >= 1, got ${stepSize}`);
    super(optimizer);
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    return base * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

/** lr = base * gamma^(milestones passed), e.g. x0.5 at epochs 80 and 160. */
export class MultiStepLR extends LRScheduler {
  readonly milestones: number[];
  constructor(optimizer: Optimizer, milestones: number[], readonly gamma = 0.1) {
    if (!Array.isArray(milestones) || !milestones.every((m) => Number.isInteger(m) && m > 0)) throw new RangeError("MultiStepLR: 'milestones' must be positive integers");
    super(optimizer);
    this.milestones = [...milestones].sort((a, b) => a - b);
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    const passed = this.milestones.filter((m) => m <= epoch).length;
    return base * this.gamma ** passed;
  }
}

/** Cosine annealing from base to etaMin over tMax steps (SGDR without restarts). */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: Optimizer, readonly tMax: number, readonly etaMin = 0) {
    if (!(tMax > 0)) throw new RangeError(`CosineAnnealingLR: 'tMax' must be > 0, got ${tMax}`);
    super(optimizer);
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    const t = Math.min(epoch, this.tMax);
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }
}

/** Linear warm-up from startFactor * base to base over warmupSteps, then `after` (if given) takes over. */
export class WarmupLR extends LRScheduler {
  constructor(optimizer: Optimizer, readonly warmupSteps: number, readonly startFactor = 0.1, readonly after?: (epoch: number, base: number) => number) {
    if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new RangeError(`WarmupLR: 'warmupSteps' must be an integer >= 0, got ${warmupSteps}`);
    super(optimizer);
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    if (epoch < this.warmupSteps) return base * (this.startFactor + ((1 - this.startFactor) * epoch) / this.warmupSteps);
    return this.after ? this.after(epoch - this.warmupSteps, base) : base;
  }
}
