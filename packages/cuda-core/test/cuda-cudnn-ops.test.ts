// Pooling, activations, softmax and batch norm on the device, against the CPU, run twice: with
// cuDNN where the build has it ('auto'), and with the engine's own kernels
// (cuda_use_libraries('none')). Each case states how many of its calls cuDNN must take in
// 'auto' (forward and backward), so a case cuDNN cannot express with the engine's semantics
// (ceil-mode windows, dilation, max pooling that must return indices, eval-mode batch norm)
// is proven to run on the own kernels. Skipped where no CUDA device is usable.
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { expectClose } from './helpers/check.js';
import { input, parity, type Input } from './helpers/parity.js';
import { uniform } from './helpers/random.js';

const cudaDevice = lr.devices().find((d) => d.type === 'cuda');
const onDevice = cudaDevice ? `on ${cudaDevice.id}, ${cudaDevice.name}` : 'no CUDA device here';
const canSwitchLibraries = typeof kernels.cuda_use_libraries === 'function';
const canCount = typeof kernels.cudnn_op_count === 'function';
const info = lr.buildInfo();

type LibraryMode = 'auto' | 'none';

function withLibraries<T>(mode: LibraryMode, body: () => T): T {
  if (canSwitchLibraries) kernels.cuda_use_libraries(mode);
  try {
    return body();
  } finally {
    if (canSwitchLibraries) kernels.cuda_use_libraries('auto');
  }
}

const opCalls = (): number => (canCount ? (kernels.cudnn_op_count() as number) : 0);

/** Asserts that body made `expected` cuDNN op calls in 'auto' with cuDNN loaded, none otherwise. */
function expectCudnnCalls<T>(mode: LibraryMode, expected: number, body: () => T): T {
  const before = opCalls();
  const result = withLibraries(mode, body);
  if (canCount) expect(opCalls() - before).toBe(mode === 'auto' && info.cudnn ? expected : 0);
  return result;
}

interface Case {
  name: string;
  f: (x: lr.Tensor) => lr.Tensor;
  inputs: Input[];
  /** cuDNN calls in 'auto': forward plus backward. */
  cudnnCalls: number;
  tol?: { atol: number; rtol: number };
}

const x4 = (seed: number, shape = [2, 3, 9, 8]): Input => input(shape, seed);

const cases: Case[] = [
  { name: 'softmax over channels', f: (x) => lr.softmax(x, 1), inputs: [x4(1)], cudnnCalls: 2 },
  { name: 'softmax over the last axis', f: (x) => lr.softmax(x, -1), inputs: [x4(2)], cudnnCalls: 2 },
  { name: 'log-softmax over channels', f: (x) => lr.logSoftmax(x, 1), inputs: [x4(3)], cudnnCalls: 2 },
  { name: 'log-softmax of a matrix (rows)', f: (x) => lr.logSoftmax(x, 1), inputs: [input([7, 10], 4)], cudnnCalls: 2 },
  { name: 'relu', f: (x) => lr.relu(x), inputs: [x4(5)], cudnnCalls: 2 },
  { name: 'sigmoid', f: (x) => lr.sigmoid(x), inputs: [x4(6)], cudnnCalls: 2 },
  { name: 'tanh', f: (x) => lr.tanh(x), inputs: [x4(7)], cudnnCalls: 2 },
  // cuDNN has no leaky ReLU in this API.
  { name: 'leaky relu (own kernel)', f: (x) => lr.leakyRelu(x, 0.2), inputs: [x4(8)], cudnnCalls: 0 },
  {
    name: 'average pooling 2x2',
    f: (x) => lr.avgPool2d(x, { kernelSize: 2 }),
    inputs: [x4(9)],
    cudnnCalls: 2,
  },
  {
    name: 'average pooling 3x3 stride 2 padding 1, padding counted',
    f: (x) => lr.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
    inputs: [x4(10)],
    cudnnCalls: 2,
  },
  {
    name: 'average pooling 3x2 stride [2,1] padding [1,1], padding not counted',
    f: (x) => lr.avgPool2d(x, { kernelSize: [3, 2], stride: [2, 1], padding: [1, 1], countIncludePad: false }),
    inputs: [x4(11)],
    cudnnCalls: 2,
  },
  {
    // ceil mode adds a window past the padding, which cuDNN's output size has not.
    name: 'average pooling in ceil mode (own kernel)',
    f: (x) => lr.avgPool2d(x, { kernelSize: 2, ceilMode: true }),
    inputs: [x4(12, [2, 3, 9, 7])],
    cudnnCalls: 0,
  },
  {
    // Training needs the argmax indices, which cuDNN does not return.
    name: 'max pooling with a gradient (own kernel: indices)',
    f: (x) => lr.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
    inputs: [x4(13)],
    cudnnCalls: 0,
  },
];

