import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { maxAbsDiff } from '@lrface/test-data';
import { Srnet } from '@lrface/sr';
import { Frnet, JointHallucinationRecognition, LightCnn29, LightCnn9, RecognitionTrainer, ResNet29, createRecognitionNetwork } from '../src/index.js';

function shapes(net: { stateDict(): Map<string, lr.Tensor> }): Record<string, number[]> {
  return Object.fromEntries([...net.stateDict()].map(([k, v]) => [k, [...v.shape]]));
}

describe('Frnet', () => {
  it("follows caffe-face's table: a 32-64 stem, units [1, 2, 5, 3], fc5 10240 -> 512 for 112x96 input", () => {
    const net = new Frnet({ numClasses: 10 });
    const s = shapes(net);
    expect(net.featureMapSize).toEqual([5, 4]);
    expect(s['conv1a.weight']).toEqual([32, 3, 3, 3]);
    expect(s['conv1b.weight']).toEqual([64, 32, 3, 3]);
    expect(s['prelu1b.weight']).toEqual([64]);
    expect(s['res2.0.conv1.weight']).toEqual([64, 64, 3, 3]);
    expect(s['res2.0.act.weight']).toEqual([64]);
    expect(s['res2.0.post.weight']).toEqual([64]);
    expect(s['res2.1.conv1.weight']).toBeUndefined();
    expect(s['res3.1.conv2.weight']).toEqual([128, 128, 3, 3]);
    expect(s['res4.4.conv2.weight']).toEqual([256, 256, 3, 3]);
    expect(s['res4.5.conv2.weight']).toBeUndefined();
    expect(s['res5.2.conv1.weight']).toEqual([512, 512, 3, 3]);
    expect(s['conv4.weight']).toEqual([512, 256, 3, 3]);
    expect(s['fc5.weight']).toEqual([512, 10240]);
    expect(s['fc6.weight']).toEqual([10, 512]);
    // Parameters counted from the table: convs with biases, per-channel PReLUs (two per unit).
    const conv = (i: number, o: number) => i * o * 9 + o;
    const unit = (c: number) => 2 * conv(c, c) + 2 * c;
    const expected =
      conv(3, 32) + 32 + conv(32, 64) + 64 + unit(64) +
      conv(64, 128) + 128 + 2 * unit(128) +
      conv(128, 256) + 256 + 5 * unit(256) +
      conv(256, 512) + 512 + 3 * unit(512) +
      10240 * 512 + 512 + 512 * 10 + 10;
    expect(net.numParameters()).toBe(expected);
    net.dispose();
  });

  it('maps [N, 3, 112, 96] faces to [N, 512] features and the head to [N, classes] logits', () => {
    lr.manualSeed(3);
    const net = new Frnet({ numClasses: 7 }).eval();
    const x = lr.rand([2, 3, 112, 96]);
    const f = net.forward(x);
    expect(f.shape).toEqual([2, 512]);
    expect(Array.from(f.data()).every(Number.isFinite)).toBe(true);
    expect(net.classify(f).shape).toEqual([2, 7]);
    net.dispose();
  });

  it('computes what the layer table says, against the same weights applied op by op', () => {
    lr.manualSeed(5);
    const net = new Frnet({ inputSize: [48, 50], channels: [4, 6, 8, 8, 10], units: [1, 1, 2, 1], embeddingDim: 12 });
    expect(net.featureMapSize).toEqual([1, 1]);
    // Residual convs start at N(0, 0.01); larger values make the reference check meaningful.
    for (const p of net.parameters()) p.assign(lr.rand(p.shape as number[], { low: -0.3, high: 0.3 }));
    const x = lr.rand([2, 3, 48, 50]);
    const w = Object.fromEntries(net.stateDict());
    const conv = (h: lr.Tensor, name: string) => lr.conv2d(h, w[`${name}.weight`], w[`${name}.bias`]);
    const prelu = (h: lr.Tensor, name: string) => {
      // PReLU by hand: max(h, 0) + a * min(h, 0), a per channel.
      const a = lr.reshape(w[`${name}.weight`], [1, -1, 1, 1]);
      return lr.add(lr.maximum(h, 0), lr.mul(a, lr.minimum(h, 0)));
    };
    const pool = (h: lr.Tensor) => lr.maxPool2d(h, { kernelSize: 2 });
    const unit = (h: lr.Tensor, name: string) => {
      const inner = prelu(lr.conv2d(prelu(lr.conv2d(h, w[`${name}.conv1.weight`], w[`${name}.conv1.bias`], { padding: 1 }), `${name}.act`), w[`${name}.conv2.weight`], w[`${name}.conv2.bias`], { padding: 1 }), `${name}.post`);
      return lr.add(h, inner);
    };
    let h = lr.affine(x, 255 / 128, -127.5 / 128);
    h = pool(prelu(conv(prelu(conv(h, 'conv1a'), 'prelu1a'), 'conv1b'), 'prelu1b'));
    h = unit(h, 'res2.0');
    h = pool(prelu(conv(h, 'conv2'), 'prelu2'));
    h = unit(h, 'res3.0');
    h = pool(prelu(conv(h, 'conv3'), 'prelu3'));
    h = unit(unit(h, 'res4.0'), 'res4.1');
    h = pool(prelu(conv(h, 'conv4'), 'prelu4'));
    h = unit(h, 'res5.0');
    const expected = lr.linear(lr.flatten(h, 1), w['fc5.weight'], w['fc5.bias']);
    expect(maxAbsDiff(net.forward(x).data(), expected.data())).toBeLessThan(1e-4 * Math.max(1, ...Array.from(expected.data(), Math.abs)));
  });

  it('rejects wrong inputs and configs with errors naming the argument', () => {
    const net = new Frnet({ inputSize: 48, channels: [4, 4, 4, 4, 4], units: [0, 0, 0, 0] });
    expect(() => net.forward(lr.rand([1, 3, 49, 48]))).toThrow(RangeError);
    expect(() => net.forward(lr.rand([1, 3, 49, 48]))).toThrow(/Frnet\.forward: 'x' must be shape \[N, 3, 48, 48\]/);
    expect(() => net.forward(lr.rand([1, 1, 48, 48]))).toThrow(RangeError);
    expect(() => net.forward([1, 2] as unknown as lr.Tensor)).toThrow(TypeError);
    expect(() => net.classify(lr.rand([1, 7]))).toThrow(/Frnet\.classify: 'features' must be shape \[N, 512\]/);
    expect(() => net.classify(lr.rand([1, net.embeddingDim]))).toThrow(/no classification head/);
    expect(() => new Frnet({ inputSize: 47 })).toThrow(/'inputSize'/);
    expect(() => new Frnet({ units: [1, 2, 3] })).toThrow(TypeError);
    expect(() => new Frnet({ units: [1, 2, 3, -1] })).toThrow(RangeError);
    expect(() => new Frnet({ scale: 0 })).toThrow(/'scale'/);
    expect(() => new Frnet({ numClasses: 1.5 })).toThrow(/'numClasses'/);
  });
});

