import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WiderFace, parseWiderText, boxSize } from '../src/index.js';
import { data, expectArgError, expectFileError, fixtures, have, tmp, writeTree } from './helpers.js';

const root = join(data, 'widerface');
const haveWider = have('widerface/wider_face_split/wider_face_val.mat', 'widerface/wider_face_split/wider_face_val_bbx_gt.txt');

describe('WIDER FACE', () => {
  it.skipIf(!haveWider)('reads the real val .mat: 61 events, 3,226 images, 39,708 faces with all six labels', async () => {
    const ds = await WiderFace.open({ root, split: 'val', format: 'mat' });
    expect(ds.length).toBe(3226);
    expect(ds.faceCount).toBe(39708);
    expect(new Set(ds.toArray().map((s) => s.attributes.event)).size).toBe(61);
    const s = ds.get(0);
    expect(s.attributes.file).toBe('0--Parade/0_Parade_marchingband_1_465.jpg');
    expect(s.image.source).toBe(join(root, 'WIDER_val/images/0--Parade/0_Parade_marchingband_1_465.jpg'));
    expect(s.boxes.length).toBe(126);
    // The text file's rows for this image: "345 211 4 4 2 0 0 0 2 0" and "170 230 5 6 2 0 0 1 1 1".
    expect(s.boxes[0]).toEqual({ x: 345, y: 211, width: 4, height: 4 });
    expect([s.attributes.blur[0], s.attributes.expression[0], s.attributes.illumination[0], s.attributes.invalid[0], s.attributes.occlusion[0], s.attributes.pose[0]]).toEqual([2, 0, 0, 0, 2, 0]);
    expect(s.boxes[9]).toEqual({ x: 170, y: 230, width: 5, height: 6 });
    expect([s.attributes.blur[9], s.attributes.invalid[9], s.attributes.occlusion[9], s.attributes.pose[9]]).toEqual([2, 1, 1, 1]);
    // Every label is within its documented range.
    const max = { blur: 2, expression: 1, illumination: 1, invalid: 1, occlusion: 2, pose: 1 } as const;
    for (const smp of ds) for (const [k, m] of Object.entries(max)) expect(Math.max(0, ...smp.attributes[k as keyof typeof max])).toBeLessThanOrEqual(m);
  });

  it.skipIf(!haveWider)('the official text file and .mat agree on every image the text file holds', async () => {
    const mat = await WiderFace.open({ root, split: 'val', format: 'mat' });
    const txt = await WiderFace.open({ root, split: 'val', format: 'txt' });
    // This copy of the text file was cut short by its source repository: 1,062 images.
    expect(txt.length).toBe(1062);
    const byFile = new Map(mat.toArray().map((s) => [s.attributes.file, s]));
    let faces = 0;
    for (const s of txt) {
      const m = byFile.get(s.attributes.file)!;
      expect(m, s.attributes.file).toBeDefined();
      expect(s.boxes).toEqual(m.boxes);
      for (const l of ['blur', 'expression', 'illumination', 'invalid', 'occlusion', 'pose'] as const) expect(Array.from(s.attributes[l])).toEqual(Array.from(m.attributes[l]));
      faces += s.boxes.length;
    }
    expect(faces).toBe(txt.faceCount);
  });

  it.skipIf(!haveWider)('filters faces by size (LR 20-40 px, HR >= 100 px) and validity; one sample per face', async () => {
    const ds = await WiderFace.open({ root, split: 'val' });
    const lr = ds.filterFaces({ minSize: 20, maxSize: 40 });
    const hr = ds.filterFaces({ minSize: 100 });
    const count = (d: WiderFace) => d.faceCount;
    let lrNaive = 0;
    let hrNaive = 0;
    for (const s of ds)
      s.boxes.forEach((b, k) => {
        if (s.attributes.invalid[k] || b.width <= 0 || b.height <= 0) return;
        const m = Math.max(b.width, b.height);
        if (m >= 20 && m <= 40) lrNaive++;
        if (m >= 100) hrNaive++;
      });
    expect(count(lr)).toBe(lrNaive);
    expect(count(hr)).toBe(hrNaive);
    expect(lr.toArray().every((s) => s.boxes.length > 0 && s.boxes.every((b) => boxSize(b) >= 20 && boxSize(b) <= 40))).toBe(true);
    expect(lr.toArray().every((s) => s.attributes.invalid.every((v) => v === 0))).toBe(true);
    // Heights instead of the longer side, invalid faces kept, labels filtered.
    const byHeight = ds.filterFaces({ minSize: 100, measure: 'height', dropInvalid: false, maxLabels: { blur: 0, occlusion: 0 } });
    for (const s of byHeight) s.boxes.forEach((b, k) => {
      expect(b.height).toBeGreaterThanOrEqual(100);
      expect(s.attributes.blur[k]).toBe(0);
      expect(s.attributes.occlusion[k]).toBe(0);
    });
    // Without a filter only invalid faces and area-less placeholder boxes go.
    const all = ds.toArray().reduce((n, s) => n + s.boxes.filter((b, k) => b.width > 0 && b.height > 0 && !s.attributes.invalid[k]).length, 0);
    expect(ds.faces().length).toBe(all);
    expect(ds.faces({ dropInvalid: false }).length).toBeGreaterThan(all);
    const faces = ds.faces({ minSize: 100 });
    expect(faces.length).toBe(hrNaive);
    const f = faces.get(0);
    expect(f.boxes.length).toBe(1);
    expect(typeof f.attributes.blur).toBe('number');
    const img = ds.toArray()[ds.toArray().findIndex((s) => s.attributes.file === f.attributes.file)];
    expect(img.boxes[f.attributes.face]).toEqual(f.boxes[0]);
  });

  it.skipIf(!have('widerface/WIDER_val/images/19--Couple/19_Couple_Couple_19_110.jpg'))('decodes a sample image lazily; its boxes lie inside it', async () => {
    const ds = await WiderFace.open({ root, split: 'val' });
    const s = ds.toArray().find((x) => x.attributes.file === '19--Couple/19_Couple_Couple_19_110.jpg')!;
    const img = await s.image.decode();
    expect(img.channels).toBe(3);
    expect(img.data.length).toBe(img.width * img.height * 3);
    for (const b of s.boxes) {
      expect(b.x + b.width).toBeLessThanOrEqual(img.width);
      expect(b.y + b.height).toBeLessThanOrEqual(img.height);
    }
    const info = await s.image.info();
    expect([info.width, info.height, info.format]).toEqual([img.width, img.height, 'jpeg']);
  });

  it('reads a train file with a face-less image and the test file list (fixtures in the official format)', async () => {
    const root = join(fixtures, 'widerface');
    const train = await WiderFace.open({ root, split: 'train' });
    expect(train.annotationFile).toBe(join(root, 'wider_face_split/wider_face_train_bbx_gt.txt'));
    expect(train.length).toBe(3);
    expect(train.get(1).boxes).toEqual([]);
    expect(train.get(2).boxes).toEqual([{ x: 11, y: 38, width: 19, height: 24 }, { x: 84, y: 40, width: 20, height: 22 }]);
    expect(Array.from(train.get(2).attributes.pose)).toEqual([0, 1]);
    expect(train.get(2).attributes.event).toBe('1--Handshaking');
    expect(train.get(-1).attributes.file).toBe(train.get(2).attributes.file);
    const test = await WiderFace.open({ root, split: 'test' });
    expect(test.length).toBe(2);
    expect(test.get(0).image.source).toBe(join(root, 'WIDER_test/images/0--Parade/0_Parade_marchingband_1_737.jpg'));
    // Iteration, subsets and filters.
    const seen: string[] = [];
    for await (const s of train) seen.push(s.attributes.file);
    expect(seen.length).toBe(3);
    expect(train.subset([2, 0]).toArray().map((s) => s.attributes.file)).toEqual([seen[2], seen[0]]);
  });

  it('names the file and line of malformed annotations', async () => {
    const dir = tmp();
    const bad = (name: string, text: string) => writeTree(dir, { [name]: text }) && join(dir, name);
    await expectFileError(() => parseWiderText(bad('a.txt', 'x/a.jpg\ntwo\n')), join(dir, 'a.txt'), { line: 2 }, 'the face count of x/a.jpg must be a number');
    await expectFileError(() => parseWiderText(bad('b.txt', 'x/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n')), join(dir, 'b.txt'), { line: 4 }, 'file ends where face 2 of 2 of x/a.jpg was expected');
    await expectFileError(() => parseWiderText(bad('c.txt', 'x/a.jpg\n1\n1 2 3 4 0 0\n')), join(dir, 'c.txt'), { line: 3 }, 'expected 10 values');
    await expectFileError(() => parseWiderText(bad('d.txt', 'x/a.jpg\n1\n1 2 3 4 0 0 0 0 0 zero\n')), join(dir, 'd.txt'), { line: 3 }, 'column 10 must be a number');
    await expectFileError(() => parseWiderText(bad('e.txt', 'x/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\nnot an image path\n')), join(dir, 'e.txt'), { line: 4 }, 'expected an image path');
    await expectFileError(() => parseWiderText(bad('f.txt', 'x/a.jpg\n-1\n')), join(dir, 'f.txt'), { line: 2 }, 'face count must be >= 0');
    await expectFileError(() => WiderFace.open({ root: dir, split: 'val', format: 'txt' }), join(dir, 'wider_face_split/wider_face_val_bbx_gt.txt'), {}, 'WIDER FACE annotation file not found');
    await expectArgError(() => WiderFace.open({ root: dir, split: 'dev' as 'val' }), RangeError, 'WiderFace.open', 'split');
    await expectArgError(() => WiderFace.open({ root: dir, splits: 'val' } as never), TypeError, 'WiderFace.open', 'splits');
    const ds = await WiderFace.open({ root: join(fixtures, 'widerface'), split: 'train' });
    await expectArgError(() => ds.get(3), RangeError, 'WIDER FACE train.get', 'index');
    await expectArgError(() => ds.filterFaces({ minSize: 50, maxSize: 10 }), RangeError, 'WiderFace.filterFaces', 'maxSize');
    await expectArgError(() => ds.filterFaces({ measure: 'area' as 'max' }), RangeError, 'WiderFace.filterFaces', 'measure');
  });
});
