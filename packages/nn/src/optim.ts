// Optimisers with PyTorch's update rules, gradient clipping.
import * as ops from '@lrface/cuda-core';
import { checkKeys, noGrad, zeros, type DeviceSpec, type Tensor } from '@lrface/cuda-core';

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  [option: string]: unknown;
}

/** What an optimiser saves in a checkpoint: step counts, hyper-parameters and per-parameter buffers. */
export interface OptimizerState {
  step: number;
  lrs: number[];
  /** Updates applied to each parameter (Adam's bias correction needs it). */
  paramSteps: number[];
  buffers: Record<string, Float32Array[]>;
}

/** The tensors grouped by device, in order of first appearance. */
function byDevice(tensors: readonly Tensor[]): Tensor[][] {
  const groups = new Map<string, Tensor[]>();
  for (const t of tensors) {
    const list = groups.get(t.deviceId);
    if (list) list.push(t);
    else groups.set(t.deviceId, [t]);
  }
  return [...groups.values()];
}

export abstract class Optimizer {
  readonly paramGroups: ParamGroup[];
  /** Updates taken so far. */
  stepCount = 0;
  protected readonly state = new Map<Tensor, Record<string, Tensor>>();
  /** Updates applied to each parameter. */
  protected readonly paramSteps = new Map<Tensor, number>();

  constructor(params: Tensor[] | ParamGroup[], defaults: Record<string, unknown> & { lr: number }) {
    if (!Array.isArray(params) || params.length === 0) throw new RangeError(`${this.constructor.name}: 'params' must be a non-empty array`);
    if (!(typeof defaults.lr === 'number' && defaults.lr >= 0)) throw new RangeError(`${this.constructor.name}: 'lr' must be a number >= 0, got ${defaults.lr}`);
    const name = this.constructor.name;
    const groups: Partial<ParamGroup>[] = 'params' in (params[0] as object) ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
    // A group may override any of the optimiser's hyper-parameters; a misspelt one would be ignored.
    const known = ['params', ...Object.keys(defaults)];
    groups.forEach((g, i) => {
      checkKeys(name, g, known, `params[${i}]`);
      if (!Array.isArray(g.params) || g.params.length === 0) throw new RangeError(`${name}: 'params[${i}].params' must be a non-empty array of tensors`);
      if (g.lr !== undefined && !(typeof g.lr === 'number' && g.lr >= 0)) throw new RangeError(`${name}: 'params[${i}].lr' must be a number >= 0, got ${g.lr}`);
    });
    this.paramGroups = groups.map((g) => ({ ...defaults, ...g }) as ParamGroup);
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.zeroGrad();
  }

  /** Applies one update from the accumulated gradients. */
  step(): void {
    this.stepCount++;
    noGrad(() => {
      for (const group of this.paramGroups) {
        const withGrad = group.params.filter((p) => p.grad);
        for (const p of withGrad) this.paramSteps.set(p, (this.paramSteps.get(p) ?? 0) + 1);
        if (withGrad.length > 0) this.updateGroup(group, withGrad);
      }
    });
  }

  /** Updates a group's parameters that have gradients: by default one {@link update} each. */
  protected updateGroup(group: ParamGroup, params: Tensor[]): void {
    for (const p of params) ops.scope(() => this.update(p, p.grad!, group, this.buffersOf(p)));
  }

