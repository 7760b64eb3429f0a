import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '@lrface/cuda-core';
import { saveCheckpoint } from '@lrface/nn';
import { Frnet, loadRecognizer, saveRecognitionWeights } from '@lrface/recognition';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { parseVerifyArgs } from '../src/verify.mjs';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: '1' } });
const faceA = sharedDataDir + 'lfw/images/Anthony_Hopkins_0001.jpg';
const faceB = sharedDataDir + 'misc-faces/facenet-pytorch-aligned/paul_rudd.png';
const haveData = haveSharedData('lfw/images/Anthony_Hopkins_0001.jpg', 'misc-faces/facenet-pytorch-aligned/paul_rudd.png');

describe('lrface verify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lrface-verify-'));
  const weights = join(dir, 'frnet-small.safetensors');
  beforeAll(() => {
    manualSeed(4);
    saveRecognitionWeights(weights, new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
  });

  it('parses its options and rejects bad ones', () => {
    expect(parseVerifyArgs(['a.png', 'b.png', '--weights', 'w.safetensors', '--box-b', '1,2,30,40', '--json'])).toMatchObject({
      images: ['a.png', 'b.png'],
      weights: 'w.safetensors',
      boxA: undefined,
      boxB: { x: 1, y: 2, width: 30, height: 40 },
      rule: { kind: 'similarity', threshold: 0.5 },
      json: true,
    });
    expect(parseVerifyArgs(['a.png', 'b.png', '--model', 'face-api']).rule).toEqual({ kind: 'distance', maxDistance: 0.6 });
    expect(parseVerifyArgs(['a.png', 'b.png', '--model', 'face-api', '--threshold', '0.9']).rule).toEqual({ kind: 'similarity', threshold: 0.9 });
    expect(parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--max-distance', '1.1']).rule).toEqual({ kind: 'distance', maxDistance: 1.1 });
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--model', 'vgg'])).toThrow(/--model must be face-api/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--model', 'face-api', '--weights', 'w'])).toThrow(/one of them/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--threshold', '0.5', '--max-distance', '1'])).toThrow(/not both/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--max-distance', '0'])).toThrow(/--max-distance/);
    expect(() => parseVerifyArgs(['a.png', '--weights', 'w'])).toThrow(/two images/);
    expect(() => parseVerifyArgs(['a.png', 'b.png'])).toThrow(/--model face-api or --weights FILE/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--threshold', '2'])).toThrow(/--threshold/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--arch', 'vgg'])).toThrow(/--arch must be one of frnet/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--box-a', '1,2'])).toThrow(/--box-a must be x,y,w,h/);
    expect(() => parseVerifyArgs(['a.png', 'b.png', '--weights', 'w', '--size', '3'])).toThrow(/Unknown option/);
  });

  it.skipIf(!haveData)('prints the similarity the library computes, as JSON and as text', async () => {
    const box = '68,68,114,114';
    const r = run('verify', faceA, faceB, '--weights', weights, '--box-a', box, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    const expected = await loadRecognizer(weights).compare(faceA, faceB, { boxA: { x: 68, y: 68, width: 114, height: 114 } });
    expect(out.similarity).toBeCloseTo(expected, 3);
    expect(out.same).toBe(expected >= 0.5);
    expect(out.rule).toBe('similarity >= 0.5');
    expect(out.model).toBe('frnet');
    expect(out.distance).toBeGreaterThan(0);
    const same = run('verify', faceA, faceA, '--weights', weights);
    expect(same.status).toBe(0);
    expect(same.stdout).toMatch(/^same person: similarity 1, distance 0 \(similarity >= 0\.5, frnet\)/);
    // A box wholly outside its image is an error, not a comparison of border fill.
    const outside = run('verify', faceB, faceA, '--weights', weights, '--box-b', '300,300,30,30');
    expect(outside.status).toBe(1);
    expect(outside.stderr).toMatch(/'boxB' must be a box overlapping the image \(250x250\), got \{x: 300, y: 300, width: 30, height: 30\}/);
    expect(outside.stdout).toBe('');
  });

  it.skipIf(!haveData)("--model face-api: face-api's trained recogniser and its distance rule", () => {
    const box = '68,68,114,114';
    const hopkins2 = sharedDataDir + 'lfw/images/Anthony_Hopkins_0002.jpg';
    const same = JSON.parse(run('verify', faceA, hopkins2, '--model', 'face-api', '--box-a', box, '--box-b', box, '--json').stdout);
    expect(same).toMatchObject({ model: 'face-api', same: true, rule: 'distance < 0.6' });
    expect(same.distance).toBeLessThan(0.6);
    const other = JSON.parse(run('verify', faceB, hopkins2, '--model', 'face-api', '--box-b', box, '--json').stdout);
    expect(other.distance).toBeGreaterThan(same.distance);
  });

  it('exits 2 with usage on bad arguments, 1 with the file named for a missing one', () => {
    const usage = run('verify', 'a.png');
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/lrface verify: two images are needed/);
    const missing = run('verify', join(dir, 'nobody.png'), join(dir, 'nobody.png'), '--weights', weights);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nobody\.png/);
    const noWeights = run('verify', faceA, faceB, '--weights', join(dir, 'none.safetensors'));
    expect(noWeights.status).toBe(1);
    expect(noWeights.stderr).toMatch(/none\.safetensors: cannot read weights/);
  });

  it('names the command-line way out when given a training checkpoint instead of weights', () => {
    // A checkpoint as `lrface train recognition --checkpoint` writes it: the network and more, no weights metadata.
    const checkpoint = join(dir, 'frnet ckpt.safetensors');
    const net = new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 });
    saveCheckpoint(checkpoint, { model: net, step: 3, extra: { arch: 'frnet' } });
    net.dispose();
    const r = run('verify', faceA, faceB, '--weights', checkpoint);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${checkpoint}: not an lrface recognition weights file`);
    expect(r.stderr).toContain('give the --out weights of lrface train recognition (not its --checkpoint), or --arch NAME');
    expect(r.stderr).not.toContain('options.arch');
  });
});
