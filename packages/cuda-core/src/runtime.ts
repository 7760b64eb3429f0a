// Engine-wide settings and device discovery.
import { addon } from './native.js';
import type { GpuLibraryStatus } from './native.js';
import { checkKeys, rangeError, typeError } from './errors.js';

/** Threads the CPU kernels use (LRFACE_NUM_THREADS at start-up, else the machine's cores). */
export function numThreads(): number {
  return addon.numThreads();
}

/** Sets the CPU thread count for every kernel from now on. */
export function setNumThreads(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw typeError('setNumThreads', 'n', 'an integer', n);
  if (n < 1 || n > 1024) throw rangeError('setNumThreads', 'n', 'in [1, 1024]', n);
  addon.setNumThreads(n);
}

export interface DeviceInfo {
  /** 'cpu' or 'cuda:<index>' */
  id: string;
  type: 'cpu' | 'cuda';
  name: string;
  /** Bytes of device memory (CUDA only). */
  totalMemory?: number;
  /** e.g. "9.0" (CUDA only). */
  computeCapability?: string;
  /** CPU threads (CPU only). */
  threads?: number;
}

/** cuDNN or cuBLAS as the addon found it: opened at run time, never linked. */
export interface GpuLibraryInfo {
  /** The library was opened and has every entry point the engine calls. */
  loaded: boolean;
  /** The file opened ('' when none was). */
  path: string;
  /** e.g. '9.6.0' ('' when unknown). */
  version: string;
  /** Why it is not in use, when it is not. */
  reason: string;
}

export interface BuildInfo {
  /** The CUDA backend was compiled into the addon. */
  cuda: boolean;
  /** cuDNN is loaded: CUDA convolutions run through it (the engine's own kernels otherwise). */
  cudnn: boolean;
  /** cuBLAS is loaded: CUDA matrix products run through it (the engine's own kernel otherwise). */
  cublas: boolean;
  /** Where cuDNN was found, its version, or why it is not in use. */
  cudnnLibrary: GpuLibraryInfo;
  /** Where cuBLAS was found, its version, or why it is not in use. */
  cublasLibrary: GpuLibraryInfo;
  /** Whether a CUDA device can be used now. */
  cudaAvailable: boolean;
  /** Why CUDA cannot be used, when it cannot. */
  cudaReason: string;
  /** Instruction set of the CPU matrix and convolution kernels on this machine: 'avx512', 'avx2' or 'scalar'. */
  cpuIsa: string;
}

/** The devices the engine can use now: the CPU always, CUDA GPUs where built and present. */
export function devices(): DeviceInfo[] {
  const cuda = addon.cudaInfo();
  const list: DeviceInfo[] = [{ id: 'cpu', type: 'cpu', name: 'CPU', threads: addon.numThreads() }];
  if (cuda.available)
    for (const d of cuda.devices)
      list.push({ id: `cuda:${d.index}`, type: 'cuda', name: d.name, totalMemory: d.totalMemory, computeCapability: d.computeCapability });
  return list;
}

/** What the addon was built with and whether CUDA is usable here (with the reason if not). */
export function buildInfo(): BuildInfo {
  const cuda = addon.cudaInfo();
  return {
    cuda: cuda.compiled,
    cudnn: cuda.cudnnLibrary.loaded,
    cublas: cuda.cublasLibrary.loaded,
    cudnnLibrary: { ...cuda.cudnnLibrary },
    cublasLibrary: { ...cuda.cublasLibrary },
    cudaAvailable: cuda.available,
    cudaReason: cuda.reason,
    cpuIsa: addon.kernels.gemm_isa() as string,
  };
}

function flag(fn: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw typeError(fn, name, 'a boolean', value);
  return value;
}

/**
 * Lets cuDNN and cuBLAS use TF32 tensor cores for float32 convolutions and products on
 * Ampere and newer GPUs: much faster, with products rounded to 10-bit mantissas (about 1e-3
 * relative error). Off by default, so CUDA results match the CPU's to float32 rounding.
 * Returns the previous setting.
 */
export function setAllowTF32(allow: boolean): boolean {
  return addon.kernels.cuda_set_tf32(flag('setAllowTF32', 'allow', allow)) as boolean;
}

/**
 * Chooses each convolution shape's cuDNN algorithm by timing all of them on its first call
 * (like PyTorch's cudnn.benchmark) instead of by cuDNN's heuristics; the choice is kept for the
 * process. Worth it for fixed input sizes (training on patches), costly when sizes vary.
 * Off by default. Returns the previous setting.
 */
export function setCudnnBenchmark(on: boolean): boolean {
  return addon.kernels.cuda_set_cudnn_benchmark(flag('setCudnnBenchmark', 'on', on)) as boolean;
}

/** Result of {@link measureFmaPeak}. */
export interface FmaPeak {
  /** Instruction set of the probe loop: the one the GEMM and convolution kernels use. */
  isa: string;
  /** fp32 lanes per instruction (16 for AVX-512, 8 for AVX2, 4 for the SSE multiply + add). */
  lanes: number;
  /** Independent accumulator chains per thread. */
  chains: number;
  /** Threads that ran at once. */
  threads: number;
  /** FLOP/s of each thread's fastest round. */
  flopsPerThread: number[];
  /** Their sum: the fp32 FMA peak of `threads` cores busy together, FLOP/s (2 per lane per FMA). */
  flopsPerSecond: number;
}

const FMA_PEAK_OPTION_KEYS: Record<'threads' | 'ms', true> = { threads: true, ms: true };

/**
 * Measures the fp32 FMA peak: `threads` pool threads at once each run rounds of independent
 * FMA chains (at the instruction set the kernels use) for about `ms` milliseconds; each
 * thread's fastest round counts, so other processes' interruptions mostly drop out. A
 * measurement rather than clock x nominal width, because the advertised instruction set does
 * not say how wide the FMA units are (Zen 4 runs AVX-512 at 32 FLOP/cycle, Intel servers 64).
 * Blocks the calling thread for the duration.
 */
export function measureFmaPeak(options: { threads?: number; ms?: number } = {}): FmaPeak {
  const fn = 'measureFmaPeak';
  checkKeys(fn, options, FMA_PEAK_OPTION_KEYS);
  const { threads = addon.numThreads(), ms = 200 } = options;
  if (typeof threads !== 'number' || !Number.isInteger(threads)) throw typeError(fn, 'threads', 'an integer', threads);
  const poolSize = addon.numThreads();
  if (threads < 1 || threads > poolSize) throw rangeError(fn, 'threads', `in [1, ${poolSize}] (numThreads())`, threads);
  if (typeof ms !== 'number' || Number.isNaN(ms)) throw typeError(fn, 'ms', 'a number', ms);
  if (!(ms >= 1 && ms <= 60_000)) throw rangeError(fn, 'ms', 'in [1, 60000]', ms);
  const r = addon.kernels.fma_peak(threads, ms / 1000) as Omit<FmaPeak, 'threads' | 'flopsPerSecond'>;
  return { ...r, threads, flopsPerSecond: r.flopsPerThread.reduce((s, v) => s + v, 0) };
}
