import { describe, expect, it } from 'vitest';
import * as ops from '@lrface/cuda-core';
import { MaxPool2d } from '@lrface/nn';
import { HeatmapAutoencoderDiscriminator, HeatmapUNet, HighToLowGenerator, ResidualDiscriminator } from '../src/index.js';

describe('HeatmapUNet (G2 / HR-LD)', () => {
  it('maps 32x32 and 128x128 faces to N+1 heatmaps of the input size', () => {
    const g2 = new HeatmapUNet({ inChannels: 3, outChannels: 69, widths: [4, 8, 8, 8] });
    expect(g2.forward(ops.randn([2, 3, 32, 32])).shape).toEqual([2, 69, 32, 32]);
    expect(g2.forward(ops.randn([1, 3, 128, 128])).shape).toEqual([1, 69, 128, 128]);
  });
  it('has 16 residual blocks: 4 encoder groups of 2 and 4 decoder groups of 2', () => {
    const g2 = new HeatmapUNet({ inChannels: 3, outChannels: 69, widths: [4, 8, 8, 8] });
    const residual = [...g2.stateDict().keys()].filter((k) => /\.blocks\.\d+\.conv1\.weight$/.test(k));
    expect(residual.length).toBe(16);
    expect(g2.encoder.length).toBe(4);
    expect(g2.decoder.length).toBe(4);
    // Decoder groups take the upsampled features concatenated with the skip: 8 + 8, ..., 8 + 4 channels.
    expect(g2.stateDict().get('decoder.3.entry.conv.weight')!.shape).toEqual([4, 12, 3, 3]);
  });
  it('the width is a config field', () => {
    const narrow = new HeatmapUNet({ inChannels: 3, outChannels: 6, widths: [2, 2, 2, 2] });
    const wide = new HeatmapUNet({ inChannels: 3, outChannels: 6, widths: [8, 8, 8, 8] });
    expect(wide.numParameters()).toBeGreaterThan(narrow.numParameters() * 4);
    expect(narrow.config.widths).toEqual([2, 2, 2, 2]);
  });
  it('rejects bad configs and inputs', () => {
    expect(() => new HeatmapUNet({ inChannels: 3, outChannels: 0 })).toThrow(RangeError);
    expect(() => new HeatmapUNet({ inChannels: '3' as never, outChannels: 5 })).toThrow(TypeError);
    expect(() => new HeatmapUNet({ inChannels: 3, outChannels: 5, widths: [4, 4] })).toThrow(/widths/);
    expect(() => new HeatmapUNet({ inChannels: 3, outChannels: 5, upsample: 'cubic' as never })).toThrow(/upsample/);
    const g = new HeatmapUNet({ inChannels: 3, outChannels: 5, widths: [2, 2, 2, 2] });
    expect(() => g.forward(ops.randn([1, 1, 32, 32]))).toThrow(/\[N, 3, H, W\]/);
    expect(() => g.forward(ops.randn([1, 3, 24, 24]))).toThrow(/divisible by 16/);
    expect(() => g.forward([1, 2] as never)).toThrow(TypeError);
  });
});

describe('D2: HeatmapAutoencoderDiscriminator', () => {
  it('reconstructs N+1 heatmaps from heatmaps and their image', () => {
    const d2 = new HeatmapAutoencoderDiscriminator({ maps: 69, widths: [4, 4, 4, 4] });
    expect(d2.net.config.inChannels).toBe(72);
    expect(d2.forward(ops.randn([2, 3, 32, 32]), ops.randn([2, 69, 32, 32])).shape).toEqual([2, 69, 32, 32]);
    expect(() => d2.forward(ops.randn([2, 3, 32, 32]), ops.randn([1, 69, 32, 32]))).toThrow(/heatmaps/);
    expect(() => d2.forward(ops.randn([2, 3, 32, 32]), ops.randn([2, 68, 32, 32]))).toThrow(/heatmaps/);
  });
});

