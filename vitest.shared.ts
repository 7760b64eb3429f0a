// The test setup every package shares: native code runs in forked workers (a crash fails that
// file's tests, not the run), and a JSON report feeds the CI summary.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig, type UserConfig } from 'vitest/config';

export function packageTestConfig(overrides: UserConfig = {}): UserConfig {
  const base = defineConfig({
    test: {
      pool: 'forks',
      include: ['test/**/*.test.ts'],
      testTimeout: 120_000,
      hookTimeout: 60_000,
      reporters: ['default', 'json'],
      outputFile: { json: 'test-results/vitest.json' },
    },
  });
  return mergeConfig(base, overrides);
}

/** The addon whose CUDA backend runs under host emulation (packages/cuda-core/scripts/build-emulation.mjs). */
export const emulatedAddonPath = fileURLToPath(
  new URL('./packages/cuda-core/build-emulation/Release/lrface_core.node', import.meta.url),
);

/**
 * The cuDNN and cuBLAS stand-ins built with that addon (packages/cuda-core/test/emulation/stand-ins),
 * which the emulated run opens in place of the real libraries so the CUDA backend's library
 * paths run too; an addon built without them runs every convolution and product on its own kernels.
 */
export const emulatedStandInPaths = {
  LRFACE_CUDNN_LIBRARY: fileURLToPath(new URL('./packages/cuda-core/build-emulation/Release/libcudnn.so.9', import.meta.url)),
  LRFACE_CUBLAS_LIBRARY: fileURLToPath(new URL('./packages/cuda-core/build-emulation/Release/libcublas.so.13', import.meta.url)),
};

/** The variables naming the stand-ins that were built (none where the build made none). */
function standInEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [variable, path] of Object.entries(emulatedStandInPaths)) if (existsSync(path)) env[variable] = path;
  return env;
}

/**
 * A second run of a package's CUDA device suites (`files`), against the addon built with the
 * CUDA backend under host emulation: devices() then lists one emulated CUDA device, so the
 * suites that skip without a GPU run and compare its results with the CPU's. Where that addon
 * was not built (no compiler: build-emulation.mjs says why), the run says so and tests nothing.
 */
export function emulatedDeviceTestConfig(files: string[]): UserConfig {
  if (!existsSync(emulatedAddonPath)) {
    console.warn(
      `lrface: ${emulatedAddonPath} is missing (npm run build:emulation -w @lrface/cuda-core builds it); ` +
        'the CUDA device suites under host emulation are skipped',
    );
    const config = packageTestConfig({ test: { passWithNoTests: true, outputFile: { json: 'test-results/vitest-emulated.json' } } });
    config.test!.include = [];
    return config;
  }
  const config = packageTestConfig({
    test: { env: { LRFACE_ADDON_PATH: emulatedAddonPath, ...standInEnv() }, outputFile: { json: 'test-results/vitest-emulated.json' } },
  });
  config.test!.include = files; // replaces the base list (mergeConfig would append to it)
  return config;
}
