// The papers' blocks: values against compositions of plain layers, and state names as in the
// reference PyTorch code (so released weights load by name).
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Conv2d, DiscriminatorResBlock, Linear, MFMConv2d, MFMGroup, MFMLinear, MFMResBlock, PReLU, ResidualBlock, SpectralNorm } from '../src/index.js';

const arr = (t: lr.Tensor) => Array.from(t.data());
function near(a: number[], b: number[], tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i]), `element ${i}: ${v} vs ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]))));
}
/** max of the channel halves of [N, 2C, ...] in plain JS */
function halvesMax(t: lr.Tensor): number[] {
  const d = arr(t);
  const [n, c2] = t.shape;
  const inner = t.size / (n * c2);
  const c = c2 / 2;
  const out: number[] = [];
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let i = 0; i < inner; i++) out.push(Math.max(d[(b * c2 + k) * inner + i], d[(b * c2 + c + k) * inner + i]));
  return out;
}

describe("LightCNN's MFM units", () => {
  lr.manualSeed(30);
  const x = lr.randn([2, 4, 6, 5]);
  it('MFMConv2d and MFMLinear: filter to twice the outputs, max of the two halves', () => {
    const m = new MFMConv2d(4, 3, 3, { stride: 1, padding: 1 });
    expect([...m.stateDict().keys()]).toEqual(['filter.weight', 'filter.bias']);
    expect(m.filter.weight.shape).toEqual([6, 4, 3, 3]);
    const y = m.forward(x);
    expect(y.shape).toEqual([2, 3, 6, 5]);
    expect(arr(y)).toEqual(halvesMax(m.filter.forward(x)));
    const fc = new MFMLinear(10, 4);
    const v = lr.randn([3, 10]);
    expect(fc.filter.weight.shape).toEqual([8, 10]);
    expect(arr(fc.forward(v))).toEqual(halvesMax(fc.filter.forward(v)));
  });
  it('MFMGroup (1x1 then kxk) and MFMResBlock (two 3x3 units plus identity), named as in light_cnn.py', () => {
    const g = new MFMGroup(4, 8, 3, { stride: 1, padding: 1 });
    expect([...g.stateDict().keys()]).toEqual(['conv_a.filter.weight', 'conv_a.filter.bias', 'conv.filter.weight', 'conv.filter.bias']);
    expect(g.conv_a.filter.weight.shape).toEqual([8, 4, 1, 1]);
    expect(arr(g.forward(x))).toEqual(arr(g.conv.forward(g.conv_a.forward(x))));
    const r = new MFMResBlock(4);
    expect([...r.stateDict().keys()]).toEqual(['conv1.filter.weight', 'conv1.filter.bias', 'conv2.filter.weight', 'conv2.filter.bias']);
    near(arr(r.forward(x)), arr(lr.add(r.conv2.forward(r.conv1.forward(x)), x)));
  });
});

describe('ResidualBlock variants of the papers', () => {
  it('FRNET / SphereFace unit: x + PReLU(conv2(PReLU(conv1(x)))) with biases, two separate PReLUs', () => {
    lr.manualSeed(31);
    const block = new ResidualBlock(3, { activation: new PReLU(3), postActivation: new PReLU(3) });
    expect([...block.stateDict().keys()]).toEqual(['conv1.weight', 'conv1.bias', 'act.weight', 'conv2.weight', 'conv2.bias', 'post.weight']);
    (block.post as PReLU).weight.assign(lr.tensor([0.1, 0.5, 0.9]));
    const x = lr.randn([1, 3, 4, 4]);
    const ref = lr.add(x, lr.prelu(block.conv2.forward(lr.prelu(block.conv1.forward(x), (block.act as PReLU).weight)), lr.tensor([0.1, 0.5, 0.9])));
    near(arr(block.forward(x)), arr(ref));
    expect(new ResidualBlock(2, { batchNorm: true, bias: true }).conv1.bias).not.toBeNull();
    expect(() => new ResidualBlock(2, { kernelSize: 4 })).toThrow(/ResidualBlock: 'kernelSize'/);
  });
});

describe('SN-ResNet discriminator block (D1)', () => {
  lr.manualSeed(32);
  const x = lr.randn([2, 3, 8, 8]);

  it('the first block: [conv1, ReLU, conv2, AvgPool2] + [AvgPool2, conv1x1], spectrally normalised, reference names', () => {
    const b = new DiscriminatorResBlock(3, 6, { first: true });
    expect([...b.stateDict().keys()]).toEqual([
      'conv1.bias', 'conv1.weight_bar', 'conv1.weight_u', 'conv1.weight_v',
      'conv2.bias', 'conv2.weight_bar', 'conv2.weight_u', 'conv2.weight_v',
      'bypass_conv.bias', 'bypass_conv.weight_bar', 'bypass_conv.weight_u', 'bypass_conv.weight_v',
      'model.0.module.bias', 'model.0.module.weight_bar', 'model.0.module.weight_u', 'model.0.module.weight_v',
      'model.2.module.bias', 'model.2.module.weight_bar', 'model.2.module.weight_u', 'model.2.module.weight_v',
      'bypass.1.module.bias', 'bypass.1.module.weight_bar', 'bypass.1.module.weight_u', 'bypass.1.module.weight_v',
    ]);
    expect(b.parameters()).toHaveLength(6); // each convolution's tensors once
    b.eval(); // fixed u, v: compare with plain convolutions by W / sigma
    const w = (m: SpectralNorm) => {
      const conv = m.module as Conv2d & { weight_bar: lr.Tensor; weight_u: lr.Tensor; weight_v: lr.Tensor };
      const o = conv.weight_bar.shape[0];
      const sigma = lr.sum(lr.mul(conv.weight_u, lr.matmul(lr.reshape(conv.weight_bar, [o, conv.weight_bar.size / o]), conv.weight_v)));
      return { weight: lr.div(conv.weight_bar, sigma), bias: conv.bias! };
    };
    const [c1, c2, cb] = [w(b.model.at(0) as SpectralNorm), w(b.model.at(2) as SpectralNorm), w(b.bypass.at(1) as SpectralNorm)];
    const pool = (t: lr.Tensor) => lr.avgPool2d(t, { kernelSize: 2, stride: 2 });
    const main = pool(lr.conv2d(lr.relu(lr.conv2d(x, c1.weight, c1.bias, { padding: 1 })), c2.weight, c2.bias, { padding: 1 }));
    const short = lr.conv2d(pool(x), cb.weight, cb.bias);
    const y = b.forward(x);
    expect(y.shape).toEqual([2, 6, 4, 4]);
    near(arr(y), arr(lr.add(main, short)), 1e-4);
  });

  it('later blocks: ReLU first; identity shortcut, or conv1x1 then AvgPool2 when downsampling', () => {
    const same = new DiscriminatorResBlock(3, 3, { spectral: false });
    expect([...same.stateDict().keys()]).toEqual(['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'model.1.weight', 'model.1.bias', 'model.3.weight', 'model.3.bias']);
    const ref = lr.add(same.conv2.forward(lr.relu(same.conv1.forward(lr.relu(x)))), x);
    near(arr(same.forward(x)), arr(ref));
    const down = new DiscriminatorResBlock(3, 5, { downsample: true, spectral: false });
    expect([...down.stateDict().keys()].slice(-4)).toEqual(['bypass.0.weight', 'bypass.0.bias', 'bypass_conv.weight', 'bypass_conv.bias']);
    const pool = (t: lr.Tensor) => lr.avgPool2d(t, { kernelSize: 2, stride: 2 });
    const refDown = lr.add(pool(down.conv2.forward(lr.relu(down.conv1.forward(lr.relu(x))))), pool(down.bypass_conv!.forward(x)));
    near(arr(down.forward(x)), arr(refDown));
    expect(() => new DiscriminatorResBlock(3, 4)).toThrow(/DiscriminatorResBlock: 'outChannels'/);
  });

  it('Xavier-uniform init with gain 1 on the main convolutions and sqrt 2 on the shortcut', () => {
    lr.manualSeed(33);
    const b = new DiscriminatorResBlock(64, 64, { downsample: true, spectral: false });
    const maxAbs = (t: lr.Tensor) => arr(t).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const bound = (fanIn: number, fanOut: number, gain: number) => gain * Math.sqrt(6 / (fanIn + fanOut));
    expect(maxAbs(b.conv1.weight)).toBeLessThanOrEqual(bound(64 * 9, 64 * 9, 1));
    expect(maxAbs(b.conv1.weight)).toBeGreaterThan(0.98 * bound(64 * 9, 64 * 9, 1));
    expect(maxAbs(b.bypass_conv!.weight)).toBeLessThanOrEqual(bound(64, 64, Math.SQRT2));
    expect(maxAbs(b.bypass_conv!.weight)).toBeGreaterThan(0.95 * bound(64, 64, Math.SQRT2));
  });

  it('the wrapper form updates u in training and trains through sigma', () => {
    lr.manualSeed(34);
    const sn = new SpectralNorm(new Linear(4, 3));
    const lin = sn.module as Linear & { weight_u: lr.Tensor; weight_bar: lr.Tensor };
    const u0 = arr(lin.weight_u);
    const out = sn.forward(lr.ones([2, 4])) as lr.Tensor;
    expect(arr(lin.weight_u)).not.toEqual(u0);
    lr.sum(out).backward();
    expect(lin.weight_bar.grad).not.toBeNull();
    expect(() => new SpectralNorm(sn.module)).toThrow(/SpectralNorm: 'module' has no parameter 'weight'/);
  });
});

describe('DiscriminatorResBlock config', () => {
  it('refuses an unknown field, naming it', () => {
    const build = () => new DiscriminatorResBlock(4, 8, { downSample: true } as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow("DiscriminatorResBlock: 'downSample' must be one of the known config fields (downsample, first, spectral)");
  });
});