describe('G1: HighToLowGenerator', () => {
  it('maps 128x128 HR faces and 64-d noise to 3x32x32 LR faces in [-1, 1]', () => {
    const g1 = new HighToLowGenerator({ stemWidth: 4, encoderWidths: [4, 4, 4, 4, 4, 4, 4, 4], decoderWidths: [4, 4, 4, 4, 4, 4] });
    const y = g1.forward(ops.randn([2, 3, 128, 128]), ops.randn([2, 64]));
    expect(y.shape).toEqual([2, 3, 32, 32]);
    const v = y.data();
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-1);
    // The noise is projected to one 128x128 channel; 8 encoder and 6 decoder residual blocks.
    expect(g1.noiseProjection.weight.shape).toEqual([128 * 128, 64]);
    expect(g1.encoder.length).toBe(8);
    expect(g1.decoder.length).toBe(6);
    // BatchNorm after every conv of the stages.
    const convs = [...g1.stateDict().keys()].filter((k) => /(encoder|decoder)\.\d+\..*conv\d?\.weight$/.test(k)).length;
    const bns = [...g1.stateDict().keys()].filter((k) => /(encoder|decoder)\.\d+\..*bn\d?\.weight$/.test(k)).length;
    expect(bns).toBe(convs);
  });
  it('the noise changes the output', () => {
    const g1 = new HighToLowGenerator({ stemWidth: 4, encoderWidths: [4, 4, 4, 4, 4, 4, 4, 4], decoderWidths: [4, 4, 4, 4, 4, 4] });
    // The same face twice with different noise, in one batch (batch statistics).
    const face = ops.randn([1, 3, 128, 128]);
    const y = g1.forward(ops.concat([face, face], 0), ops.randn([2, 64])).data();
    const plane = 3 * 32 * 32;
    let diff = 0;
    for (let i = 0; i < plane; i++) diff = Math.max(diff, Math.abs(y[i] - y[plane + i]));
    expect(diff).toBeGreaterThan(1e-4);
    // And without noise differences, the two outputs agree.
    const z = ops.randn([1, 64]);
    const same = g1.forward(ops.concat([face, face], 0), ops.concat([z, z], 0)).data();
    for (let i = 0; i < plane; i += 97) expect(same[i]).toBeCloseTo(same[plane + i], 5);
  });
  it('residual G1 starts as the 4x4 average pooling of the face and learns a change to it', () => {
    const g1 = new HighToLowGenerator({ stemWidth: 4, encoderWidths: [4, 4, 4, 4, 4, 4, 4, 4], decoderWidths: [4, 4, 4, 4, 4, 4], encoderPoolAfter: [0, 1], decoderUpsampleAfter: [], residual: true });
    const hr = ops.clamp(ops.mul(ops.randn([2, 3, 128, 128]), ops.full([1], 0.5)), -1, 1);
    const y = g1.forward(hr, ops.randn([2, 64]));
    expect(y.shape).toEqual([2, 3, 32, 32]);
    // At initialisation: exactly the 4x4 block means (computed here by hand).
    const x = hr.data();
    const out = y.data();
    for (const [n, c, i, j] of [[0, 0, 0, 0], [1, 2, 31, 31], [0, 1, 7, 20]]) {
      let sum = 0;
      for (let dy = 0; dy < 4; dy++) for (let dx = 0; dx < 4; dx++) sum += x[((n * 3 + c) * 128 + 4 * i + dy) * 128 + 4 * j + dx];
      expect(out[((n * 3 + c) * 32 + i) * 32 + j]).toBeCloseTo(sum / 16, 5);
    }
    // The zero-initialised output conv still gets a gradient, so the change can be learnt.
    ops.mean(ops.square(g1.forward(hr, ops.randn([2, 64])))).backward();
    expect(Math.max(...Array.from(g1.output.weight.grad!.data(), Math.abs))).toBeGreaterThan(0);
    expect(() => new HighToLowGenerator({ residual: 'yes' as never })).toThrow(/residual/);
  });
  it('rejects inconsistent pooling and bad inputs', () => {
    expect(() => new HighToLowGenerator({ encoderPoolAfter: [0, 1] })).toThrow(/decoderUpsampleAfter/);
    expect(() => new HighToLowGenerator({ encoderPoolAfter: [0, 9] })).toThrow(/encoderPoolAfter/);
    expect(() => new HighToLowGenerator({ inputSize: 100 })).toThrow(/inputSize/);
    const g1 = new HighToLowGenerator({ stemWidth: 2, encoderWidths: [2, 2, 2, 2, 2, 2, 2, 2], decoderWidths: [2, 2, 2, 2, 2, 2] });
    expect(() => g1.forward(ops.randn([1, 3, 64, 64]), ops.randn([1, 64]))).toThrow(/hr/);
    expect(() => g1.forward(ops.randn([2, 3, 128, 128]), ops.randn([1, 64]))).toThrow(/noise/);
    expect(() => g1.forward(ops.randn([1, 3, 128, 128]), null as never)).toThrow(TypeError);
  });
});

