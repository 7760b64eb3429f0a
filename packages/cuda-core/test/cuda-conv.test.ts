// Convolutions and matrix products on the device, forward and backward, against the CPU.
// Every case runs twice: with cuDNN/cuBLAS where the build has them ('auto'), and with the
// engine's own kernels (native/cuda/gemm_conv.cu, forced by cuda_use_libraries('none')).
// Where no CUDA device is usable the suite is reported as skipped, never as passed; where the
// addon cannot switch the libraries off, the own-kernel runs are reported as skipped.
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { input, parity, type Input } from './helpers/parity.js';

const hasCuda = lr.devices().some((d) => d.type === 'cuda');
// The device the suite runs on, in its name: a run on the host emulation never reads as a GPU's.
const cudaDevice = lr.devices().find((d) => d.type === 'cuda');
const onDevice = cudaDevice ? `on ${cudaDevice.id}, ${cudaDevice.name}` : 'no CUDA device here';
const canSwitchLibraries = typeof kernels.cuda_use_libraries === 'function';

type LibraryMode = 'auto' | 'none';

const info = lr.buildInfo();
// The emulated run with the cuDNN / cuBLAS stand-ins (test/emulation/stand-ins): they compute
// in full FP32 whatever math mode they are given, so TF32 runs keep the FP32 tolerances there.
const onStandIns = cudaDevice?.name === 'lrface host emulation of CUDA' && info.cudnn && info.cublas;
const canCount = typeof kernels.cudnn_conv_count === 'function';

/** How many convolutions / products the libraries ran, and algorithm choices cuDNN timed, so far. */
function libraryCalls(): { cudnn: number; cublas: number; measured: number } {
  if (!canCount) return { cudnn: 0, cublas: 0, measured: 0 };
  return {
    cudnn: kernels.cudnn_conv_count() as number,
    cublas: kernels.cublas_gemm_count() as number,
    measured: kernels.cudnn_measured_count() as number,
  };
}

/** Runs body with TF32 and the measured algorithm search set as given, restoring both after. */
function withSettings(settings: { tf32?: boolean; benchmark?: boolean }, body: () => void): void {
  const tf32 = lr.setAllowTF32(settings.tf32 ?? false);
  const benchmark = lr.setCudnnBenchmark(settings.benchmark ?? false);
  try {
    body();
  } finally {
    lr.setAllowTF32(tf32);
    lr.setCudnnBenchmark(benchmark);
  }
}

/** Runs body with the device's libraries in `mode`, restoring 'auto' after. */
function withLibraries(mode: LibraryMode, body: () => void): void {
  if (canSwitchLibraries) kernels.cuda_use_libraries(mode);
  try {
    body();
  } finally {
    if (canSwitchLibraries) kernels.cuda_use_libraries('auto');
  }
}

/** Sums over hundreds of products: the device and the CPU add them in different orders. */
const sums = { atol: 1e-4, rtol: 1e-4 };
/** Sums over thousands of products (the filter gradient of a large image). */
const longSums = { atol: 1e-3, rtol: 1e-4 };

interface Case {
  name: string;
  f: (...xs: lr.Tensor[]) => lr.Tensor;
  inputs: Input[];
  tol?: { atol: number; rtol: number };
  /** false where cuDNN cannot express the convolution (padding that differs between the sides
   * changes its output size), so the engine's own kernels run it even with cuDNN loaded. */
  cudnn?: false;
}

