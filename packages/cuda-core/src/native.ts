// Loads the compiled addon. The only module that touches the binding.
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
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
  /** Asked for explicitly (LRFACE_ADDON_PATH): a failure is the error, not a reason to try the next one. */
  required?: boolean;
}

/**
 * Checks a prebuilt addon against the size and sha256 its package's prebuild.json records:
 * loading a truncated or damaged binary can kill the process (SIGBUS in dlopen) with no message.
 */
export function verifyPrebuilt(addonPath: string): void {
  const manifestPath = join(dirname(addonPath), 'prebuild.json');
  if (!existsSync(manifestPath)) return;
  let manifest: { sha256?: unknown; bytes?: unknown };
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw new Error(`${manifestPath} is not valid JSON (${(err as Error).message}): the package is damaged, reinstall it`);
  }
  const bytes = readFileSync(addonPath);
  if (typeof manifest.bytes === 'number' && bytes.length !== manifest.bytes)
    throw new Error(`${addonPath} has ${bytes.length} bytes, its prebuild.json says ${manifest.bytes}: the package is damaged, reinstall it`);
  if (typeof manifest.sha256 === 'string') {
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== manifest.sha256) throw new Error(`${addonPath} does not match the sha256 in its prebuild.json: the package is damaged, reinstall it`);
  }
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
  if (process.env.LRFACE_ADDON_PATH) list.push({ label: 'LRFACE_ADDON_PATH', resolve: file(process.env.LRFACE_ADDON_PATH), required: true });
  list.push({ label: 'local build', resolve: file(join(packageRoot, 'build', 'Release', 'lrface_core.node')) });
  list.push({ label: 'local debug build', resolve: file(join(packageRoot, 'build', 'Debug', 'lrface_core.node')) });
  for (const name of prebuiltPackageNames()) {
    list.push({
      label: `prebuilt package ${name}`,
      resolve: () => {
        let path: string;
        try {
          path = require.resolve(`${name}/lrface_core.node`);
        } catch {
          throw new Error(`${name} is not installed`);
        }
        verifyPrebuilt(path);
        return path;
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
      if (candidate.required) throw new Error(`@lrface/cuda-core: ${candidate.label}: ${(err as Error).message}`);
      causes.push(`${candidate.label}: ${(err as Error).message}`);
      continue;
    }
    try {
      const loaded = requireAddon(path) as NativeAddon;
      addonOrigin = `${candidate.label} (${path})`;
      return loaded;
    } catch (err) {
      if (candidate.required) throw new Error(`@lrface/cuda-core: ${candidate.label}: ${path} failed to load: ${(err as Error).message}`);
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

/** LRFACE_NUM_THREADS, when set, must be what setNumThreads accepts (a typo would otherwise pass unnoticed, a huge value abort). */
export function checkThreadsEnv(value: string | undefined = process.env.LRFACE_NUM_THREADS): void {
  if (value === undefined || value === '') return;
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1 || Number(value) > 1024)
    throw new RangeError(`@lrface/cuda-core: LRFACE_NUM_THREADS must be an integer in [1, 1024], got '${value}'`);
}

checkThreadsEnv();
export const addon: NativeAddon = loadAddon();
export const kernels = addon.kernels;
