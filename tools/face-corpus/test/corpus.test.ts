import { existsSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir, decodePng } from '@lrface/test-data';
import { DlibXml, bicubicResize, decodeImage, imageToTensor, tensorToImage, toUint8, writeImage } from '@lrface/datasets';
import type { RawImage } from '@lrface/datasets';
import { REFERENCE_LANDMARKS, boxIou, buildFaceCorpus, differenceHash, hammingDistance, loadReferenceDetector, openFaceCorpus, readBoxesFile, refineFaceBox } from '../src/index.js';

const haveData = haveSharedData('widerface/wider_face_split/wider_face_val.mat', 'dlib-faces/training_with_face_landmarks.xml', 'misc-faces/face-alignment/aflw-test.jpg');
const tmp = () => mkdtempSync(join(tmpdir(), 'face-corpus-'));

describe('buildFaceCorpus', () => {
  it.skipIf(!haveData)('builds HR crops, tiny faces and an index from real data; WIDER 19--Couple is the test split', async () => {
    const outDir = tmp();
    const index = await buildFaceCorpus({ outDir, dataDir: sharedDataDir, size: 64, limitPerSource: 3, minHrSize: 40 });
    const corpus = await openFaceCorpus(outDir);
    expect(corpus.hr.length).toBe(index.hr.length);
    const bySource = (s: string) => corpus.hr.filter((i) => i.source === s);
    expect(bySource('wider-19-couple').length).toBe(3);
    expect(bySource('wider-19-couple').every((i) => i.split === 'test')).toBe(true);
    expect(bySource('misc-faces-aflw').length).toBe(1);
    expect(bySource('lfw').length).toBe(2);
    // Every HR crop is an RGB size x size PNG.
    for (const item of corpus.hr) {
      const png = decodePng(corpus.path(item));
      expect([png.width, png.height], item.id).toEqual([64, 64]);
    }
    // Tiny faces keep their native size: the square crop of a 20-40 px box with a 0.2 margin.
    expect(corpus.lr.length).toBeGreaterThan(0);
    for (const item of corpus.lr) {
      const png = decodePng(corpus.path(item));
      expect(png.width).toBe(item.region.width);
      expect(png.width).toBeGreaterThanOrEqual(Math.round(20 * 1.4) - 1);
      expect(png.width).toBeLessThanOrEqual(Math.round(40 * 1.4) + 1);
    }
    // Split held out by image: no source image has faces in both splits.
    const splits = new Map<string, Set<string>>();
    for (const i of corpus.hr) splits.set(`${i.source}:${i.image}`, (splits.get(`${i.source}:${i.image}`) ?? new Set()).add(i.split));
    for (const s of splits.values()) expect(s.size).toBe(1);
    // Every used source is described in the manifest with a licence.
    for (const i of [...corpus.hr, ...corpus.lr]) expect(corpus.sources[i.source]?.licence).toBeTruthy();
  });

  it.skipIf(!haveData)("maps dlib's 68 points into the crop: the same points, re-derived by hand from the XML", async () => {
    const outDir = tmp();
    const index = await buildFaceCorpus({ outDir, dataDir: sharedDataDir, size: 128, margin: 0.25, sources: ['dlib-faces'], minHrSize: 60, tiny: false });
    expect(index.hr.length).toBeGreaterThan(0);
    const xml = await DlibXml.open({ file: join(sharedDataDir, 'dlib-faces/training_with_face_landmarks.xml') });
    const item = index.hr[0];
    const sample = xml.toArray().find((s) => s.attributes.file === item.image)!;
    const k = sample.boxes.findIndex((b) => b.x === item.box.x && b.y === item.box.y);
    const pts = sample.landmarks[k];
    // Naive mapping: square region of side max(w, h) * 1.5 about the box centre, scaled to 128.
    const side = Math.max(item.box.width, item.box.height) * 1.5;
    const left = Math.round(item.box.x + item.box.width / 2 - side / 2);
    const top = Math.round(item.box.y + item.box.height / 2 - side / 2);
    expect(item.region.x).toBe(left);
    expect(item.region.y).toBe(top);
    const s = 128 / item.region.width;
    for (let p = 0; p < 68; p++) {
      expect(item.landmarks![2 * p]).toBeCloseTo((pts[2 * p] - left + 0.5) * s - 0.5, 3);
      expect(item.landmarks![2 * p + 1]).toBeCloseTo((pts[2 * p + 1] - top + 0.5) * s - 0.5, 3);
    }
    // The points lie inside the crop (the face box plus margin holds the face).
    for (const v of item.landmarks!) expect(v).toBeGreaterThan(-1), expect(v).toBeLessThan(129);
  });

  it.skipIf(!haveData)("with the reference detector every HR crop gets 68 points; on dlib's faces they agree with dlib's", async () => {
    const detector = await loadReferenceDetector();
    const withDet = await buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: ['dlib-faces', 'wider-19-couple'], limitPerSource: 4, tiny: false, detector });
    const plain = await buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: ['dlib-faces'], limitPerSource: 4, tiny: false });
    expect(withDet.hr.length).toBe(8);
    for (const item of withDet.hr) {
      expect(item.landmarkSource).toBe(REFERENCE_LANDMARKS);
      expect(item.landmarks!.length).toBe(136);
      for (const v of item.landmarks!) expect(v).toBeGreaterThan(-10), expect(v).toBeLessThan(138);
    }
    // The same dlib faces: detector points vs dlib's points, both mapped into the 128 px crop.
    for (const ref of plain.hr) {
      const got = withDet.hr.find((i) => i.id === ref.id)!.landmarks!;
      const r = ref.landmarks!;
      const d = Math.hypot(r[72] - r[90], r[73] - r[91]);
      let e = 0;
      for (let i = 0; i < 68; i++) e += Math.hypot(got[2 * i] - r[2 * i], got[2 * i + 1] - r[2 * i + 1]);
      expect(e / 68 / d, ref.id).toBeLessThan(0.15);
    }
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, detector: {} as never })).rejects.toThrow(/'detector'/);
  });

  it.skipIf(!haveData)('takes extra folders of aligned faces with their origin and licence', async () => {
    const dir = join(sharedDataDir, 'lfw/images');
    const index = await buildFaceCorpus({
      outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, size: 32,
      extraSources: [{ name: 'lfw-extra', dir, box: { x: 68, y: 68, width: 114, height: 114 }, origin: 'test folder', licence: 'LFW: research use' }],
    });
    expect(index.hr.map((i) => i.image)).toEqual(['Anthony_Hopkins_0001.jpg', 'Anthony_Hopkins_0002.jpg']);
    expect(index.hr.every((i) => i.source === 'lfw-extra' && i.licence === 'LFW: research use')).toBe(true);
    // Box 114 px with margin 0.2 (46 px in all) -> region 160 px from 45.
    expect(index.hr[0].region).toEqual({ x: 45, y: 45, width: 160, height: 160 });
    expect(index.sources['lfw-extra']).toEqual({ origin: 'test folder', licence: 'LFW: research use' });
    const bad = (e: object) => buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, extraSources: [{ name: 'x', dir, box: { x: 0, y: 0, width: 9, height: 9 }, origin: 'o', licence: 'l', ...e }] });
    await expect(bad({ name: 'lfw' })).rejects.toThrow(/'extraSources\[0\]\.name'/);
    await expect(bad({ dir: '/nonexistent' })).rejects.toThrow(/'extraSources\[0\]\.dir'/);
    await expect(bad({ licence: undefined })).rejects.toThrow(TypeError);
  });

  it('rejects bad options with the function and argument named', async () => {
    await expect(buildFaceCorpus(null as never)).rejects.toThrow(TypeError);
    await expect(buildFaceCorpus({ outDir: 3 as never, dataDir: sharedDataDir })).rejects.toThrow(/buildFaceCorpus.*'outDir'/);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: '/nonexistent/data' })).rejects.toThrow(RangeError);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, size: 2 })).rejects.toThrow(/'size'/);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, lrSizeRange: [40, 20] })).rejects.toThrow(/'lrSizeRange'/);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: ['celeba' as never] })).rejects.toThrow(/'sources'/);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, bogus: 1 } as never)).rejects.toThrow(/bogus/);
  });
});

