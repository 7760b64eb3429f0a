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
  /** -1 for host memory, else the CUDA device index. */
  readonly device: number;
  free(): void;
  read(offset?: number, count?: number): Float32Array | Int32Array | Uint8Array;
  write(data: Float32Array | Int32Array | Uint8Array, offset?: number): void;
}

/** What the run-time loader found of cuDNN or cuBLAS. */
export interface GpuLibraryStatus {
  loaded: boolean;
  path: string;
  version: string;
  reason: string;
}

export interface CudaInfo {
  compiled: boolean;
  cudnnLibrary: GpuLibraryStatus;
  cublasLibrary: GpuLibraryStatus;
  available: boolean;
  reason: string;
  runtimeVersion: number;
  driverVersion: number;
  devices: { index: number; name: string; totalMemory: number; computeCapability: string }[];
}

export interface NativeAddon {
  /**
   * device: -1 (default) for host memory, k for CUDA device k. zeroed (default true): false
   * skips the zero fill of host memory, for outputs a kernel overwrites whole.
   */
  Storage: new (dtype: number, numel: number, device?: number, zeroed?: boolean) => NativeStorage;
  liveStorage(): {
    count: number;
    bytes: number;
    cached: number;
    deviceBytes: number;
    deviceCached: number;
    deviceBuffers: number;
    deviceMallocs: number;
  };
  emptyCache(): void;
  numThreads(): number;
  setNumThreads(n: number): void;
  cudaInfo(): CudaInfo;
  /** Starts queueing kernel calls instead of running them (see runAsync). */
  beginRecording(): void;
  /** Runs the queued calls on a worker thread; resolves when all have finished. */
  endRecording(): Promise<void>;
  /** Drops the queued calls without running them. */
  discardRecording(): void;
  // Kernels take positional arguments; a tensor is (storage, elementOffset).
  kernels: Record<string, (...args: unknown[]) => unknown>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** One place the loader looks for the addon, in the order tried. */
export interface AddonCandidate {
  /** What this candidate is, for the error message ("local build", "prebuilt package ..."). */
  label: string;
  /** Resolves the file to load; throws when it cannot be found. */
  resolve(): string;
}

/** The C library Node runs on: prebuilt Linux packages are per libc, as in sharp. */
export function detectLibc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/**
 * Names of the prebuilt platform packages for this machine, CUDA variant first
 * (it also runs on machines without a GPU only if the CUDA runtime libraries load).
 */
export function prebuiltPackageNames(
  platform: string = process.platform,
  arch: string = process.arch,
  libc: string | undefined = detectLibc(),
): string[] {
  const base = `@lrface/cuda-core-${platform}-${arch}${libc === 'musl' ? '-musl' : ''}`;
  return [`${base}-cuda`, base];
}

/** The default search order: LRFACE_ADDON_PATH, the local cmake-js build, then prebuilt packages. */
export function defaultCandidates(): AddonCandidate[] {
  const require = createRequire(join(packageRoot, 'package.json'));
  const file = (path: string) => (): string => {
    if (!existsSync(path)) throw new Error(`${path} not found`);
    return path;
  };
  const list: AddonCandidate[] = [];
  if (process.env.LRFACE_ADDON_PATH) list.push({ label: 'LRFACE_ADDON_PATH', resolve: file(process.env.LRFACE_ADDON_PATH) });
  list.push({ label: 'local build', resolve: file(join(packageRoot, 'build', 'Release', 'lrface_core.node')) });
  list.push({ label: 'local debug build', resolve: file(join(packageRoot, 'build', 'Debug', 'lrface_core.node')) });
  for (const name of prebuiltPackageNames()) {
    list.push({
      label: `prebuilt package ${name}`,
      resolve: () => {
        try {
          return require.resolve(`${name}/lrface_core.node`);
        } catch {
          throw new Error(`${name} is not installed`);
        }
      },
    });
  }
  return list;
}

let addonOrigin = '';

/** Where the loaded addon came from, e.g. "prebuilt package @lrface/cuda-core-linux-x64 (/…/lrface_core.node)". */
export function nativeAddonOrigin(): string {
  return addonOrigin;
}

/**
 * Loads the first candidate that resolves and loads. When none does, throws one error
 * listing every cause found and the fixes.
 */
export function loadAddon(
  candidates: AddonCandidate[] = defaultCandidates(),
  requireAddon: (path: string) => unknown = createRequire(import.meta.url),
): NativeAddon {
  if (!Array.isArray(candidates)) throw new TypeError('loadAddon: "candidates" must be an array');
  const causes: string[] = [];
  for (const candidate of candidates) {
    let path: string;
    try {
      path = candidate.resolve();
    } catch (err) {
      causes.push(`${candidate.label}: ${(err as Error).message}`);
      continue;
    }
    try {
      const loaded = requireAddon(path) as NativeAddon;
      addonOrigin = `${candidate.label} (${path})`;
      return loaded;
    } catch (err) {
      causes.push(`${candidate.label}: ${path} failed to load: ${(err as Error).message}`);
    }
  }
  const [cudaPackage, cpuPackage] = prebuiltPackageNames();
  throw new Error(
    `@lrface/cuda-core: could not load the native addon for ${process.platform}-${process.arch}` +
      `${detectLibc() ? ` (${detectLibc()})` : ''}, Node ${process.version}.\n` +
      `Causes found:\n  - ${causes.join('\n  - ')}\n` +
      'Possible fixes:\n' +
      `  - install the prebuilt package: npm install ${cpuPackage} (or ${cudaPackage} with the CUDA runtime); ` +
      'if optional dependencies were skipped, install without --omit=optional / --no-optional\n' +
      '  - build from source: approve the install script (npm install-scripts approve @lrface/cuda-core) ' +
      'then npm rebuild @lrface/cuda-core; needs cmake >= 3.18 and a C++17 compiler\n' +
      '  - CPU-only source build where the CUDA toolkit is missing or broken: LRFACE_CPU_ONLY=1 npm rebuild @lrface/cuda-core\n' +
      '  - point LRFACE_ADDON_PATH at a built lrface_core.node',
  );
}

export const addon: NativeAddon = loadAddon();
export const kernels = addon.kernels;
