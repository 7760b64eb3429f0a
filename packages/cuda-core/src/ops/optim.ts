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
  const lists = { params, grads, expAvgs, expAvgSqs };
  for (const [name, list] of Object.entries(lists)) if (!Array.isArray(list)) throw typeError(op, name, 'an array of tensors', list);
  const count = params.length;
  for (const [name, list] of Object.entries(lists))
    if (list.length !== count) throw rangeError(op, name, `${count} tensors (one per parameter)`, `${list.length}`, true);
  const steps = typeof a.step === 'number' ? new Array<unknown>(count).fill(a.step) : a.step;
  if (!Array.isArray(steps)) throw typeError(op, 'step', 'an integer >= 1 or an array of them', a.step);
  if (steps.length !== count) throw rangeError(op, 'step', `${count} step counts (one per parameter)`, `${steps.length}`, true);
  steps.forEach((t, i) => {
    if (!Number.isInteger(t) || (t as number) < 1) throw rangeError(op, `step[${i}]`, 'an integer >= 1', t);
  });
  const others = [['grads', grads], ['expAvgs', expAvgs], ['expAvgSqs', expAvgSqs]] as const;
  const device = count > 0 ? checkTensor(op, 'params[0]', params[0], F32)!._deviceIndex : 0;
  for (let i = 0; i < count; i++) {
    const p = checkTensor(op, `params[${i}]`, params[i], F32)!;
    checkOnDevice(op, `params[${i}]`, p, device, params[0]);
    for (const [name, list] of others) {
      const t = checkTensor(op, `${name}[${i}]`, list[i], F32)!;
      if (!sameShape(t.shape, p.shape))
        throw rangeError(op, `${name}[${i}]`, `shape ${formatShape(p.shape)} (as params[${i}])`, formatShape(t.shape), true);
      checkOnDevice(op, `${name}[${i}]`, t, device, params[0]);
    }
  }
  if (count === 0) return;
  checkDisjoint(op, { params, expAvgs, expAvgSqs });
  const { lr, beta1, beta2, eps, weightDecay, decoupled } = a;
  const hyper = [beta1, 1 - beta1, beta2, 1 - beta2, eps, decoupled ? 0 : weightDecay, decoupled ? 1 - lr * weightDecay : 1];
  const stepSizes = (steps as number[]).map((t) => lr / (1 - beta1 ** t));
  const denomScales = (steps as number[]).map((t) => 1 / Math.sqrt(1 - beta2 ** t));
  const tensors = params.flatMap((p, i) => [...ref(p), ...ref(grads[i]), ...ref(expAvgs[i]), ...ref(expAvgSqs[i])]);
  kernels.adam_update(hyper, params.map((p) => p.size), stepSizes, denomScales, ...tensors);
}