describe('openFaceCorpus', () => {
  it('names the file and the fault for a missing, corrupt or malformed index', async () => {
    await expect(openFaceCorpus(42 as never)).rejects.toThrow(TypeError);
    const missing = tmp();
    await expect(openFaceCorpus(missing)).rejects.toThrow(new RegExp(`${join(missing, 'index.json')}.*no corpus index`));
    const bad = tmp();
    writeFileSync(join(bad, 'index.json'), '{ not json');
    await expect(openFaceCorpus(bad)).rejects.toThrow(/index\.json: index is not valid JSON/);
    const old = tmp();
    writeFileSync(join(old, 'index.json'), JSON.stringify({ version: 2, hr: [], lr: [] }));
    await expect(openFaceCorpus(old)).rejects.toThrow(/unsupported index/);
    const noLists = tmp();
    writeFileSync(join(noLists, 'index.json'), JSON.stringify({ version: 1 }));
    await expect(openFaceCorpus(noLists)).rejects.toThrow(/'hr' and 'lr'/);
    const badPts = tmp();
    mkdirSync(join(badPts, 'hr'));
    writeFileSync(join(badPts, 'index.json'), JSON.stringify({ version: 1, hr: [{ id: 'a', file: 'hr/a.png', split: 'train', landmarks: [1, 2] }], lr: [] }));
    await expect(openFaceCorpus(badPts)).rejects.toThrow(/hr\[0\]\.landmarks must be null or 136 numbers/);
  });
});

