import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { W300, parsePts, readPts, splitLines } from '../src/index.js';
import { data, expectArgError, expectFileError, fixtures, have, tmp, writeTree } from './helpers.js';

const csv = (name: string) => join(data, '300w', `face_landmarks_300w_${name}.csv.gz`);
const haveCsv = have('300w/face_landmarks_300w_valid.csv.gz', '300w/face_landmarks_300w_valid_common.csv.gz', '300w/face_landmarks_300w_valid_challenge.csv.gz', '300w/face_landmarks_300w_test.csv.gz');

/** The CSV rows read independently of the reader. */
function rawRows(name: string): string[][] {
  return gunzipSync(readFileSync(csv(name))).toString('utf8').trim().split('\n').slice(1).map((l) => l.split(','));
}

describe('300-W', () => {
  it.skipIf(!haveCsv)('reads the real CSVs: full 689 = common 554 + challenging 135, test 600', async () => {
    const full = await W300.fromCsv({ file: csv('valid') });
    const common = await W300.fromCsv({ file: csv('valid_common') });
    const challenging = await W300.fromCsv({ file: csv('valid_challenge') });
    const test = await W300.fromCsv({ file: csv('test') });
    expect([full.length, common.length, challenging.length, test.length]).toEqual([689, 554, 135, 600]);
    expect(full.pointCount).toBe(68);
    const names = (d: W300) => d.toArray().map((s) => s.attributes.file).sort();
    expect(names(full)).toEqual([...names(common), ...names(challenging)].sort());
    expect(common.toArray().every((s) => /^(lfpw|helen)\/testset\//.test(s.attributes.file))).toBe(true);
    expect(common.toArray().filter((s) => s.attributes.folder === 'lfpw/testset').length).toBe(224);
    expect(challenging.toArray().every((s) => s.attributes.folder === 'ibug')).toBe(true);
    expect(test.toArray().filter((s) => s.attributes.folder === 'Test/01_Indoor').length).toBe(300);
    expect(test.folders(['Test/02_Outdoor']).length).toBe(300);
    // Values against the raw rows: the box is the centre +- scale * 100, the points as written.
    const raw = rawRows('valid');
    full.toArray().forEach((s, i) => {
      const r = raw[i];
      expect(s.attributes.file).toBe(r[0]);
      const [scale, cx, cy] = [Number(r[1]), Number(r[2]), Number(r[3])];
      expect(s.attributes.scale).toBe(scale);
      expect(s.boxes[0].x).toBeCloseTo(cx - scale * 100, 9);
      expect(s.boxes[0].width).toBeCloseTo(scale * 200, 9);
      expect(s.landmarks[0].length).toBe(136);
      for (let k = 0; k < 136; k += 17) expect(s.landmarks[0][k]).toBeCloseTo(Number(r[4 + k]), 3);
      expect(s.visibility[0].every((v) => v === 1)).toBe(true);
      expect(s.image.source).toBe(join(data, '300w', r[0]));
    });
  });

  it('reads .pts files beside the images for each subset (fixtures with real 300-W shapes)', async () => {
    const root = join(fixtures, '300w');
    const manifest = new Map(readFileSync(join(root, 'manifest.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',') as [string, string]));
    const sizes: Record<string, number> = {};
    for (const subset of ['train', 'common', 'challenging', 'full', 'test', 'indoor', 'outdoor'] as const) sizes[subset] = (await W300.open({ root, subset })).length;
    expect(sizes).toEqual({ train: 4, common: 4, challenging: 2, full: 6, test: 2, indoor: 1, outdoor: 1 });
    const full = await W300.open({ root });
    expect(full.toArray().map((s) => s.attributes.folder)).toEqual(['lfpw/testset', 'lfpw/testset', 'helen/testset', 'helen/testset', 'ibug', 'ibug']);
    if (haveCsv) {
      const rows = new Map([...rawRows('valid'), ...rawRows('test')].map((r) => [r[0], r]));
      for (const s of [...full, ...(await W300.open({ root, subset: 'train' })), ...(await W300.open({ root, subset: 'test' }))]) {
        const r = rows.get(manifest.get(s.attributes.file)!)!;
        // The fixture writes three decimals, as the 300-W files do.
        for (let k = 0; k < 136; k++) expect(Math.abs(s.landmarks[0][k] - Number(r[4 + k]))).toBeLessThanOrEqual(0.0006);
        // Boxes from .pts files are the landmarks' extent.
        const xs = Array.from({ length: 68 }, (_, k) => s.landmarks[0][2 * k]);
        expect(s.boxes[0].x).toBeCloseTo(Math.min(...xs), 5);
        expect(s.boxes[0].width).toBeCloseTo(Math.max(...xs) - Math.min(...xs), 4);
      }
    }
    const img = await full.get(0).image.decode();
    expect([img.width, img.height]).toEqual([24, 20]);
    // Explicit folders, e.g. the HRNet layout of the test set.
    expect((await W300.open({ root, folders: ['300W/01_Indoor', 'ibug'] })).length).toBe(3);
  });

  it('names the file and line of malformed .pts and CSV files', async () => {
    const dir = tmp();
    const f = (name: string, text: string) => writeTree(dir, { [name]: text }) && join(dir, name);
    const good = 'version: 1\nn_points: 2\n{\n1 2\n3 4\n}\n';
    expect(Array.from(parsePts('x.pts', splitLines(good)))).toEqual([1, 2, 3, 4]);
    expect(Array.from(await readPts(f('crlf.pts', good.replace(/\n/g, '\r\n'))))).toEqual([1, 2, 3, 4]);
    await expectFileError(() => readPts(f('a.pts', 'version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n')), join(dir, 'a.pts'), { line: 6 }, 'expected point 3 of 3 as "x y"');
    await expectFileError(() => readPts(f('b.pts', 'version: 1\nn_points: 2\n1 2\n')), join(dir, 'b.pts'), { line: 3 }, 'expected "{"');
    await expectFileError(() => readPts(f('c.pts', 'version: 1\nn_points: 2\n{\n1 2\n3 x\n}\n')), join(dir, 'c.pts'), { line: 5 }, 'y of point 2 must be a number');
    await expectFileError(() => readPts(f('d.pts', 'version: 1\nn_points: 1\n{\n1 2\n')), join(dir, 'd.pts'), { line: 5 }, 'file ends where "}" after the last point was expected');
    await expectFileError(() => readPts(f('e.pts', 'n_points: 1\n')), join(dir, 'e.pts'), { line: 1 }, 'expected "version: 1"');
    writeTree(dir, { 'ibug/lonely.pts': good });
    await expectFileError(() => W300.open({ root: dir, subset: 'challenging' }), join(dir, 'ibug/lonely.pts'), {}, 'no image beside it');
    await expectFileError(() => W300.open({ root: dir, subset: 'common' }), join(dir, 'lfpw/testset'), {}, "300-W folder for subset 'common' not found");
    await expectFileError(() => W300.fromCsv({ file: f('a.csv', 'name,scale\n') }), join(dir, 'a.csv'), { line: 1 }, 'expected a header starting "image_name,scale,center_w,center_h"');
    await expectFileError(() => W300.fromCsv({ file: f('b.csv', 'image_name,scale,center_w,center_h,x0,y0\na.jpg,1,2,3,4\n') }), join(dir, 'b.csv'), { line: 2 }, 'expected 6 comma-separated values, got 5');
    await expectFileError(() => W300.fromCsv({ file: f('c.csv', 'image_name,scale,center_w,center_h,x0,y0\na.jpg,1,2,3,4,nan?\n') }), join(dir, 'c.csv'), { line: 2 }, 'y0 must be a number');
    await expectArgError(() => W300.open({ root: dir, subset: 'hard' as 'full' }), RangeError, 'W300.open', 'subset');
  });
});
