import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { BicubicIdentity, Drcn, InceptionModule, PLACEHOLDER_INCEPTION, Srcnn, Srinc, Srnet, Vdsr, createNetwork, cropBorder } from '../src/index.js';

const input = (n: number, c: number, h: number, w: number, seed = 3) => {
  lr.manualSeed(seed);
  return lr.rand([n, c, h, w]);
};

describe('SRCNN', () => {
  it('has the 9-1-5 and 9-5-5 layer shapes and loses 6 / 8 px per side with valid padding', () => {
    const a = new Srcnn({ padding: 'valid' });
    expect(a.conv1.weight.shape).toEqual([64, 1, 9, 9]);
    expect(a.conv2.weight.shape).toEqual([32, 64, 1, 1]);
    expect(a.conv3.weight.shape).toEqual([1, 32, 5, 5]);
    expect(a.forward(input(2, 1, 33, 33)).shape).toEqual([2, 1, 21, 21]);
    const b = new Srcnn({ kernels: [9, 5, 5], padding: 'valid' });
    expect(b.conv2.weight.shape).toEqual([32, 64, 5, 5]);
    expect(b.forward(input(1, 1, 33, 33)).shape).toEqual([1, 1, 17, 17]);
    expect(b.border).toBe(8);
    b.setPadding('same');
    expect(b.border).toBe(0);
    expect(b.forward(input(1, 1, 20, 24)).shape).toEqual([1, 1, 20, 24]);
  });

  it('initialises weights with N(0, 0.001) and zero biases (the paper)', () => {
    lr.manualSeed(1);
    const net = new Srcnn();
    const w = net.conv1.weight.data();
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.0009);
    expect(std).toBeLessThan(0.0011);
    expect([...net.conv3.bias!.data()]).toEqual([0]);
  });

  it('valid output equals the centre of the same-padded output', () => {
    const net = new Srcnn({ padding: 'same' });
    const x = input(1, 1, 30, 30);
    const same = net.forward(x);
    net.setPadding('valid');
    const valid = net.forward(x);
    const centre = cropBorder(same, 6).data();
    valid.data().forEach((v, i) => expect(v).toBeCloseTo(centre[i], 5));
  });

  it('rejects bad configs and inputs', () => {
    expect(() => new Srcnn({ kernels: [9, 2, 5] })).toThrow(/'kernels\[1\]' must be an odd kernel size/);
    expect(() => new Srcnn({ features: [64] as unknown as [number, number] })).toThrow(TypeError);
    expect(() => new Srcnn({ padding: 'full' as 'same' })).toThrow(/'padding'/);
    expect(() => new Srcnn().forward(input(1, 3, 8, 8))).toThrow(/Srcnn.forward: 'x' must be shape \[N, 1, H, W\]/);
    expect(() => new Srcnn().forward('x' as unknown as lr.Tensor)).toThrow(TypeError);
  });
});

describe('SRNET', () => {
  it('follows Table 1 (9x9x64, 1x1x32, 1x1x3, pad 0) on RGB normalised as (x - 127.5) / 128', () => {
    const net = new Srnet({ padding: 'valid' });
    expect(net.conv1.weight.shape).toEqual([64, 3, 9, 9]);
    expect(net.conv2.weight.shape).toEqual([32, 64, 1, 1]);
    expect(net.conv3.weight.shape).toEqual([3, 32, 1, 1]);
    expect(net.forward(input(1, 3, 124, 108)).shape).toEqual([1, 3, 116, 100]);
    // The 5x5 alternative makes 124x108 -> 112x96, FRNET's input.
    expect(new Srnet({ kernels: [9, 1, 5], padding: 'valid' }).forward(input(1, 3, 124, 108)).shape).toEqual([1, 3, 112, 96]);
  });

  it('applies the normalisation: zero weights give the bias mapped back to [0, 1]', () => {
    const net = new Srnet({ kernels: [1, 1, 1] });
    for (const p of net.parameters()) p.assign(new Float32Array(p.size));
    net.conv3.bias!.assign(Float32Array.from([0, 1, -1]));
    const out = net.forward(input(1, 3, 2, 2)).data();
    // out = (b * 128 + 127.5) / 255
    expect(out[0]).toBeCloseTo(127.5 / 255, 6);
    expect(out[4]).toBeCloseTo((128 + 127.5) / 255, 6);
    expect(out[8]).toBeCloseTo((-128 + 127.5) / 255, 6);
  });
});

describe('VDSR', () => {
  it('has 20 convs with the public PyTorch names and a global residual', () => {
    const net = new Vdsr();
    const keys = [...net.stateDict().keys()];
    expect(keys).toHaveLength(20);
    expect(keys).toContain('input.weight');
    expect(keys).toContain('residual_layer.17.conv.weight');
    expect(keys).toContain('output.weight');
    expect(net.receptiveRadius).toBe(20);
    // Zeroing the last conv leaves the residual: output = input.
    net.output.weight.assign(new Float32Array(net.output.weight.size));
    const x = input(1, 1, 10, 12);
    expect([...net.forward(x).data()]).toEqual([...x.data()]);
  });

  it('rejects a depth below 2', () => {
    expect(() => new Vdsr({ depth: 1 })).toThrow(/'depth' must be >= 2/);
  });
});