describe('extra sources with boxes files, refinement and duplicate filtering', () => {
  const lfwDir = join(sharedDataDir, 'lfw/images');
  const haveLfw = haveSharedData('lfw/images/Anthony_Hopkins_0001.jpg', 'lfw/images/Anthony_Hopkins_0002.jpg');
  const writeJson = (dir: string, name: string, value: unknown) => {
    writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));
    return join(dir, name);
  };

  it('readBoxesFile reads one box or a list per image; errors name the file and the record', async () => {
    const dir = tmp();
    const box = { x: 1, y: 2, width: 30, height: 40 };
    const boxes = await readBoxesFile(writeJson(dir, 'ok.json', { 'a.jpg': box, 'b/c.png': [box, { ...box, x: 50 }] }));
    expect([...boxes.keys()]).toEqual(['a.jpg', 'b/c.png']);
    expect(boxes.get('a.jpg')).toEqual([box]);
    expect(boxes.get('b/c.png')!.map((b) => b.x)).toEqual([1, 50]);
    await expect(readBoxesFile(writeJson(dir, 'bad.json', '{ nope'))).rejects.toThrow(/bad\.json: cannot read the boxes file/);
    await expect(readBoxesFile(writeJson(dir, 'list.json', [box]))).rejects.toThrow(/list\.json: a boxes file maps image paths/);
    await expect(readBoxesFile(writeJson(dir, 'neg.json', { 'a.jpg': { ...box, width: -1 } }))).rejects.toThrow(/neg\.json.*a\.jpg.*positive size/);
    await expect(readBoxesFile(writeJson(dir, 'empty.json', { 'a.jpg': [] }))).rejects.toThrow(/empty\.json/);
  });

  it.skipIf(!haveLfw)('a boxes file selects images and faces; refinement moves a rough box onto the face and adds points', async () => {
    const dir = tmp();
    // A rough box, off the LFW face centre (about 68..182) by 20 px.
    const rough = { x: 88, y: 60, width: 130, height: 130 };
    const boxes = writeJson(dir, 'boxes.json', { 'Anthony_Hopkins_0002.jpg': rough });
    const detector = await loadReferenceDetector();
    const index = await buildFaceCorpus({
      outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, size: 64, detector,
      extraSources: [{ name: 'refined', dir: lfwDir, boxes, origin: 'o', licence: 'l', testFraction: 0, refine: { minSize: 60 } }],
    });
    expect(index.hr.map((i) => i.image)).toEqual(['Anthony_Hopkins_0002.jpg']);
    const item = index.hr[0];
    expect(item.split).toBe('train');
    expect(item.landmarkSource).toBe(REFERENCE_LANDMARKS);
    // The refined box is the one refineFaceBox finds on its own, and it moved from the rough box.
    const direct = await refineFaceBox(detector, join(lfwDir, 'Anthony_Hopkins_0002.jpg'), rough, { minSize: 60 });
    expect(item.box).toEqual(direct.box);
    expect(boxIou(item.box, rough)).toBeLessThan(0.9);
    // Points in crop coordinates: the region's mapping of the image points.
    const s = 64 / item.region.width;
    expect(item.landmarks![60]).toBeCloseTo((direct.points[60] - item.region.x + 0.5) * s - 0.5, 3);
    // Without a detector, refinement is refused; a listed image that does not exist is named.
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, extraSources: [{ name: 'r', dir: lfwDir, boxes, origin: 'o', licence: 'l', refine: true }] }))
      .rejects.toThrow(/'extraSources\[0\]\.refine'/);
    const missing = writeJson(dir, 'missing.json', { 'Nobody_0001.jpg': rough });
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, extraSources: [{ name: 'r', dir: lfwDir, boxes: missing, origin: 'o', licence: 'l' }] }))
      .rejects.toThrow(/missing\.json.*Nobody_0001\.jpg.*no such image/);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, extraSources: [{ name: 'r', dir: lfwDir, origin: 'o', licence: 'l' } as never] }))
      .rejects.toThrow(/'extraSources\[0\]\.box'/);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: [], tiny: false, extraSources: [{ name: 'r', dir: lfwDir, boxes: '/nonexistent.json', origin: 'o', licence: 'l' }] }))
      .rejects.toThrow(/'extraSources\[0\]\.boxes'/);
  });

  it.skipIf(!haveLfw)('leaves out byte-identical copies of a photo another source already holds', async () => {
    const index = await buildFaceCorpus({
      outDir: tmp(), dataDir: sharedDataDir, sources: ['lfw'], tiny: false, size: 32,
      extraSources: [{ name: 'copy', dir: lfwDir, box: { x: 68, y: 68, width: 114, height: 114 }, origin: 'o', licence: 'l' }],
    });
    expect(index.hr.map((i) => i.source)).toEqual(['lfw', 'lfw']);
    expect(index.rejected!.map((r) => r.reason)).toEqual([`same file as ${join(lfwDir, 'Anthony_Hopkins_0001.jpg')} (lfw)`, `same file as ${join(lfwDir, 'Anthony_Hopkins_0002.jpg')} (lfw)`]);
  });

  it.skipIf(!haveData || !haveLfw)('leaves out a training crop that is a rescaled copy of a test photo, keeps other faces', async () => {
    const first = await buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, sources: ['wider-19-couple'], limitPerSource: 1, tiny: false });
    const testItem = first.hr[0];
    // The test photo at 80 % size, re-encoded as PNG, with its box scaled alike.
    const dir = tmp();
    const img = await decodeImage(join(sharedDataDir, 'widerface/WIDER_val/images', testItem.image));
    const [w, h] = [Math.round(img.width * 0.8), Math.round(img.height * 0.8)];
    await writeImage(join(dir, 'copy.png'), toUint8(tensorToImage(bicubicResize(imageToTensor(img, { batch: true }), { size: [h, w] }))));
    const b = testItem.box;
    const boxes = writeJson(tmp(), 'boxes.json', { 'copy.png': { x: b.x * 0.8, y: b.y * 0.8, width: b.width * 0.8, height: b.height * 0.8 } });
    const index = await buildFaceCorpus({
      outDir: tmp(), dataDir: sharedDataDir, sources: ['wider-19-couple', 'lfw'], limitPerSource: 1, tiny: false,
      extraSources: [{ name: 'copies', dir, boxes, origin: 'o', licence: 'l', testFraction: 0 }],
    });
    expect(index.hr.map((i) => i.source)).toEqual(['wider-19-couple', 'lfw']);
    expect(index.rejected).toEqual([{ id: 'copies/copy_0', reason: `near-duplicate of test crop ${testItem.id}` }]);
    expect(existsSync(join(dir, 'copy.png'))).toBe(true);
    // With no tolerance the copy stays (its hash is not bit-identical).
    const strict = await buildFaceCorpus({
      outDir: tmp(), dataDir: sharedDataDir, sources: ['wider-19-couple'], limitPerSource: 1, tiny: false, nearDuplicateBits: 0,
      extraSources: [{ name: 'copies', dir, boxes, origin: 'o', licence: 'l', testFraction: 0 }],
    });
    expect(strict.hr.map((i) => i.source)).toEqual(['wider-19-couple', 'copies']);
    await expect(buildFaceCorpus({ outDir: tmp(), dataDir: sharedDataDir, nearDuplicateBits: 300 })).rejects.toThrow(/'nearDuplicateBits'/);
  });
  it.skipIf(!haveLfw)('keeps the first of two training crops of the same photo (a rescaled copy)', async () => {
    const dir = tmp();
    const img = await decodeImage(join(lfwDir, 'Anthony_Hopkins_0001.jpg'));
    await writeImage(join(dir, 'copy.png'), toUint8(tensorToImage(bicubicResize(imageToTensor(img, { batch: true }), { size: [200, 200] }))));
    const index = await buildFaceCorpus({
      outDir: tmp(), dataDir: sharedDataDir, sources: ['lfw'], tiny: false, size: 64,
      extraSources: [{ name: 'copies', dir, box: { x: 54.4, y: 54.4, width: 91.2, height: 91.2 }, origin: 'o', licence: 'l', testFraction: 0 }],
    });
    expect(index.hr.map((i) => i.image)).toEqual(['Anthony_Hopkins_0001.jpg', 'Anthony_Hopkins_0002.jpg']);
    expect(index.rejected).toEqual([{ id: 'copies/copy_0', reason: 'near-duplicate of training crop lfw/Anthony_Hopkins_0001_0' }]);
  });
});

