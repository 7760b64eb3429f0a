import { describe, expect, it } from 'vitest';
import * as ops from '@lrface/cuda-core';
import {
  HeatmapBalance, averagePoolDown, confidenceDiscriminatorLoss, confidenceGeneratorLoss, heatmapEnergy, heatmapGeneratorLoss,
  highToLowDiscriminatorLoss, highToLowGeneratorLoss, pixelLoss,
} from '../src/index.js';

const t = (v: number[], shape?: number[]) => ops.tensor(Float32Array.from(v), shape ?? [v.length]);

describe('stage 1 losses', () => {
  it('D1 hinge loss (eq. 2) matches hand-computed values', () => {
    // real scores 2, 0.5, -1 -> relu(1 - s) = 0, 0.5, 2 -> mean 0.8333; fake -2, 0, 0.5 -> relu(1 + s) = 0, 1, 1.5 -> mean 0.8333.
    const loss = highToLowDiscriminatorLoss(t([2, 0.5, -1]), t([-2, 0, 0.5]));
    expect(loss.item()).toBeCloseTo(2.5 / 3 + 2.5 / 3, 6);
  });
  it('G1 loss = alpha * (-mean D(fake)) + beta * pixel loss against the average-pooled HR image', () => {
    // HR 4x4 -> F = 2x2 block means.
    const hr = t([1, 3, 0, 0, 5, 7, 0, 4, -1, -1, 2, 2, -1, -1, 2, 2], [1, 1, 4, 4]);
    expect(Array.from(averagePoolDown(hr, 2).data())).toEqual([4, 1, -1, 2]);
    const gen = t([4, 0, 0, 2], [1, 1, 2, 2]); // squared diffs 0, 1, 1, 0 -> mean 0.5
    expect(pixelLoss(gen, hr).item()).toBeCloseTo(0.5, 6);
    const { loss, gan, pixel } = highToLowGeneratorLoss(t([1, 3]), gen, hr, { alpha: 2, beta: 0.1 });
    expect(gan.item()).toBeCloseTo(-2, 6);
    expect(pixel.item()).toBeCloseTo(0.5, 6);
    expect(loss.item()).toBeCloseTo(2 * -2 + 0.1 * 0.5, 6);
  });
  it('rejects bad weights and shapes', () => {
    const hr = ops.zeros([1, 3, 8, 8]);
    expect(() => highToLowGeneratorLoss(t([1]), ops.zeros([1, 3, 2, 2]), hr, { alpha: -1, beta: 1 })).toThrow(RangeError);
    expect(() => highToLowGeneratorLoss(t([1]), ops.zeros([1, 3, 2, 2]), hr, { alpha: 1 } as never)).toThrow(/weights.beta/);
    expect(() => pixelLoss(ops.zeros([1, 3, 3, 3]), hr)).toThrow(/outputSize/);
    expect(() => pixelLoss(ops.zeros([1, 1, 2, 2]), hr)).toThrow(/generated/);
    expect(() => highToLowDiscriminatorLoss([1] as never, t([1]))).toThrow(TypeError);
  });
});

