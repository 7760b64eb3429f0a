import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkThreadsEnv, loadAddon, prebuiltPackageNames, verifyPrebuilt, type AddonCandidate } from '../src/native.js';

const dir = mkdtempSync(join(tmpdir(), 'lrface-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

  it('a required candidate (LRFACE_ADDON_PATH) that fails is the error, not skipped', () => {
    const later = found('local build', '/good.node');
    expect(() => loadAddon([{ ...missing('LRFACE_ADDON_PATH', '/nope.node not found'), required: true }, later], () => ({}))).toThrow(
      /@lrface\/cuda-core: LRFACE_ADDON_PATH: \/nope\.node not found/,
    );
    expect(() =>
      loadAddon([{ ...found('LRFACE_ADDON_PATH', '/bad.node'), required: true }, later], (path) => {
        if (path === '/bad.node') throw new Error('invalid ELF header');
        return {};
      }),
    ).toThrow(/LRFACE_ADDON_PATH: \/bad\.node failed to load: invalid ELF header/);
  });

  it('LRFACE_ADDON_PATH naming a missing file stops the import with that message', () => {
    const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const r = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(entry)}).then(() => console.log('loaded'), (e) => { console.error(e.message); process.exit(3); })`], {
      encoding: 'utf8',
      env: { ...process.env, LRFACE_ADDON_PATH: join(dir, 'nope.node') },
    });
    expect(r.stdout).not.toContain('loaded');
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/LRFACE_ADDON_PATH: .*nope\.node not found/);
  });

  it('rejects a candidates argument that is not an array', () => {
    expect(() => loadAddon('x' as unknown as AddonCandidate[])).toThrow(TypeError);
    expect(() => loadAddon('x' as unknown as AddonCandidate[])).toThrow(/loadAddon: "candidates"/);
  });
});

describe('verifyPrebuilt', () => {
  it("refuses a prebuilt binary whose size or sha256 differs from its prebuild.json, before loading it", () => {
    const pkg = mkdtempSync(join(dir, 'pkg-'));
    const file = join(pkg, 'lrface_core.node');
    const bytes = Buffer.from('a whole binary');
    writeFileSync(file, bytes);
    // No manifest: nothing to check against.
    expect(() => verifyPrebuilt(file)).not.toThrow();
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(pkg, 'prebuild.json'), JSON.stringify({ sha256, bytes: bytes.length }));
    expect(() => verifyPrebuilt(file)).not.toThrow();
    writeFileSync(file, bytes.subarray(0, 5));
    expect(() => verifyPrebuilt(file)).toThrow(/has 5 bytes, its prebuild\.json says 14: the package is damaged/);
    writeFileSync(file, Buffer.from('a whole binarY'));
    expect(() => verifyPrebuilt(file)).toThrow(/does not match the sha256 in its prebuild\.json/);
    writeFileSync(join(pkg, 'prebuild.json'), '{');
    expect(() => verifyPrebuilt(file)).toThrow(/prebuild\.json is not valid JSON/);
  });
});

describe('LRFACE_NUM_THREADS', () => {
  it('accepts what setNumThreads accepts and rejects anything else with a message naming the variable', () => {
    for (const ok of [undefined, '', '1', '2', ' 16 ', '1024']) expect(() => checkThreadsEnv(ok)).not.toThrow();
    for (const bad of ['0', '-3', 'abc', '1.5', '1025', '99999']) expect(() => checkThreadsEnv(bad)).toThrow(/LRFACE_NUM_THREADS must be an integer in \[1, 1024\]/);
  });

  it('a huge value stops the import with that message instead of aborting the process', () => {
    const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const r = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(entry)}).then(() => console.log('loaded'), (e) => { console.error(e.message); process.exit(3); })`], {
      encoding: 'utf8',
      env: { ...process.env, LRFACE_NUM_THREADS: '99999' },
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/LRFACE_NUM_THREADS must be an integer in \[1, 1024\], got '99999'/);
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