/** Max pooling without a gradient (inference), where cuDNN runs the forward. */
const inferencePools: { name: string; options: lr.MaxPool2dOptions; cudnnCalls: number; shape?: number[] }[] = [
  { name: '2x2', options: { kernelSize: 2 }, cudnnCalls: 1 },
  { name: '3x3 stride 2 padding 1', options: { kernelSize: 3, stride: 2, padding: 1 }, cudnnCalls: 1 },
  { name: '3x2 stride [1,2] padding [1,1]', options: { kernelSize: [3, 2], stride: [1, 2], padding: [1, 1] }, cudnnCalls: 1 },
  { name: 'dilation 2 (own kernel)', options: { kernelSize: 2, dilation: 2 }, cudnnCalls: 0 },
  { name: 'ceil mode (own kernel)', options: { kernelSize: 2, ceilMode: true }, cudnnCalls: 0, shape: [2, 3, 9, 7] },
];

function onBoth<T>(f: (device: 'cpu' | 'cuda') => T): { cpu: T; gpu: T } {
  return { cpu: f('cpu'), gpu: f('cuda') };
}

/** Training-mode batch norm: output, input/weight/bias gradients and the running statistics. */
function batchNormRun(device: 'cpu' | 'cuda', options: { training: boolean; eps?: number; affine: boolean; shape: number[] }) {
  const [, c] = options.shape;
  const make = (data: Float32Array, shape: number[], grad: boolean) => lr.tensor(data, shape, 'float32', device).requiresGrad_(grad);
  const x = make(uniform(options.shape.reduce((a, b) => a * b), 21, -2, 3), options.shape, true);
  const weight = options.affine ? make(uniform(c, 22, 0.5, 1.5), [c], true) : null;
  const bias = options.affine ? make(uniform(c, 23), [c], true) : null;
  const runningMean = lr.tensor(uniform(c, 24), [c], 'float32', device);
  const runningVar = lr.tensor(uniform(c, 25, 0.5, 2), [c], 'float32', device);
  const y = lr.batchNorm2d(x, runningMean, runningVar, weight, bias, { training: options.training, momentum: 0.3, eps: options.eps ?? 1e-5 });
  const r = lr.tensor(uniform(y.size, 26), y.shape, 'float32', device);
  lr.sum(lr.mul(y, r)).backward();
  const host = (t: lr.Tensor | null) => (t ? t.to('cpu').data() : null);
  return {
    y: host(y)!,
    gx: host(x.grad)!,
    gw: host(weight?.grad ?? null),
    gb: host(bias?.grad ?? null),
    runningMean: host(runningMean)!,
    runningVar: host(runningVar)!,
  };
}

