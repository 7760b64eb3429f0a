// `lrface sr`, `lrface eval-sr` and the demo. The Set5 checks reproduce the published figures:
// bicubic 33.66 / 30.39 / 28.42 dB (x2 / x3 / x4) and the public VDSR checkpoint at 37.4 / 33.6 /
// 31.3 dB or more.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
// @ts-expect-error plain ES module without types
import { evalSr } from '../src/sr.mjs';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });
const set5 = `${sharedDataDir}set5`;
const vdsrWeights = `${sharedDataDir}weights/vdsr-pytorch/model_epoch_50.pth`;
const tmp = mkdtempSync(join(tmpdir(), 'lrface-cli-sr-'));

describe.skipIf(!haveSharedData('set5'))('lrface eval-sr on Set5', () => {
  it('prints ONE JSON line with the contract keys (bicubic x4 = 28.42 dB)', () => {
    const r = run('eval-sr', '--model', 'bicubic', '--input', set5, '--scale', '4', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]);
    expect(Object.keys(out)).toEqual(['model', 'scale', 'images', 'psnr', 'ssim', 'bicubic_psnr', 'bicubic_ssim']);
    expect(out).toMatchObject({ model: 'bicubic', scale: 4, images: 5 });
    expect(Math.abs(out.psnr - 28.42)).toBeLessThan(0.05);
    // Published bicubic SSIM (VDSR paper, Set5 x4): 0.8104.
    expect(Math.abs(out.ssim - 0.8104)).toBeLessThan(0.002);
    expect(r.stderr).toContain('5/5');
  });

  it('bicubic gives the published 33.66 / 30.39 dB at x2 / x3', async () => {
    const published: Record<number, number> = { 2: 33.66, 3: 30.39 };
    for (const scale of [2, 3]) {
      const out = await evalSr({ model: 'bicubic', input: set5, scale: String(scale) });
      expect(Math.abs(out.psnr - published[scale])).toBeLessThan(0.05);
      expect(out.bicubic_psnr).toBeCloseTo(out.psnr, 10);
    }
  });

  // Each scale runs 5 Set5 images through 20 convolutions of 64 channels (about 30 s on a free core).
  for (const [scale, required] of [[2, 37.4], [3, 33.6], [4, 31.3]] as const)
    it.skipIf(!existsSync(vdsrWeights))(`VDSR from the PyTorch .pth reaches the published x${scale} PSNR (>= ${required} dB)`, { timeout: 900_000 }, async () => {
      const out = await evalSr({ model: 'vdsr', weights: vdsrWeights, input: set5, scale: String(scale) });
      console.log(`VDSR Set5 x${scale}: ${out.psnr.toFixed(2)} dB / ${out.ssim.toFixed(4)} (bicubic ${out.bicubic_psnr.toFixed(2)})`);
      expect(out.images).toBe(5);
      expect(out.psnr).toBeGreaterThanOrEqual(required);
      expect(out.ssim).toBeGreaterThan(out.bicubic_ssim);
    });

  it('prints a per-image table without --json, and clear errors for bad arguments', () => {
    const r = run('eval-sr', '--model', 'bicubic', '--input', set5, '--scale', '3');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/bicubic x3 .*5 images/);
    expect(r.stdout).toMatch(/mean\s+30\.39/);
    const noScale = run('eval-sr', '--model', 'bicubic', '--input', set5);
    expect(noScale.status).toBe(1);
    expect(noScale.stderr).toContain("'--scale' is required");
    const badModel = run('eval-sr', '--model', 'nope', '--input', set5, '--scale', '2');
    expect(badModel.stderr).toContain("'name' must be one of");
    const badDir = run('eval-sr', '--model', 'bicubic', '--input', join(tmp, 'none'), '--scale', '2');
    expect(badDir.stderr).toContain('cannot read the folder');
  });
});

describe.skipIf(!haveSharedData('set5'))('lrface sr', () => {
  it('super-resolves files into --out with a progress bar on stderr', () => {
    const out = join(tmp, 'sr-out');
    const r = run('sr', `${set5}/baby_GT.png`, `${set5}/bird_GT.png`, '--model', 'bicubic', '--scale', '2', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['baby_GT_x2.png', 'bird_GT_x2.png']);
    expect(r.stderr).toContain('2/2');
    expect(run('sr').stderr).toContain('no input images');
    expect(run('sr', `${set5}/baby_GT.png`, '--model', 'bicubic', '--scale', 'x').stderr).toContain("'--scale' must be an integer");
  });
});
