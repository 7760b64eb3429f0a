// Layers against references written here in plain loops (PyTorch's documented formulas)
// and PyTorch's default initialisation bounds.
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Flatten, Identity, LeakyReLU, Linear, MFM, MaxPool2d,
  Module, PixelShuffle, PReLU, ReLU, ResidualBlock, Sequential, Sigmoid, Tanh, Upsample, chain, kaimingNormal_,
} from '../src/index.js';
import {
  Adam, AdamW, MFMConv2d, MFMGroup, SGD, SpectralNorm, Trainer, charbonnierLoss, crossEntropy, kaimingUniform_, loadCheckpoint, loadTorchStateDict,
  saveCheckpoint, spectralNorm,
} from '../src/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arr = (t: lr.Tensor) => Array.from(t.data());
function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++)
    if (!(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) throw new Error(`element ${i}: ${actual[i]} vs ${expected[i]}`);
}
function seq(n: number, f: (i: number) => number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => f(i));
}
const maxAbs = (t: lr.Tensor) => arr(t).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Direct convolution: x [N,C,H,W], w [O,C/g,kh,kw], PyTorch's output size formula. */
function naiveConv(x: Float32Array, xs: number[], w: Float32Array, ws: number[], b: Float32Array | null, o: { stride: number[]; pad: number[]; dil: number[]; groups: number }) {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const OH = Math.floor((H + 2 * o.pad[0] - o.dil[0] * (KH - 1) - 1) / o.stride[0]) + 1;
  const OW = Math.floor((W + 2 * o.pad[1] - o.dil[1] * (KW - 1) - 1) / o.stride[1]) + 1;
  const out = new Float32Array(N * O * OH * OW);
  const og = O / o.groups;
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let s = b ? b[oc] : 0;
          const g = Math.floor(oc / og);
          for (let c = 0; c < Cg; c++)
            for (let ki = 0; ki < KH; ki++)
              for (let kj = 0; kj < KW; kj++) {
                const h = i * o.stride[0] - o.pad[0] + ki * o.dil[0];
                const wc = j * o.stride[1] - o.pad[1] + kj * o.dil[1];
                if (h < 0 || h >= H || wc < 0 || wc >= W) continue;
                s += x[((n * C + g * Cg + c) * H + h) * W + wc] * w[((oc * Cg + c) * KH + ki) * KW + kj];
              }
          out[((n * O + oc) * OH + i) * OW + j] = s;
        }
  return { out, shape: [N, O, OH, OW] };
}

