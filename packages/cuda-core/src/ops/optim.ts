// Optimiser updates in place: one kernel pass over each parameter and its state instead of a
// dozen elementwise ops (and their temporaries) per parameter. On a device the tensors of one
// call share a few launches, which matters for models of hundreds of small parameters.
import { attr, checkSameDevice, checkTensor, defineOp, ref } from './decl.js';
import { formatShape, kernels, rangeError, typeError, type Tensor } from './tensor-ref.js';

export interface AdamUpdateOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Added to the gradient as weightDecay * param (Adam), or with `decoupled` the parameter is scaled by 1 - lr * weightDecay first (AdamW). Default 0. */
  weightDecay?: number;
  decoupled?: boolean;
  /** t of the bias corrections, this update included (1 on the first): one for every tensor, or one per tensor. */
  step: number | readonly number[];
}

const F32 = { dtypes: ['float32'] } as const;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, k) => d === b[k]);
}

/** One device for the whole call: the first parameter's. */
function checkOnDevice(op: string, name: string, t: Tensor, device: number, first: Tensor): void {
  if (t._deviceIndex !== device) checkSameDevice(op, { 'params[0]': first, [name]: t });
}

/**
 * Checks lists of one float32 tensor per parameter (the first list's), each of its
 * parameter's shape, all on the first parameter's device; returns the parameter count.
 */
function checkPerParameter(op: string, lists: Record<string, readonly Tensor[]>): number {
  const entries = Object.entries(lists);
  for (const [name, list] of entries) if (!Array.isArray(list)) throw typeError(op, name, 'an array of tensors', list);
  const [[first, params], ...others] = entries;
  const count = params.length;
  for (const [name, list] of others)
    if (list.length !== count) throw rangeError(op, name, `${count} tensors (one per parameter)`, `${list.length}`, true);
  const device = count > 0 ? checkTensor(op, `${first}[0]`, params[0], F32)!._deviceIndex : 0;
  for (let i = 0; i < count; i++) {
    const p = checkTensor(op, `${first}[${i}]`, params[i], F32)!;
    checkOnDevice(op, `${first}[${i}]`, p, device, params[0]);
    for (const [name, list] of others) {
      const t = checkTensor(op, `${name}[${i}]`, list[i], F32)!;
      if (!sameShape(t.shape, p.shape))
        throw rangeError(op, `${name}[${i}]`, `shape ${formatShape(p.shape)} (as ${first}[${i}])`, formatShape(t.shape), true);
      checkOnDevice(op, `${name}[${i}]`, t, device, params[0]);
    }
  }
  return count;
}

/** A setting given once for every tensor or as one value per tensor, each checked by `valid`. */
function perTensor<T>(op: string, name: string, value: unknown, count: number, what: string, valid: (v: unknown, at: string) => v is T): T[] {
  const values = Array.isArray(value) ? value : new Array<unknown>(count).fill(value);
  if (!Array.isArray(value) && !valid(value, name)) throw typeError(op, name, `${what} or an array of them`, value);
  if (values.length !== count) throw rangeError(op, name, `one value per parameter (${count})`, `${values.length} values`, true);
  values.forEach((v, i) => {
    if (!valid(v, `${name}[${i}]`)) throw typeError(op, `${name}[${i}]`, what, v);
  });
  return values as T[];
}

/**
 * The tensors an update writes in place may not share elements: one element would be updated
 * twice, by threads racing each other (a parameter listed twice, say).
 */
function checkDisjoint(op: string, written: Record<string, readonly Tensor[]>): void {
  const byStorage = new Map<unknown, { start: number; end: number; name: string }[]>();
  for (const [list, tensors] of Object.entries(written))
    tensors.forEach((t, i) => {
      if (t.size === 0) return;
      const storage = t._storage(op);
      const spans = byStorage.get(storage) ?? [];
      spans.push({ start: t._offset, end: t._offset + t.size, name: `${list}[${i}]` });
      byStorage.set(storage, spans);
    });
  for (const spans of byStorage.values()) {
    spans.sort((a, b) => a.start - b.start);
    for (let k = 1; k < spans.length; k++)
      if (spans[k].start < spans[k - 1].end)
        throw rangeError(op, spans[k].name, 'memory of its own (it is updated in place)', `elements shared with ${spans[k - 1].name}`, true);
  }
}

const adamDecl = defineOp('adam_update', {}, {
  lr: attr.number({ min: 0 }),
  beta1: attr.number({ min: 0 }),
  beta2: attr.number({ min: 0 }),
  eps: attr.number({ min: 0 }),
  weightDecay: attr.number({ min: 0, default: 0 }),
  decoupled: attr.bool({ default: false }),
  step: { expected: 'an integer >= 1 or an array of them', parse: (_op: string, _name: string, v: unknown) => v },
});

