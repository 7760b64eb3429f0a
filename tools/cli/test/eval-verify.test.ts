import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lfw, Ytf, decodeImage, writeImage } from '@lrface/datasets';
import { manualSeed } from '@lrface/cuda-core';
import { Frnet, evaluatePairs, evaluateVideoPairs, loadFaceApiRecognizer, saveRecognitionWeights, ytfVideoPairs } from '@lrface/recognition';
import { YTF_TEST_FACES, haveSharedData, sharedDataDir, writeFaceYtfLayout } from '@lrface/test-data';
import { parseEvalVerifyArgs } from '../src/verify.mjs';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: '1' } });
const SOURCES: [string, number, string][] = [
  ['Angelina_Jolie', 1, 'misc-faces/facenet-pytorch-aligned/angelina_jolie.png'],
  ['Bradley_Cooper', 1, 'misc-faces/facenet-pytorch-aligned/bradley_cooper.png'],
  ['Paul_Rudd', 1, 'misc-faces/facenet-pytorch-aligned/paul_rudd.png'],
  ['Anthony_Hopkins', 1, 'lfw/images/Anthony_Hopkins_0001.jpg'],
  ['Anthony_Hopkins', 2, 'lfw/images/Anthony_Hopkins_0002.jpg'],
];
const haveData = haveSharedData(...SOURCES.map((s) => s[2]));