  /**
   * One parameter's update. Scalars go in as ops.affine's attributes rather than number
   * operands of mul/add, which would each become a one-element tensor: on a device, a copy
   * from the host per operation.
   */
  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup, buffers: Record<string, Tensor>): void;

  protected buffersOf(p: Tensor): Record<string, Tensor> {
    let s = this.state.get(p);
    if (!s) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * A zero buffer on `like`'s device, kept across steps (outlives the step's scope). A buffer
   * made before its parameter's module was moved follows it there.
   */
  protected buffer(buffers: Record<string, Tensor>, name: string, like: Tensor): Tensor {
    if (!buffers[name]) buffers[name] = ops.keep(zeros(like.shape, 'float32', like.deviceId as DeviceSpec));
    else if (buffers[name].deviceId !== like.deviceId) buffers[name]._moveTo_(like.deviceId as DeviceSpec);
    return buffers[name];
  }

  stateDict(): OptimizerState {
    const names = new Set<string>();
    for (const s of this.state.values()) Object.keys(s).forEach((n) => names.add(n));
    const params = this.paramGroups.flatMap((g) => g.params);
    const buffers: Record<string, Float32Array[]> = {};
    for (const name of names) buffers[name] = params.map((p) => (this.state.get(p)?.[name]?.data() as Float32Array) ?? new Float32Array(0));
    return { step: this.stepCount, lrs: this.paramGroups.map((g) => g.lr), paramSteps: params.map((p) => this.paramSteps.get(p) ?? 0), buffers };
  }

  loadStateDict(state: OptimizerState): void {
    const params = this.paramGroups.flatMap((g) => g.params);
    if (!state || state.lrs?.length !== this.paramGroups.length)
      throw new RangeError(`${this.constructor.name}.loadStateDict: 'state' has ${state?.lrs?.length} parameter groups, expected ${this.paramGroups.length}`);
    this.stepCount = state.step;
    state.lrs.forEach((lr, i) => (this.paramGroups[i].lr = lr));
    if (state.paramSteps?.length !== params.length) throw new RangeError(`${this.constructor.name}.loadStateDict: 'paramSteps' must have ${params.length} entries`);
    params.forEach((p, i) => this.paramSteps.set(p, state.paramSteps[i]));
    for (const [name, arrays] of Object.entries(state.buffers)) {
      if (arrays.length !== params.length) throw new RangeError(`${this.constructor.name}.loadStateDict: buffer '${name}' has ${arrays.length} entries, expected ${params.length}`);
      params.forEach((p, i) => {
        if (arrays[i].length === 0) return;
        if (arrays[i].length !== p.size) throw new RangeError(`${this.constructor.name}.loadStateDict: buffer '${name}' of parameter ${i} has ${arrays[i].length} values, expected ${p.size}`);
        this.buffer(this.buffersOf(p), name, p).assign(arrays[i]);
      });
    }
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

const SGD_OPTION_KEYS: Record<keyof SGDOptions, true> = { lr: true, momentum: true, dampening: true, weightDecay: true, nesterov: true };

/** SGD with momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD). */
export class SGD extends Optimizer {
  constructor(params: Tensor[] | ParamGroup[], options: SGDOptions) {
    checkKeys('SGD', options, SGD_OPTION_KEYS);
    const { momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = options;
    if (nesterov && (momentum <= 0 || dampening !== 0)) throw new RangeError("SGD: 'nesterov' needs momentum > 0 and dampening 0");
    super(params, { lr: options.lr, momentum, dampening, weightDecay, nesterov });
  }
  protected update(p: Tensor, _grad: Tensor, g: ParamGroup): void {
    this.updateGroup(g, [p]);
  }

  /** Every parameter of the group in one fused update per device (cuda-core's sgdUpdate). */
  protected override updateGroup(g: ParamGroup, params: Tensor[]): void {
    const momentum = g.momentum as number;
    for (const list of byDevice(params)) {
      const buffers = momentum !== 0 ? list.map((p) => this.buffersOf(p)) : null;
      // A parameter without a buffer yet starts it from this step's gradient (torch's first step).
      const first = buffers ? buffers.map((b) => !b.momentum) : false;
      ops.sgdUpdate(
        list,
        list.map((p) => p.grad!),
        buffers ? list.map((p, i) => this.buffer(buffers[i], 'momentum', p)) : null,
        {
          lr: g.lr,
          momentum,
          dampening: g.dampening as number,
          weightDecay: g.weightDecay as number,
          nesterov: g.nesterov as boolean,
          first,
        },
      );
    }
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

const ADAM_OPTION_KEYS: Record<keyof AdamOptions, true> = { lr: true, betas: true, eps: true, weightDecay: true };

/** Adam (Kingma & Ba) with L2 weight decay added to the gradient (torch.optim.Adam). */
export class Adam extends Optimizer {
  protected readonly decoupled: boolean = false;
  constructor(params: Tensor[] | ParamGroup[], options: AdamOptions = {}) {
    checkKeys('Adam', options, ADAM_OPTION_KEYS);
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0 } = options;
    if (!(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1)) throw new RangeError(`Adam: 'betas' must be in [0, 1), got [${betas.join(',')}]`);
    super(params, { lr, beta1: betas[0], beta2: betas[1], eps, weightDecay });
  }
  protected update(p: Tensor, _grad: Tensor, g: ParamGroup): void {
    this.updateGroup(g, [p]);
  }

  /** Every parameter of the group in one fused update per device (cuda-core's adamUpdate). */
  protected override updateGroup(g: ParamGroup, params: Tensor[]): void {
    for (const list of byDevice(params)) {
      const buffers = list.map((p) => this.buffersOf(p));
      ops.adamUpdate(
        list,
        list.map((p) => p.grad!),
        list.map((p, i) => this.buffer(buffers[i], 'exp_avg', p)),
        list.map((p, i) => this.buffer(buffers[i], 'exp_avg_sq', p)),
        {
          lr: g.lr,
          beta1: g.beta1 as number,
          beta2: g.beta2 as number,
          eps: g.eps as number,
          weightDecay: g.weightDecay as number,
          decoupled: this.decoupled,
          step: list.map((p) => this.paramSteps.get(p)!),
        },
      );
    }
  }
}

/** AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), default decay 0.01. */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;
  constructor(params: Tensor[] | ParamGroup[], options: AdamOptions = {}) {
    checkKeys('AdamW', options, ADAM_OPTION_KEYS);
    super(params, { weightDecay: 0.01, ...options });
  }
}

/**
 * Scales gradients so their global norm (L2 by default, any p >= 1, or Infinity for the
 * largest magnitude) is at most maxNorm, as torch.nn.utils.clip_grad_norm_: the coefficient
 * maxNorm / (norm + 1e-6) is applied only when below 1. Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: 'maxNorm' must be > 0, got ${maxNorm}`);
  if (!(normType >= 1)) throw new RangeError(`clipGradNorm: 'normType' must be >= 1 or Infinity, got ${normType}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => !!g);
  // Reduced where the gradients are, one value read per device: no gradient is copied to the
  // host (on a GPU, a synchronisation and a copy per parameter).
  let total = 0;
  noGrad(() =>
    ops.scope(() => {
      // Empty gradients add nothing (and max has nothing to reduce).
      for (const list of byDevice(grads.filter((g) => g.size > 0))) {
        const parts = ops.stack(list.map((g) => (normType === Infinity ? ops.max(ops.abs(g)) : ops.sum(normType === 2 ? ops.square(g) : ops.pow(ops.abs(g), normType)))));
        const value = (normType === Infinity ? ops.max(parts) : ops.sum(parts)).item();
        total = normType === Infinity ? Math.max(total, value) : total + value;
      }
    }),
  );
  const norm = normType === Infinity ? total : total ** (1 / normType);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) noGrad(() => grads.forEach((g) => ops.scope(() => g.assign(ops.affine(g, coef)))));
  return norm;
}

/** Clamps every gradient element to [-clipValue, clipValue]. */
export function clipGradValue(params: Tensor[], clipValue: number): void {
  if (!(clipValue > 0)) throw new RangeError(`clipGradValue: 'clipValue' must be > 0, got ${clipValue}`);
  noGrad(() => params.forEach((p) => p.grad && ops.scope(() => p.grad!.assign(ops.clamp(p.grad!, -clipValue, clipValue)))));
}
