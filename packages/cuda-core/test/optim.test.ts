// adamUpdate and sgdUpdate against float64 implementations of torch.optim.Adam / AdamW / SGD,
// over several steps and many tensors at once, every instruction set; and its error paths.
import { afterEach, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { expectClose, expectError } from './helpers/check.js';
import { uniform } from './helpers/random.js';

interface Settings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

/** One parameter's values after steps first..first+grads.length-1 of Adam, in float64. */
function adamReference(s: Settings, init: Float32Array, grads: Float32Array[], first = 1): number[] {
  const p = Array.from(init);
  const m = new Array<number>(p.length).fill(0);
  const v = new Array<number>(p.length).fill(0);
  grads.forEach((g0, k) => {
    const t = first + k;
    for (let i = 0; i < p.length; i++) {
      let g = g0[i];
      if (s.decoupled) p[i] *= 1 - s.lr * s.weightDecay;
      else g += s.weightDecay * p[i];
      m[i] = s.beta1 * m[i] + (1 - s.beta1) * g;
      v[i] = s.beta2 * v[i] + (1 - s.beta2) * g * g;
      p[i] -= (s.lr * (m[i] / (1 - s.beta1 ** t))) / (Math.sqrt(v[i] / (1 - s.beta2 ** t)) + s.eps);
    }
  });
  return p;
}

// Sizes around the CPU kernel's split points (the thread pool's grain of 32768 elements, so a
// tensor is cut between threads) and an empty tensor among them.
const shapes = [[3, 2, 3, 3], [7], [0], [40000], [1], [33, 1000], [5, 5]];
const steps = 4;
const cases: Settings[] = [
  { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
  { lr: 0.05, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1, decoupled: false },
  { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.02, decoupled: true },
  { lr: 0.02, beta1: 0, beta2: 0, eps: 1e-3, weightDecay: 0, decoupled: false },
];

function runSteps(s: Settings, device: 'cpu' | 'cuda' = 'cpu'): { params: Float32Array[]; expAvgs: Float32Array[]; inits: Float32Array[]; grads: Float32Array[][] } {
  const inits = shapes.map((shape, k) => uniform(shape.reduce((a, b) => a * b, 1), 10 + k, -2, 2));
  const grads = Array.from({ length: steps }, (_, t) => shapes.map((shape, k) => uniform(shape.reduce((a, b) => a * b, 1), 100 * t + k, -1, 1)));
  const params = shapes.map((shape, k) => lr.tensor(inits[k], shape, 'float32', device));
  const expAvgs = shapes.map((shape) => lr.zeros(shape, 'float32', device));
  const expAvgSqs = shapes.map((shape) => lr.zeros(shape, 'float32', device));
  for (let t = 0; t < steps; t++) {
    const g = shapes.map((shape, k) => lr.tensor(grads[t][k], shape, 'float32', device));
    lr.adamUpdate(params, g, expAvgs, expAvgSqs, { ...s, step: t + 1 });
    g.forEach((x) => x.dispose());
  }
  const read = (ts: lr.Tensor[]) => ts.map((x) => x.to('cpu').data() as Float32Array);
  const out = { params: read(params), expAvgs: read(expAvgs), inits, grads: shapes.map((_, k) => grads.map((g) => g[k])) };
  [...params, ...expAvgs, ...expAvgSqs].forEach((x) => x.dispose());
  return out;
}

// The instruction sets this CPU has (gemm_use_isa switches them and says whether it could).
const isas = ['avx512', 'avx2', 'scalar'].filter((isa) => kernels.gemm_use_isa(isa) as boolean);
kernels.gemm_use_isa('auto');

describe('adamUpdate', () => {
  afterEach(() => kernels.gemm_use_isa('auto'));

  for (const isa of isas)
    for (const s of cases)
      it(`matches torch.optim's rule over ${steps} steps, ${shapes.length} tensors at once (${isa}) ${JSON.stringify(s)}`, () => {
        kernels.gemm_use_isa(isa);
        const got = runSteps(s);
        got.params.forEach((p, k) => expectClose(p, adamReference(s, got.inits[k], got.grads[k]), 2e-6, 2e-5));
      });

  it('takes a step count per tensor (bias corrections of parameters that joined later)', () => {
    const s = cases[0];
    const init = uniform(6, 1, -1, 1);
    const grad = uniform(6, 2, -1, 1);
    const a = lr.tensor(init), b = lr.tensor(init);
    const zeros = () => [lr.zeros([6]), lr.zeros([6])];
    const [ma, va] = zeros(), [mb, vb] = zeros();
    // The moments start at zero in both: only the step count (bias correction) differs.
    lr.adamUpdate([a, b], [lr.tensor(grad), lr.tensor(grad)], [ma, mb], [va, vb], { ...s, step: [1, 7] });
    expectClose(a.data(), adamReference(s, init, [grad], 1), 1e-7, 1e-6);
    expectClose(b.data(), adamReference(s, init, [grad], 7), 1e-7, 1e-6);
  });

  it('keeps the moment buffers as torch does', () => {
    const s = cases[1];
    const got = runSteps(s);
    // m after the steps: sum over t of (1 - b1) b1^(T-t) g_t, with g the gradient plus L2 on the
    // parameter of that step, which the reference recomputes.
    got.expAvgs.forEach((m, k) => {
      const p = Array.from(got.inits[k]);
      const ref = new Array<number>(p.length).fill(0);
      const path = [p];
      for (let t = 1; t < steps; t++) path.push(adamReference(s, got.inits[k], got.grads[k].slice(0, t)));
      got.grads[k].forEach((g, t) => {
        for (let i = 0; i < p.length; i++) ref[i] = s.beta1 * ref[i] + (1 - s.beta1) * (g[i] + s.weightDecay * path[t][i]);
      });
      expectClose(m, ref, 1e-6, 1e-5);
    });
  });

  it('does nothing with no tensors, and is not recorded by autograd', () => {
    expect(() => lr.adamUpdate([], [], [], [], { ...cases[0], step: 1 })).not.toThrow();
    const p = lr.tensor([1, 2]).requiresGrad_();
    lr.adamUpdate([p], [lr.tensor([1, -1])], [lr.zeros([2])], [lr.zeros([2])], { ...cases[0], step: 1 });
    expect(p._node).toBeNull();
    expectClose(p.data(), [1 - 1e-3, 2 + 1e-3], 1e-7, 1e-6);
  });

  it('rejects bad arguments, naming them', () => {
    const p = lr.tensor([1, 2]);
    const two = () => [lr.zeros([2])];
    const o = { ...cases[0], step: 1 };
    expectError(() => lr.adamUpdate(p as never, two(), two(), two(), o), TypeError, 'adam_update', "'params'", 'array');
    expectError(() => lr.adamUpdate([p], [], two(), two(), o), RangeError, "'grads'", '1 tensors');
    expectError(() => lr.adamUpdate([p], [lr.zeros([3])], two(), two(), o), RangeError, "'grads[0]'", 'shape [2]', '[3]');
    expectError(() => lr.adamUpdate([p], two(), [lr.zeros([2], 'int32')], two(), o), TypeError, "'expAvgs[0]'", 'float32');
    expectError(() => lr.adamUpdate([p], two(), two(), [null as never], o), TypeError, "'expAvgSqs[0]'", 'Tensor');
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, beta1: 1 }), RangeError, "'beta1'", '[0, 1)');
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, beta2: -0.1 }), RangeError, "'beta2'");
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, lr: Number.NaN }), RangeError, "'lr'");
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, eps: '1' as never }), TypeError, "'eps'");
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, step: 0 }), RangeError, "'step'", '>= 1');
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, step: [1.5] }), RangeError, "'step[0]'", '>= 1');
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, step: [1, 2] }), RangeError, "'step'", 'one value per parameter (1)', 'got 2 values');
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, step: 'x' as never }), TypeError, "'step'");
    expectError(() => lr.adamUpdate([p], two(), two(), two(), { ...o, amsgrad: true } as never), TypeError, "'amsgrad'");
    // Tensors written in place may not share elements (the update would race with itself).
    expectError(() => lr.adamUpdate([p, p], [two()[0], two()[0]], [two()[0], two()[0]], [two()[0], two()[0]], o), RangeError, "'params[1]'", 'elements shared with params[0]');
    const buffer = lr.zeros([4]);
    const [low, high] = [lr.narrow(buffer, 0, 0, 2), lr.narrow(buffer, 0, 1, 2)];
    expectError(() => lr.adamUpdate([p], two(), [low], [high], o), RangeError, "'expAvgSqs[0]'", 'elements shared with expAvgs[0]');
    // Disjoint views of one buffer are fine.
    lr.adamUpdate([p], two(), [lr.narrow(buffer, 0, 0, 2)], [lr.narrow(buffer, 0, 2, 2)], o);
    p.assign(new Float32Array([1, 2]));
    const gone = lr.zeros([2]);
    gone.dispose();
    expectError(() => lr.adamUpdate([p], [gone], two(), two(), o), Error, "'grads[0]'", 'disposed');
    // Nothing was written by the refused calls since the last assign.
    expect(Array.from(p.data())).toEqual([1, 2]);
  });
});

