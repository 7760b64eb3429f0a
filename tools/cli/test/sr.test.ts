// `lrface sr`, `lrface eval-sr` and the demo. The Set5 checks reproduce the published figures:
// bicubic 33.66 / 30.39 / 28.42 dB (x2 / x3 / x4) and the public VDSR checkpoint at 37.4 / 33.6 /
// 31.3 dB or more.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeImage } from '@lrface/datasets';
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
    expect(noScale.status).toBe(2);
    expect(noScale.stderr).toContain("'--scale' is required");
    expect(noScale.stderr).toContain('usage: lrface eval-sr');
    const badModel = run('eval-sr', '--model', 'nope', '--input', set5, '--scale', '2');
    expect(badModel.status).toBe(2);
    expect(badModel.stderr).toContain("'--model' must be one of bicubic");
    const badDir = run('eval-sr', '--model', 'bicubic', '--input', join(tmp, 'none'), '--scale', '2');
    expect(badDir.status).toBe(1);
    expect(badDir.stderr).toContain('cannot read the folder');
    // A model without shipped weights needs --weights: a usage error, not the loader's internals.
    const noWeights = run('eval-sr', '--model', 'srcnn', '--input', set5, '--scale', '3');
    expect(noWeights.status).toBe(2);
    expect(noWeights.stderr).toContain('--model srcnn has no shipped weights: give --weights FILE');
    expect(noWeights.stderr).not.toMatch(/undefined|untrained/);
    const srNoWeights = run('sr', `${set5}/baby_GT.png`, '--model', 'vdsr', '--out', join(tmp, 'never'));
    expect(srNoWeights.status).toBe(2);
    expect(srNoWeights.stderr).toContain('--model vdsr has no shipped weights');
  });

  it('eval-sr and train sr --eval name an image too small for the protocol before any work', async () => {
    const dir = join(tmp, 'with a tiny image');
    mkdirSync(dir, { recursive: true });
    copyFileSync(`${set5}/bird_GT.png`, join(dir, 'bird.png'));
    // 16x16: at x3, modcrop leaves 15 px, 9 inside the border; SSIM's window needs 11.
    await writeImage(join(dir, 'tiny.png'), { width: 16, height: 16, channels: 3, data: new Uint8Array(16 * 16 * 3).fill(128) });
    const ev = run('eval-sr', '--model', 'bicubic', '--input', dir, '--scale', '3', '--json');
    expect(ev.status).toBe(1);
    expect(ev.stderr).toContain(`'${join(dir, 'tiny.png')}' is 16x16; evaluating at x3 needs images of at least 17x17 px`);
    expect(ev.stdout).toBe('');
    const out = join(tmp, 'never-trained.safetensors');
    const train = run('train', 'sr', '--model', 'srcnn', '--images', set5, '--eval', dir, '--steps', '2', '--batch-size', '2', '--out', out);
    expect(train.status).toBe(1);
    expect(train.stderr).toContain(`--eval: '${join(dir, 'tiny.png')}' is 16x16`);
    expect(train.stderr).not.toContain('step 1/2');
    expect(existsSync(out)).toBe(false);
  });
});

describe.skipIf(!haveSharedData('set5'))('lrface sr', () => {
  it('super-resolves files into --out with a progress bar on stderr', () => {
    const out = join(tmp, 'sr-out');
    const r = run('sr', `${set5}/baby_GT.png`, `${set5}/bird_GT.png`, '--model', 'bicubic', '--scale', '2', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['baby_GT_x2.png', 'bird_GT_x2.png']);
    expect(r.stderr).toContain('2/2');
    const none = run('sr');
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no input images');
    const badScale = run('sr', `${set5}/baby_GT.png`, '--model', 'bicubic', '--scale', 'x');
    expect(badScale.status).toBe(2);
    expect(badScale.stderr).toContain("'--scale' must be an integer");
  });
});

