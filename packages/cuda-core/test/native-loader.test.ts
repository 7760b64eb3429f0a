import { describe, expect, it } from 'vitest';
import { loadAddon, prebuiltPackageNames, type AddonCandidate } from '../src/native.js';

const missing = (label: string, why: string): AddonCandidate => ({
  label,
  resolve: () => {
    throw new Error(why);
  },
});
const found = (label: string, path: string): AddonCandidate => ({ label, resolve: () => path });

describe('loadAddon', () => {
  it('returns the first candidate that resolves and loads, skipping earlier failures', () => {
    const loaded: string[] = [];
    const addon = loadAddon(
      [missing('local build', 'build/Release/lrface_core.node not found'), found('prebuilt', '/p/a.node'), found('later', '/p/b.node')],
      (path) => {
        loaded.push(path);
        return { marker: path };
      },
    );
    expect(addon).toEqual({ marker: '/p/a.node' });
    expect(loaded).toEqual(['/p/a.node']);
  });

  it('falls through a candidate whose file fails to load', () => {
    const addon = loadAddon([found('local build', '/bad.node'), found('prebuilt', '/good.node')], (path) => {
      if (path === '/bad.node') throw new Error('invalid ELF header');
      return { ok: true };
    });
    expect(addon).toEqual({ ok: true });
  });

  it('throws one error listing every cause and the fixes when nothing loads', () => {
    const attempt = () =>
      loadAddon(
        [
          missing('local build', 'build/Release/lrface_core.node not found'),
          found('prebuilt package @lrface/cuda-core-linux-x64-cuda', '/cuda.node'),
          missing('prebuilt package @lrface/cuda-core-linux-x64', '@lrface/cuda-core-linux-x64 is not installed'),
        ],
        () => {
          throw new Error('libcudart.so.12: cannot open shared object file');
        },
      );
    expect(attempt).toThrow(Error);
    let message = '';
    try {
      attempt();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('local build: build/Release/lrface_core.node not found');
    expect(message).toContain('/cuda.node failed to load: libcudart.so.12');
    expect(message).toContain('@lrface/cuda-core-linux-x64 is not installed');
    expect(message).toContain('npm install-scripts approve @lrface/cuda-core');
    expect(message).toContain('npm rebuild @lrface/cuda-core');
    expect(message).toContain('LRFACE_CPU_ONLY=1');
    expect(message).toContain(`npm install ${prebuiltPackageNames()[1]}`);
  });

  it('rejects a candidates argument that is not an array', () => {
    expect(() => loadAddon('x' as unknown as AddonCandidate[])).toThrow(TypeError);
    expect(() => loadAddon('x' as unknown as AddonCandidate[])).toThrow(/loadAddon: "candidates"/);
  });
});

describe('prebuiltPackageNames', () => {
  it('names the CUDA variant first and marks musl', () => {
    expect(prebuiltPackageNames('linux', 'x64', 'glibc')).toEqual(['@lrface/cuda-core-linux-x64-cuda', '@lrface/cuda-core-linux-x64']);
    expect(prebuiltPackageNames('linux', 'arm64', 'musl')).toEqual([
      '@lrface/cuda-core-linux-arm64-musl-cuda',
      '@lrface/cuda-core-linux-arm64-musl',
    ]);
  });
});
