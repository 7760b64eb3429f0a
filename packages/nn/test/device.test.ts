// Modules, optimisers and losses on a device, as far as a machine without a GPU can check:
// the refusal of an unusable device (same Error as Tensor.to, nothing changed), the no-op
// move to the CPU, and the helpers that make tensors on their input's device. Where a CUDA
// device is usable (a GPU, or the host emulation: vitest.emulated.config.ts), the optimisers
// and gradient clipping run there against the CPU. Training on CUDA against the CPU is in
// packages/sr/test/cuda-train.test.ts.
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Adam, AdamW, BatchNorm2d, Conv2d, Linear, Module, SGD, Sequential, clipGradNorm, convBatchNorm, crossEntropy, normal_, oneHot, uniform_, type Optimizer } from '../src/index.js';

const hasCuda = lr.devices().some((d) => d.type === 'cuda');

class Tied extends Module {
  declare conv: Conv2d;
  declare bn: BatchNorm2d;
  declare head: Linear;
  constructor() {
    super();
    this.registerModule('conv', new Conv2d(1, 2, 3, { padding: 1 }));
    this.registerModule('bn', new BatchNorm2d(2));
    this.registerModule('head', new Linear(2, 2));
  }
  forward(x: lr.Tensor): lr.Tensor {
    return this.bn.forward(this.conv.forward(x));
  }
}

/** Every parameter and buffer with a copy of its values. */
function snapshot(m: Module): { tensors: lr.Tensor[]; values: number[][]; devices: string[] } {
  const tensors = [...m.parameters(), ...m.buffers()];
  return { tensors, values: tensors.map((t) => Array.from(t.data())), devices: tensors.map((t) => t.deviceId) };
}

/** The message Tensor.to gives for `device`, or null when it moves. */
function tensorToError(device: string): string | null {
  const t = lr.zeros([1]);
  try {
    t.to(device as lr.DeviceSpec).dispose();
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    t.dispose();
  }
}