describe('PyTorch default initialisation', () => {
  it('Conv2d, ConvTranspose2d and Linear draw weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in))', () => {
    lr.manualSeed(21);
    // kaiming_uniform(a = sqrt(5)): gain sqrt(2 / 6), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    const cases: [Module & { weight: lr.Tensor; bias: lr.Tensor | null }, number][] = [
      [new Conv2d(8, 16, 3), 8 * 9],
      [new Conv2d(8, 16, [1, 5], { groups: 4 }), 2 * 5],
      // transposed: PyTorch takes fan_in from weight.size(1) = out / groups
      [new ConvTranspose2d(8, 12, 4), 12 * 16],
      [new Linear(50, 40), 50],
    ];
    for (const [layer, fanIn] of cases) {
      const bound = 1 / Math.sqrt(fanIn);
      const name = `${layer.constructor.name} fan_in ${fanIn}`;
      expect(maxAbs(layer.weight), name).toBeLessThanOrEqual(bound);
      expect(maxAbs(layer.weight), name).toBeGreaterThan(0.97 * bound);
      expect(maxAbs(layer.bias!), name).toBeLessThanOrEqual(bound);
      expect(maxAbs(layer.bias!), name).toBeGreaterThan(0.5 * bound);
    }
    const bn = new BatchNorm2d(3);
    expect([arr(bn.weight!), arr(bn.bias!), arr(bn.running_mean!), arr(bn.running_var!)]).toEqual([[1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]]);
    expect(arr(new PReLU(3).weight)).toEqual([0.25, 0.25, 0.25]);
    expect(new Conv2d(2, 2, 3, { bias: false }).bias).toBeNull();
    expect([...new Linear(2, 2, { bias: false }).namedParameters()].map(([k]) => k)).toEqual(['weight']);
  });

  it('the same seed gives the same model; apply() re-initialises as in PyTorch recipes', () => {
    lr.manualSeed(5);
    const a = new Sequential(new Conv2d(3, 4, 3), new Linear(4, 2));
    lr.manualSeed(5);
    const b = new Sequential(new Conv2d(3, 4, 3), new Linear(4, 2));
    for (const [k, v] of a.stateDict()) expect(arr(b.stateDict().get(k)!), k).toEqual(arr(v));
    a.apply((m) => {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
    });
    expect(arr((a.at(0) as Conv2d).weight)).not.toEqual(arr((b.at(0) as Conv2d).weight));
  });

  it('rejects bad layer configurations by argument', () => {
    expect(() => new Conv2d(6, 4, 3, { groups: 4 })).toThrow(/Conv2d: 'groups'/);
    expect(() => new ConvTranspose2d(6, 4, 3, { groups: 4 })).toThrow(/ConvTranspose2d: 'groups'/);
    expect(() => new Dropout(1)).toThrow(/Dropout: 'p'/);
    expect(() => new BatchNorm2d(0)).toThrow(/BatchNorm2d: 'numFeatures'/);
    expect(() => new BatchNorm2d(2, { momentum: 2 })).toThrow(/BatchNorm2d: 'momentum'/);
    expect(() => new Sequential(new ReLU(), {} as Module)).toThrow(/Sequential: 'modules\[1\]'/);
    expect(() => new Conv2d(2, 2, 3, { activation: 'gelu' as 'relu' })).toThrow(RangeError);
    expect(() => new Conv2d(2, 2, 3, { activation: 'gelu' as 'relu' })).toThrow(/Conv2d: 'activation'/);
  });

  it('checks sizes in the constructors, naming the layer and the argument', () => {
    const bad = (make: () => unknown, type: typeof TypeError | typeof RangeError, message: string) => {
      expect(make).toThrow(type);
      expect(make).toThrow(message);
    };
    // Linear
    bad(() => new Linear(0, 2), RangeError, "Linear: 'inFeatures' must be an integer >= 1, got 0");
    bad(() => new Linear(4, 0), RangeError, "Linear: 'outFeatures' must be an integer >= 1, got 0");
    bad(() => new Linear(2.5, 2), RangeError, "Linear: 'inFeatures' must be an integer >= 1, got 2.5");
    bad(() => new Linear(-1, 2), RangeError, "Linear: 'inFeatures' must be an integer >= 1, got -1");
    bad(() => new Linear(NaN, 2), RangeError, "Linear: 'inFeatures' must be an integer >= 1, got NaN");
    bad(() => new Linear('4' as never, 2), TypeError, `Linear: 'inFeatures' must be an integer >= 1, got "4"`);
    bad(() => new Linear(4, undefined as never), TypeError, "Linear: 'outFeatures'");
    // Conv2d
    bad(() => new Conv2d(3, 4, 0), RangeError, "Conv2d: 'kernelSize' must be an integer >= 1 or a pair [h, w] of them, got 0");
    bad(() => new Conv2d(3, 4, [3, 0]), RangeError, "Conv2d: 'kernelSize' must be an integer >= 1 or a pair [h, w] of them, got [3,0]");
    bad(() => new Conv2d(3, 4, [3, 3, 3] as never), RangeError, "Conv2d: 'kernelSize'");
    bad(() => new Conv2d(3, 4, '3' as never), TypeError, "Conv2d: 'kernelSize'");
    bad(() => new Conv2d(0, 4, 3), RangeError, "Conv2d: 'inChannels' must be an integer >= 1, got 0");
    bad(() => new Conv2d(3, 0, 3), RangeError, "Conv2d: 'outChannels' must be an integer >= 1, got 0");
    bad(() => new Conv2d(3, '4' as never, 3), TypeError, "Conv2d: 'outChannels'");
    bad(() => new Conv2d(3, 4, 3, { stride: 0 }), RangeError, "Conv2d: 'stride'");
    bad(() => new Conv2d(3, 4, 3, { dilation: [1, 0] }), RangeError, "Conv2d: 'dilation'");
    bad(() => new Conv2d(3, 4, 3, { padding: -1 }), RangeError, "Conv2d: 'padding' must be an integer >= 0");
    bad(() => new Conv2d(3, 4, 3, { padding: [1, 1, 1] }), RangeError, "Conv2d: 'padding'");
    bad(() => new Conv2d(3, 4, 3, { padding: '1' as never }), TypeError, "Conv2d: 'padding'");
    // ConvTranspose2d
    bad(() => new ConvTranspose2d(0, 4, 3), RangeError, "ConvTranspose2d: 'inChannels' must be an integer >= 1, got 0");
    bad(() => new ConvTranspose2d(3, 4, 0), RangeError, "ConvTranspose2d: 'kernelSize'");
    bad(() => new ConvTranspose2d(3, 4, 3, { stride: 0 }), RangeError, "ConvTranspose2d: 'stride'");
    bad(() => new ConvTranspose2d(3, 4, 3, { padding: -1 }), RangeError, "ConvTranspose2d: 'padding'");
    bad(() => new ConvTranspose2d(3, 4, 3, { outputPadding: -1 }), RangeError, "ConvTranspose2d: 'outputPadding'");
    // Other layers with sizes
    bad(() => new BatchNorm2d('4' as never), TypeError, `BatchNorm2d: 'numFeatures' must be an integer >= 1, got "4"`);
    bad(() => new BatchNorm2d(1.5), RangeError, "BatchNorm2d: 'numFeatures' must be an integer >= 1, got 1.5");
    bad(() => new PReLU(0), RangeError, "PReLU: 'numParameters' must be an integer >= 1, got 0");
    bad(() => new PReLU(2, NaN), RangeError, "PReLU: 'init'");
    bad(() => new PixelShuffle(0), RangeError, "PixelShuffle: 'upscaleFactor' must be an integer >= 1, got 0");
    bad(() => new AdaptiveAvgPool2d(0), RangeError, "AdaptiveAvgPool2d: 'outputSize'");
    bad(() => new ResidualBlock(0), RangeError, "ResidualBlock: 'channels' must be an integer >= 1, got 0");
    // Valid forms stay accepted: pairs, asymmetric padding, a size of 1.
    expect(new Linear(1, 1).weight.shape).toEqual([1, 1]);
    expect(new Conv2d(2, 4, [1, 3], { stride: [1, 2], padding: [0, 0, 1, 1], dilation: [1, 1] }).weight.shape).toEqual([4, 2, 1, 3]);
    expect(new Conv2d(2, 4, 3, { padding: [1] }).weight.shape).toEqual([4, 2, 3, 3]);
    expect(new ConvTranspose2d(2, 4, [2, 2], { stride: 2, outputPadding: [1, 0] }).weight.shape).toEqual([2, 4, 2, 2]);
    expect(new PReLU().weight.shape).toEqual([1]);
  });
});

