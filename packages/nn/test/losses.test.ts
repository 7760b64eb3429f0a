// Losses: values and gradients against the formulas PyTorch and the papers give, computed
// here in plain JS.
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import {
  BeganBalance, CenterLoss, beganEnergy, charbonnierLoss, crossEntropy, heatmapMseLoss, hingeDiscriminatorLoss, hingeGeneratorLoss, l1Loss,
  lsganDiscriminatorLoss, lsganGeneratorLoss, mseLoss, oneHot,
} from '../src/index.js';

const arr = (t: lr.Tensor) => Array.from(t.data());
function near(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i]), `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i])));
}
const xs = [0.3, -1.2, 2.5, 0, 4, -0.7];
const ys = [0.1, -1.2, 1.5, 0.5, 3, 0.2];
const N = xs.length;

/** Value and gradient with respect to the input of loss(x, y). */
function valueAndGrad(loss: (x: lr.Tensor, y: lr.Tensor) => lr.Tensor, shape = [2, 3]): [number, number[]] {
  const x = lr.tensor(xs, shape).requiresGrad_();
  const l = loss(x, lr.tensor(ys, shape));
  const v = l.item();
  l.backward();
  return [v, arr(x.grad!)];
}

describe('regression losses', () => {
  it('MSE: mean (x-y)^2, gradient 2(x-y)/N; sum and none reductions', () => {
    const [v, g] = valueAndGrad((x, y) => mseLoss(x, y));
    near([v], [xs.reduce((s, x, i) => s + (x - ys[i]) ** 2, 0) / N]);
    near(g, xs.map((x, i) => (2 * (x - ys[i])) / N));
    near([mseLoss(lr.tensor(xs), lr.tensor(ys), 'sum').item()], [xs.reduce((s, x, i) => s + (x - ys[i]) ** 2, 0)]);
    const none = mseLoss(lr.tensor(xs, [2, 3]), lr.tensor(ys, [2, 3]), 'none');
    expect(none.shape).toEqual([2, 3]);
    near(arr(none), xs.map((x, i) => (x - ys[i]) ** 2));
  });

  it('L1: mean |x-y|, gradient sign(x-y)/N', () => {
    const [v, g] = valueAndGrad((x, y) => l1Loss(x, y));
    near([v], [xs.reduce((s, x, i) => s + Math.abs(x - ys[i]), 0) / N]);
    xs.forEach((x, i) => {
      if (x !== ys[i]) expect(g[i]).toBeCloseTo(Math.sign(x - ys[i]) / N, 6);
    });
  });

  it('Charbonnier: mean sqrt((x-y)^2 + eps^2), gradient (x-y)/sqrt(...)/N', () => {
    const eps = 0.05;
    const [v, g] = valueAndGrad((x, y) => charbonnierLoss(x, y, { eps }));
    near([v], [xs.reduce((s, x, i) => s + Math.sqrt((x - ys[i]) ** 2 + eps * eps), 0) / N]);
    near(g, xs.map((x, i) => (x - ys[i]) / Math.sqrt((x - ys[i]) ** 2 + eps * eps) / N));
    // default eps 1e-3 (LapSRN)
    near([charbonnierLoss(lr.tensor([0]), lr.tensor([0])).item()], [1e-3]);
    expect(() => charbonnierLoss(lr.tensor([0]), lr.tensor([0]), { eps: 0 })).toThrow(/charbonnierLoss: 'eps'/);
  });

  it('heatmap MSE: mean over N, K, H, W, optionally weighted per landmark', () => {
    const p = lr.tensor(Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => Math.sin(i)), [2, 3, 2, 2]);
    const t = lr.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)), [2, 3, 2, 2]);
    const w = [1, 0, 2, 0.5, 1, 0];
    const ref = (weighted: boolean) => Array.from({ length: 24 }, (_, i) => (Math.sin(i) - Math.cos(i)) ** 2 * (weighted ? w[Math.floor(i / 4)] : 1)).reduce((a, b) => a + b, 0) / 24;
    near([heatmapMseLoss(p, t).item()], [ref(false)]);
    near([heatmapMseLoss(p, t, lr.tensor(w, [2, 3])).item()], [ref(true)]);
  });

  it('names the argument on shape and reduction errors', () => {
    expect(() => l1Loss(lr.zeros([2]), lr.zeros([3]))).toThrow(/l1Loss: 'target'/);
    expect(() => mseLoss(lr.zeros([2]), lr.zeros([2]), 'avg' as 'mean')).toThrow(/mseLoss: 'reduction'/);
    expect(() => heatmapMseLoss(lr.zeros([1, 2, 2, 2]), lr.zeros([1, 2, 2, 3]))).toThrow(/heatmapMseLoss: 'target'/);
  });
});

describe('cross-entropy on logits with int32 class indices', () => {
  const logits = [[1, 2, 0.5, -1], [0, 0, 0, 0], [3, -2, 1, 0.25]];
  const target = [1, 3, 0];
  const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
  const perSample = logits.map((r, i) => lse(r) - r[target[i]]);

  it('mean, sum and none; gradient (softmax - onehot)/N', () => {
    const x = lr.tensor(logits).requiresGrad_();
    const y = lr.tensor(new Int32Array(target));
    const l = crossEntropy(x, y);
    near([l.item()], [perSample.reduce((a, b) => a + b, 0) / 3]);
    l.backward();
    near(arr(x.grad!), logits.flatMap((r, i) => r.map((v, k) => (Math.exp(v - lse(r)) - (k === target[i] ? 1 : 0)) / 3)));
    near([crossEntropy(lr.tensor(logits), y, { reduction: 'sum' }).item()], [perSample.reduce((a, b) => a + b, 0)]);
    near(arr(crossEntropy(lr.tensor(logits), y, { reduction: 'none' })), perSample);
  });

  it('is stable for large logits', () => {
    const v = crossEntropy(lr.tensor([[1000, 0], [-1000, 1000]]), lr.tensor(new Int32Array([0, 0]))).item();
    expect(v).toBeCloseTo(1000, 3);
  });

  it('label smoothing: target (1 - s) onehot + s / C', () => {
    const s = 0.2;
    const ref = logits.map((r, i) => r.reduce((acc, v, k) => acc - ((k === target[i] ? 1 - s : 0) + s / 4) * (v - lse(r)), 0));
    near([crossEntropy(lr.tensor(logits), lr.tensor(new Int32Array(target)), { labelSmoothing: s }).item()], [ref.reduce((a, b) => a + b, 0) / 3]);
  });

  it('errors name the argument', () => {
    const x = lr.tensor(logits);
    expect(() => crossEntropy(x, lr.tensor(target))).toThrow(/crossEntropy: 'target' must be int32/);
    expect(() => crossEntropy(x, lr.tensor(new Int32Array([0, 1])))).toThrow(/crossEntropy: 'target' must have shape \[3\]/);
    expect(() => crossEntropy(lr.zeros([3]), lr.tensor(new Int32Array([0])))).toThrow(/crossEntropy: 'logits' must be rank 2/);
    expect(() => crossEntropy(x, lr.tensor(new Int32Array([0, 4, 1])))).toThrow(/oneHot: 'labels' must be in \[0, 4\), got 4 at index 1/);
    expect(() => crossEntropy(x, lr.tensor(new Int32Array(target)), { labelSmoothing: 2 })).toThrow(/'labelSmoothing'/);
    expect(() => oneHot(lr.tensor([1]), 2)).toThrow(TypeError);
  });
});

describe('GAN losses', () => {
  const real = [1.5, 0.2, -0.3, 0.9];
  const fake = [-2, 0.5, -0.9, 1.2];
  it('hinge: D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G = -E[D(G(z))], with gradients', () => {
    const r = lr.tensor(real).requiresGrad_();
    const f = lr.tensor(fake).requiresGrad_();
    const d = hingeDiscriminatorLoss(r, f);
    near([d.item()], [real.reduce((s, v) => s + Math.max(0, 1 - v), 0) / 4 + fake.reduce((s, v) => s + Math.max(0, 1 + v), 0) / 4]);
    d.backward();
    near(arr(r.grad!), real.map((v) => (v < 1 ? -0.25 : 0)));
    near(arr(f.grad!), fake.map((v) => (v > -1 ? 0.25 : 0)));
    near([hingeGeneratorLoss(lr.tensor(fake)).item()], [-fake.reduce((a, b) => a + b, 0) / 4]);
  });
  it('least squares (Mao et al., a=0, b=c=1): D = 0.5 E[(D(x)-1)^2] + 0.5 E[D(G(z))^2], G = 0.5 E[(D(G(z))-1)^2]', () => {
    near([lsganDiscriminatorLoss(lr.tensor(real), lr.tensor(fake)).item()], [0.5 * (real.reduce((s, v) => s + (v - 1) ** 2, 0) / 4) + 0.5 * (fake.reduce((s, v) => s + v * v, 0) / 4)]);
    near([lsganGeneratorLoss(lr.tensor(fake)).item()], [0.5 * (fake.reduce((s, v) => s + (v - 1) ** 2, 0) / 4)]);
  });
  it('BEGAN: energy mean|v - D(v)|, L_D = L(x) - k_t L(G(z)), k clipped to [0, 1], convergence measure', () => {
    const img = lr.tensor([0.2, 0.4, 0.6, 0.8]);
    const rec = lr.tensor([0.25, 0.3, 0.6, 1]);
    near([beganEnergy(img, rec).item()], [(0.05 + 0.1 + 0 + 0.2) / 4]);
    const b = new BeganBalance(0.7, 0.5, 0.1);
    near([b.discriminatorLoss(lr.tensor(0.4), lr.tensor(0.2)).item()], [0.4 - 0.1 * 0.2]);
    near([b.generatorLoss(lr.tensor(0.2)).item()], [0.2]);
    // k += lambda (gamma L(x) - L(G(z))): 0.1 + 0.5 (0.28 - 0.2) = 0.14
    near([b.update(0.4, 0.2)], [0.4 + Math.abs(0.28 - 0.2)]);
    near([b.k], [0.14]);
    b.update(0.4, 5); // pushes below 0
    expect(b.k).toBe(0);
    b.update(10, 0); // and above 1
    expect(b.k).toBe(1);
    expect(() => new BeganBalance(0)).toThrow(/BeganBalance: 'gamma'/);
  });
});

describe('center loss (Wen et al. 2016)', () => {
  it('value 1/2 mean ||x_i - c_yi||^2, gradient (x_i - c_yi)/N, and the alpha centre update', () => {
    const cl = new CenterLoss(3, 2, 0.3);
    cl.centers.assign(lr.tensor([[0, 0], [1, 1], [-1, 2]]));
    const feats = [[1, 2], [0.5, 0.5], [2, 1], [-1, 0]];
    const labels = [0, 1, 0, 2];
    const c = [[0, 0], [1, 1], [-1, 2]];
    const f = lr.tensor(feats).requiresGrad_();
    const y = lr.tensor(new Int32Array(labels));
    const loss = cl.forward(f, y);
    near([loss.item()], [(0.5 * feats.reduce((s, x, i) => s + (x[0] - c[labels[i]][0]) ** 2 + (x[1] - c[labels[i]][1]) ** 2, 0)) / 4]);
    loss.backward();
    near(arr(f.grad!), feats.flatMap((x, i) => x.map((v, k) => (v - c[labels[i]][k]) / 4)));
    cl.updateCenters(f, y);
    // c_j -= alpha * sum_{i in j} (c_j - x_i) / (1 + n_j); classes without samples stay
    const expected = c.map((cj, j) => {
      const members = feats.filter((_, i) => labels[i] === j);
      return cj.map((v, k) => v - (0.3 * members.reduce((s, x) => s + (v - x[k]), 0)) / (1 + members.length));
    });
    near(arr(cl.centers), expected.flat());
  });
  it('keeps its centres in the state dict so checkpoints carry them; checks its arguments', () => {
    const cl = new CenterLoss(4, 3);
    expect([...cl.stateDict().keys()]).toEqual(['centers']);
    expect(cl.parameters()).toEqual([]);
    expect(() => cl.forward(lr.zeros([2, 2]), lr.tensor(new Int32Array([0, 1])))).toThrow(/CenterLoss: 'features' must have shape \[N, 3\]/);
    expect(() => cl.updateCenters(lr.zeros([2, 3]), lr.tensor(new Int32Array([0])))).toThrow(/CenterLoss: 'labels' must have shape \[2\]/);
    expect(() => new CenterLoss(2, 2, 0)).toThrow(/CenterLoss: 'alpha'/);
  });
});