describe('D1 / D3: ResidualDiscriminator', () => {
  it('scores 32x32 inputs, one number per image; pools only in the last poolCount stages', () => {
    const d1 = new ResidualDiscriminator({ inChannels: 3, widths: [4, 4, 8, 8], poolCount: 3 });
    expect(d1.forward(ops.randn([3, 3, 32, 32])).shape).toEqual([3]);
    const pools = d1.stages.children().map((s) => s.children().some((m) => m instanceof MaxPool2d));
    expect(pools).toEqual([false, true, true, true]);
    const two = new ResidualDiscriminator({ inChannels: 3, widths: [4, 4, 8, 8], poolCount: 2 });
    expect(two.stages.children().map((s) => s.children().some((m) => m instanceof MaxPool2d))).toEqual([false, false, true, true]);
    const d3 = new ResidualDiscriminator({ inChannels: 72, widths: [4, 4, 8, 8] });
    expect(d3.forward(ops.randn([2, 72, 32, 32])).shape).toEqual([2]);
  });
  it('is spectrally normalised: convolutions use W / sigma(W)', () => {
    const d1 = new ResidualDiscriminator({ inChannels: 3, widths: [4, 4, 8, 8] });
    // Power iteration converges over forwards in training mode.
    for (let i = 0; i < 30; i++) d1.forward(ops.randn([1, 3, 32, 32]));
    const state = d1.stateDict();
    const w = state.get('stem.weight_orig')!;
    const rows = w.shape[0];
    const cols = w.size / rows;
    const m = Array.from(w.data());
    // sigma(W) by power iteration in plain JS.
    let v = new Array(cols).fill(1);
    let sigma = 0;
    for (let it = 0; it < 200; it++) {
      const u = new Array(rows).fill(0).map((_, r) => v.reduce((s, x, c) => s + m[r * cols + c] * x, 0));
      const nu = Math.hypot(...u);
      const vv = new Array(cols).fill(0).map((_, c) => u.reduce((s, x, r) => s + m[r * cols + c] * x, 0) / nu);
      sigma = Math.hypot(...vv);
      v = vv.map((x) => x / sigma);
    }
    // Effective weight = W / sigma(W): compare one output against the hand computation.
    const bias = state.get('stem.bias')!.data();
    d1.eval();
    const out = d1.stem.forward(ops.ones([1, 3, 3, 3])).data();
    // Centre pixel of a 3x3 all-ones input sees the whole kernel: sum of the row / sigma + bias.
    const rowSum = m.slice(0, cols).reduce((s, x) => s + x, 0);
    expect(out[4]).toBeCloseTo(rowSum / sigma + bias[0], 2);
  });
  it('rejects bad configs and inputs', () => {
    expect(() => new ResidualDiscriminator({ inChannels: 3, widths: [4, 4], poolCount: 3 })).toThrow(/poolCount/);
    expect(() => new ResidualDiscriminator({ inChannels: 3, spectral: 'yes' as never })).toThrow(TypeError);
    const d = new ResidualDiscriminator({ inChannels: 3, widths: [4, 4, 4, 4] });
    expect(() => d.forward(ops.randn([1, 4, 32, 32]))).toThrow(/\[N, 3, H, W\]/);
    expect(() => d.forward(ops.randn([1, 3, 12, 12]))).toThrow(/divisible by 8/);
  });
});

describe('model configs refuse unknown fields', () => {
  // A misspelt field (noiseDims) would otherwise build the default network silently.
  it.each([
    ['HeatmapUNet', () => new HeatmapUNet({ inChannels: 3, outChannels: 69, width: [8] } as never), 'width'],
    ['HighToLowGenerator', () => new HighToLowGenerator({ noiseDims: 8 } as never), 'noiseDims'],
    ['ResidualDiscriminator', () => new ResidualDiscriminator({ inChannels: 3, spectralNorm: false } as never), 'spectralNorm'],
    ['HeatmapAutoencoderDiscriminator', () => new HeatmapAutoencoderDiscriminator({ maps: 68, imageChannel: 3 } as never), 'imageChannel'],
  ])('%s', (name, build, key) => {
    expect(build).toThrow(TypeError);
    expect(build).toThrow(`${name}: '${key}' must be one of the known config fields (`);
  });
});
