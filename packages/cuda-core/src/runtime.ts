// Engine-wide settings and device discovery.
import { addon } from './native.js';
import { rangeError, typeError } from './errors.js';

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

export interface BuildInfo {
  /** The CUDA backend was compiled into the addon. */
  cuda: boolean;
  cudnn: boolean;
  cublas: boolean;
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
    cudnn: cuda.cudnn,
    cublas: cuda.cublas,
    cudaAvailable: cuda.available,
    cudaReason: cuda.reason,
    cpuIsa: addon.kernels.gemm_isa() as string,
  };
}
