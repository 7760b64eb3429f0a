// Optimisers and schedules over several steps against float64 references of torch.optim's
// documented update rules.
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Adam, AdamW, CosineAnnealingLR, MultiStepLR, SGD, StepLR, WarmupLR, clipGradNorm, clipGradValue, type Optimizer } from '../src/index.js';

const STEPS = 6;
/** Deterministic gradients for step t of a 5-element parameter. */
const gradAt = (t: number) => Array.from({ length: 5 }, (_, i) => Math.sin(1.3 * t + i) * (i + 1) * 0.7);
const init = [0.5, -1.25, 2, 0, -0.3];

function run(make: (p: lr.Tensor) => Optimizer, steps = STEPS): number[] {
  const p = lr.tensor(init).requiresGrad_();
  const opt = make(p);
  for (let t = 0; t < steps; t++) {
    p.grad = lr.tensor(gradAt(t));
    opt.step();
    opt.zeroGrad();
  }
  return Array.from(p.data());
}

function expectNear(actual: number[], expected: number[], tol = 2e-5): void {
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]), `element ${i}: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]))));
}

/** torch.optim.SGD's algorithm box. */
function sgdRef(o: { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean }): number[] {
  const { lr: rate, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = o;
  const p = [...init];
  const b = new Array(5).fill(0);
  for (let t = 0; t < STEPS; t++) {
    const g = gradAt(t);
    for (let i = 0; i < 5; i++) {
      let d = g[i] + weightDecay * p[i];
      if (momentum !== 0) {
        b[i] = t === 0 ? d : momentum * b[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * b[i] : b[i];
      }
      p[i] -= rate * d;
    }
  }
  return p;
}

/** torch.optim.Adam / AdamW's algorithm boxes. */
function adamRef(o: { lr: number; betas: [number, number]; eps: number; weightDecay: number; decoupled: boolean }): number[] {
  const p = [...init];
  const m = new Array(5).fill(0), v = new Array(5).fill(0);
  const [b1, b2] = o.betas;
  for (let t = 1; t <= STEPS; t++) {
    const g0 = gradAt(t - 1);
    for (let i = 0; i < 5; i++) {
      let g = g0[i];
      if (o.decoupled) p[i] *= 1 - o.lr * o.weightDecay;
      else g += o.weightDecay * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const mHat = m[i] / (1 - b1 ** t);
      const vHat = v[i] / (1 - b2 ** t);
      p[i] -= (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  }
  return p;
}

describe('SGD', () => {
  const cases = [
    { lr: 0.1 },
    { lr: 0.05, weightDecay: 0.1 },
    { lr: 0.1, momentum: 0.9 },
    { lr: 0.1, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 },
    { lr: 0.02, momentum: 0.9, nesterov: true, weightDecay: 0.05 },
  ];
  for (const c of cases) it(`matches torch.optim.SGD ${JSON.stringify(c)} over ${STEPS} steps`, () => expectNear(run((p) => new SGD([p], c)), sgdRef(c)));
  it('rejects bad options by name', () => {
    const p = lr.tensor([1]);
    expect(() => new SGD([p], { lr: -1 })).toThrow(/SGD: 'lr'/);
    expect(() => new SGD([], { lr: 1 })).toThrow(/SGD: 'params'/);
    expect(() => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/SGD: 'nesterov'/);
  });
});

describe('Adam and AdamW', () => {
  const cases = [
    { lr: 0.01, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0 },
    { lr: 0.05, betas: [0.5, 0.9] as [number, number], eps: 1e-6, weightDecay: 0.1 },
  ];
  for (const c of cases) {
    it(`Adam (L2 decay added to the gradient) ${JSON.stringify(c)}`, () => expectNear(run((p) => new Adam([p], c)), adamRef({ ...c, decoupled: false })));
    it(`AdamW (decay applied to the weights) ${JSON.stringify(c)}`, () => expectNear(run((p) => new AdamW([p], c)), adamRef({ ...c, decoupled: true })));
  }
  it('AdamW defaults to weight decay 0.01, Adam to 0', () => {
    expect(new AdamW([lr.tensor([1])]).paramGroups[0].weightDecay).toBe(0.01);
    expect(new Adam([lr.tensor([1])]).paramGroups[0].weightDecay).toBe(0);
    expect(() => new Adam([lr.tensor([1])], { betas: [1, 0.9] })).toThrow(/Adam: 'betas'/);
  });
  it('counts steps per parameter: a parameter without a gradient is left alone, and its bias correction starts at its first update', () => {
    const a = lr.tensor(init).requiresGrad_();
    const b = lr.tensor(init).requiresGrad_();
    const opt = new Adam([a, b], { lr: 0.01 });
    for (let t = 0; t < STEPS; t++) {
      a.grad = lr.tensor(gradAt(t));
      if (t >= 2) b.grad = lr.tensor(gradAt(t - 2));
      opt.step();
      opt.zeroGrad();
    }
    expectNear(Array.from(a.data()), adamRef({ lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, decoupled: false }));
    // b saw 4 updates with gradients gradAt(0..3): equal to a fresh 4-step run
    expectNear(Array.from(b.data()), run((p) => new Adam([p], { lr: 0.01 }), 4));
  });
});

describe('parameter groups and optimiser state', () => {
  it('a group refuses a hyper-parameter the optimiser does not have, and a bad lr or empty params', () => {
    const a = lr.tensor(init).requiresGrad_();
    expect(() => new SGD([{ params: [a], lr: 0.1, momentun: 0.9 }], { lr: 1 })).toThrow(TypeError);
    expect(() => new SGD([{ params: [a], lr: 0.1, momentun: 0.9 }], { lr: 1 })).toThrow(/SGD: 'momentun' must be one of the known params\[0\] fields \(params, lr, momentum, dampening, weightDecay, nesterov\)/);
    expect(() => new Adam([{ params: [a] }, { params: [a], betas: [0.5, 0.9] }])).toThrow(/Adam: 'betas' must be one of the known params\[1\] fields \(params, lr, beta1, beta2, eps, weightDecay\)/);
    expect(() => new SGD([{ params: [a], lr: -1 }], { lr: 1 })).toThrow("SGD: 'params[0].lr' must be a number >= 0, got -1");
    expect(() => new SGD([{ params: [] }] as never, { lr: 1 })).toThrow("SGD: 'params[0].params' must be a non-empty array of tensors");
    // The internal names a group may set: Adam's beta1 takes effect.
    expect(new Adam([{ params: [a], beta1: 0.5 }]).paramGroups[0].beta1).toBe(0.5);
  });

  it('each group uses its own hyper-parameters', () => {
    const a = lr.tensor(init).requiresGrad_();
    const b = lr.tensor(init).requiresGrad_();
    const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.01, momentum: 0.9 }], { lr: 1 });
    for (let t = 0; t < STEPS; t++) {
      a.grad = lr.tensor(gradAt(t));
      b.grad = lr.tensor(gradAt(t));
      opt.step();
      opt.zeroGrad();
    }
    expectNear(Array.from(a.data()), sgdRef({ lr: 0.1 }));
    expectNear(Array.from(b.data()), sgdRef({ lr: 0.01, momentum: 0.9 }));
  });

  it('stateDict / loadStateDict continue an SGD run exactly (the loaded momentum buffer is not restarted)', () => {
    const c = { lr: 0.05, momentum: 0.9, dampening: 0.1 };
    const full = run((p) => new SGD([p], c));
    const p = lr.tensor(init).requiresGrad_();
    const first = new SGD([p], c);
    for (let t = 0; t < 3; t++) {
      p.grad = lr.tensor(gradAt(t));
      first.step();
    }
    const saved = first.stateDict();
    expect(Object.keys(saved.buffers)).toEqual(['momentum']);
    const q = lr.tensor(Array.from(p.data())).requiresGrad_();
    const second = new SGD([q], c);
    second.loadStateDict(saved);
    for (let t = 3; t < STEPS; t++) {
      q.grad = lr.tensor(gradAt(t));
      second.step();
    }
    expect(Array.from(q.data())).toEqual(full);
  });

  it('stateDict / loadStateDict continue a run exactly (Adam moments, step counts, learning rates)', () => {
    const full = run((p) => new Adam([p], { lr: 0.02 }));
    const p = lr.tensor(init).requiresGrad_();
    const first = new Adam([p], { lr: 0.02 });
    for (let t = 0; t < 3; t++) {
      p.grad = lr.tensor(gradAt(t));
      first.step();
      first.zeroGrad();
    }
    const saved = first.stateDict();
    expect(saved.step).toBe(3);
    expect(Object.keys(saved.buffers).sort()).toEqual(['exp_avg', 'exp_avg_sq']);
    const q = lr.tensor(Array.from(p.data())).requiresGrad_();
    const second = new Adam([q], { lr: 99 });
    second.loadStateDict(saved);
    expect(second.paramGroups[0].lr).toBe(0.02);
    for (let t = 3; t < STEPS; t++) {
      q.grad = lr.tensor(gradAt(t));
      second.step();
      second.zeroGrad();
    }
    expect(Array.from(q.data())).toEqual(full);
    expect(() => new Adam([q, p]).loadStateDict(saved)).toThrow(/'paramSteps' must have 2 entries/);
    expect(() => new SGD([{ params: [q], lr: 1 }, { params: [p], lr: 1 }], { lr: 1 }).loadStateDict(saved)).toThrow(/parameter groups/);
  });
});

describe('gradient clipping', () => {
  it('by global norm (coefficient maxNorm / (norm + 1e-6), only when below 1) and by value', () => {
    const a = lr.tensor([0, 0]).requiresGrad_();
    const b = lr.tensor([0]).requiresGrad_();
    const c = lr.tensor([0]).requiresGrad_(); // no gradient: ignored
    a.grad = lr.tensor([1, -2]);
    b.grad = lr.tensor([2]);
    expect(clipGradNorm([a, b, c], 10)).toBeCloseTo(3, 6);
    expect(Array.from(a.grad.data())).toEqual([1, -2]); // under the limit: untouched
    expect(clipGradNorm([a, b, c], 1.5)).toBeCloseTo(3, 6);
    const coef = 1.5 / (3 + 1e-6);
    expectNear(Array.from(a.grad.data()), [coef, -2 * coef]);
    expectNear(Array.from(b.grad!.data()), [2 * coef]);
    a.grad = lr.tensor([0.3, -4]);
    clipGradValue([a, c], 0.5);
    expectNear(Array.from(a.grad.data()), [0.3, -0.5]);
    expect(() => clipGradNorm([a], 0)).toThrow(/clipGradNorm: 'maxNorm'/);
    expect(() => clipGradNorm([a], 1, 0.5)).toThrow(/clipGradNorm: 'normType'/);
  });
  it('by the max norm and by an L1 norm', () => {
    const a = lr.tensor([0, 0, 0]).requiresGrad_();
    a.grad = lr.tensor([1, -4, 2]);
    expect(clipGradNorm([a], 2, Infinity)).toBe(4);
    expectNear(Array.from(a.grad.data()), [1, -4, 2].map((v) => (v * 2) / (4 + 1e-6)));
    a.grad = lr.tensor([1, -4, 2]);
    expect(clipGradNorm([a], 3.5, 1)).toBeCloseTo(7, 6);
    expectNear(Array.from(a.grad.data()), [1, -4, 2].map((v) => (v * 3.5) / (7 + 1e-6)));
    expect(() => clipGradValue([a], -1)).toThrow(/clipGradValue: 'clipValue'/);
  });
  it('over many tensors of every shape, empty and scalar ones included, as a float64 sum', () => {
    const shapes = [[4, 3, 3, 3], [0], [], [7], [2, 5]];
    const grads = shapes.map((s, k) => Array.from({ length: s.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(3.1 * i + k) * (k + 1)));
    const params = shapes.map((s, k) => {
      const p = lr.zeros(s).requiresGrad_();
      p.grad = lr.tensor(new Float32Array(grads[k]), s);
      return p;
    });
    const flat = grads.flat().map((v) => Math.fround(v));
    for (const [normType, want] of [
      [2, Math.sqrt(flat.reduce((t, v) => t + v * v, 0))],
      [1, flat.reduce((t, v) => t + Math.abs(v), 0)],
      [3, flat.reduce((t, v) => t + Math.abs(v) ** 3, 0) ** (1 / 3)],
      [Infinity, Math.max(...flat.map(Math.abs))],
    ] as const)
      expect(clipGradNorm(params, 1e9, normType) / want).toBeCloseTo(1, 6);
    const norm = clipGradNorm(params, 2);
    const scaled = params.flatMap((p) => Array.from(p.grad!.data()));
    expectNear(scaled, flat.map((v) => (v * 2) / (norm + 1e-6)), 1e-6);
  });
});

describe('learning-rate schedules', () => {
  const sgd = (...lrs: number[]) => new SGD(lrs.map((l) => ({ params: [lr.tensor([0])], lr: l })), { lr: 1 });
  const trace = (s: { step(): void; currentLrs(): number[] }, n: number) => Array.from({ length: n }, () => { const v = s.currentLrs(); s.step(); return v; });

  it('StepLR and MultiStepLR scale every group from its own base', () => {
    const st = trace(new StepLR(sgd(1, 0.1), 3, 0.1), 7);
    expect(st.map((r) => r.map((v) => +v.toPrecision(6)))).toEqual([[1, 0.1], [1, 0.1], [1, 0.1], [0.1, 0.01], [0.1, 0.01], [0.1, 0.01], [0.01, 0.001]]);
    const ms = trace(new MultiStepLR(sgd(0.2), [3, 1], 0.5), 5).map((r) => r[0]);
    expect(ms).toEqual([0.2, 0.1, 0.1, 0.05, 0.05]);
    expect(() => new MultiStepLR(sgd(1), [0])).toThrow(/'milestones'/);
    expect(() => new StepLR(sgd(1), 0)).toThrow(/StepLR: 'stepSize'/);
  });

  it('CosineAnnealingLR: eta_min + (base - eta_min)(1 + cos(pi t / T_max)) / 2, held at eta_min after T_max', () => {
    const cos = trace(new CosineAnnealingLR(sgd(0.1), 8, 0.001), 11).map((r) => r[0]);
    cos.forEach((v, t) => expect(v).toBeCloseTo(0.001 + (0.099 * (1 + Math.cos((Math.PI * Math.min(t, 8)) / 8))) / 2, 10));
    expect(() => new CosineAnnealingLR(sgd(1), 0)).toThrow(/'tMax'/);
  });

  it('WarmupLR ramps linearly, then hands over to the following schedule', () => {
    const after = (e: number, base: number) => base * 0.5 ** Math.floor(e / 2);
    const w = trace(new WarmupLR(sgd(1), 4, 0.25, after), 9).map((r) => +r[0].toFixed(6));
    expect(w).toEqual([0.25, 0.4375, 0.625, 0.8125, 1, 1, 0.5, 0.5, 0.25]);
    expect(trace(new WarmupLR(sgd(2), 0), 2).map((r) => r[0])).toEqual([2, 2]);
    expect(() => new WarmupLR(sgd(1), -1)).toThrow(/WarmupLR: 'warmupSteps'/);
  });

  it('schedule state resumes exactly, base learning rates included', () => {
    const a = new CosineAnnealingLR(sgd(0.3), 10);
    for (let i = 0; i < 4; i++) a.step();
    const opt = sgd(7);
    const b = new CosineAnnealingLR(opt, 10);
    b.loadStateDict(a.stateDict());
    expect(opt.paramGroups[0].lr).toBe(a.currentLrs()[0]);
    a.step();
    b.step();
    expect(b.currentLrs()).toEqual(a.currentLrs());
    expect(() => b.loadStateDict({ lastEpoch: -1, baseLrs: [1] })).toThrow(/'lastEpoch'/);
    expect(() => b.loadStateDict({ lastEpoch: 1, baseLrs: [1, 2] })).toThrow(/'baseLrs'/);
  });
});
