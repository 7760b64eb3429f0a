import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Lfw, Ytf, decodeImage, writeImage, type RawImage } from '@lrface/datasets';
import { FaceRecognizer, Frnet, evaluateIdentification, evaluatePairs, evaluateVideoPairs, evenlySpaced, identificationMetrics, loadFaceApiRecognizer, verificationAccuracy, ytfVideoPairs, type IdentificationFace, type VideoFrame } from '../src/index.js';
import { haveSharedData, sharedDataDir, writeFaceYtfLayout } from '@lrface/test-data';
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
    // Two folds of matched and mismatched pairs, the first naming a file that is not there.
    const withMissing = [
      { images: [join(dir, 'missing.jpg'), FACE_FILES[0]] as [string, string], same: true, fold: 0 },
      ...[0, 1].flatMap((fold) => [
        { images: [FACE_FILES[0], FACE_FILES[0]] as [string, string], same: true, fold },
        { images: [FACE_FILES[0], FACE_FILES[1]] as [string, string], same: false, fold },
      ]),
    ];
    await expect(evaluatePairs(rec, withMissing)).rejects.toThrow(/missing\.jpg/);
  });
});

/** Probes: each aligned face mirrored, and LFW's first Anthony Hopkins photo; gallery: the originals, his second photo and non-face distractors. */
async function identificationSet(): Promise<{ probes: IdentificationFace[]; gallery: IdentificationFace[] }> {
  const probes: IdentificationFace[] = [];
  for (let i = 0; i < 5; i++) {
    const img = await decodeImage(FACE_FILES[i]);
    const mirrored = new Uint8Array(img.data.length);
    for (let y = 0; y < img.height; y++)
      for (let x = 0; x < img.width; x++)
        for (let c = 0; c < img.channels; c++) mirrored[(y * img.width + x) * img.channels + c] = img.data[(y * img.width + img.width - 1 - x) * img.channels + c];
    const file = join(dir, `probe-${i}.png`);
    await writeImage(file, { ...img, data: mirrored });
    probes.push({ image: file, identity: NAMES[i] });
  }
  probes.push({ image: FACE_FILES[5], identity: 'Anthony_Hopkins' });
  const distractors = ['set5/head_GT.png', 'set5/woman_GT.png', 'set5/baby_GT.png', 'public-domain/astronaut.png'].map((f) => sharedDataDir + f);
  const gallery: IdentificationFace[] = [
    { image: distractors[0], identity: null },
    ...NAMES.map((name, i) => ({ image: FACE_FILES[i], identity: name })),
    { image: distractors[1], identity: -1 },
    { image: FACE_FILES[6], identity: 'Anthony_Hopkins' },
    { image: distractors[2], identity: null },
    { image: distractors[3], identity: null },
  ];
  return { probes, gallery };
}

describe.skipIf(!haveFaces || !haveSharedData('set5', 'public-domain'))('evaluateIdentification', () => {
  it('equals identificationMetrics on the full similarity matrix, with distractors streamed in chunks', async () => {
    const { probes, gallery } = await identificationSet();
    lr.manualSeed(7);
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    // The reference: every feature, the whole probe x gallery matrix of cosines in float64.
    const unit = async (f: IdentificationFace) => rec.embed(f.image as string);
    const pf = await Promise.all(probes.map(unit));
    const gf = await Promise.all(gallery.map(unit));
    const matrix = pf.map((p) => gf.map((g) => p.reduce((s, v, k) => s + v * g[k], 0)));
    const reference = identificationMetrics(matrix, probes.map((p) => p.identity as string), gallery.map((g) => g.identity), { ranks: [1, 2, 5] });
    // An untrained network ranks some true matches behind others: the comparison is not trivial.
    expect(reference.cmc[1]).toBeLessThan(1);
    expect(reference.cmc[5]).toBeGreaterThan(reference.cmc[1]);
    for (const chunk of [1, 3, 1024]) {
      const progress: number[] = [];
      const got = await evaluateIdentification(rec, probes, gallery, { ranks: [1, 2, 5], chunk, onProgress: (done) => progress.push(done) });
      expect(got.cmc).toEqual(reference.cmc);
      expect(got.meanAveragePrecision).toBeCloseTo(reference.meanAveragePrecision, 6);
      expect(got).toMatchObject({ probes: 6, galleryMatched: 6, distractors: 4 });
      expect(progress).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    }
  });

  it('ranks real faces with a trained recogniser: face-api finds every mirrored face and Anthony Hopkins first', async () => {
    let rec: FaceRecognizer;
    try {
      rec = await loadFaceApiRecognizer();
    } catch {
      return; // @vladmandic/face-api is an optional peer: its weights are not installed here
    }
    const { probes, gallery } = await identificationSet();
    const got = await evaluateIdentification(rec, probes, gallery);
    console.log(`identification with face-api's ResNet29: rank-1 ${got.cmc[1]}, mAP ${got.meanAveragePrecision.toFixed(3)} (6 probes, 6 matched + 4 distractors)`);
    expect(got.cmc[1]).toBe(1);
    expect(got.meanAveragePrecision).toBe(1);
    // Shrunk to 8 px, faces lose what tells them apart.
    const tiny = await evaluateIdentification(rec, probes, gallery, { lowResolution: 8 });
    expect(tiny.meanAveragePrecision).toBeLessThanOrEqual(got.meanAveragePrecision);
  });

  it('rejects bad input', async () => {
    const { probes, gallery } = await identificationSet();
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    await expect(evaluateIdentification(rec, [], gallery)).rejects.toThrow(/'probes' must be at least one probe/);
    await expect(evaluateIdentification(rec, [{ image: FACE_FILES[0], identity: null }], gallery)).rejects.toThrow(/'probes\[0\].identity'/);
    await expect(evaluateIdentification(rec, probes, gallery.filter((g) => g.identity === null))).rejects.toThrow(/'gallery' must be a true match/);
    await expect(evaluateIdentification(rec, probes, gallery, { ranks: [0] })).rejects.toThrow(/'ranks'/);
    await expect(evaluateIdentification(rec, probes, gallery, { chunk: 0 })).rejects.toThrow(/'chunk'/);
    await expect(evaluateIdentification(rec, [42 as unknown as IdentificationFace], gallery)).rejects.toThrow(/'probes\[0\]'/);
    await expect(evaluateIdentification(rec, [{ image: join(dir, 'gone.jpg'), identity: 1 }], gallery)).rejects.toThrow(/gone\.jpg/);
  });
});