describe('D2: heatmap energy and the BEGAN balance', () => {
  it('energy (eqs. 5, 6) sums squared errors over the maps and averages over images and pixels', () => {
    // 2 images, 2 maps, 1x2 pixels.
    const target = t([1, 0, 0, 1, 0, 0, 0, 0], [2, 2, 1, 2]);
    const recon = t([0, 0, 0, 3, 1, 1, 0, 2], [2, 2, 1, 2]);
    // squared errors: 1, 0, 0, 4 | 1, 1, 0, 4 -> sum 11, / (2 * 1 * 2) = 2.75
    expect(heatmapEnergy(target, recon).item()).toBeCloseTo(2.75, 6);
    expect(() => heatmapEnergy(target, ops.zeros([2, 2, 1, 3]))).toThrow(RangeError);
  });
  it('a foreground weight w scales each squared error by (1 + w * target)', () => {
    const target = t([1, 0, 0, 0.5, 0, 0, 0, 0], [2, 2, 1, 2]);
    const recon = t([0, 0, 0, 3, 1, 1, 0, 2], [2, 2, 1, 2]);
    // squared errors 1, 0, 0, 6.25 | 1, 1, 0, 4; weights (w = 4) 5, 1, 1, 3 | 1, 1, 1, 1
    // -> 5 + 18.75 + 6 = 29.75, / (2 * 1 * 2) = 7.4375
    expect(heatmapEnergy(target, recon, 4).item()).toBeCloseTo(7.4375, 5);
    expect(heatmapEnergy(target, recon, 0).item()).toBeCloseTo((1 + 6.25 + 1 + 1 + 4) / 4, 6);
    expect(() => heatmapEnergy(target, recon, -1)).toThrow(RangeError);
    expect(() => heatmapEnergy(target, recon, '4' as never)).toThrow(TypeError);
  });
  it('refuses an unknown config field (lambda for lambdaK), naming it', () => {
    const build = () => new HeatmapBalance({ lambda: 0.1 } as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow("HeatmapBalance: 'lambda' must be one of the known config fields (gamma, lambdaK, period, initialK)");
  });
  it('D2 loss is l_real - k_t l_fake (eq. 7)', () => {
    const b = new HeatmapBalance({ initialK: 0.25 });
    expect(b.discriminatorLoss(t([3]), t([2])).data()[0]).toBeCloseTo(3 - 0.25 * 2, 6);
  });
  it('k_t update (eq. 8) by hand, with clipping to [0, 1]', () => {
    const b = new HeatmapBalance({ gamma: 0.5, lambdaK: 0.1, initialK: 0.2 });
    b.observe(2, 0.5); // 0.2 + 0.1 * (1 - 0.5) = 0.25
    expect(b.k).toBeCloseTo(0.25, 12);
    b.observe(2, 3); // 0.25 + 0.1 * (1 - 3) = 0.05
    expect(b.k).toBeCloseTo(0.05, 12);
    b.observe(2, 10); // 0.05 - 0.9 -> clipped to 0
    expect(b.k).toBe(0);
    const up = new HeatmapBalance({ gamma: 1, lambdaK: 1, initialK: 0.9 });
    up.observe(5, 0); // 0.9 + 5 -> clipped to 1
    expect(up.k).toBe(1);
  });
  it('updates every `period` iterations from the averaged energies', () => {
    const b = new HeatmapBalance({ gamma: 0.5, lambdaK: 0.1, period: 3, initialK: 0.5 });
    expect(b.observe(2, 0)).toBe(false);
    expect(b.observe(4, 1)).toBe(false);
    expect(b.k).toBe(0.5);
    expect(b.observe(0, 2)).toBe(true);
    // means: real 2, fake 1 -> 0.5 + 0.1 * (1 - 1) = 0.5; next period: real 6, fake 0 -> + 0.3
    expect(b.k).toBeCloseTo(0.5, 12);
    b.observe(6, 0);
    b.observe(6, 0);
    b.observe(6, 0);
    expect(b.k).toBeCloseTo(0.8, 12);
  });
  it('rejects bad balance settings', () => {
    expect(() => new HeatmapBalance({ gamma: 0 })).toThrow(/gamma/);
    expect(() => new HeatmapBalance({ gamma: 1.5 })).toThrow(/gamma/);
    expect(() => new HeatmapBalance({ lambdaK: -1 })).toThrow(/lambdaK/);
    expect(() => new HeatmapBalance({ period: 0 })).toThrow(/period/);
    expect(() => new HeatmapBalance({ initialK: 2 })).toThrow(/initialK/);
    expect(() => new HeatmapBalance().observe(NaN, 1)).toThrow(/realEnergy/);
    expect(() => { new HeatmapBalance().k = -0.1; }).toThrow(RangeError);
  });
});

describe('D3: least-squares confidence losses', () => {
  it('eq. 9 over the three input kinds, by hand', () => {
    // GT pairs 1, 0 -> (0, 1) mean 0.5; generated 0.5, -0.5 -> 0.25 mean; real LR 2 -> 4.
    expect(confidenceDiscriminatorLoss(t([1, 0]), t([0.5, -0.5]), t([2])).item()).toBeCloseTo(0.5 + 0.25 + 4, 6);
    expect(confidenceDiscriminatorLoss(t([1, 0]), t([0.5, -0.5])).item()).toBeCloseTo(0.75, 6);
  });
  it('eq. 12 averages (D3(x) - 1)^2 over every predicted input', () => {
    // (0 - 1)^2, (1 - 1)^2, (3 - 1)^2 -> mean 5/3
    expect(confidenceGeneratorLoss(t([0, 1]), t([3])).item()).toBeCloseTo(5 / 3, 6);
    expect(() => confidenceGeneratorLoss()).toThrow(RangeError);
  });
  it('eq. 13 weights the terms; absent terms are left out', () => {
    expect(heatmapGeneratorLoss({ mse: t([2]), kp: t([3]), conf: t([5]) }, { a: 1, b: 0.1, c: 0.01 }).data()[0]).toBeCloseTo(2 + 0.3 + 0.05, 6);
    expect(heatmapGeneratorLoss({ mse: t([2]) }, { a: 0.5, b: 1, c: 1 }).data()[0]).toBeCloseTo(1, 6);
    expect(() => heatmapGeneratorLoss({ mse: t([2]) }, { a: 1, b: NaN, c: 1 })).toThrow(/weights.b/);
    expect(() => heatmapGeneratorLoss({} as never, { a: 1, b: 1, c: 1 })).toThrow(/terms.mse/);
  });
});
