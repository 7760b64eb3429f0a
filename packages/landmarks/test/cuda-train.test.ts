// Landmark training on a CUDA device against the same training on the CPU: a small LGCN (its
// frozen Gaussian kernel convolution and dilated global subnet) and the HR-LD U-Net (batch norm,
// residual blocks; Adam, as it trains), three steps each from the same start, losses and
// parameters compared.
// Without a usable GPU the suite is reported as skipped.
// tools/gpu/pack.mjs bundles this file (only what tools/gpu/vitest-shim.mjs provides may be used).
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { maxAbsDiff } from '@lrface/test-data';
import { LgcnTrainer, PAPER_OPTIMIZER, SupervisedTrainer } from '../src/index.js';

const cudaDevice = lr.devices().find((d) => d.type === 'cuda');
const onDevice = cudaDevice ? `on ${cudaDevice.id}, ${cudaDevice.name}` : 'no CUDA device here';

/** A face-like pattern per image and 68 points on a ring around its centre (input pixels). */
function faces(n: number, channels: number, size: number): { images: Float32Array; landmarks: Float32Array[] } {
  const images = new Float32Array(n * channels * size * size);
  const landmarks: Float32Array[] = [];
  for (let b = 0; b < n; b++) {
    const c0 = size / 2 + b;
    for (let c = 0; c < channels; c++)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) images[((b * channels + c) * size + y) * size + x] = Math.tanh(1 - Math.hypot(x - c0, y - c0) / (size / 3)) + 0.05 * c;
    landmarks.push(Float32Array.from({ length: 136 }, (_, k) => c0 + (size / 3) * (k % 2 === 0 ? Math.cos((k >> 1) * 0.09) : Math.sin((k >> 1) * 0.09))));
  }
  return { images, landmarks };
}

/** Runs `steps` on CPU and CUDA trainers built alike; compares losses step by step and the parameters after. */
function expectSameTraining<T extends { trainStep(images: lr.Tensor, landmarks: Float32Array[]): Record<string, number> }>(
  make: () => T,
  network: (t: T) => { parameters(): lr.Tensor[]; to(device: lr.DeviceSpec): unknown },
  data: { images: Float32Array; landmarks: Float32Array[] },
  shape: number[],
  lossKey: string,
): void {
  lr.manualSeed(5);
  const cpu = make();
  lr.manualSeed(5);
  const gpu = make();
  network(gpu).to('cuda');
  for (const p of network(gpu).parameters()) expect(p.deviceId).toBe('cuda:0');
  const before = network(cpu).parameters().map((p) => Array.from(p.data()));
  const x = lr.tensor(data.images, shape);
  const xd = x.to('cuda');
  for (let step = 0; step < 3; step++) {
    const a = cpu.trainStep(x, data.landmarks)[lossKey];
    const b = gpu.trainStep(xd, data.landmarks)[lossKey];
    expect(Math.abs(a - b), `${lossKey} at step ${step + 1}: cpu ${a}, cuda ${b}`).toBeLessThan(2e-3 * Math.max(1, Math.abs(a)));
  }
  const gpuParams = network(gpu).parameters();
  network(cpu).parameters().forEach((p, i) => expect(maxAbsDiff(p.data(), gpuParams[i].to('cpu').data()), `parameter ${i}`).toBeLessThan(1e-3));
  // Training moved the parameters well past that tolerance, so agreeing to it means something.
  const moved = network(cpu).parameters().reduce((m, p, i) => Math.max(m, maxAbsDiff(p.data(), before[i])), 0);
  expect(moved).toBeGreaterThan(5e-3);
}

describe.skipIf(!cudaDevice)(`landmark training on CUDA (${onDevice})`, () => {
  it('a small LGCN: three SGD steps give the CPU losses and parameters', () => {
    const data = faces(2, 1, 32);
    expectSameTraining(
      () => new LgcnTrainer({ network: { inputSize: 32, localLayers: 3, localWidth: 8, globalWidth: 8, dropoutRate: 0 }, optimizer: { kind: 'sgd', lr: 5e-3, momentum: 0.9 }, augment: null }),
      (t) => t.network,
      data,
      [2, 1, 32, 32],
      'loss',
    );
  });

  it('the HR-LD U-Net with batch norm: three steps give the CPU losses and parameters', () => {
    const data = faces(2, 3, 32);
    expectSameTraining(
      () => new SupervisedTrainer({ generator: { widths: [8, 8, 16, 16], blocksPerGroup: 1, upsample: 'nearest' }, optimizer: { ...PAPER_OPTIMIZER, lr: 1e-2 }, sigma: 1.5, steps: 3, batchSize: 2, inputSize: 32 }),
      (t) => t.generator,
      data,
      [2, 3, 32, 32],
      'mse',
    );
  });
});