describe('LightCNN', () => {
  it("LightCnn29 has light_cnn.py's module names and shapes (128x128 gray -> 8x8x128 -> 256)", () => {
    const net = new LightCnn29({ numClasses: 100 });
    const s = shapes(net);
    expect(net.featureMapSize).toEqual([8, 8]);
    expect(s['conv1.filter.weight']).toEqual([96, 1, 5, 5]);
    expect(s['block1.0.conv1.filter.weight']).toEqual([96, 48, 3, 3]);
    expect(s['group1.conv_a.filter.weight']).toEqual([96, 48, 1, 1]);
    expect(s['group1.conv.filter.weight']).toEqual([192, 48, 3, 3]);
    expect(s['block2.1.conv2.filter.weight']).toEqual([192, 96, 3, 3]);
    expect(s['block3.2.conv2.filter.weight']).toEqual([384, 192, 3, 3]);
    expect(s['group3.conv.filter.weight']).toEqual([256, 192, 3, 3]);
    expect(s['block4.3.conv1.filter.weight']).toEqual([256, 128, 3, 3]);
    expect(s['block4.4.conv1.filter.weight']).toBeUndefined();
    expect(s['fc.filter.weight']).toEqual([512, 8192]);
    expect(s['fc2.weight']).toEqual([100, 256]);
    // Every parameter belongs to an MFM conv/linear (doubled outputs) or the head.
    const mfm = (i: number, o: number, k: number) => i * 2 * o * k * k + 2 * o;
    const res = (c: number) => 2 * mfm(c, c, 3);
    const group = (i: number, o: number) => mfm(i, i, 1) + mfm(i, o, 3);
    const expected =
      mfm(1, 48, 5) + res(48) + group(48, 96) + 2 * res(96) + group(96, 192) + 3 * res(192) + group(192, 128) + 4 * res(128) + group(128, 128) +
      8192 * 512 + 512 + 256 * 100 + 100;
    expect(net.numParameters()).toBe(expected);
    const x = lr.rand([2, 1, 128, 128]);
    expect(net.eval().forward(x).shape).toEqual([2, 256]);
    net.dispose();
  });

  it("LightCnn9 has light_cnn.py's 'features' indices, and dropped pools keep them (32x32 input, 8x8 maps)", () => {
    const full = new LightCnn9();
    expect(shapes(full)['features.0.filter.weight']).toEqual([96, 1, 5, 5]);
    expect(shapes(full)['features.2.conv_a.filter.weight']).toEqual([96, 48, 1, 1]);
    expect(shapes(full)['features.7.conv.filter.weight']).toEqual([256, 128, 3, 3]);
    expect(shapes(full)['fc1.filter.weight']).toEqual([512, 8192]);
    expect(full.numClasses).toBe(0);
    const tiny = new LightCnn9({ inputSize: 32, pools: [true, true, false, false], numClasses: 3 });
    expect(tiny.featureMapSize).toEqual([8, 8]);
    expect([...tiny.stateDict().keys()].filter((k) => k.startsWith('features.')).sort()).toEqual([...full.stateDict().keys()].filter((k) => k.startsWith('features.')).sort());
    expect(tiny.eval().forward(lr.rand([3, 1, 32, 32])).shape).toEqual([3, 256]);
    // Ceil-mode pools: 30 -> 15 -> 8 -> 4 -> 2.
    expect(new LightCnn29({ inputSize: 30 }).featureMapSize).toEqual([2, 2]);
    expect(() => new LightCnn9({ pools: [true, true] as unknown as [boolean, boolean, boolean, boolean] })).toThrow(/'pools'/);
    expect(() => new LightCnn29({ dropout: 1 })).toThrow(/'dropout'/);
    expect(() => tiny.forward(lr.rand([1, 1, 128, 128]))).toThrow(/LightCnn9\.forward: 'x'/);
  });

  it('the head applies dropout only in training', () => {
    lr.manualSeed(2);
    const net = new LightCnn9({ inputSize: 16, numClasses: 4, dropout: 0.5 });
    const f = lr.rand([5, 256]);
    const a = net.eval().classify(f).data();
    const b = net.eval().classify(f).data();
    expect(maxAbsDiff(a, b)).toBe(0);
    const c = net.train().classify(f).data();
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
  });

  it('createRecognitionNetwork builds each architecture and names the bad one', () => {
    expect(createRecognitionNetwork('frnet', { inputSize: 48 }).arch).toBe('frnet');
    expect(createRecognitionNetwork('lightcnn9', { inputSize: 16 }).arch).toBe('lightcnn9');
    expect(createRecognitionNetwork('lightcnn29', { inputSize: 16 }).arch).toBe('lightcnn29');
    expect(() => createRecognitionNetwork('resnet' as 'frnet')).toThrow(/'arch'/);
  });
});

