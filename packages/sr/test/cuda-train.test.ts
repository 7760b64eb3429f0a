// Training on a CUDA device against the same training on the CPU: Module.to moving every
// tensor in place, Adam's state on the device, VDSR and SRINC steps giving the CPU's losses
// and parameters, checkpoints saved from and loaded into device models. Without a usable
// GPU the suite is reported as skipped. tools/gpu/pack.mjs bundles this file (only what
// tools/gpu/vitest-shim.mjs provides may be used: no toBeCloseTo, no hooks).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Adam, BatchNorm2d, Conv2d, Linear, Module, crossEntropy, l1Loss, loadCheckpoint, mseLoss, saveCheckpoint, spectralNorm } from '@lrface/nn';
import { Srinc, Vdsr, type InceptionBranch, type SrNetwork } from '../src/models.js';
import { Dic } from '../src/dic.js';

const hasCuda = lr.devices().some((d) => d.type === 'cuda');
// The device the suite runs on, in its name: a run on the host emulation never reads as a GPU's.
const cudaDevice = lr.devices().find((d) => d.type === 'cuda');
const onDevice = cudaDevice ? `on ${cudaDevice.id}, ${cudaDevice.name}` : 'no CUDA device here';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** A smooth target and a noisy input, as an SR pair: values in [0, 1], from the seeded generator. */
function srBatch(n: number, size: number, seed: number): { x: lr.Tensor; y: lr.Tensor } {
  lr.manualSeed(seed);
  const noise = lr.rand([n, 1, size, size], { low: -0.05, high: 0.05 });
  const target = new Float32Array(n * size * size);
  for (let b = 0; b < n; b++)
    for (let r = 0; r < size; r++)
      for (let c = 0; c < size; c++) target[(b * size + r) * size + c] = 0.5 + 0.4 * Math.sin(0.3 * r + 0.2 * c + b);
  const y = lr.tensor(target, [n, 1, size, size]);
  const x = lr.add(y, noise);
  noise.dispose();
  return { x, y };
}

/** A copy of `net` (same config and values) built by `make`. */
function twin<M extends Module>(net: M, make: () => M): M {
  const copy = make();
  copy.loadStateDict(net.stateDict());
  return copy;
}

/** Runs `steps` Adam steps of MSE training; returns the losses. Inputs are moved to the model's device. */
function train(net: SrNetwork, opt: Adam, x: lr.Tensor, y: lr.Tensor, steps: number): number[] {
  const device = net.device as lr.DeviceSpec;
  const losses: number[] = [];
  for (let s = 0; s < steps; s++)
    losses.push(
      lr.scope(() => {
        opt.zeroGrad();
        const loss = mseLoss(net.forward(x.to(device)), y.to(device));
        loss.backward();
        opt.step();
        return loss.item();
      }),
    );
  return losses;
}

/** Trains a CPU model and its twin on CUDA for three steps; both must agree to `tol`. */
function expectSameTraining(make: () => SrNetwork, batch: { x: lr.Tensor; y: lr.Tensor }, tol: number): void {
  lr.manualSeed(11);
  const cpu = make();
  const gpu = twin(cpu, make).to('cuda');
  for (const p of gpu.parameters()) expect(p.deviceId).toBe('cuda:0');
  const before = cpu.parameters().map((p) => Array.from(p.data()));
  const optCpu = new Adam(cpu.parameters(), { lr: 1e-3 });
  const optGpu = new Adam(gpu.parameters(), { lr: 1e-3 });
  const lossCpu = train(cpu, optCpu, batch.x, batch.y, 3);
  const lossGpu = train(gpu, optGpu, batch.x, batch.y, 3);
  lossCpu.forEach((l, i) => expect(Math.abs(l - lossGpu[i]), `loss at step ${i + 1}: cpu ${l}, cuda ${lossGpu[i]}`).toBeLessThan(tol * Math.max(1, Math.abs(l))));
  // Training moved the parameters (Adam's first steps move each by about lr), so agreeing to tol means something.
  const moved = cpu.parameters().reduce((m, p, i) => Math.max(m, maxAbsDiff(p.data(), before[i])), 0);
  expect(moved).toBeGreaterThan(1e-3);
  const named = [...gpu.namedParameters()];
  cpu.parameters().forEach((p, i) => {
    const [name, q] = named[i];
    expect(q.deviceId).toBe('cuda:0');
    expect(maxAbsDiff(p.data(), q.data()), `parameter ${name}`).toBeLessThan(tol);
  });
  // Adam's state lives with the parameters.
  for (const p of gpu.parameters()) {
    const state = (optGpu as unknown as { state: Map<lr.Tensor, Record<string, lr.Tensor>> }).state.get(p)!;
    for (const b of Object.values(state)) expect(b.deviceId).toBe('cuda:0');
  }
  cpu.dispose();
  gpu.dispose();
}

