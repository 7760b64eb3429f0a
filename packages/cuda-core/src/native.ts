// Loads the compiled addon. The only module that touches the binding.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A block of native memory owned by the addon. */
export interface NativeStorage {
  readonly numel: number;
  readonly dtype: number;
  readonly freed: boolean;
  free(): void;
  read(offset?: number, count?: number): Float32Array | Int32Array | Uint8Array;
  write(data: Float32Array | Int32Array | Uint8Array, offset?: number): void;
}

export interface CudaInfo {
  compiled: boolean;
  cudnn: boolean;
  cublas: boolean;
  available: boolean;
  reason: string;
  runtimeVersion: number;
  driverVersion: number;
  devices: { index: number; name: string; totalMemory: number; computeCapability: string }[];
}

export interface NativeAddon {
  Storage: new (dtype: number, numel: number) => NativeStorage;
  liveStorage(): { count: number; bytes: number; cached: number };
  emptyCache(): void;
  numThreads(): number;
  setNumThreads(n: number): void;
  cudaInfo(): CudaInfo;
  // Kernels take positional arguments; a tensor is (storage, elementOffset).
  kernels: Record<string, (...args: unknown[]) => unknown>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function candidates(): string[] {
  const platform = `${process.platform}-${process.arch}`;
  return [
    process.env.LRFACE_ADDON_PATH ?? '',
    join(packageRoot, 'build', 'Release', 'lrface_core.node'),
    join(packageRoot, 'build', 'Debug', 'lrface_core.node'),
    join(packageRoot, 'prebuilds', platform, 'lrface_core.node'),
  ].filter((p) => p !== '');
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of candidates()) {
    if (!existsSync(path)) {
      tried.push(`${path}: not found`);
      continue;
    }
    try {
      return require(path) as NativeAddon;
    } catch (err) {
      tried.push(`${path}: ${(err as Error).message}`);
    }
  }
  throw new Error(
    `@lrface/cuda-core: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.version}).\n` +
      `Tried:\n  ${tried.join('\n  ')}\n` +
      'Possible fixes: run `npm rebuild @lrface/cuda-core` (needs cmake and a C++17 compiler), ' +
      'set LRFACE_CPU_ONLY=1 for a CPU-only build, or install a version with a prebuilt binary for this platform.',
  );
}

export const addon: NativeAddon = load();
export const kernels = addon.kernels;