describe.skipIf(!haveFaces)('evaluateVideoPairs (YouTube Faces)', () => {
  it('scores each pair by the cosine of the videos\' mean unit frame features, frames evenly spaced', async () => {
    const ytf = await Ytf.open({ root: writeFaceYtfLayout(join(dir, 'ytf')) });
    const pairs = await ytfVideoPairs(ytf);
    expect(pairs.map((p) => [p.fold, p.same, p.videos[0].length, p.videos[1].length])).toEqual([
      [0, true, 3, 3], [0, false, 3, 3], [0, false, 3, 3], [1, true, 3, 3], [1, false, 3, 3], [1, false, 3, 3],
    ]);
    lr.manualSeed(8);
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    const result = await evaluateVideoPairs(rec, pairs, { framesPerVideo: 2 });
    // The reference: 2 of 3 frames evenly spaced (floor(0.75), floor(2.25)), each embedded on its own.
    const picked = evenlySpaced(3, 2);
    expect(picked).toEqual([0, 2]);
    const mean = async (frames: readonly VideoFrame[]) => {
      const fs = await Promise.all(picked.map((k) => rec.embed(frames[k].image.source as string, { box: frames[k].box })));
      return fs[0].map((_, d) => fs.reduce((s, f) => s + f[d], 0) / fs.length);
    };
    for (const [i, p] of pairs.entries()) {
      const [a, b] = [await mean(p.videos[0]), await mean(p.videos[1])];
      const cos = a.reduce((s, v, d) => s + v * b[d], 0) / Math.hypot(...a) / Math.hypot(...b);
      expect(result.scores[i]).toBeCloseTo(cos, 5);
    }
    expect(result.pairs).toBe(6);
    expect(result.folds).toHaveLength(2);
    expect(evenlySpaced(10, 3)).toEqual([1, 5, 8]);
    expect(evenlySpaced(2, 5)).toEqual([0, 1]);
  });

  it('rejects bad input', async () => {
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    await expect(evaluateVideoPairs(rec, [])).rejects.toThrow(/at least one pair/);
    await expect(evaluateVideoPairs(rec, [{ videos: [[], []], same: true, fold: 0 }])).rejects.toThrow(/'pairs\[0\]'/);
    await expect(evaluateVideoPairs(rec, [{ videos: [[{ image: FACE_FILES[0] }], [{ image: FACE_FILES[1] }]], same: true, fold: 0 }], { framesPerVideo: 0 })).rejects.toThrow(/'framesPerVideo'/);
    await expect(ytfVideoPairs({} as Ytf)).rejects.toThrow(/'ytf'/);
  });

  it('rejects folds whose complement lacks matched or mismatched pairs before describing any face', async () => {
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    // Files that do not exist: describing any face would fail on them first.
    const video = (name: string) => [{ image: join(dir, `${name}-missing.png`) }];
    // Fold 2 holds one mismatched pair only, so fold 1 would be tested with a threshold chosen on it.
    const videoPairs = [
      { videos: [video('a'), video('a2')], same: true, fold: 1 },
      { videos: [video('a'), video('b')], same: false, fold: 1 },
      { videos: [video('b'), video('a2')], same: false, fold: 2 },
    ];
    // Folds are named by the 0-based index the pairs carry and by the number the protocol's file gives them.
    await expect(evaluateVideoPairs(rec, videoPairs)).rejects.toThrow(
      new RangeError(
        "evaluateVideoPairs: 'pairs' must be matched and mismatched pairs outside every fold (each fold is tested with a threshold chosen on the others), got only mismatched pairs outside fold index 1 (split 2 of YTF's splits.txt): 1 of the 3 pairs, in 2 folds",
      ),
    );
    const imagePairs = videoPairs.map((p) => ({ images: [p.videos[0][0].image, p.videos[1][0].image] as [string, string], same: p.same, fold: p.fold }));
    await expect(evaluatePairs(rec, imagePairs)).rejects.toThrow(/^evaluatePairs: 'pairs' must be .* got only mismatched pairs outside fold index 1 \(fold 2 of LFW's pairs\.txt\): 1 of the 3 pairs, in 2 folds$/);
    await expect(evaluatePairs(rec, imagePairs.map((p) => ({ ...p, fold: 3 })))).rejects.toThrow(
      new RangeError("evaluatePairs: 'pairs' must be pairs in at least 2 folds (each fold is tested with a threshold chosen on the others), got 3 pair(s) all in fold index 3 (fold 4 of LFW's pairs.txt)"),
    );
    await expect(evaluateVideoPairs(rec, videoPairs.map((p) => ({ ...p, fold: 0 })))).rejects.toThrow(/got 3 pair\(s\) all in fold index 0 \(split 1 of YTF's splits\.txt\)$/);
    // Fold values that are no 0-based index, refused before any face is described too.
    await expect(evaluateVideoPairs(rec, videoPairs.map((p, i) => ({ ...p, fold: i === 2 ? -1 : p.fold })))).rejects.toThrow(
      new RangeError("evaluateVideoPairs: 'pairs[2].fold' must be a fold index (an integer >= 0), got -1"),
    );
    await expect(evaluatePairs(rec, imagePairs.map((p, i) => ({ ...p, fold: i === 1 ? 1.5 : p.fold })))).rejects.toThrow(new RangeError("evaluatePairs: 'pairs[1].fold' must be a fold index (an integer >= 0), got 1.5"));
    await expect(evaluatePairs(rec, imagePairs.map((p) => ({ ...p, fold: '1' as never })))).rejects.toThrow(new TypeError("evaluatePairs: 'pairs[0].fold' must be a fold index (an integer >= 0), got \"1\""));
    await expect(evaluatePairs(rec, [imagePairs[0], null as never])).rejects.toThrow(new TypeError("evaluatePairs: 'pairs[1]' must be { images: [a, b], same, fold }, got null"));
  });

  it("names YTF's folds as splits.txt numbers them: split k of the file is fold index k - 1", async () => {
    const root = writeFaceYtfLayout(join(dir, 'ytf-renumbered'));
    // Splits 4 and 5 of a splits file; split 4 keeps only its two mismatched pairs, so fold index 4
    // (split 5) would be tested with a threshold chosen on mismatched pairs alone.
    const splitsFile = join(dir, 'splits-4-5.txt');
    writeFileSync(splitsFile, ['split number, pair number, first name, second name, is same', '4, 2, Angelina_Jolie/0, Bradley_Cooper/0, 0', '4, 3, Kate_Siegel/0, Anthony_Hopkins/0, 0',
      '5, 1, Anthony_Hopkins/1, Anthony_Hopkins/0, 1', '5, 2, Bradley_Cooper/0, Kate_Siegel/0, 0', '5, 3, Anthony_Hopkins/1, Angelina_Jolie/0, 0'].join('\n') + '\n');
    const pairs = await ytfVideoPairs(await Ytf.open({ root }), splitsFile);
    expect(pairs.map((p) => p.fold)).toEqual([3, 3, 4, 4, 4]);
    const rec = new FaceRecognizer(new Frnet({ inputSize: [56, 48], channels: [4, 6, 8, 8, 8], units: [0, 0, 0, 0], embeddingDim: 16 }));
    await expect(evaluateVideoPairs(rec, pairs)).rejects.toThrow(/got only mismatched pairs outside fold index 4 \(split 5 of YTF's splits\.txt\): 2 of the 5 pairs, in 2 folds$/);
  });
});
