/**
 * @lrface/cuda-core: lrface's tensor engine. Tensors in native memory, CPU kernels (and
 * cuDNN/cuBLAS where built), and define-by-run autograd.
 * @packageDocumentation
 */
export { Tensor, tensor, zeros, ones, full, isTensor, scope, keep, memory, emptyCache, shapeSize } from './tensor.js';
export type { Device, DeviceSpec, Shape, TypedArray, NestedArray, MemoryInfo } from './tensor.js';
export type { DType } from './dtype.js';
export { noGrad, isGradEnabled, registerGradient, record } from './autograd.js';
export { runAsync } from './async.js';
export type { GradContext, GradientFn } from './autograd.js';
export * from './ops/index.js';
export { defineOp, attr, normalizeAxes, normalizeAxis } from './ops/decl.js';
export type { OpDecl, TensorInputSpec, AttrSpec, IntOptions, AttrValues, InputValues } from './ops/decl.js';
export { numThreads, setNumThreads, devices, buildInfo, measureFmaPeak, setAllowTF32, setCudnnBenchmark } from './runtime.js';
export { manualSeed, getRngState, setRngState, rand, randn, randint, randperm } from './random.js';
export type { RngState } from './random.js';
export type { DeviceInfo, BuildInfo, FmaPeak, GpuLibraryInfo } from './runtime.js';
export { nativeAddonOrigin } from './native.js';
export { describe as describeValue, typeError, rangeError, checkKeys } from './errors.js';
export { writeFileAtomic } from './atomic.js';