describe.skipIf(!cudaDevice)(`CUDA pooling, activations, softmax and batch norm against the CPU (${onDevice})`, () => {
  for (const mode of ['auto', 'none'] as const) {
    const label = mode === 'auto' ? 'cuDNN where built' : "the engine's own kernels";
    describe.skipIf(mode === 'none' && !canSwitchLibraries)(label, () => {
      for (const c of cases) it(c.name, () => expectCudnnCalls(mode, c.cudnnCalls, () => parity(c.f, c.inputs, c.tol)));

      for (const p of inferencePools)
        it(`max pooling without a gradient, ${p.name}`, () => {
          const data = uniform((p.shape ?? [2, 3, 9, 8]).reduce((a, b) => a * b), 31);
          const run = (device: 'cpu' | 'cuda') =>
            lr.noGrad(() => lr.maxPool2d(lr.tensor(data, p.shape ?? [2, 3, 9, 8], 'float32', device), p.options).to('cpu').data());
          const { cpu, gpu } = expectCudnnCalls(mode, p.cudnnCalls, () => onBoth(run));
          expectClose(gpu, cpu, 0, 0);
        });

      it('NaN in the input: relu gives 0 for it (as the CPU), sigmoid, tanh, softmax and max pooling give NaN', () => {
        const data = uniform(2 * 2 * 4 * 4, 41);
        data[5] = Number.NaN;
        data[40] = Number.NaN;
        const ops: [string, (x: lr.Tensor) => lr.Tensor, boolean][] = [
          ['relu', (x) => lr.relu(x), false],
          ['sigmoid', (x) => lr.sigmoid(x), true],
          ['tanh', (x) => lr.tanh(x), true],
          ['softmax', (x) => lr.softmax(x, 1), true],
          ['max pooling', (x) => lr.noGrad(() => lr.maxPool2d(x, { kernelSize: 2 })), true],
        ];
        for (const [name, op, propagates] of ops) {
          const run = (device: 'cpu' | 'cuda') => op(lr.tensor(data, [2, 2, 4, 4], 'float32', device)).to('cpu').data();
          const { cpu, gpu } = withLibraries(mode, () => onBoth(run));
          expect(cpu.some(Number.isNaN), name).toBe(propagates);
          for (let k = 0; k < cpu.length; k++) expect(Number.isNaN(gpu[k]), `${name} at ${k}`).toBe(Number.isNaN(cpu[k]));
          expectClose(gpu, cpu, 1e-6, 1e-5);
        }
      });

      const bnCases = [
        { name: 'training, affine', options: { training: true, affine: true, shape: [4, 3, 5, 6] }, cudnnCalls: 2 },
        { name: 'training, without weight and bias', options: { training: true, affine: false, shape: [3, 5, 4, 4] }, cudnnCalls: 2 },
        { name: 'training on [N, C] (one value per sample)', options: { training: true, affine: true, shape: [16, 6] }, cudnnCalls: 2 },
        // An epsilon below cuDNN 8's smallest, and eval mode: the own kernels, both ways.
        { name: 'training with eps 1e-7 (own kernel)', options: { training: true, affine: true, eps: 1e-7, shape: [4, 3, 5, 6] }, cudnnCalls: 0 },
        { name: 'eval mode (own kernel)', options: { training: false, affine: true, shape: [4, 3, 5, 6] }, cudnnCalls: 0 },
      ];
      for (const b of bnCases)
        it(`batch norm, ${b.name}: output, gradients and running statistics`, () => {
          const { cpu, gpu } = expectCudnnCalls(mode, b.cudnnCalls, () => onBoth((device) => batchNormRun(device, b.options)));
          const tol = { atol: 1e-4, rtol: 1e-4 };
          for (const key of ['y', 'gx', 'gw', 'gb', 'runningMean', 'runningVar'] as const) {
            const want = cpu[key];
            if (want === null) expect(gpu[key]).toBeNull();
            else expectClose(gpu[key]!, want, tol.atol, tol.rtol);
          }
        });
    });
  }

  it('batch norm with only the weight gradient asked for (cuDNN writes the others to scratch)', () => {
    const run = (device: 'cpu' | 'cuda') => {
      const x = lr.tensor(uniform(2 * 3 * 4 * 4, 51), [2, 3, 4, 4], 'float32', device);
      const w = lr.tensor(uniform(3, 52, 0.5, 1.5), [3], 'float32', device).requiresGrad_(true);
      const y = lr.batchNorm2d(x, null, null, w, null, { training: true });
      lr.sum(lr.mul(y, lr.tensor(uniform(y.size, 53), y.shape, 'float32', device))).backward();
      expect(x.grad).toBeNull();
      return w.grad!.to('cpu').data();
    };
    const { cpu, gpu } = expectCudnnCalls('auto', 2, () => onBoth(run));
    expectClose(gpu, cpu, 1e-4, 1e-4);
  });

  it.skipIf(!info.cudnn)('cuDNN reports the pooling, activation, softmax and batch-norm entry points present', () => {
    expect(info.cudnnLibrary.reason).toBe('');
  });
});