describe('Module.to', () => {
  it("to('cpu') on a CPU module changes nothing and returns the module", () => {
    const m = new Tied();
    const before = snapshot(m);
    expect(m.to('cpu')).toBe(m);
    const after = snapshot(m);
    after.tensors.forEach((t, i) => expect(t).toBe(before.tensors[i]));
    expect(after.values).toEqual(before.values);
    expect(after.devices.every((d) => d === 'cpu')).toBe(true);
    expect(m.device).toBe('cpu');
  });

  it.skipIf(hasCuda)("to('cuda') without a usable GPU throws Tensor.to's Error, with devices()' reason, and leaves the module on the CPU", () => {
    const m = new Tied();
    const before = snapshot(m);
    const expected = tensorToError('cuda');
    expect(expected).toMatch(/cuda/);
    expect(expected).toContain(lr.buildInfo().cudaReason);
    let thrown: unknown;
    try {
      m.to('cuda');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(thrown).not.toBeInstanceOf(RangeError);
    expect(thrown).not.toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toBe(expected);
    const after = snapshot(m);
    after.tensors.forEach((t, i) => expect(t).toBe(before.tensors[i]));
    expect(after.values).toEqual(before.values);
    expect(after.devices.every((d) => d === 'cpu')).toBe(true);
    // A module without tensors still checks the device.
    expect(() => new Sequential().to('cuda')).toThrow(expected!);
  });

  it('rejects a device that is not a device name, as Tensor.to does', () => {
    const m = new Tied();
    expect(() => m.to('gpu' as lr.DeviceSpec)).toThrow(RangeError);
    expect(() => m.to('gpu' as lr.DeviceSpec)).toThrow(tensorToError('gpu')!);
    expect(() => m.to(0 as unknown as lr.DeviceSpec)).toThrow(TypeError);
    expect(() => m.to('cuda:x' as lr.DeviceSpec)).toThrow(/'device' must be 'cpu', 'cuda' or 'cuda:<index>'/);
    expect(m.device).toBe('cpu');
  });

  it('reports the device of a module without tensors as the CPU', () => {
    expect(new Sequential().device).toBe('cpu');
  });

  it('keeps gradients and the tensor objects of shared parameters when moving to the device they are on', () => {
    const shared = new Linear(2, 2);
    const m = new Sequential(shared, shared);
    const w = shared.weight;
    lr.scope(() => lr.sum(m.forward(lr.tensor([[1, 2]]))).backward());
    const grad = w.grad;
    expect(grad).not.toBeNull();
    m.to('cpu');
    expect(shared.weight).toBe(w);
    expect(w.grad).toBe(grad);
  });
});

describe('Tensor._moveTo_', () => {
  it('refuses a tensor produced by a recorded operation (its graph would lose its memory)', () => {
    const w = lr.tensor([1, 2, 3]).requiresGrad_();
    const y = lr.mul(w, 2);
    expect(() => y._moveTo_('cpu')).toThrow(/to: cannot move a tensor \[3\] produced by a recorded operation in place/);
    expect(w._moveTo_('cpu')).toBe(w);
    expect(Array.from(w.data())).toEqual([1, 2, 3]);
  });

  it('refuses a disposed tensor and a bad device', () => {
    const t = lr.tensor([1]);
    expect(() => t._moveTo_('tpu' as lr.DeviceSpec)).toThrow(RangeError);
    t.dispose();
    expect(() => t._moveTo_('cpu')).toThrow(/disposed/);
  });
});

describe('tensors made on their input device', () => {
  it("oneHot is made on the labels' device with the right rows", () => {
    const labels = lr.tensor(new Int32Array([2, 0]), [2]);
    const hot = oneHot(labels, 3);
    expect(hot.deviceId).toBe(labels.deviceId);
    expect(hot.toArray()).toEqual([[0, 0, 1], [1, 0, 0]]);
    // crossEntropy goes through it: -log softmax at the label, by hand.
    const logits = lr.tensor([[0, 0, Math.log(2)], [Math.log(3), 0, 0]]);
    expect(crossEntropy(logits, labels).item()).toBeCloseTo((-Math.log(2 / 4) - Math.log(3 / 5)) / 2, 6);
  });

  it('initialisers draw on the tensor device the same values as rand/randn there', () => {
    const t = lr.zeros([64]);
    lr.manualSeed(7);
    uniform_(t, -1, 2);
    lr.manualSeed(7);
    const ref = lr.rand([64], { low: -1, high: 2 });
    expect(Array.from(t.data())).toEqual(Array.from(ref.data()));
    lr.manualSeed(9);
    normal_(t, 1, 0.5);
    lr.manualSeed(9);
    expect(Array.from(t.data())).toEqual(Array.from(lr.randn([64], { mean: 1, std: 0.5 }).data()));
  });
});

describe.skipIf(!hasCuda)('optimisers and gradient clipping on the device, against the CPU', () => {
  const shapes = [[8, 3, 3, 3], [8], [0], [], [40, 7]];
  const values = (shape: number[], seed: number) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(1.7 * i + seed));

  /** Parameters after `steps` updates from fixed gradients, clipped to norm 1 before each. */
  function train(device: 'cpu' | 'cuda', make: (ps: lr.Tensor[]) => Optimizer, steps = 3): { params: number[][]; norms: number[] } {
    const params = shapes.map((s, k) => lr.tensor(new Float32Array(values(s, k)), s, 'float32', device).requiresGrad_());
    const opt = make(params);
    const norms: number[] = [];
    for (let t = 0; t < steps; t++) {
      params.forEach((p, k) => (p.grad = lr.tensor(new Float32Array(values(shapes[k], 10 * t + k + 5)), shapes[k], 'float32', device)));
      norms.push(clipGradNorm(params, 1));
      opt.step();
      opt.zeroGrad();
    }
    return { params: params.map((p) => Array.from(p.to('cpu').data())), norms };
  }

  for (const [name, make] of [
    ['Adam', (ps: lr.Tensor[]) => new Adam(ps, { lr: 0.01, weightDecay: 0.1 })],
    ['AdamW', (ps: lr.Tensor[]) => new AdamW(ps, { lr: 0.01 })],
    ['SGD with momentum', (ps: lr.Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 })],
  ] as const)
    it(`${name} after clipGradNorm, three steps`, () => {
      const cpu = train('cpu', make);
      const cuda = train('cuda', make);
      cuda.norms.forEach((n, t) => expect(n / cpu.norms[t]).toBeCloseTo(1, 6));
      cuda.params.forEach((p, k) => p.forEach((v, i) => expect(Math.abs(v - cpu.params[k][i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(cpu.params[k][i])))));
    });
});

describe.skipIf(!hasCuda)('a batch norm folded into its convolution on the device, against the CPU', () => {
  it('convBatchNorm (folded, with ReLU) gives the CPU values and gradients', () => {
    const run = (device: 'cpu' | 'cuda') => {
      lr.manualSeed(5);
      const conv = new Conv2d(3, 4, 3, { padding: 1 });
      const bn = new BatchNorm2d(4);
      bn.running_mean!.assign(new Float32Array([0.3, -0.2, 0.1, 0]));
      bn.running_var!.assign(new Float32Array([0.5, 2, 1.5, 1]));
      bn.weight!.assign(new Float32Array([1.5, -0.7, 0.9, 1.1]));
      bn.bias!.assign(new Float32Array([0.1, 0.2, -0.3, 0.05]));
      bn.eval();
      conv.to(device);
      bn.to(device);
      const x = lr.tensor(new Float32Array(Array.from({ length: 2 * 3 * 6 * 5 }, (_, i) => Math.sin(0.37 * i))), [2, 3, 6, 5], 'float32', device).requiresGrad_();
      const y = convBatchNorm(x, conv, bn, { relu: true, fold: true });
      lr.sum(lr.mul(y, y)).backward();
      return { y: Array.from(y.to('cpu').data()), gx: Array.from(x.grad!.to('cpu').data()), gw: Array.from(conv.weight.grad!.to('cpu').data()) };
    };
    const cpu = run('cpu'), cuda = run('cuda');
    for (const key of ['y', 'gx', 'gw'] as const)
      cuda[key].forEach((v, i) => expect(Math.abs(v - cpu[key][i]), `${key}[${i}]`).toBeLessThan(1e-4 * Math.max(1, Math.abs(cpu[key][i]))));
  });
});