describe('DRCN', () => {
  it('shares one recursive conv, initialised to the identity, and averages D predictions with learnt weights', () => {
    const net = new Drcn({ features: 8, recursions: 4 });
    const params = [...net.stateDict().keys()];
    expect(params.filter((k) => k.startsWith('recursive.'))).toEqual(['recursive.weight', 'recursive.bias']);
    const w = net.recursive.weight.data();
    expect(w[(3 * 8 + 3) * 9 + 4]).toBe(1);
    expect(w.reduce((s, v) => s + v, 0)).toBe(8);
    expect([...net.ensemble_weights.data()]).toEqual([0.25, 0.25, 0.25, 0.25]);
    const x = input(2, 1, 9, 9);
    const outs = net.intermediate(x);
    expect(outs).toHaveLength(4);
    // With ReLU features >= 0 the identity recursion leaves H unchanged: all predictions equal.
    const a = outs[0].data(), b = outs[3].data();
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5));
    // The output is the weighted sum of the intermediate predictions.
    net.ensemble_weights.assign(Float32Array.from([0.1, 0.2, 0.3, 0.4]));
    const out = net.forward(x).data();
    out.forEach((v, i) => expect(v).toBeCloseTo(a[i], 5));
    expect(net.receptiveRadius).toBe(8);
  });
});

describe('SRINC', () => {
  it('stacks 19 data-driven inception modules after a 128x3x3 conv and ends in one channel plus the input', () => {
    const net = new Srinc();
    expect(net.first.weight.shape).toEqual([128, 1, 3, 3]);
    expect(net.inception.length).toBe(19);
    expect(net.last.weight.shape).toEqual([1, 128, 3, 3]);
    // Radius: first 3x3 (1) + 19 modules x the 1x1->5x5 branch (2) + last 3x3 (1).
    expect(net.receptiveRadius).toBe(1 + 19 * 2 + 1);
    expect(net.arch).toBe('srinc');
    expect(new Srinc({ scales: [2, 3, 4] }).arch).toBe('srinc-f');
  });

  it('builds modules from a branch table: widths add up, pooling branches work, output keeps the size', () => {
    const plan = [[{ conv: 1, out: 5 }], [{ maxPool: 3 }, { conv: 3, out: 7 }]];
    const m = new InceptionModule(4, plan);
    expect(m.outChannels).toBe(12);
    expect(m.radius).toBe(2);
    expect(m.forward(input(1, 4, 6, 6)).shape).toEqual([1, 12, 6, 6]);
    const net = new Srinc({ features: 8, modules: 2, module: plan, lastKernel: 5 });
    expect(net.forward(input(1, 1, 11, 13)).shape).toEqual([1, 1, 11, 13]);
    expect(net.last.weight.shape).toEqual([1, 12, 5, 5]);
    // No ReLU after the last conv and the addition: negative residuals pass through.
    net.last.weight.assign(new Float32Array(net.last.weight.size));
    net.last.bias!.assign(Float32Array.from([-0.5]));
    const x = input(1, 1, 5, 5);
    net.forward(x).data().forEach((v, i) => expect(v).toBeCloseTo(x.data()[i] - 0.5, 6));
    expect(PLACEHOLDER_INCEPTION.length).toBe(4);
  });

  it('rejects malformed branch tables', () => {
    expect(() => new Srinc({ module: [] })).toThrow(/'module' must be a non-empty array/);
    expect(() => new Srinc({ module: [[{ conv: 2, out: 4 }]] })).toThrow(/'module\[0\]\[0\].conv' must be an odd kernel size/);
    expect(() => new Srinc({ module: [[{ maxPool: 3 }]] })).toThrow(/at least one conv/);
    expect(() => new Srinc({ module: [[{ pool: 3 } as never]] })).toThrow(TypeError);
    expect(() => new Srinc({ scales: [] })).toThrow(/'scales'/);
  });
});

describe('createNetwork', () => {
  it('builds every registered architecture and rejects unknown ones', () => {
    expect(createNetwork('bicubic')).toBeInstanceOf(BicubicIdentity);
    expect(createNetwork('srcnn')).toBeInstanceOf(Srcnn);
    expect(createNetwork('srnet')).toBeInstanceOf(Srnet);
    expect(createNetwork('vdsr', { depth: 3 })).toBeInstanceOf(Vdsr);
    expect(createNetwork('drcn', { features: 4, recursions: 2 })).toBeInstanceOf(Drcn);
    expect((createNetwork('srinc-f', { features: 4, modules: 1 }) as Srinc).config.scales).toEqual([2, 3, 4]);
    expect(() => createNetwork('edsr' as 'vdsr')).toThrow(/createNetwork: 'arch' must be one of/);
  });
});

describe('model configs refuse unknown fields', () => {
  // A misspelt field (feature for features) would otherwise build the default network silently.
  it.each([
    ['Srcnn', () => new Srcnn({ kernel: [9, 1, 5] } as never), 'kernel'],
    ['Srnet', () => new Srnet({ channel: 1 } as never), 'channel'],
    ['Vdsr', () => new Vdsr({ layers: 10 } as never), 'layers'],
    ['Drcn', () => new Drcn({ recursion: 4 } as never), 'recursion'],
    ['Srinc', () => new Srinc({ feature: 16 } as never), 'feature'],
    ['Vdsr', () => createNetwork('vdsr', { dept: 4 }), 'dept'],
  ])('%s', (name, build, key) => {
    expect(build).toThrow(TypeError);
    expect(build).toThrow(`${name}: '${key}' must be one of the known config fields (`);
  });
  it('a config that is not an object is a TypeError naming it', () => {
    expect(() => new Vdsr(null as never)).toThrow("Vdsr: 'config' must be an object, got null");
  });
});