interface SgdSettings {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** One parameter's values after grads.length steps of torch.optim.SGD's algorithm box, in float64. */
function sgdReference(s: SgdSettings, init: Float32Array, grads: Float32Array[]): { p: number[]; buf: number[] } {
  const p = Array.from(init);
  const buf = new Array<number>(p.length).fill(0);
  grads.forEach((g0, t) => {
    for (let i = 0; i < p.length; i++) {
      let d = g0[i] + s.weightDecay * p[i];
      if (s.momentum !== 0) {
        buf[i] = t === 0 ? d : s.momentum * buf[i] + (1 - s.dampening) * d;
        d = s.nesterov ? d + s.momentum * buf[i] : buf[i];
      }
      p[i] -= s.lr * d;
    }
  });
  return { p, buf };
}

const sgdCases: SgdSettings[] = [
  { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 1e-3, nesterov: false },
  { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false },
  { lr: 0.02, momentum: 0.8, dampening: 0.3, weightDecay: 0, nesterov: false },
  { lr: 0.01, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true },
];

describe('sgdUpdate', () => {
  afterEach(() => kernels.gemm_use_isa('auto'));

  for (const isa of isas)
    for (const s of sgdCases)
      it(`matches torch.optim's rule over ${steps} steps, ${shapes.length} tensors at once (${isa}) ${JSON.stringify(s)}`, () => {
        kernels.gemm_use_isa(isa);
        const sizes = shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
        const inits = sizes.map((n, k) => uniform(n, 20 + k, -2, 2));
        const grads = Array.from({ length: steps }, (_, t) => sizes.map((n, k) => uniform(n, 200 * t + k, -1, 1)));
        const params = shapes.map((shape, k) => lr.tensor(inits[k], shape));
        // Buffers start as NaN: the first step must not read them.
        const buffers = s.momentum !== 0 ? shapes.map((shape) => lr.full(shape, Number.NaN)) : null;
        for (let t = 0; t < steps; t++) {
          const g = shapes.map((shape, k) => lr.tensor(grads[t][k], shape));
          lr.sgdUpdate(params, g, buffers, { ...s, first: t === 0 });
          g.forEach((x) => x.dispose());
        }
        params.forEach((p, k) => {
          const ref = sgdReference(s, inits[k], grads.map((g) => g[k]));
          expectClose(p.data(), ref.p, 2e-6, 2e-5);
          if (buffers) expectClose(buffers[k].data(), ref.buf, 2e-6, 2e-5);
        });
      });

  it('takes a first-step flag per tensor (a parameter that joined later)', () => {
    const s = sgdCases[3];
    const init = uniform(6, 1, -1, 1), g1 = uniform(6, 2, -1, 1), g2 = uniform(6, 3, -1, 1);
    const a = lr.tensor(init), b = lr.tensor(init);
    const [ba, bb] = [lr.zeros([6]), lr.zeros([6])];
    lr.sgdUpdate([a], [lr.tensor(g1)], [ba], { ...s, first: true });
    // a takes its second step while b takes its first, in one call.
    lr.sgdUpdate([a, b], [lr.tensor(g2), lr.tensor(g2)], [ba, bb], { ...s, first: [false, true] });
    expectClose(a.data(), sgdReference(s, init, [g1, g2]).p, 1e-7, 1e-6);
    expectClose(b.data(), sgdReference(s, init, [g2]).p, 1e-7, 1e-6);
  });

  it('does nothing with no tensors, and is not recorded by autograd', () => {
    expect(() => lr.sgdUpdate([], [], null, { lr: 0.1 })).not.toThrow();
    const p = lr.tensor([1, 2]).requiresGrad_();
    lr.sgdUpdate([p], [lr.tensor([1, -1])], null, { lr: 0.5 });
    expect(p._node).toBeNull();
    expect(Array.from(p.data())).toEqual([0.5, 2.5]);
  });

  it('rejects bad arguments, naming them', () => {
    const p = lr.tensor([1, 2]);
    const two = () => [lr.zeros([2])];
    const m = { lr: 0.1, momentum: 0.9 };
    expectError(() => lr.sgdUpdate(p as never, two(), null, { lr: 0.1 }), TypeError, 'sgd_update', "'params'", 'array');
    expectError(() => lr.sgdUpdate([p], [], null, { lr: 0.1 }), RangeError, "'grads'", '1 tensors');
    expectError(() => lr.sgdUpdate([p], [lr.zeros([3])], null, { lr: 0.1 }), RangeError, "'grads[0]'", 'shape [2]', '[3]');
    expectError(() => lr.sgdUpdate([p], two(), null, m), TypeError, "'momentumBuffers'", 'array');
    expectError(() => lr.sgdUpdate([p], two(), [lr.zeros([2], 'int32')], m), TypeError, "'momentumBuffers[0]'", 'float32');
    expectError(() => lr.sgdUpdate([p], two(), two(), { lr: 0.1 }), TypeError, "'momentumBuffers'", 'null without momentum');
    expectError(() => lr.sgdUpdate([p], two(), two(), { ...m, dampening: 1.5 }), RangeError, "'dampening'", '[0, 1]');
    expectError(() => lr.sgdUpdate([p], two(), two(), { ...m, dampening: 0.1, nesterov: true }), RangeError, "'nesterov'", 'dampening is 0');
    expectError(() => lr.sgdUpdate([p], two(), null, { lr: 0.1, nesterov: true }), RangeError, "'nesterov'", 'momentum > 0');
    expectError(() => lr.sgdUpdate([p], two(), null, { lr: -1 }), RangeError, "'lr'");
    expectError(() => lr.sgdUpdate([p], two(), null, { lr: 0.1, momentum: Number.NaN }), RangeError, "'momentum'");
    expectError(() => lr.sgdUpdate([p], two(), two(), { ...m, first: [true, false] }), RangeError, "'first'", 'one value per parameter (1)');
    expectError(() => lr.sgdUpdate([p], two(), two(), { ...m, first: 1 as never }), TypeError, "'first'", 'boolean');
    expectError(() => lr.sgdUpdate([p], two(), two(), { ...m, first: [1] as never }), TypeError, "'first[0]'", 'boolean');
    expectError(() => lr.sgdUpdate([p], two(), null, { lr: 0.1, foo: 1 } as never), TypeError, "'foo'");
    expectError(() => lr.sgdUpdate([p], two(), [p], m), RangeError, "'momentumBuffers[0]'", 'elements shared with params[0]');
    expect(Array.from(p.data())).toEqual([1, 2]);
  });
});
