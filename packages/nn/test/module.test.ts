import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Flatten, LeakyReLU, Linear, MFM, MaxPool2d, Module,
  PixelShuffle, PReLU, ReLU, ResidualBlock, Sequential, Sigmoid, Tanh, Upsample, calculateGain, fans, kaimingNormal_, kaimingUniform_,
  spectralNorm, xavierNormal_, xavierUniform_,
} from '../src/index.js';

class Tiny extends Module {
  declare features: Sequential;
  declare head: Linear;
  constructor() {
    super();
    this.registerModule('features', new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new AdaptiveAvgPool2d(1), new Flatten()));
    this.registerModule('head', new Linear(4, 3));
  }
  forward(x: lr.Tensor): lr.Tensor {
    return this.head.forward(this.features.forward(x));
  }
}

describe('Module', () => {
  it('names parameters and buffers by dotted path, as PyTorch', () => {
    const m = new Tiny();
    expect([...m.namedParameters()].map(([k]) => k)).toEqual(['features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias', 'head.weight', 'head.bias']);
    expect([...m.namedBuffers()].map(([k]) => k)).toEqual(['features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked']);
    expect(m.numParameters()).toBe(4 * 9 + 4 + 4 + 4 + 12 + 3);
    m.freeze();
    expect(m.numParameters({ trainable: true })).toBe(0);
    m.unfreeze();
    expect([...m.namedModules()].map(([k]) => k)).toEqual(['', 'features', 'features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'head']);
    m.eval();
    expect(m.features.at(1).training).toBe(false);
    m.train();
    expect(m.head.training).toBe(true);
    const seen: string[] = [];
    m.apply((x) => seen.push(x.constructor.name));
    expect(seen[seen.length - 1]).toBe('Tiny');
    expect(m.to('cpu')).toBe(m); // other devices: device.test.ts
  });

  it('loads state dicts strictly, naming missing, unexpected and mismatched keys', () => {
    const a = new Tiny();
    const b = new Tiny();
    b.loadStateDict(a.stateDict());
    expect(Array.from(b.head.weight.data())).toEqual(Array.from(a.head.weight.data()));
    const partial = new Map(a.stateDict());
    partial.delete('head.bias');
    partial.set('extra.weight', lr.zeros([1]));
    expect(() => b.loadStateDict(partial)).toThrow(/missing keys: head\.bias.*unexpected keys: extra\.weight/);
    expect(b.loadStateDict(partial, { strict: false })).toEqual({ missingKeys: ['head.bias'], unexpectedKeys: ['extra.weight'] });
    const wrong = new Map(a.stateDict());
    wrong.set('head.weight', lr.zeros([3, 5]));
    expect(() => b.loadStateDict(wrong, { strict: false })).toThrow(/head\.weight: expected \[3,4\], got \[3,5\]/);
    const prefixed = new Map([...a.stateDict()].map(([k, v]) => [`module.${k}`, v]));
    b.loadStateDict(prefixed, { mapKey: (k) => k.replace(/^module\./, '') });
  });

  it('disposed tells whether any of its tensors was freed, here or through a parent', () => {
    const inner = new Linear(3, 2);
    const outer = new Sequential(new Linear(2, 3), inner);
    expect(outer.disposed).toBe(false);
    inner.weight.dispose();
    expect(inner.disposed).toBe(true);
    expect(outer.disposed).toBe(true);
    const other = new Linear(2, 2);
    other.dispose();
    expect(other.disposed).toBe(true);
  });

  it('loadStateDict rejects a state that is not a Map or an object of tensors, naming it', () => {
    const m = new Tiny();
    for (const state of [42, 'weights.safetensors', null, undefined, [m.head.weight], m.head.weight]) {
      expect(() => m.loadStateDict(state as never)).toThrow(TypeError);
      expect(() => m.loadStateDict(state as never)).toThrow(/^loadStateDict: 'state' must be a state dict \(a Map or an object of tensors by name\), got /);
    }
    expect(() => m.loadStateDict(42 as never)).toThrow(/got 42$/);
    // A plain object of tensors still loads.
    m.loadStateDict(Object.fromEntries(new Tiny().stateDict()));
  });

  it('runs every layer forward and backward', () => {
    lr.manualSeed(0);
    const x = lr.randn([2, 4, 8, 8]).requiresGrad_();
    const layers: [Module, number[]][] = [
      [new Conv2d(4, 6, 3, { stride: 2, padding: 1 }), [2, 6, 4, 4]],
      [new ConvTranspose2d(4, 2, 4, { stride: 2, padding: 1 }), [2, 2, 16, 16]],
      [new BatchNorm2d(4), [2, 4, 8, 8]],
      [new MaxPool2d({ kernelSize: 2 }), [2, 4, 4, 4]],
      [new AvgPool2d({ kernelSize: 2 }), [2, 4, 4, 4]],
      [new AdaptiveAvgPool2d([3, 3]), [2, 4, 3, 3]],
      [new ReLU(), [2, 4, 8, 8]],
      [new LeakyReLU(0.2), [2, 4, 8, 8]],
      [new PReLU(4), [2, 4, 8, 8]],
      [new Sigmoid(), [2, 4, 8, 8]],
      [new Tanh(), [2, 4, 8, 8]],
      [new MFM(), [2, 2, 8, 8]],
      [new Dropout(0.5), [2, 4, 8, 8]],
      [new Upsample({ scaleFactor: 2, mode: 'bilinear' }), [2, 4, 16, 16]],
      [new PixelShuffle(2), [2, 1, 16, 16]],
      [new ResidualBlock(4, { batchNorm: true }), [2, 4, 8, 8]],
      [new Sequential(new Flatten(), new Linear(256, 5)), [2, 5]],
    ];
    for (const [layer, shape] of layers) {
      const y = layer.forward(x) as lr.Tensor;
      expect(y.shape, layer.constructor.name).toEqual(shape);
      lr.sum(y).backward();
      expect(x.grad, layer.constructor.name).not.toBeNull();
      for (const p of layer.parameters()) expect(p.grad, `${layer.constructor.name} parameter`).not.toBeNull();
      x.zeroGrad();
      layer.apply((m) => m.parameters().forEach((p) => p.zeroGrad()));
    }
  });

  it('BatchNorm2d tracks batches and switches to running statistics in eval', () => {
    const bn = new BatchNorm2d(2);
    const x = lr.tensor(Float32Array.from({ length: 16 }, (_, i) => i), [2, 2, 2, 2]);
    bn.forward(x);
    expect(bn.num_batches_tracked!.item()).toBe(1);
    const mean = Array.from(bn.running_mean!.data());
    expect(mean[0]).toBeCloseTo(0.1 * 5.5, 5); // channel 0: values 0-3 and 8-11
    bn.eval();
    const y = bn.forward(x).data();
    const rv = bn.running_var!.data();
    expect(y[0]).toBeCloseTo((0 - mean[0]) / Math.sqrt(rv[0] + 1e-5), 4);
  });
});

describe('init', () => {
  it('follows torch.nn.init bounds and variances', () => {
    lr.manualSeed(7);
    const w = lr.zeros([256, 128, 3, 3]);
    expect(fans(w)).toEqual([128 * 9, 256 * 9]);
    const stats = (t: lr.Tensor) => {
      const d = t.data();
      let s = 0, s2 = 0, mx = 0;
      for (const v of d) { s += v; s2 += v * v; mx = Math.max(mx, Math.abs(v)); }
      return { mean: s / d.length, std: Math.sqrt(s2 / d.length - (s / d.length) ** 2), max: mx };
    };
    kaimingUniform_(w, { nonlinearity: 'relu' });
    let st = stats(w);
    const bound = Math.SQRT2 * Math.sqrt(3 / (128 * 9));
    expect(st.max).toBeLessThanOrEqual(bound);
    expect(st.max).toBeGreaterThan(bound * 0.99);
    kaimingNormal_(w, { nonlinearity: 'relu', mode: 'fan_out' });
    st = stats(w);
    expect(st.std).toBeCloseTo(Math.SQRT2 / Math.sqrt(256 * 9), 3);
    xavierUniform_(w);
    expect(stats(w).max).toBeLessThanOrEqual(Math.sqrt(6 / (128 * 9 + 256 * 9)));
    xavierNormal_(w, 2);
    expect(stats(w).std).toBeCloseTo(2 * Math.sqrt(2 / (128 * 9 + 256 * 9)), 3);
    expect(calculateGain('leaky_relu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 10);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3, 10);
  });
});

describe('spectralNorm', () => {
  it('divides the weight by its largest singular value (power iteration converges)', () => {
    lr.manualSeed(3);
    const conv = spectralNorm(new Conv2d(3, 4, 3, { padding: 1 }));
    expect([...conv.namedParameters()].map(([k]) => k)).toEqual(['bias', 'weight_orig']);
    expect([...conv.namedBuffers()].map(([k]) => k)).toEqual(['weight_u', 'weight_v']);
    const x = lr.randn([1, 3, 5, 5]);
    for (let i = 0; i < 30; i++) lr.scope(() => conv.forward(x));
    // Reference sigma: power iteration in plain JS on the 4 x 27 matrix.
    const w = conv.weight_orig.data();
    let v = new Float64Array(27).fill(1);
    let sigma = 0;
    for (let it = 0; it < 200; it++) {
      const u = new Float64Array(4);
      for (let r = 0; r < 4; r++) for (let c = 0; c < 27; c++) u[r] += w[r * 27 + c] * v[c];
      const nv = new Float64Array(27);
      for (let r = 0; r < 4; r++) for (let c = 0; c < 27; c++) nv[c] += w[r * 27 + c] * u[r];
      const norm = Math.hypot(...nv);
      v = nv.map((t) => t / norm);
      sigma = Math.sqrt(norm);
    }
    const y = conv.forward(x);
    const plain = lr.conv2d(x, lr.div(conv.weight_orig, sigma), conv.bias!, { padding: 1 });
    const a = y.data(), b = plain.data();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 3);
    lr.sum(conv.forward(x)).backward();
    expect(conv.weight_orig.grad).not.toBeNull();
  });
});
