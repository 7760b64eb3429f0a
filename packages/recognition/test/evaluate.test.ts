import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Lfw, decodeImage, writeImage, type RawImage } from '@lrface/datasets';
import { FaceRecognizer, Frnet, evaluatePairs, verificationAccuracy } from '../src/index.js';
import { FACE_FILES, LFW_FACE_BOX, haveFaces } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lrface-recognition-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAMES = ['Angelina_Jolie', 'Bradley_Cooper', 'Kate_Siegel', 'Paul_Rudd', 'Shea_Whigham'];

/** An LFW-layout folder (<Name>/<Name>_0001.jpg) of the real faces, and a pairs file of 2 folds. */
async function lfwFolder(): Promise<{ root: string; pairsFile: string }> {
  const root = join(dir, 'lfw');
  const put = async (name: string, n: number, file: string) => {
    mkdirSync(join(root, name), { recursive: true });
    await writeImage(join(root, name, `${name}_${String(n).padStart(4, '0')}.jpg`), await decodeImage(file), { format: 'jpeg', quality: 95 });
  };
  for (let i = 0; i < 5; i++) await put(NAMES[i], 1, FACE_FILES[i]);
  await put('Anthony_Hopkins', 1, FACE_FILES[5]);
  await put('Anthony_Hopkins', 2, FACE_FILES[6]);
  const pairsFile = join(dir, 'pairs.txt');
  writeFileSync(pairsFile, ['2\t2', 'Anthony_Hopkins\t1\t2', 'Anthony_Hopkins\t2\t1', 'Angelina_Jolie\t1\tBradley_Cooper\t1', 'Kate_Siegel\t1\tPaul_Rudd\t1',
    'Anthony_Hopkins\t1\t2', 'Anthony_Hopkins\t2\t1', 'Shea_Whigham\t1\tAnthony_Hopkins\t1', 'Paul_Rudd\t1\tAnthony_Hopkins\t2'].join('\n') + '\n');
  return { root, pairsFile };
}

describe.skipIf(!haveFaces)('evaluatePairs', () => {
  it("scores LFW-layout pairs with the recogniser's own comparisons and runs the 10-fold protocol on them", async () => {
    const { root, pairsFile } = await lfwFolder();
    const pairs = await Lfw.pairs({ root, pairsFile });
    lr.manualSeed(5);
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    const progress: number[] = [];
    const result = await evaluatePairs(rec, pairs, { onProgress: (done) => progress.push(done) });
    expect(result.pairs).toBe(8);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const list = [...pairs];
    for (let i = 0; i < list.length; i++) expect(result.scores[i]).toBeCloseTo(await rec.compare(list[i].images[0].source as string, list[i].images[1].source as string), 5);
    const reference = verificationAccuracy(result.scores, list.map((p) => p.same), list.map((p) => p.fold));
    expect(result.accuracy).toBe(reference.accuracy);
    expect(result.folds).toEqual(reference.folds);
    expect(result.auc).toBeGreaterThanOrEqual(0);
    // Distances: the score is the negated Euclidean distance of raw features.
    const byDistance = await evaluatePairs(rec, pairs, { score: 'distance' });
    expect(byDistance.scores[2]).toBeCloseTo(-(await rec.distance(list[2].images[0].source as string, list[2].images[1].source as string)), 5);
  });

  it('the low-resolution protocol shrinks each face once, hands it to `enhance`, and describes what comes back', async () => {
    const { root, pairsFile } = await lfwFolder();
    const pairs = await Lfw.pairs({ root, pairsFile });
    lr.manualSeed(6);
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    const seen: RawImage[] = [];
    const enhance = (face: RawImage) => {
      seen.push(face);
      return face;
    };
    const low = await evaluatePairs(rec, pairs, { lowResolution: 12, box: LFW_FACE_BOX, enhance });
    // 7 distinct images, each shrunk to 12x12 once.
    expect(seen).toHaveLength(7);
    expect(seen.every((f) => f.width === 12 && f.height === 12)).toBe(true);
    const high = await evaluatePairs(rec, pairs, { box: LFW_FACE_BOX });
    expect(Array.from(low.scores)).not.toEqual(Array.from(high.scores));
    await expect(evaluatePairs(rec, pairs, { lowResolution: 2 })).rejects.toThrow(/'lowResolution'/);
    await expect(evaluatePairs(rec, [], {})).rejects.toThrow(/at least one pair/);
    await expect(evaluatePairs({} as FaceRecognizer, pairs)).rejects.toThrow(/'recognizer'/);
    await expect(evaluatePairs(rec, [{ images: [join(dir, 'missing.jpg'), FACE_FILES[0]], same: true, fold: 0 }])).rejects.toThrow(/missing\.jpg/);
  });
});
