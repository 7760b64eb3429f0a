import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '@lrface/cuda-core';
import { decodeImage, writeImage } from '@lrface/datasets';
import { HeatmapUNet, saveLandmarkWeights } from '@lrface/landmarks';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { drawDots, parseLandmarksArgs } from '../src/landmarks.mjs';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: '1' } });
const image = sharedDataDir + 'misc-faces/face-alignment/aflw-test.jpg';
const haveData = haveSharedData('misc-faces/face-alignment/aflw-test.jpg');

describe('lrface landmarks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lrface-lm-'));
  const weights = join(dir, 'tiny.safetensors');
  beforeAll(() => {
    // A small network of the lr68 family (the command takes any weights file with --weights).
    manualSeed(3);
    const network = { widths: [4, 4, 8, 8], blocksPerGroup: 2, upsample: 'nearest' as const };
    saveLandmarkWeights(weights, new HeatmapUNet({ inChannels: 3, outChannels: 69, ...network }), { points: 68, inputSize: 32, margin: 0.2, network });
  });

  it('parses its options and rejects bad ones', () => {
    expect(parseLandmarksArgs(['a.png', '--box', '1,2,30,40', '--json'])).toMatchObject({ image: 'a.png', box: { x: 1, y: 2, width: 30, height: 40 }, model: 'lr68', json: true });
    expect(parseLandmarksArgs(['a.png']).flip).toBe(true);
    expect(parseLandmarksArgs(['a.png', '--no-flip']).flip).toBe(false);
    expect(() => parseLandmarksArgs(['a.png', '--box', '1,2,3'])).toThrow(/x,y,w,h/);
    expect(() => parseLandmarksArgs(['a.png', '--box', '1,2,0,3'])).toThrow(/positive/);
    expect(() => parseLandmarksArgs(['a.png', '--model', 'xx'])).toThrow(/lr68, hr68/);
    expect(() => parseLandmarksArgs(['--json'])).toThrow(/missing <image>/);
    expect(() => parseLandmarksArgs(['a.png', '--size', '3'])).toThrow(/unknown option/);
    expect(() => parseLandmarksArgs(['a.png', '--out', 'o.bmp'])).toThrow(/--out must name a \.png, \.jpg or \.jpeg file/);
    expect(parseLandmarksArgs(['a.png', '--out', 'o.JPG']).out).toBe('o.JPG');
  });

  it('accepts --opt=value for every option that takes a value, with the same checks', () => {
    expect(parseLandmarksArgs(['a.png', '--box=1,2,30,40', '--model=hr68', '--weights=w.safetensors', '--out=o.png'])).toMatchObject({
      image: 'a.png',
      box: { x: 1, y: 2, width: 30, height: 40 },
      model: 'hr68',
      weights: 'w.safetensors',
      out: 'o.png',
    });
    // Only the first '=' splits: the rest belongs to the value.
    expect(parseLandmarksArgs(['a.png', '--out=a=b.png']).out).toBe('a=b.png');
    expect(parseLandmarksArgs(['a.png', '--box=-5,2,30,40']).box).toEqual({ x: -5, y: 2, width: 30, height: 40 });
    expect(() => parseLandmarksArgs(['a.png', '--box=1,2,3'])).toThrow("--box must be x,y,w,h with a positive width and height, got '1,2,3'");
    expect(() => parseLandmarksArgs(['a.png', '--model=xx'])).toThrow("--model must be one of lr68, hr68, lgcn, got 'xx'");
    expect(() => parseLandmarksArgs(['a.png', '--out=o.bmp'])).toThrow("--out must name a .png, .jpg or .jpeg file, got 'o.bmp'");
    for (const opt of ['--box', '--model', '--weights', '--out']) expect(() => parseLandmarksArgs(['a.png', `${opt}=`])).toThrow(`option '${opt}' needs a value`);
    expect(() => parseLandmarksArgs(['a.png', '--json=1'])).toThrow("option '--json' takes no value, got '--json=1'");
    expect(() => parseLandmarksArgs(['a.png', '--no-flip=yes'])).toThrow("option '--no-flip' takes no value");
    expect(() => parseLandmarksArgs(['a.png', '--size=3'])).toThrow("unknown option '--size=3'");
  });

  it('--help and -h print the usage and exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = run('landmarks', flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^usage: lrface landmarks <image>/);
    }
  });

  it('draws filled dots only around the points', () => {
    const img = { data: new Uint8Array(10 * 10 * 3), width: 10, height: 10, channels: 3 };
    drawDots(img, [[4, 5]], 1);
    const red = (x: number, y: number) => img.data[(y * 10 + x) * 3] === 255;
    expect([red(4, 5), red(3, 5), red(5, 5), red(4, 4), red(4, 6)]).toEqual([true, true, true, true, true]);
    expect([red(6, 5), red(4, 7), red(0, 0)]).toEqual([false, false, false]);
  });

  it.skipIf(!haveData)('--json prints one line with 68 points and confidences in image coordinates; --out writes the overlay', async () => {
    const out = join(dir, 'overlay.png');
    const r = run('landmarks', image, '--box', '20,25,70,80', '--weights', weights, '--json', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(1);
    const j = JSON.parse(lines[0]);
    expect(Object.keys(j)).toEqual(['model', 'points', 'confidence']);
    expect(j.model).toBe('lr68');
    expect(j.points.length).toBe(68);
    expect(j.confidence.length).toBe(68);
    // Every point lies in the crop around the box (box widened by 0.2 of its larger side).
    for (const [x, y] of j.points) {
      expect(x).toBeGreaterThanOrEqual(55 - 56 - 1);
      expect(x).toBeLessThanOrEqual(55 + 56 + 1);
      expect(y).toBeGreaterThanOrEqual(65 - 56 - 1);
      expect(y).toBeLessThanOrEqual(65 + 56 + 1);
    }
    expect(existsSync(out)).toBe(true);
    const [src, overlay] = [await decodeImage(image), await decodeImage(out)];
    expect([overlay.width, overlay.height]).toEqual([src.width, src.height]);
    // The overlay differs from the source around the points only.
    let changed = 0;
    for (let i = 0; i < src.data.length; i++) if (src.data[i] !== overlay.data[i]) changed++;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(68 * 9 * 3 + 1);
  });

  it('fails naming the box and the image size when the box lies outside the image, printing no points', async () => {
    const png = join(dir, 'grey-500x332.png');
    await writeImage(png, { data: new Uint8Array(500 * 332 * 3).fill(128), width: 500, height: 332, channels: 3 });
    const r = run('landmarks', png, '--box', '5000,5000,37,37', '--weights', weights, '--json');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("'box' must be a box overlapping the image (500x332), got {x: 5000, y: 5000, width: 37, height: 37}");
    // A box partly outside still runs.
    const partly = run('landmarks', png, '--box', '480,320,37,37', '--weights', weights, '--json', '--no-flip');
    expect(partly.status, partly.stderr).toBe(0);
    expect(JSON.parse(partly.stdout).points.length).toBe(68);
    // The same run with --opt=value forms gives the same points.
    const inline = run('landmarks', png, '--box=480,320,37,37', `--weights=${weights}`, '--json', '--no-flip');
    expect(inline.status, inline.stderr).toBe(0);
    expect(JSON.parse(inline.stdout)).toEqual(JSON.parse(partly.stdout));
  });

  it('fails naming the file for weights that are not a .safetensors file or are a directory', async () => {
    const png = join(dir, 'grey-40x40.png');
    await writeImage(png, { data: new Uint8Array(40 * 40 * 3).fill(128), width: 40, height: 40, channels: 3 });
    const pth = join(dir, 'x.pth');
    writeFileSync(pth, 'PK\x03\x04 not safetensors');
    const r = run('landmarks', png, '--weights', pth);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/x\.pth: only \.safetensors weight files are supported/);
    const folder = join(dir, 'models');
    mkdirSync(folder);
    const d = run('landmarks', png, '--weights', folder);
    expect(d.status).toBe(1);
    expect(d.stderr).toContain(`${folder}: is a directory, not a weights file`);
    expect(d.stderr).not.toContain('EISDIR');
  });

  it('fails with a usage message on bad arguments and names a missing image', () => {
    const bad = run('landmarks', 'x.png', '--box', '1,2,3');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('usage: lrface landmarks');
    const badInline = run('landmarks', 'x.png', '--box=1,2,3');
    expect(badInline.status).toBe(2);
    expect(badInline.stderr).toContain("lrface landmarks: --box must be x,y,w,h with a positive width and height, got '1,2,3'");
    expect(badInline.stderr).toContain('usage: lrface landmarks');
    const missing = run('landmarks', join(dir, 'none.png'), '--weights', weights);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/none\.png/);
    expect(run('help').stdout).toContain('landmarks <image>');
  });
});
