import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: '2' } });

describe('lrface command', () => {
  it('prints usage for help and fails on an unknown command', () => {
    expect(run('help').stdout).toContain('usage: lrface');
    const bad = run('frobnicate');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
  });

  it('demo --help and -h print its usage and exit 0; a bad option exits 2 with the usage', () => {
    for (const flag of ['--help', '-h']) {
      const r = run('demo', flag);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('usage: lrface demo [--out DIR] [--json]');
    }
    const bad = run('demo', '--bogus');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--bogus'");
    expect(bad.stderr).toContain('usage: lrface demo');
  });

  // `lrface demo` writes lrface-demo.png into the current folder, the repository root included.
  it.skipIf(spawnSync('git', ['rev-parse', '--git-dir'], { cwd: repoRoot }).status !== 0)('git ignores the demo image written at the repository root', () => {
    expect(spawnSync('git', ['check-ignore', '-q', 'lrface-demo.png'], { cwd: repoRoot }).status).toBe(0);
  });

  it('lists devices as JSON, with the reason CUDA is unavailable', () => {
    const r = run('devices');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.devices[0].id).toBe('cpu');
    if (!out.build.cudaAvailable) expect(out.build.cudaReason).not.toBe('');
  });

  it('devices --help and -h print its one-line usage and exit 0; any other argument exits 2 naming it', () => {
    for (const flag of ['--help', '-h']) {
      const r = run('devices', flag);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toMatch(/^usage: lrface devices\b/);
    }
    for (const args of [['--json'], ['cuda'], ['-h', '--bogus'], ['--help=1']]) {
      const r = run('devices', ...args);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`lrface devices: unexpected argument '${args.find((a) => a !== '-h')}'`);
      expect(r.stderr).toContain('usage: lrface devices');
    }
  });

  it('runs the demo: a tiny real face super-resolved by face-x4 beats bicubic, side-by-side PNG written', () => {
    const out = mkdtempSync(join(tmpdir(), 'lrface-demo-'));
    const r = run('demo', '--out', out, '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const f = JSON.parse(lines[0]);
    expect(f).toMatchObject({ model: 'face-x4', scale: 4, lr: '40x40', hr: '160x160' });
    expect(f.psnr).toBeGreaterThan(f.bicubic_psnr);
    expect(f.ssim).toBeGreaterThan(f.bicubic_ssim);
    // lr68's 68 points on the 40x40 face, in the 160x160 frame, inside the face box region and
    // close to hr68's points on the original.
    expect(f.landmarks_model).toBe('lr68');
    expect(f.landmarks).toHaveLength(68);
    for (const [x, y] of f.landmarks) {
      expect(x).toBeGreaterThan(10);
      expect(x).toBeLessThan(150);
      expect(y).toBeGreaterThan(40);
      expect(y).toBeLessThan(160);
    }
    expect(f.landmarks_nme_vs_hr68).toBeLessThan(0.15);
    const png = readFileSync(join(out, 'lrface-demo.png'));
    // PNG signature and size: three 160x160 panels with two 4-px gaps.
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(3 * 160 + 2 * 4);
    expect(png.readUInt32BE(20)).toBe(160);
    const text = run('demo', '--out', out);
    expect(text.stdout).toMatch(/bicubic\s+PSNR/);
    expect(text.stdout).toContain('lrface-demo.png');
    expect(text.stdout).toMatch(/lr68 on the 40x40 face/);
  });
});