const conv2dCases: Case[] = [
  { name: 'plain 3x3', f: (x, w, b) => lr.conv2d(x, w, b), inputs: [input([2, 3, 9, 8], 1), input([4, 3, 3, 3], 2), input([4], 3)] },
  {
    name: 'stride 2, padding 1',
    f: (x, w, b) => lr.conv2d(x, w, b, { stride: 2, padding: 1 }),
    inputs: [input([2, 3, 9, 8], 4), input([5, 3, 3, 3], 5), input([5], 6)],
  },
  {
    name: 'asymmetric padding [top, bottom, left, right]',
    f: (x, w, b) => lr.conv2d(x, w, b, { padding: [1, 0, 2, 1], stride: [2, 1] }),
    inputs: [input([2, 3, 9, 8], 7), input([4, 3, 3, 3], 8), input([4], 9)],
    cudnn: false,
  },
  {
    // cuDNN pads both sides alike: it runs this with the top padding on both, which gives the
    // same output size, and no window reaches the padding row that only it adds.
    name: 'padding only below and to the right, stride 2 (cuDNN with the same output size)',
    f: (x, w, b) => lr.conv2d(x, w, b, { padding: [0, 1, 0, 1], stride: 2 }),
    inputs: [input([2, 3, 9, 9], 75), input([4, 3, 3, 3], 76), input([4], 77)],
  },
  {
    name: 'dilation 2',
    f: (x, w, b) => lr.conv2d(x, w, b, { dilation: 2, padding: 2 }),
    inputs: [input([2, 4, 10, 9], 10), input([6, 4, 3, 3], 11), input([6], 12)],
  },
  {
    name: 'groups 2',
    f: (x, w, b) => lr.conv2d(x, w, b, { groups: 2, padding: 1 }),
    inputs: [input([2, 4, 7, 6], 13), input([6, 2, 3, 3], 14), input([6], 15)],
  },
  {
    name: 'depthwise 3x3, stride 2',
    f: (x, w, b) => lr.conv2d(x, w, b, { groups: 5, stride: 2, padding: 1 }),
    inputs: [input([2, 5, 9, 8], 16), input([5, 1, 3, 3], 17), input([5], 18)],
  },
  {
    name: 'depthwise with two outputs per channel',
    f: (x, w, b) => lr.conv2d(x, w, b, { groups: 3, padding: [2, 1, 1, 1], dilation: [2, 1] }),
    inputs: [input([2, 3, 8, 9], 19), input([6, 1, 3, 3], 20), input([6], 21)],
    cudnn: false,
  },
  {
    // Every setting differs between the axes, so swapping height and width anywhere shows.
    name: 'per-axis padding, stride and dilation, 3x2 kernel',
    f: (x, w, b) => lr.conv2d(x, w, b, { padding: [2, 2, 1, 1], stride: [1, 2], dilation: [2, 1] }),
    inputs: [input([2, 3, 9, 10], 35), input([4, 3, 3, 2], 36), input([4], 37)],
  },
  { name: '1x1', f: (x, w, b) => lr.conv2d(x, w, b), inputs: [input([3, 6, 5, 4], 22), input([7, 6, 1, 1], 23), input([7], 24)] },
  {
    name: '1x1, stride 2',
    f: (x, w) => lr.conv2d(x, w, undefined, { stride: 2 }),
    inputs: [input([2, 6, 7, 6], 25), input([5, 6, 1, 1], 26)],
  },
  {
    name: 'bias + fused relu (conv2dRelu)',
    f: (x, w, b) => lr.conv2dRelu(x, w, b, { padding: 1 }),
    inputs: [input([2, 3, 7, 6], 27), input([4, 3, 3, 3], 28), input([4], 29)],
  },
  {
    // On the device the residual and the ReLU are their own kernels, in place.
    name: 'residual (conv2dAdd)',
    f: (x, w, b, r) => lr.conv2dAdd(x, w, b, r, { padding: 1 }),
    inputs: [input([2, 3, 7, 5], 60), input([4, 3, 3, 3], 61), input([4], 62), input([2, 4, 7, 5], 63)],
  },
  {
    name: 'residual + fused relu (conv2dAddRelu), no bias',
    f: (x, w, r) => lr.conv2dAddRelu(x, w, undefined, r, { padding: 1 }),
    inputs: [input([2, 3, 6, 7], 64), input([4, 3, 3, 3], 65), input([2, 4, 6, 7], 66)],
  },
  {
    name: 'many output channels (several row tiles)',
    f: (x, w, b) => lr.conv2d(x, w, b, { padding: 1 }),
    inputs: [input([2, 24, 6, 5], 30), input([70, 24, 3, 3], 31), input([70], 32)],
  },
  {
    name: 'large planes (the filter gradient split along k)',
    f: (x, w) => lr.conv2d(x, w, undefined, { padding: 1 }),
    inputs: [input([2, 4, 32, 32], 33), input([8, 4, 3, 3], 34)],
    tol: longSums,
  },
];

const convTransposeCases: Case[] = [
  {
    name: 'stride 2, bias',
    f: (x, w, b) => lr.convTranspose2d(x, w, b, { stride: 2 }),
    inputs: [input([2, 4, 5, 6], 40), input([4, 3, 3, 3], 41), input([3], 42)],
  },
  {
    name: 'stride 2, padding 1, output padding 1, bias',
    f: (x, w, b) => lr.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
    inputs: [input([2, 4, 5, 6], 43), input([4, 3, 3, 3], 44), input([3], 45)],
  },
  {
    name: 'per-axis stride, padding and dilation, 3x2 kernel',
    f: (x, w) => lr.convTranspose2d(x, w, undefined, { stride: [2, 1], padding: [1, 1, 0, 0], dilation: [1, 2] }),
    inputs: [input([2, 4, 5, 6], 38), input([4, 3, 3, 2], 39)],
  },
  {
    name: 'groups 2, 4x4 kernel, stride 2',
    f: (x, w, b) => lr.convTranspose2d(x, w, b, { stride: 2, padding: 1, groups: 2 }),
    inputs: [input([2, 4, 5, 5], 46), input([4, 3, 4, 4], 47), input([6], 48)],
  },
];