describe('differenceHash and hammingDistance', () => {
  const ramp = (dir: 1 | -1): RawImage => {
    const data = new Uint8Array(34 * 16 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 34; x++) data.fill(dir > 0 ? x * 7 : 255 - x * 7, (y * 34 + x) * 3, (y * 34 + x) * 3 + 3);
    return { width: 34, height: 16, channels: 3, data };
  };

  it('a left-brighter ramp sets every bit, a right-brighter one none', () => {
    expect(differenceHash(ramp(-1))).toBe('f'.repeat(64));
    expect(differenceHash(ramp(1))).toBe('0'.repeat(64));
    expect(differenceHash(ramp(-1), 4)).toBe('ffff');
    expect(hammingDistance('f0', '0f')).toBe(8);
    expect(hammingDistance('a5', 'a5')).toBe(0);
    expect(hammingDistance('8', '7')).toBe(4);
    expect(() => hammingDistance('ff', 'f')).toThrow(/hammingDistance.*'b'/);
    expect(() => differenceHash(ramp(1), 5)).toThrow(/'side'/);
  });

  it.skipIf(!haveSharedData('lfw/images/Anthony_Hopkins_0001.jpg'))('a rescaled copy is within 32 bits, another photo of the same man is not', async () => {
    const a = await decodeImage(join(sharedDataDir, 'lfw/images/Anthony_Hopkins_0001.jpg'));
    const b = await decodeImage(join(sharedDataDir, 'lfw/images/Anthony_Hopkins_0002.jpg'));
    const small = toUint8(tensorToImage(bicubicResize(imageToTensor(a, { batch: true }), { size: [180, 180] })));
    expect(hammingDistance(differenceHash(a), differenceHash(small))).toBeLessThanOrEqual(32);
    expect(hammingDistance(differenceHash(a), differenceHash(b))).toBeGreaterThan(32);
  });
});