/**
 * One step of Adam (torch.optim.Adam's rule; AdamW's with `decoupled`) applied in place to
 * every `params[i]` from `grads[i]`, updating the moment buffers `expAvgs[i]` and
 * `expAvgSqs[i]` too. All four lists have one float32 tensor per parameter, of its shape, on
 * its device (one device for the call). Not recorded by autograd.
 */
export function adamUpdate(params: Tensor[], grads: Tensor[], expAvgs: Tensor[], expAvgSqs: Tensor[], options: AdamUpdateOptions): void {
  const op = 'adam_update';
  const { a } = adamDecl.parse({}, options);
  for (const name of ['beta1', 'beta2'] as const) if (a[name] >= 1) throw rangeError(op, name, 'a finite number in [0, 1)', a[name]);
  const count = checkPerParameter(op, { params, grads, expAvgs, expAvgSqs });
  const steps = perTensor(op, 'step', a.step, count, 'an integer >= 1', (t, at): t is number => {
    if (typeof t !== 'number') return false;
    if (!Number.isInteger(t) || t < 1) throw rangeError(op, at, 'an integer >= 1', t);
    return true;
  });
  if (count === 0) return;
  checkDisjoint(op, { params, expAvgs, expAvgSqs });
  const { lr, beta1, beta2, eps, weightDecay, decoupled } = a;
  const hyper = [beta1, 1 - beta1, beta2, 1 - beta2, eps, decoupled ? 0 : weightDecay, decoupled ? 1 - lr * weightDecay : 1];
  const stepSizes = steps.map((t) => lr / (1 - beta1 ** t));
  const denomScales = steps.map((t) => 1 / Math.sqrt(1 - beta2 ** t));
  const tensors = params.flatMap((p, i) => [...ref(p), ...ref(grads[i]), ...ref(expAvgs[i]), ...ref(expAvgSqs[i])]);
  kernels.adam_update(hyper, params.map((p) => p.size), stepSizes, denomScales, ...tensors);
}

export interface SgdUpdateOptions {
  lr: number;
  /** Momentum factor; with momentum > 0 every parameter needs a momentum buffer. Default 0. */
  momentum?: number;
  /** Dampening of the gradient's share in the momentum buffer. Default 0. */
  dampening?: number;
  /** Added to the gradient as weightDecay * param. Default 0. */
  weightDecay?: number;
  /** Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** The buffer starts from this step's gradient (torch's first step): one flag for every tensor, or one per tensor. Default false. */
  first?: boolean | readonly boolean[];
}

const sgdDecl = defineOp('sgd_update', {}, {
  lr: attr.number({ min: 0 }),
  momentum: attr.number({ min: 0, default: 0 }),
  dampening: attr.number({ min: 0, default: 0 }),
  weightDecay: attr.number({ min: 0, default: 0 }),
  nesterov: attr.bool({ default: false }),
  first: { expected: 'a boolean or an array of them', parse: (_op: string, _name: string, v: unknown) => v ?? false },
});

/**
 * One step of SGD (torch.optim.SGD's rule: weight decay, momentum with dampening, Nesterov)
 * applied in place to every `params[i]` from `grads[i]`, updating `momentumBuffers[i]` too
 * when momentum > 0 (pass `null` without momentum). One float32 tensor per parameter in each
 * list, of its shape, on its device (one device for the call). Not recorded by autograd.
 */
export function sgdUpdate(params: Tensor[], grads: Tensor[], momentumBuffers: Tensor[] | null, options: SgdUpdateOptions): void {
  const op = 'sgd_update';
  const { a } = sgdDecl.parse({}, options);
  if (a.dampening > 1) throw rangeError(op, 'dampening', 'a finite number in [0, 1]', a.dampening);
  if (a.nesterov && (a.momentum === 0 || a.dampening !== 0)) throw rangeError(op, 'nesterov', 'false unless momentum > 0 and dampening is 0', `true with momentum ${a.momentum}, dampening ${a.dampening}`, true);
  const withBuffers = a.momentum !== 0;
  if (!withBuffers && momentumBuffers !== null && momentumBuffers !== undefined)
    throw typeError(op, 'momentumBuffers', 'null without momentum', momentumBuffers);
  const lists: Record<string, Tensor[]> = withBuffers ? { params, grads, momentumBuffers: momentumBuffers as Tensor[] } : { params, grads };
  const count = checkPerParameter(op, lists);
  const firsts = perTensor(op, 'first', a.first, count, 'a boolean', (v): v is boolean => typeof v === 'boolean');
  if (count === 0) return;
  checkDisjoint(op, withBuffers ? { params, momentumBuffers: momentumBuffers! } : { params });
  const hyper = [a.lr, a.momentum, 1 - a.dampening, a.weightDecay, a.nesterov ? 1 : 0];
  const tensors = params.flatMap((p, i) => [...ref(p), ...ref(grads[i]), ...(withBuffers ? ref(momentumBuffers![i]) : [])]);
  kernels.sgd_update(hyper, params.map((p) => p.size), firsts.map((f) => (f ? 1 : 0)), ...tensors);
}