const productCases: Case[] = [
  // Forward op(A) @ op(B) without transposition; the gradients take g @ B^T and A^T @ g.
  { name: 'matmul, several tiles', f: (a, b) => lr.matmul(a, b), inputs: [input([70, 130], 50), input([130, 65], 51)] },
  { name: 'matmul, long k (split along k)', f: (a, b) => lr.matmul(a, b), inputs: [input([8, 1000], 52), input([1000, 9], 53)], tol: longSums },
  { name: 'matmul, vector operands', f: (a, b) => lr.matmul(a, b), inputs: [input([7], 54), input([7, 5], 55)] },
  {
    name: 'matmul, batched with broadcast',
    f: (a, b) => lr.matmul(a, b),
    inputs: [input([2, 1, 4, 6], 56), input([3, 6, 5], 57)],
  },
  {
    name: 'matmul, broadcast over three batch axes (irregular offsets)',
    f: (a, b) => lr.matmul(a, b),
    inputs: [input([2, 1, 3, 4, 6], 58), input([4, 1, 6, 5], 59)],
  },
  // One operand shared by the whole batch: a batch stride of 0.
  { name: 'matmul, one B for a batch of A', f: (a, b) => lr.matmul(a, b), inputs: [input([3, 4, 6], 67), input([6, 5], 68)] },
  { name: 'matmul, one A for a batch of B', f: (a, b) => lr.matmul(a, b), inputs: [input([4, 6], 69), input([3, 6, 5], 70)] },
  { name: 'bmm', f: (a, b) => lr.bmm(a, b), inputs: [input([3, 4, 5], 60), input([3, 5, 2], 61)] },
  // x @ W^T (B transposed) + bias; gradients g @ W and g^T @ x (A transposed).
  { name: 'linear with bias', f: (x, w, b) => lr.linear(x, w, b), inputs: [input([3, 4, 6], 62), input([5, 6], 63), input([5], 64)] },
  { name: 'linear, 100 features', f: (x, w) => lr.linear(x, w), inputs: [input([9, 100], 65), input([100, 100], 66)] },
];

/**
 * Runs a case and checks which path ran it: in 'auto', with the library loaded, the forward
 * call and both gradients (three library calls) go through cuDNN (convolutions) or cuBLAS
 * (products); otherwise none does.
 */
function runCase(c: Case, mode: LibraryMode, library: 'cudnn' | 'cublas'): void {
  const before = libraryCalls();
  withLibraries(mode, () => parity(c.f, c.inputs, c.tol ?? sums));
  const after = libraryCalls();
  if (!canCount) return;
  const loaded = library === 'cudnn' ? info.cudnn && c.cudnn !== false : info.cublas;
  const other = library === 'cudnn' ? 'cublas' : 'cudnn';
  expect(after[library] - before[library]).toBe(mode === 'auto' && loaded ? 3 : 0);
  expect(after[other] - before[other]).toBe(0);
}

describe.skipIf(!hasCuda)(`CUDA convolutions and products against the CPU (${onDevice})`, () => {
  for (const mode of ['auto', 'none'] as const) {
    const label = mode === 'auto' ? 'libraries where built' : "the engine's own kernels";
    describe.skipIf(mode === 'none' && !canSwitchLibraries)(label, () => {
      for (const [group, cases, library] of [
        ['conv2d', conv2dCases, 'cudnn'],
        ['convTranspose2d', convTransposeCases, 'cudnn'],
        ['matmul / linear', productCases, 'cublas'],
      ] as const)
        describe(group, () => {
          for (const c of cases) it(c.name, () => runCase(c, mode, library));
        });
    });
  }

  // cudnnFind*AlgorithmEx times the algorithms on the call's own buffers (overwriting its
  // output) before the call itself runs with the fastest one.
  describe.skipIf(!info.cudnn)('cuDNN with the measured algorithm search (setCudnnBenchmark)', () => {
    for (const c of [...conv2dCases, ...convTransposeCases].filter((k) => k.cudnn !== false))
      it(c.name, () => {
        const before = libraryCalls();
        withSettings({ benchmark: true }, () => runCase(c, 'auto', 'cudnn'));
        // One timed choice per direction the first time a shape is seen.
        if (canCount) expect(libraryCalls().measured - before.measured).toBe(3);
      });
  });

  // TF32 passes tensor-op math to cuDNN and CUBLAS_TF32_TENSOR_OP_MATH to cuBLAS; only the
  // stand-ins keep FP32 results under it (a GPU rounds the products to 10-bit mantissas).
  describe.skipIf(!onStandIns)('the libraries with TF32 allowed (stand-ins)', () => {
    for (const [c, library] of [
      ...conv2dCases.filter((k) => k.cudnn !== false).map((k) => [k, 'cudnn'] as const),
      ...productCases.map((k) => [k, 'cublas'] as const),
    ])
      it(c.name, () => withSettings({ tf32: true }, () => runCase(c, 'auto', library)));
    it('with the measured search too', () =>
      withSettings({ tf32: true, benchmark: true }, () => runCase(conv2dCases[0]!, 'auto', 'cudnn')));
  });

  it.skipIf(!onStandIns)('the emulated run drives the stand-ins of cuDNN 9.6.0 and cuBLAS 13.0.0', () => {
    expect(info.cudnnLibrary).toMatchObject({ loaded: true, version: '9.6.0', reason: '' });
    expect(info.cublasLibrary).toMatchObject({ loaded: true, version: '13.0.0', reason: '' });
    expect(info.cudnnLibrary.path).toMatch(/build-emulation\/Release\/libcudnn\.so\.9$/);
    expect(info.cublasLibrary.path).toMatch(/build-emulation\/Release\/libcublas\.so\.13$/);
  });
});
