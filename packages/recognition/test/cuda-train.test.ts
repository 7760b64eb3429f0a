// Recognition training on a CUDA device against the same training on the CPU: FRNET with
// softmax and center loss, and the joint SRNET + FRNET model, three SGD steps each (an update
// proportional to the gradient, so rounding differences stay small, unlike Adam's sign-like
// first steps), losses, centres and parameters compared. Without a usable GPU the suite is reported as skipped.
// tools/gpu/pack.mjs bundles this file (only what tools/gpu/vitest-shim.mjs provides may be used).
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { maxAbsDiff } from '@lrface/test-data';
import { Srnet } from '@lrface/sr';
import { Frnet, RecognitionTrainer, type RecognitionBatch, type RecognitionTrainerConfig } from '../src/index.js';

const cudaDevice = lr.devices().find((d) => d.type === 'cuda');
const onDevice = cudaDevice ? `on ${cudaDevice.id}, ${cudaDevice.name}` : 'no CUDA device here';

/** Faces whose identity shows in their pattern, so the steps move the network. */
function batch(n: number, size: [number, number], classes: number, joint: boolean): RecognitionBatch {
  lr.manualSeed(21);
  const [h, w] = size;
  const pixels = new Float32Array(n * 3 * h * w);
  const labels = new Int32Array(n);
  for (let b = 0; b < n; b++) {
    labels[b] = b % classes;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) pixels[((b * 3 + c) * h + y) * w + x] = 0.5 + 0.4 * Math.sin(0.2 * (labels[b] + 1) * x + 0.1 * y + c);
  }
  const faces = lr.tensor(pixels, [n, 3, h, w]);
  const noisy = lr.clamp(lr.add(faces, lr.rand([n, 3, h, w], { low: -0.1, high: 0.1 })), 0, 1);
  return joint ? { images: noisy, labels: lr.tensor(labels, [n], 'int32'), targets: faces } : { images: noisy, labels: lr.tensor(labels, [n], 'int32') };
}

function expectSameTraining(joint: boolean): void {
  const make = (device: lr.DeviceSpec) => {
    lr.manualSeed(13);
    const net = new Frnet({ inputSize: [56, 48], channels: [8, 16, 16, 32, 32], units: [1, 1, 1, 1], embeddingDim: 32, numClasses: 4 }).to(device);
    const config: RecognitionTrainerConfig = { optimizer: 'sgd', lr: 0.05, momentum: 0.9 };
    if (joint) config.hallucinator = new Srnet({ features: [16, 8] }).to(device);
    return new RecognitionTrainer(net, config);
  };
  const data = batch(8, [56, 48], 4, joint);
  const cpu = make('cpu');
  const gpu = make('cuda');
  for (const p of gpu.network.parameters()) expect(p.deviceId).toBe('cuda:0');
  const before = cpu.network.parameters().map((p) => Array.from(p.data()));
  expect(gpu.centerLoss.centers.deviceId).toBe('cuda:0');
  for (let step = 0; step < 3; step++) {
    const a = cpu.trainStep(data);
    const b = gpu.trainStep(data);
    for (const key of ['loss', 'softmax', 'center', 'pixel'] as const)
      expect(Math.abs(a[key] - b[key]), `${key} at step ${step + 1}: cpu ${a[key]}, cuda ${b[key]}`).toBeLessThan(2e-3 * Math.max(1, Math.abs(a[key])));
  }
  expect(maxAbsDiff(cpu.centerLoss.centers.data(), gpu.centerLoss.centers.to('cpu').data())).toBeLessThan(2e-3);
  const gpuParams = gpu.network.parameters();
  cpu.network.parameters().forEach((p, i) => expect(maxAbsDiff(p.data(), gpuParams[i].to('cpu').data())).toBeLessThan(1e-3));
  // Training moved the parameters well past that tolerance, so agreeing to it means something.
  const moved = cpu.network.parameters().reduce((m, p, i) => Math.max(m, maxAbsDiff(p.data(), before[i])), 0);
  expect(moved).toBeGreaterThan(5e-3);
}

describe.skipIf(!cudaDevice)(`recognition training on CUDA (${onDevice})`, () => {
  it('FRNET with softmax and center loss: three SGD steps give the CPU losses, centres and parameters', () => {
    expectSameTraining(false);
  });
  it('joint SRNET + FRNET: three steps with the pixel loss give the CPU results', () => {
    expectSameTraining(true);
  });
});