describe('JointHallucinationRecognition', () => {
  it("chains SRNET's valid 9-1-5 convolutions (124x108 -> 112x96) into FRNET, as Wu et al.", () => {
    lr.manualSeed(4);
    const sr = new Srnet({ kernels: [9, 1, 5], padding: 'valid', features: [8, 4] });
    const fr = new Frnet({ channels: [4, 4, 4, 4, 4], units: [0, 0, 0, 0], embeddingDim: 16 });
    const joint = new JointHallucinationRecognition(sr, fr);
    expect(joint.inputShape).toEqual([3, 124, 108]);
    const { hallucinated, features } = joint.forward(lr.rand([2, 3, 124, 108]));
    expect(hallucinated.shape).toEqual([2, 3, 112, 96]);
    expect(features.shape).toEqual([2, 16]);
    expect(maxAbsDiff(features.data(), fr.forward(hallucinated).data())).toBeLessThan(1e-5);
    expect([...joint.stateDict().keys()]).toContain('hallucinator.conv1.weight');
    expect([...joint.stateDict().keys()]).toContain('recognizer.fc5.weight');
    expect(() => joint.forward(lr.rand([1, 3, 112, 96]))).toThrow(/JointHallucinationRecognition\.forward: 'x' must be shape \[N, 3, 124, 108\]/);
    expect(() => new JointHallucinationRecognition(sr, sr as unknown as Frnet)).toThrow(/'recognizer'/);
  });
});

describe('model configs refuse unknown fields', () => {
  // A misspelt field (embedingDim) would otherwise train the default size silently.
  it.each([
    ['Frnet', () => new Frnet({ embedingDim: 64 } as never), 'embedingDim'],
    ['LightCnn9', () => new LightCnn9({ pool: [true, true, true, true] } as never), 'pool'],
    ['LightCnn29', () => new LightCnn29({ numClass: 10 } as never), 'numClass'],
    ['ResNet29', () => new ResNet29({ size: 150 } as never), 'size'],
    ['Frnet', () => createRecognitionNetwork('frnet', { inputsize: 64 }), 'inputsize'],
  ])('%s', (name, build, key) => {
    expect(build).toThrow(TypeError);
    expect(build).toThrow(`${name}: '${key}' must be one of the known config fields (`);
  });
  it('RecognitionTrainer refuses an unknown field', () => {
    const net = new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 8, numClasses: 2 });
    const build = () => new RecognitionTrainer(net, { centreLossWeight: 0.01 } as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow("RecognitionTrainer: 'centreLossWeight' must be one of the known config fields (");
  });
});