describe('layer outputs against plain-loop references', () => {
  lr.manualSeed(8);
  const xs = [2, 4, 7, 6];
  const xData = seq(2 * 4 * 7 * 6, (i) => Math.sin(i * 0.37) * 2);
  const x = () => lr.tensor(xData, xs);

  it('Conv2d with stride, asymmetric padding, dilation and groups', () => {
    for (const cfg of [
      { k: 3, stride: 1, pad: [1, 1], dil: 1, groups: 1 },
      { k: 3, stride: 2, pad: [0, 2], dil: 2, groups: 2 },
      { k: 1, stride: 3, pad: [0, 0], dil: 1, groups: 4 },
    ]) {
      const conv = new Conv2d(4, 8, cfg.k, { stride: cfg.stride, padding: cfg.pad, dilation: cfg.dil, groups: cfg.groups });
      const ref = naiveConv(xData, xs, conv.weight.data() as Float32Array, conv.weight.shape as number[], conv.bias!.data() as Float32Array, { stride: [cfg.stride, cfg.stride], pad: cfg.pad, dil: [cfg.dil, cfg.dil], groups: cfg.groups });
      const y = conv.forward(x());
      expect(y.shape).toEqual(ref.shape);
      expectAllClose(y.data(), ref.out, 1e-4);
    }
  });

  it("Conv2d with activation 'relu' is max(conv, 0), with the gradients of ReLU after the layer", () => {
    const conv = new Conv2d(4, 8, 3, { padding: 1, activation: 'relu' });
    const ref = naiveConv(xData, xs, conv.weight.data() as Float32Array, conv.weight.shape as number[], conv.bias!.data() as Float32Array, { stride: [1, 1], pad: [1, 1], dil: [1, 1], groups: 1 });
    const y = conv.forward(x());
    expect(y.shape).toEqual(ref.shape);
    expectAllClose(y.data(), Array.from(ref.out, (v) => Math.max(v, 0)), 1e-4);
    // Gradients against the unfused layer on the same parameters.
    const plain = new Conv2d(4, 8, 3, { padding: 1 });
    plain.loadStateDict(conv.stateDict());
    lr.sum(lr.mul(conv.forward(x()), lr.tensor(seq(y.size, (i) => Math.cos(i)), y.shape))).backward();
    lr.sum(lr.mul(lr.relu(plain.forward(x())), lr.tensor(seq(y.size, (i) => Math.cos(i)), y.shape))).backward();
    expectAllClose(conv.weight.grad!.data(), plain.weight.grad!.data(), 1e-5);
    expectAllClose(conv.bias!.grad!.data(), plain.bias!.grad!.data(), 1e-5);
  });

  it('ConvTranspose2d is the adjoint of Conv2d (output size (H-1)s - 2p + d(k-1) + op + 1)', () => {
    const up = new ConvTranspose2d(4, 3, 3, { stride: 2, padding: 1, outputPadding: 1, bias: false });
    const y = up.forward(x());
    expect(y.shape).toEqual([2, 3, 14, 12]);
    // <convT(x), z> = <x, conv(z)> with the same weight: check with a random z
    const z = lr.randn([2, 3, 14, 12]);
    const cz = naiveConv(z.data() as Float32Array, [2, 3, 14, 12], up.weight.data() as Float32Array, [4, 3, 3, 3], null, { stride: [2, 2], pad: [1, 1], dil: [1, 1], groups: 1 });
    expect(cz.shape).toEqual(xs);
    const lhs = arr(y).reduce((s, v, i) => s + v * z.data()[i], 0);
    const rhs = Array.from(xData).reduce((s, v, i) => s + v * cz.out[i], 0);
    expect(lhs).toBeCloseTo(rhs, 2);
    const withBias = new ConvTranspose2d(4, 3, 3, { stride: 2, padding: 1, outputPadding: 1 });
    withBias.loadStateDict({ weight: up.weight, bias: lr.tensor([1, -2, 0.5]) });
    const yb = arr(withBias.forward(x()));
    const hw = 14 * 12;
    yb.forEach((v, i) => expect(v).toBeCloseTo(arr(y)[i] + [1, -2, 0.5][Math.floor(i / hw) % 3], 4));
  });

  it('Linear computes x W^T + b on rank 2 and rank 3 inputs', () => {
    const lin = new Linear(6, 3);
    const w = lin.weight.data(), b = lin.bias!.data();
    const input = seq(2 * 5 * 6, (i) => Math.cos(i));
    const y = lin.forward(lr.tensor(input, [2, 5, 6]));
    expect(y.shape).toEqual([2, 5, 3]);
    const ref = seq(30, (i) => {
      const row = Math.floor(i / 3), o = i % 3;
      let s = b[o];
      for (let k = 0; k < 6; k++) s += input[row * 6 + k] * w[o * 6 + k];
      return s;
    });
    expectAllClose(y.data(), ref);
  });

  it('BatchNorm2d: biased batch variance for the output, unbiased for the running estimate; eval uses running statistics', () => {
    const bn = new BatchNorm2d(4, { momentum: 0.2 });
    bn.weight!.assign(lr.tensor([1, 2, 0.5, -1]));
    bn.bias!.assign(lr.tensor([0, 1, -1, 0.25]));
    const y = arr(bn.forward(x()));
    const [N, C, H, W] = xs;
    const m = H * W * N;
    for (let c = 0; c < C; c++) {
      let s = 0, s2 = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) { const v = xData[(n * C + c) * H * W + k]; s += v; s2 += v * v; }
      const mean = s / m, varB = s2 / m - mean * mean;
      for (let n = 0; n < N; n++)
        for (let k = 0; k < H * W; k += 7) {
          const i = (n * C + c) * H * W + k;
          expect(y[i]).toBeCloseTo(([1, 2, 0.5, -1][c] * (xData[i] - mean)) / Math.sqrt(varB + 1e-5) + [0, 1, -1, 0.25][c], 4);
        }
      expect(bn.running_mean!.data()[c]).toBeCloseTo(0.2 * mean, 5);
      expect(bn.running_var!.data()[c]).toBeCloseTo(0.8 + 0.2 * varB * (m / (m - 1)), 5);
    }
    expect(bn.num_batches_tracked!.item()).toBe(1);
    bn.eval();
    const rm = arr(bn.running_mean!), rv = arr(bn.running_var!);
    const ye = arr(bn.forward(x()));
    expect(bn.num_batches_tracked!.item()).toBe(1);
    expect(ye[3 * 42 + 5]).toBeCloseTo((-1 * (xData[3 * 42 + 5] - rm[3])) / Math.sqrt(rv[3] + 1e-5) + 0.25, 4);
  });

  it('BatchNorm2d with momentum null keeps the cumulative average of batch statistics', () => {
    const bn = new BatchNorm2d(1, { momentum: null, affine: false });
    expect(bn.parameters()).toEqual([]);
    const batches = [[1, 2, 3, 4], [10, 10, 10, 14], [-3, 0, 1, 2]];
    for (const b of batches) bn.forward(lr.tensor(b, [1, 1, 2, 2]));
    const means = batches.map((b) => b.reduce((s, v) => s + v, 0) / 4);
    const vars = batches.map((b, i) => b.reduce((s, v) => s + (v - means[i]) ** 2, 0) / 3);
    expect(bn.running_mean!.item()).toBeCloseTo(means.reduce((s, v) => s + v, 0) / 3, 5);
    // factor 1/t: the first batch replaces the initial 1, later ones average in
    expect(bn.running_var!.item()).toBeCloseTo(vars.reduce((s, v) => s + v, 0) / 3, 5);
    expect(bn.num_batches_tracked!.item()).toBe(3);
  });

  it('pooling: max, average (padding counted or not), adaptive bins floor(i*in/out)..ceil((i+1)*in/out)', () => {
    const img = lr.tensor(seq(25, (i) => i), [1, 1, 5, 5]);
    expect(arr(new MaxPool2d({ kernelSize: 2 }).forward(img))).toEqual([6, 8, 16, 18]);
    expect(arr(new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }).forward(img))).toEqual([6, 8, 9, 16, 18, 19, 21, 23, 24]);
    expect(arr(new AvgPool2d({ kernelSize: 2 }).forward(img))).toEqual([3, 5, 13, 15]);
    // padded window at the corner: (0+1+5+6)/9 with the padding counted, /4 without
    expect(arr(new AvgPool2d({ kernelSize: 3, stride: 2, padding: 1 }).forward(img))[0]).toBeCloseTo(12 / 9, 5);
    expect(arr(new AvgPool2d({ kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }).forward(img))[0]).toBeCloseTo(3, 5);
    // 5 -> 2 bins: rows/cols [0,3) and [2,5)
    const bin = (r0: number, c0: number) => { let s = 0; for (let r = r0; r < r0 + 3; r++) for (let c = c0; c < c0 + 3; c++) s += r * 5 + c; return s / 9; };
    expectAllClose(arr(new AdaptiveAvgPool2d(2).forward(img)), [bin(0, 0), bin(0, 2), bin(2, 0), bin(2, 2)]);
    expect(new AdaptiveAvgPool2d([1, 3]).forward(img).shape).toEqual([1, 1, 1, 3]);
  });

  it('activations: ReLU, LeakyReLU, PReLU per channel, Sigmoid, Tanh, MFM', () => {
    const v = [-2, -0.5, 0, 0.5, 3, -7];
    const t = lr.tensor(v, [1, 2, 3, 1]);
    expect(arr(new ReLU().forward(t))).toEqual([0, 0, 0, 0.5, 3, 0]);
    expectAllClose(arr(new LeakyReLU(0.2).forward(t)), v.map((a) => (a > 0 ? a : 0.2 * a)));
    expectAllClose(arr(new LeakyReLU().forward(t)), v.map((a) => (a > 0 ? a : 0.01 * a)));
    const prelu = new PReLU(2);
    prelu.weight.assign(lr.tensor([0.1, 0.3]));
    expectAllClose(arr(prelu.forward(t)), v.map((a, i) => (a > 0 ? a : [0.1, 0.3][Math.floor(i / 3)] * a)));
    expectAllClose(arr(new Sigmoid().forward(t)), v.map((a) => 1 / (1 + Math.exp(-a))));
    expectAllClose(arr(new Tanh().forward(t)), v.map(Math.tanh));
    // MFM (LightCNN): max of the first and second half of the channels
    const mfm = new MFM().forward(t);
    expect(mfm.shape).toEqual([1, 1, 3, 1]);
    expect(arr(mfm)).toEqual([0.5, 3, 0]);
    expect(arr(new MFM().forward(lr.tensor([[1, 5, 4, 2]])))).toEqual([4, 5]);
    // PReLU's gradient for its slope: sum of the negative inputs of its channel
    const p = new PReLU(2);
    lr.sum(p.forward(t)).backward();
    expectAllClose(arr(p.weight.grad!), [-2.5, -7]);
  });

  it('Dropout: identity in eval; in training zeros with probability p and scales the rest by 1/(1-p)', () => {
    const d = new Dropout(0.25);
    const ones = lr.ones([4000]);
    lr.manualSeed(3);
    const y = arr(d.forward(ones));
    const zeros = y.filter((v) => v === 0).length;
    expect(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
    expect(zeros / 4000).toBeGreaterThan(0.22);
    expect(zeros / 4000).toBeLessThan(0.28);
    lr.manualSeed(3);
    expect(arr(d.forward(ones))).toEqual(y);
    d.eval();
    expect(arr(d.forward(ones)).every((v) => v === 1)).toBe(true);
  });

  it('Upsample (nearest), PixelShuffle, Flatten, Identity', () => {
    const t = lr.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(new Upsample({ scaleFactor: 2, mode: 'nearest' }).forward(t).toArray()).toEqual([[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]);
    // out[c, h*r + i, w*r + j] = in[c*r*r + i*r + j, h, w]
    const ps = lr.tensor(seq(2 * 4 * 2 * 3, (i) => i), [1, 8, 2, 3]);
    const y = new PixelShuffle(2).forward(ps);
    expect(y.shape).toEqual([1, 2, 4, 6]);
    const yd = arr(y);
    for (let c = 0; c < 2; c++)
      for (let h = 0; h < 4; h++)
        for (let w = 0; w < 6; w++) {
          const src = ((c * 4 + (h % 2) * 2 + (w % 2)) * 2 + Math.floor(h / 2)) * 3 + Math.floor(w / 2);
          expect(yd[(c * 4 + h) * 6 + w]).toBe(src);
        }
    expect(new Flatten().forward(ps).shape).toEqual([1, 48]);
    expect(new Flatten(2).forward(ps).shape).toEqual([1, 8, 6]);
    expect(arr(new Identity().forward(t))).toEqual([1, 2, 3, 4]);
  });

  it('ResidualBlock is x + scale * conv2(act(conv1(x))), with BN after each convolution when asked', () => {
    const block = new ResidualBlock(4, { residualScale: 0.1, activation: new LeakyReLU(0.2) });
    const input = x();
    const ref = lr.add(input, lr.mul(block.conv2.forward(lr.leakyRelu(block.conv1.forward(input), 0.2)), 0.1));
    expectAllClose(arr(block.forward(input)), arr(ref), 1e-5);
    const withBn = new ResidualBlock(4, { batchNorm: true });
    expect([...withBn.namedParameters()].map(([k]) => k)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight', 'bn2.weight', 'bn2.bias']);
    withBn.eval();
    // fresh BN in eval is x / sqrt(1 + eps)
    const s = 1 / Math.sqrt(1 + 1e-5);
    const refBn = lr.add(input, lr.mul(withBn.conv2.forward(lr.mul(lr.relu(withBn.conv1.forward(input)), s)), s));
    expectAllClose(arr(withBn.forward(input)), arr(refBn), 1e-5);
  });

  it('Sequential runs in order and names children 0, 1, ...', () => {
    const s = new Sequential(new Linear(3, 2), new ReLU(), new Linear(2, 1));
    expect(s.length).toBe(3);
    expect([...s.namedParameters()].map(([k]) => k)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    const input = lr.tensor([[1, -1, 2]]);
    const manual = (s.at(2) as Linear).forward(lr.relu((s.at(0) as Linear).forward(input)));
    expect(arr(s.forward(input))).toEqual(arr(manual));
  });

  it('chain and Sequential dispose each intermediate once the next layer has run, and keep the input, the result and the gradients', () => {
    const layers = [new Conv2d(2, 3, 3, { padding: 1 }), new ReLU(), new Identity(), new Conv2d(3, 1, 1)];
    const input = lr.tensor(Array.from({ length: 32 }, (_, i) => Math.sin(i)), [1, 2, 4, 4]).requiresGrad_();
    const seen: lr.Tensor[] = [];
    const spy = (h: lr.Tensor) => (seen.push(h), h);
    const out = chain(input, [layers[0], spy, layers[1], spy, layers[2], spy, layers[3]]);
    // Every intermediate went once the next layer had run (the identity's output, a view of
    // ReLU's, after the last conv).
    expect(seen.map((t) => t.isDisposed)).toEqual([true, true, true]);
    expect(input.isDisposed).toBe(false);
    // Same values and gradients as the layers applied one by one, intermediates kept.
    const manual = layers[3].forward(layers[1].forward(layers[0].forward(input)) as lr.Tensor) as lr.Tensor;
    expect(arr(out)).toEqual(arr(manual));
    lr.sum(out).backward();
    const viaChain = [input, ...layers[0].parameters(), ...layers[3].parameters()].map((t) => arr(t.grad!));
    [input, ...layers[0].parameters(), ...layers[3].parameters()].forEach((t) => t.zeroGrad());
    lr.sum(manual).backward();
    expect([input, ...layers[0].parameters(), ...layers[3].parameters()].map((t) => arr(t.grad!))).toEqual(viaChain);
    // Sequential holds no intermediate: only its result is new after a forward.
    const seq = new Sequential(...layers);
    const live = lr.memory().tensors;
    const y = lr.noGrad(() => seq.forward(input));
    expect(lr.memory().tensors).toBe(live + 1);
    expect(arr(y)).toEqual(arr(manual));
    // A layer that returns its input as the first step leaves it alone.
    const same = chain(input, [(h: lr.Tensor) => h]);
    expect(same).toBe(input);
    expect(input.isDisposed).toBe(false);
  });
});

describe('layer configs refuse unknown fields', () => {
  // A misspelt field (stide for stride) would otherwise build a layer with the default silently.
  it.each([
    ['Conv2d', () => new Conv2d(1, 1, 3, { stide: 2 } as never), 'stide'],
    ['ConvTranspose2d', () => new ConvTranspose2d(1, 1, 3, { outputPading: 1 } as never), 'outputPading'],
    ['BatchNorm2d', () => new BatchNorm2d(4, { momentom: 0.5 } as never), 'momentom'],
    ['ResidualBlock', () => new ResidualBlock(4, { batchnorm: true } as never), 'batchnorm'],
  ])('%s', (name, build, key) => {
    expect(build).toThrow(TypeError);
    expect(build).toThrow(`${name}: '${key}' must be one of the known config fields (`);
  });
  it('a config that is not an object is a TypeError naming it', () => {
    expect(() => new Conv2d(1, 1, 3, null as never)).toThrow("Conv2d: 'config' must be an object, got null");
    expect(() => new BatchNorm2d(4, [] as never)).toThrow("BatchNorm2d: 'config' must be an object, got array of length 0");
  });
  it('every documented field is still accepted', () => {
    const conv = new Conv2d(2, 4, 3, { stride: 2, padding: 1, dilation: 1, groups: 2, bias: false, activation: 'relu' });
    expect(conv.forward(lr.ones([1, 2, 8, 8])).shape).toEqual([1, 4, 4, 4]);
    const bn = new BatchNorm2d(4, { eps: 1e-3, momentum: null, affine: false, trackRunningStats: true });
    expect(bn.forward(lr.ones([2, 4, 2, 2])).shape).toEqual([2, 4, 2, 2]);
  });
});

describe('options and configs of nn functions, methods and classes refuse unknown keys', () => {
  // A misspelt key (momentom for momentum, optimiser for optimizer) would otherwise be dropped and the default used.
  const dir = mkdtempSync(join(tmpdir(), 'lrface-nn-keys-'));
  const torchFile = fileURLToPath(new URL('./fixtures/tiny_zip.pth', import.meta.url));
  const params = () => new Linear(2, 2).parameters();
  const checkpointOf = (m: Module) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.ckpt`);
    saveCheckpoint(file, { model: m, step: 0 });
    return file;
  };
  // [name in the message, what the object is called there, call with the given keys, every documented key]
  const cases: [string, string, (o: object) => unknown, object][] = [
    ['numParameters', 'option', (o) => new Linear(2, 2).numParameters(o), { trainable: true }],
    ['loadStateDict', 'option', (o) => { const m = new Linear(2, 2); m.loadStateDict(m.stateDict(), o); }, { strict: false, mapKey: (k: string) => k }],
    ['spectralNorm', 'option', (o) => spectralNorm(new Linear(2, 2), o), { name: 'weight', nPowerIterations: 2, eps: 1e-10, dim: 0 }],
    ['SpectralNorm', 'option', (o) => new SpectralNorm(new Linear(2, 2), o), { name: 'weight', nPowerIterations: 2, eps: 1e-10, dim: 0 }],
    ['loadTorchStateDict', 'option', (o) => loadTorchStateDict(torchFile, o), { key: 'model_state_dict' }],
    ['saveCheckpoint', 'parts field', (o) => saveCheckpoint(join(dir, 'parts.ckpt'), { model: new Linear(2, 2), step: 0, ...o }),
      (() => { const m = new Linear(2, 2); const opt = new SGD(m.parameters(), { lr: 0.1 }); return { optimizer: opt, scheduler: undefined, models: {}, optimizers: {}, schedulers: {}, extra: { epoch: 1 } }; })()],
    ['loadCheckpoint', 'parts field', (o) => { const m = new Linear(2, 2); loadCheckpoint(checkpointOf(m), { model: m, ...o }); }, { optimizer: undefined, scheduler: undefined, models: {}, optimizers: {}, schedulers: {} }],
    ['Trainer', 'option', (o) => { const m = new Linear(2, 2); return new Trainer({ model: m, optimizer: new SGD(m.parameters(), { lr: 0.1 }), data: [], ...o }); },
      { loss: () => lr.zeros([]), epochs: 1, maxSteps: 1, validate: () => ({}), validateEvery: 1, checkpointPath: join(dir, 't.ckpt'), checkpointEvery: 1, resume: false,
        metricsPath: join(dir, 'm.jsonl'), logEvery: 1, scheduleEvery: 'step', batchSize: 1, models: {}, optimizers: {}, schedulers: {}, extraState: { save: () => ({}), load: () => {} } }],
    ['Linear', 'config field', (o) => new Linear(2, 2, o), { bias: false }],
    ['MaxPool2d', 'option', (o) => new MaxPool2d({ kernelSize: 2, ...o }), { stride: 2, padding: 1, dilation: 1, ceilMode: true }],
    ['AvgPool2d', 'option', (o) => new AvgPool2d({ kernelSize: 2, ...o }), { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }],
    ['Upsample', 'option', (o) => new Upsample({ ...o }), { scaleFactor: 2, mode: 'bilinear', alignCorners: true }],
    ['MFMConv2d', 'config field', (o) => new MFMConv2d(1, 2, 3, o), { stride: 2, padding: 0 }],
    ['MFMGroup', 'config field', (o) => new MFMGroup(1, 2, 3, o), { stride: 2, padding: 0 }],
    ['kaimingUniform_', 'option', (o) => kaimingUniform_(lr.zeros([2, 2]), o), { a: 0.1, mode: 'fan_out', nonlinearity: 'relu' }],
    ['kaimingNormal_', 'option', (o) => kaimingNormal_(lr.zeros([2, 2]), o), { a: 0.1, mode: 'fan_out', nonlinearity: 'relu' }],
    ['charbonnierLoss', 'option', (o) => charbonnierLoss(lr.zeros([2]), lr.ones([2]), o), { eps: 0.1, reduction: 'sum' }],
    ['crossEntropy', 'option', (o) => crossEntropy(lr.zeros([2, 3]), lr.tensor([0, 2], [2], 'int32'), o), { reduction: 'none', labelSmoothing: 0.1 }],
    ['SGD', 'option', (o) => new SGD(params(), { lr: 0.1, ...o }), { momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: true }],
    ['Adam', 'option', (o) => new Adam(params(), o), { lr: 0.1, betas: [0.5, 0.9], eps: 1e-6, weightDecay: 1e-4 }],
    ['AdamW', 'option', (o) => new AdamW(params(), o), { lr: 0.1, betas: [0.5, 0.9], eps: 1e-6, weightDecay: 1e-4 }],
  ];
  it.each(cases)('%s names itself and the misspelt key', (name, what, call) => {
    expect(() => call({ momentom: 0.5 })).toThrow(TypeError);
    expect(() => call({ momentom: 0.5 })).toThrow(`${name}: 'momentom' must be one of the known ${what}s (`);
  });
  it.each(cases)('%s still takes every documented key', (_name, _what, call, documented) => {
    expect(() => call(documented)).not.toThrow();
  });
  it('the checked keys still take effect', () => {
    const m = new Linear(3, 2, { bias: false });
    expect(m.bias).toBe(null);
    expect(m.numParameters({ trainable: true })).toBe(6);
    const w = lr.tensor([[1, -1], [2, 0]]);
    const loss = crossEntropy(w, lr.tensor([0, 1], [2], 'int32'), { reduction: 'none' });
    // -log softmax by hand: row 0 picks 1 of (1, -1), row 1 picks 0 of (2, 0).
    expectAllClose(arr(loss), [Math.log(1 + Math.exp(-2)), 2 + Math.log(1 + Math.exp(-2))]);
  });
});