class Small extends Module {
  declare conv: Conv2d;
  declare bn: BatchNorm2d;
  declare head: Linear;
  constructor() {
    super();
    this.registerModule('conv', new Conv2d(1, 4, 3, { padding: 1 }));
    this.registerModule('bn', new BatchNorm2d(4));
    this.registerModule('head', new Linear(4, 3));
  }
  forward(x: lr.Tensor): lr.Tensor {
    const h = this.bn.forward(this.conv.forward(x));
    return this.head.forward(lr.mean(h, { axis: [2, 3] }));
  }
}

const SMALL_INCEPTION: InceptionBranch[] = [
  [{ conv: 1, out: 8 }],
  [{ conv: 1, out: 8 }, { conv: 3, out: 8 }],
  [{ conv: 1, out: 8 }, { conv: 5, out: 8 }],
  [{ maxPool: 3 }, { conv: 1, out: 8 }],
];

describe.skipIf(!hasCuda)(`training on CUDA (${onDevice})`, () => {
  it('Module.to moves every parameter, buffer and gradient in place and back', () => {
    lr.manualSeed(3);
    const m = new Small();
    const tensors = [...m.parameters(), ...m.buffers()];
    lr.scope(() => lr.sum(m.forward(lr.rand([2, 1, 6, 6]))).backward());
    const values = tensors.map((t) => Array.from(t.data()));
    const grads = m.parameters().map((p) => Array.from(p.grad!.data()));
    expect(m.to('cuda')).toBe(m);
    expect(m.device).toBe('cuda:0');
    [...m.parameters(), ...m.buffers()].forEach((t, i) => {
      expect(t).toBe(tensors[i]);
      expect(t.deviceId).toBe('cuda:0');
      expect(Array.from(t.data())).toEqual(values[i]);
    });
    m.parameters().forEach((p, i) => {
      expect(p.grad!.deviceId).toBe('cuda:0');
      expect(Array.from(p.grad!.data())).toEqual(grads[i]);
    });
    // Forward on the device, batch norm's running statistics updated there.
    const out = lr.scope(() => m.forward(lr.rand([2, 1, 6, 6], { device: 'cuda' })));
    expect(out.deviceId).toBe('cuda:0');
    expect(m.bn.running_mean!.deviceId).toBe('cuda:0');
    expect(m.bn.num_batches_tracked!.item()).toBe(2);
    m.to('cpu');
    for (const t of [...m.parameters(), ...m.buffers()]) expect(t.deviceId).toBe('cpu');
    m.dispose();
  });

  it('a small VDSR (4 layers, 16 channels) trains on CUDA as on the CPU over 3 Adam steps', () => {
    expectSameTraining(() => new Vdsr({ depth: 4, features: 16 }), srBatch(4, 41, 5), 1e-4);
  });

  it('a small SRINC (2 inception modules, 51x51 patches) trains on CUDA as on the CPU over 3 Adam steps', () => {
    expectSameTraining(() => new Srinc({ features: 16, modules: 2, module: SMALL_INCEPTION }), srBatch(2, 51, 6), 1e-4);
  });

  it('a small DIC (attentive fusion, feedback hourglass) trains on CUDA as on the CPU over 3 Adam steps of its loss', () => {
    const make = () => new Dic({ numFeatures: 4, numGroups: 2, numSteps: 2, hgNumFeature: 8, hgDepth: 2, numFusionBlocks: 1 });
    lr.manualSeed(41);
    const cpu = make();
    const gpu = twin(cpu, make).to('cuda');
    const { x, y } = srBatch(2, 64, 9);
    // RGB: the same smooth target in each channel, its 8x8 average-pooled copy as the LR input.
    const hr = lr.concat([y, lr.affine(y, 0.9), lr.affine(y, 0.8)], 1);
    const lrImg = lr.avgPool2d(lr.concat([x, x, x], 1), { kernelSize: 8 });
    const heatmaps = lr.rand([2, 68, 16, 16]);
    // DIC's loss: sum over steps of L1(SR_t, HR) + 0.1 MSE(heatmap_t, H).
    const dicLoss = (net: Dic): lr.Tensor => {
      const device = net.device as lr.DeviceSpec;
      const out = net.forward(lrImg.to(device));
      const terms = out.sr.map((s, t) => lr.add(l1Loss(s, hr.to(device)), lr.affine(mseLoss(out.heatmaps[t], heatmaps.to(device)), 0.1)));
      return terms.reduce((a, b) => lr.add(a, b));
    };
    const run = (net: Dic, opt: Adam) =>
      Array.from({ length: 3 }, () =>
        lr.scope(() => {
          opt.zeroGrad();
          const loss = dicLoss(net);
          loss.backward();
          opt.step();
          return loss.item();
        }),
      );
    const before = cpu.parameters().map((p) => Array.from(p.data()));
    const lossCpu = run(cpu, new Adam(cpu.parameters(), { lr: 1e-3 }));
    const lossGpu = run(gpu, new Adam(gpu.parameters(), { lr: 1e-3 }));
    lossCpu.forEach((l, i) => expect(Math.abs(l - lossGpu[i]), `loss at step ${i + 1}: cpu ${l}, cuda ${lossGpu[i]}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(l))));
    expect(cpu.parameters().reduce((m, p, i) => Math.max(m, maxAbsDiff(p.data(), before[i])), 0)).toBeGreaterThan(1e-3);
    const named = [...gpu.namedParameters()];
    cpu.parameters().forEach((p, i) => {
      const [name, q] = named[i];
      expect(q.deviceId).toBe('cuda:0');
      expect(maxAbsDiff(p.data(), q.data()), `parameter ${name}`).toBeLessThan(1e-4);
    });
    cpu.dispose();
    gpu.dispose();
  });

  it("Adam's state follows a model moved to the device after it has taken steps", () => {
    const make = () => new Vdsr({ depth: 3, features: 8 });
    lr.manualSeed(31);
    const cpu = make();
    const moved = twin(cpu, make);
    const optCpu = new Adam(cpu.parameters(), { lr: 1e-3 });
    const optMoved = new Adam(moved.parameters(), { lr: 1e-3 });
    const batch = srBatch(2, 17, 8);
    train(cpu, optCpu, batch.x, batch.y, 2);
    train(moved, optMoved, batch.x, batch.y, 2);
    moved.to('cuda');
    const lossCpu = train(cpu, optCpu, batch.x, batch.y, 2);
    const lossMoved = train(moved, optMoved, batch.x, batch.y, 2);
    lossCpu.forEach((l, i) => expect(Math.abs(l - lossMoved[i])).toBeLessThan(1e-5));
    cpu.parameters().forEach((p, i) => {
      expect(moved.parameters()[i].deviceId).toBe('cuda:0');
      expect(maxAbsDiff(p.data(), moved.parameters()[i].data())).toBeLessThan(1e-5);
    });
  });

  it('a checkpoint saved from a device model loads into device and CPU models, optimiser state included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-cuda-ckpt-'));
    try {
      const make = () => new Vdsr({ depth: 3, features: 8 });
      lr.manualSeed(21);
      const net = make().to('cuda');
      const opt = new Adam(net.parameters(), { lr: 1e-3 });
      const batch = srBatch(2, 17, 7);
      train(net, opt, batch.x, batch.y, 2);
      const path = join(dir, 'vdsr.safetensors');
      saveCheckpoint(path, { model: net, optimizer: opt, step: 2 });

      const onDevice = make().to('cuda');
      const optDevice = new Adam(onDevice.parameters(), { lr: 1e-3 });
      expect(loadCheckpoint(path, { model: onDevice, optimizer: optDevice }).step).toBe(2);
      const onHost = make();
      const optHost = new Adam(onHost.parameters(), { lr: 1e-3 });
      loadCheckpoint(path, { model: onHost, optimizer: optHost });
      const saved = net.parameters().map((p) => Array.from(p.data()));
      onDevice.parameters().forEach((p, i) => {
        expect(p.deviceId).toBe('cuda:0');
        expect(Array.from(p.data())).toEqual(saved[i]);
      });
      onHost.parameters().forEach((p, i) => expect(Array.from(p.data())).toEqual(saved[i]));
      // One more step from the restored state matches the original run's next step.
      train(net, opt, batch.x, batch.y, 1);
      train(onDevice, optDevice, batch.x, batch.y, 1);
      train(onHost, optHost, batch.x, batch.y, 1);
      net.parameters().forEach((p, i) => {
        expect(maxAbsDiff(p.data(), onDevice.parameters()[i].data())).toBeLessThan(1e-6);
        expect(maxAbsDiff(p.data(), onHost.parameters()[i].data())).toBeLessThan(1e-5);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('spectral norm and cross-entropy run on the device as on the CPU', () => {
    lr.manualSeed(4);
    const cpu = spectralNorm(new Linear(6, 3));
    const gpu = twin(cpu, () => spectralNorm(new Linear(6, 3))).to('cuda');
    const x = lr.rand([5, 6]);
    const labels = lr.tensor(new Int32Array([0, 2, 1, 1, 0]), [5]);
    const lossCpu = crossEntropy(cpu.forward(x) as lr.Tensor, labels);
    const lossGpu = crossEntropy(gpu.forward(x.to('cuda')) as lr.Tensor, labels.to('cuda'));
    expect(lossGpu.deviceId).toBe('cuda:0');
    expect(Math.abs(lossCpu.item() - lossGpu.item())).toBeLessThan(1e-5);
  });
});