describe('lrface sr and eval-sr arguments', () => {
  const face = fileURLToPath(new URL('../../../packages/sr/assets/astronaut-face-160.png', import.meta.url));
  const faceX4 = fileURLToPath(new URL('../../../packages/sr/weights/face-x4.safetensors', import.meta.url));
  /** A fresh folder holding copies of the demo face at the given relative paths. */
  const faces = (...names: string[]) => {
    const dir = mkdtempSync(join(tmp, 'faces-'));
    for (const n of names) {
      mkdirSync(dirname(join(dir, n)), { recursive: true });
      copyFileSync(face, join(dir, n));
    }
    return dir;
  };

  it('--help and -h print the command usage and exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const sr = run('sr', flag);
      expect(sr.status, sr.stderr).toBe(0);
      expect(sr.stdout).toContain('usage: lrface sr <inputs...>');
      expect(sr.stdout).toContain('--out DIR');
      const ev = run('eval-sr', flag);
      expect(ev.status, ev.stderr).toBe(0);
      expect(ev.stdout).toContain('usage: lrface eval-sr --model NAME --input DIR --scale S');
    }
  });

  it('usage errors exit 2 with the usage; unknown options included', () => {
    for (const args of [['sr', '--bogus', 'x.png'], ['sr', 'x.png', '--model', 'nope'], ['eval-sr', '--model', 'bicubic', '--input', '.', '--bogus'], ['eval-sr', '--input', '.', '--scale', '2']]) {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`usage: lrface ${args[0]}`);
    }
    expect(run('sr', '--bogus', 'x.png').stderr).toContain("Unknown option '--bogus'");
    expect(run('eval-sr', '--input', '.', '--scale', '2').stderr).toContain("'--model' is required");
  });

  it('refuses inputs whose outputs would collide, before writing anything', () => {
    const dir = faces('a/face.png', 'b/face.png', 'c/face.jpg');
    const out = join(dir, 'o');
    const [a, b, c] = ['a/face.png', 'b/face.png', 'c/face.jpg'].map((n) => join(dir, n));
    const r = run('sr', a, b, '--model', 'bicubic', '--scale', '2', '--out', out);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`'${a}' and '${b}' would both be written to '${join(out, 'face_x2.png')}'`);
    expect(r.stderr).toMatch(/run them separately or give each its own --out folder/);
    expect(existsSync(out)).toBe(false);
    // Another extension gives the same output name; without --scale the model's default (face-x4: 4) is named.
    const r2 = run('sr', a, c, '--out', out);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toContain(`'${a}' and '${c}' would both be written to '${join(out, 'face_x4.png')}'`);
    expect(existsSync(out)).toBe(false);
    // With weights whose scales are known only once loaded, the check still comes before any write.
    const r3 = run('sr', a, b, '--model', 'vdsr', '--weights', faceX4, '--out', out);
    expect(r3.status).toBe(2);
    expect(r3.stderr).toContain(join(out, 'face_x4.png'));
    expect(existsSync(out)).toBe(false);
    // The same file twice, and an output that is one of the inputs.
    expect(run('sr', a, a, '--model', 'bicubic', '--scale', '2', '--out', out).stderr).toContain(`'${a}' is given twice`);
    const input = join(dir, 'a/face_x2.png');
    copyFileSync(face, input);
    const before = readFileSync(input);
    const r4 = run('sr', input, a, '--model', 'bicubic', '--scale', '2', '--out', join(dir, 'a'));
    expect(r4.status).toBe(2);
    expect(r4.stderr).toContain(`the output of '${a}', '${input}', is also an input`);
    expect(readFileSync(input).equals(before)).toBe(true);
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(['face.png', 'face_x2.png']);
    // Distinct names run as before.
    const fine = run('sr', a, input, '--model', 'bicubic', '--scale', '2', '--out', join(dir, 'q'));
    expect(fine.status, fine.stderr).toBe(0);
    expect(readdirSync(join(dir, 'q')).sort()).toEqual(['face_x2.png', 'face_x2_x2.png']);
  });

  it('eval-sr refuses weights of another architecture instead of reporting them under the model asked for', async () => {
    const bicubic = run('eval-sr', '--model', 'bicubic', '--weights', faceX4, '--input', tmp, '--scale', '4', '--json');
    expect(bicubic.status).toBe(1);
    expect(bicubic.stdout).toBe('');
    expect(bicubic.stderr).toContain("'weights' must be left out for 'bicubic'");
    const srcnn = run('eval-sr', '--model', 'srcnn', '--weights', faceX4, '--input', tmp, '--scale', '4', '--json');
    expect(srcnn.status).toBe(1);
    expect(srcnn.stdout).toBe('');
    expect(srcnn.stderr).toContain("face-x4.safetensors: holds 'vdsr' weights, but 'srcnn' is a 'srcnn' model");
    await expect(evalSr({ model: 'srcnn', weights: faceX4, input: tmp, scale: '4' })).rejects.toThrow(/holds 'vdsr' weights/);
    // An empty --weights is an error, not a quiet fall-back to the shipped weights.
    await expect(evalSr({ model: 'face-x4', weights: '', input: tmp, scale: '4' })).rejects.toThrow(/'weights' must be a non-empty file path/);
  });
});