describe('lrface eval-verify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lrface-eval-verify-'));
  const root = join(dir, 'lfw');
  const pairsFile = join(dir, 'pairs.txt');
  beforeAll(async () => {
    if (!haveData) return;
    // An LFW-layout folder of real faces and a 2-fold pairs file in LFW's format.
    for (const [name, n, file] of SOURCES) {
      mkdirSync(join(root, name), { recursive: true });
      await writeImage(join(root, name, `${name}_${String(n).padStart(4, '0')}.jpg`), await decodeImage(sharedDataDir + file), { quality: 95 });
    }
    writeFileSync(pairsFile, ['2\t2', 'Anthony_Hopkins\t1\t2', 'Anthony_Hopkins\t2\t1', 'Angelina_Jolie\t1\tAnthony_Hopkins\t1', 'Paul_Rudd\t1\tAnthony_Hopkins\t2',
      'Anthony_Hopkins\t1\t2', 'Anthony_Hopkins\t2\t1', 'Bradley_Cooper\t1\tAnthony_Hopkins\t1', 'Angelina_Jolie\t1\tAnthony_Hopkins\t2'].join('\n') + '\n');
  });

  it('parses its options and rejects bad ones', () => {
    const base = ['--pairs', 'p.txt', '--images', 'lfw/'];
    expect(parseEvalVerifyArgs([...base, '--model', 'face-api', '--box', '68,68,114,114', '--low-resolution', '16', '--hallucinate', 'face-x4'])).toMatchObject({
      pairs: 'p.txt', images: 'lfw/', model: 'face-api', box: { x: 68, y: 68, width: 114, height: 114 }, lowResolution: 16, hallucinate: 'face-x4', score: 'distance', layout: 'nested',
    });
    expect(parseEvalVerifyArgs([...base, '--weights', 'w.safetensors']).score).toBe('similarity');
    expect(() => parseEvalVerifyArgs(['--images', 'x', '--model', 'face-api'])).toThrow(/missing --pairs/);
    expect(() => parseEvalVerifyArgs([...base])).toThrow(/--model face-api or --weights FILE/);
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--low-resolution', '2'])).toThrow(/--low-resolution must be an integer >= 4/);
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--hallucinate', 'face-x4'])).toThrow(/needs --low-resolution/);
    // A model without shipped weights (or no x4) cannot hallucinate: refused before any face is read.
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--low-resolution', '16', '--hallucinate', 'srcnn'])).toThrow(/--hallucinate must be one of bicubic, face-x4 .*got 'srcnn'/);
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--low-resolution', '16', '--hallucinate', 'nope'])).toThrow(/--hallucinate must be one of/);
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--layout', 'deep'])).toThrow(/--layout/);
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--score', 'l1'])).toThrow(/--score/);
    // YouTube Faces reads its own splits, frames and boxes; frames per video only go with it.
    expect(parseEvalVerifyArgs(['--ytf', 'ytf/', '--model', 'face-api', '--frames', '10'])).toMatchObject({ ytf: 'ytf/', frames: 10, score: 'similarity' });
    expect(parseEvalVerifyArgs(['--ytf', 'ytf/', '--model', 'face-api']).frames).toBe(100);
    expect(() => parseEvalVerifyArgs(['--ytf', 'ytf/', '--model', 'face-api', '--box', '1,1,5,5'])).toThrow(/leave out --box/);
    expect(() => parseEvalVerifyArgs(['--ytf', 'ytf/', '--pairs', 'p.txt', '--model', 'face-api'])).toThrow(/leave out --pairs/);
    expect(() => parseEvalVerifyArgs(['--ytf', 'ytf/', '--model', 'face-api', '--score', 'distance'])).toThrow(/--score distance does not apply/);
    expect(() => parseEvalVerifyArgs(['--ytf', 'ytf/', '--model', 'face-api', '--frames', '0'])).toThrow(/--frames must be an integer >= 1/);
    expect(() => parseEvalVerifyArgs([...base, '--model', 'face-api', '--frames', '5'])).toThrow(/--frames goes with --ytf/);
  });

  it.skipIf(!haveSharedData(...YTF_TEST_FACES))("runs YouTube Faces' video protocol with --ytf: the library's result for face-api's recogniser", async () => {
    const ytfRoot = writeFaceYtfLayout(join(dir, 'ytf'));
    const r = run('eval-verify', '--ytf', ytfRoot, '--model', 'face-api', '--frames', '2', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: 'face-api', pairs: 6, folds: 2, score: 'similarity' });
    const expected = await evaluateVideoPairs(await loadFaceApiRecognizer(), await ytfVideoPairs(await Ytf.open({ root: ytfRoot })), { framesPerVideo: 2 });
    expect(out.accuracy).toBeCloseTo(expected.accuracy, 4);
    expect(out.auc).toBeCloseTo(expected.auc, 4);
    // Two photos of one man against three other people: face-api separates every pair.
    expect(out.auc).toBe(1);
  });

  it.skipIf(!haveData)("prints the library's k-fold result for face-api's recogniser, at full and low resolution with super-resolution", async () => {
    const box = { x: 68, y: 68, width: 114, height: 114 };
    const r = run('eval-verify', '--pairs', pairsFile, '--images', root, '--model', 'face-api', '--box', '68,68,114,114', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const expected = await evaluatePairs(await loadFaceApiRecognizer(), await Lfw.pairs({ root, pairsFile }), { box, score: 'distance' });
    expect(out).toMatchObject({ model: 'face-api', pairs: 8, folds: 2, score: 'distance', lowResolution: null, hallucinate: null });
    expect(out.accuracy).toBeCloseTo(expected.accuracy, 4);
    expect(out.auc).toBeCloseTo(expected.auc, 4);
    const low = run('eval-verify', '--pairs', pairsFile, '--images', root, '--model', 'face-api', '--box', '68,68,114,114', '--low-resolution', '16', '--hallucinate', 'face-x4', '--json');
    expect(low.status, low.stderr).toBe(0);
    expect(JSON.parse(low.stdout)).toMatchObject({ pairs: 8, lowResolution: 16, hallucinate: 'face-x4' });
  });

  it('exits 2 with its usage on bad arguments, 1 naming a missing pairs file; --help prints the usage', () => {
    for (const command of ['verify', 'eval-verify']) {
      const help = run(command, '--help');
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: lrface ${command}`));
    }
    const usage = run('eval-verify', '--images', 'x');
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/lrface eval-verify: missing --pairs/);
    const missing = run('eval-verify', '--pairs', join(dir, 'none.txt'), '--images', root, '--model', 'face-api');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/none\.txt/);
  });

  it.skipIf(!haveData)('an error after progress was shown starts a line of its own', () => {
    // 2 folds of 60 matched and 60 mismatched pairs: progress shows at pair 100, then the last
    // pair names an image that is not there.
    const weights = join(dir, 'tiny frnet.safetensors');
    manualSeed(5);
    saveRecognitionWeights(weights, new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    const fold = (last: string) => [
      ...Array.from({ length: 60 }, () => 'Anthony_Hopkins\t1\t2'),
      ...Array.from({ length: 59 }, () => 'Angelina_Jolie\t1\tPaul_Rudd\t1'),
      last,
    ];
    const many = join(dir, 'many pairs.txt');
    writeFileSync(many, ['2\t60', ...fold('Angelina_Jolie\t1\tPaul_Rudd\t1'), ...fold('Angelina_Jolie\t1\tPaul_Rudd\t9')].join('\n') + '\n');
    const r = run('eval-verify', '--pairs', many, '--images', root, '--weights', weights);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('eval-verify: 200/240 pairs');
    expect(r.stderr).toMatch(/\nlrface: .*Paul_Rudd_0009\.jpg/);
  });
});
