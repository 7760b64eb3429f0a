import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: '2' } });

describe('lrface command', () => {
  it('prints usage for help and fails on an unknown command', () => {
    expect(run('help').stdout).toContain('usage: lrface');
    const bad = run('frobnicate');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown command 'frobnicate'");
  });

  it('lists devices as JSON, with the reason CUDA is unavailable', () => {
    const r = run('devices');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.devices[0].id).toBe('cpu');
    if (!out.build.cudaAvailable) expect(out.build.cudaReason).not.toBe('');
  });

  it('runs the demo: the network learns (loss falls, PSNR beats the degraded input)', () => {
    const r = run('demo', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.lossLast).toBeLessThan(out.lossFirst * 0.5);
    expect(out.psnrNetDb).toBeGreaterThan(out.psnrDegradedDb);
    expect(out.msPerStep).toBeGreaterThan(0);
  });
});
