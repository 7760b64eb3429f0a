import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AFLW19_FROM_21, AFLW21_NAMES, Aflw, AflwFull, readAflwRelease } from '../src/index.js';
import { expectArgError, expectFileError, fixtures, tmp, writeTree } from './helpers.js';

const root = join(fixtures, 'aflw');
/** The release's 19 x then 19 y per face, as the fixture script wrote them (independent of the MAT reader). */
const release = readFileSync(join(root, 'release-data.txt'), 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
/** The fixture stores faces in this release order (ids 39341, 39344, ...). */
const dbOrder = [3, 0, 5, 1, 4, 2];
const masked: Record<number, number[]> = { 2: [0, 1, 2], 5: [18] };

describe('AFLW', () => {
  it('reads aflw.sqlite: one face per sample, 21 points, visible exactly when annotated', async () => {
    const ds = await Aflw.open({ root });
    expect(ds.length).toBe(6);
    expect(ds.pointNames).toEqual(AFLW21_NAMES);
    ds.toArray().forEach((s, k) => {
      const r = dbOrder[k];
      expect(s.attributes.faceId).toBe(39341 + 3 * k);
      expect(s.image.source).toBe(join(root, 'flickr', ['3/image20001.jpg', '0/image00002.jpg', '3/image20003.jpg', '0/image00002.jpg', '3/image20002.jpg', '2/image00100.jpg'][k]));
      const p = s.landmarks[0];
      const v = s.visibility[0];
      expect(p.length).toBe(42);
      AFLW19_FROM_21.forEach((k21, j) => {
        const visible = !(masked[r] ?? []).includes(j);
        expect(v[k21]).toBe(visible ? 1 : 0);
        if (visible) {
          expect(p[2 * k21]).toBeCloseTo(release[r][j] - 1, 4);
          expect(p[2 * k21 + 1]).toBeCloseTo(release[r][19 + j] - 1, 4);
        } else expect(Number.isNaN(p[2 * k21])).toBe(true);
      });
      // Ears: the left one on even release rows, never the right one.
      expect([v[12], v[16]]).toEqual([r % 2 === 0 ? 1 : 0, 0]);
      expect(s.attributes.sex).toBe(r % 2 ? 'm' : 'f');
      expect(Number.isNaN(s.attributes.pose.yaw)).toBe(r === 3);
    });
    // Face 4 (release row 4) has no FaceRect: its box is the landmarks' extent.
    const noRect = ds.get(4);
    const xs = Array.from({ length: 21 }, (_, k) => noRect.landmarks[0][2 * k]).filter((x) => !Number.isNaN(x));
    expect(noRect.boxes[0].x).toBeCloseTo(Math.min(...xs), 4);
    expect(ds.get(0).boxes[0].width).toBe(70);
    const img = await ds.get(0).image.decode();
    expect([img.width, img.height]).toEqual([200, 160]);
  });

  it('gives the 19-point AFLW-Full layout and selects split faces by the release file or a list', async () => {
    const ds19 = await Aflw.open({ root, points: 19 });
    expect(ds19.pointNames.length).toBe(19);
    expect(ds19.pointNames).not.toContain('LeftEar');
    const a = ds19.get(1);
    const a21 = (await Aflw.open({ root })).get(1);
    AFLW19_FROM_21.forEach((k21, j) => expect(a.landmarks[0][2 * j]).toBe(a21.landmarks[0][2 * k21]));
    // ra = [4 1 6 2 5 3]: with 4 training faces, train = rows 3, 0, 5, 1 and test = rows 4, 2.
    const split = (part: 'train' | 'test' | 'frontal') => Aflw.open({ root, points: 19, split: { file: join(root, 'AFLWinfo_release.mat'), part, trainCount: 4 } });
    const rowOf = (faceId: number) => dbOrder[(faceId - 39341) / 3];
    expect((await split('train')).toArray().map((s) => rowOf(s.attributes.faceId))).toEqual([3, 0, 5, 1]);
    expect((await split('test')).toArray().map((s) => rowOf(s.attributes.faceId))).toEqual([4, 2]);
    expect((await split('frontal')).toArray().map((s) => rowOf(s.attributes.faceId))).toEqual([4]);
    const dir = tmp();
    writeTree(dir, { 'list.txt': '39344\n3/image20002.jpg\n0/image00002.jpg\n' });
    const listed = await Aflw.open({ root, split: { file: join(dir, 'list.txt') } });
    expect(listed.toArray().map((s) => rowOf(s.attributes.faceId))).toEqual([0, 4, 0, 1]);
  });

  it('reads AFLWinfo_release.mat directly (AFLW-Full, with the released boxes and visibility)', async () => {
    const rel = await readAflwRelease(join(root, 'AFLWinfo_release.mat'), 4);
    expect(rel.names).toEqual(['0/image00002.jpg', '0/image00002.jpg', '2/image00100.jpg', '3/image20001.jpg', '3/image20002.jpg', '3/image20003.jpg']);
    expect([rel.train, rel.test]).toEqual([[3, 0, 5, 1], [4, 2]]);
    const test = await AflwFull.open({ releaseFile: join(root, 'AFLWinfo_release.mat'), imagesDir: join(root, 'flickr'), part: 'test', trainCount: 4 });
    expect(test.length).toBe(2);
    const s = test.get(1);
    expect(s.attributes).toEqual({ releaseIndex: 2, file: '2/image00100.jpg' });
    for (let j = 0; j < 19; j++) {
      expect(s.landmarks[0][2 * j]).toBeCloseTo(release[2][j], 4);
      expect(s.landmarks[0][2 * j + 1]).toBeCloseTo(release[2][19 + j], 4);
    }
    expect(Array.from(s.visibility[0]).slice(0, 4)).toEqual([0, 0, 0, 1]);
    // bbox = [left right top bottom] of the points in this fixture.
    const xs = release[2].slice(0, 19);
    const ys = release[2].slice(19);
    expect(s.boxes[0].x).toBeCloseTo(Math.min(...xs), 4);
    expect(s.boxes[0].width).toBeCloseTo(Math.max(...xs) - Math.min(...xs), 4);
    expect(s.boxes[0].height).toBeCloseTo(Math.max(...ys) - Math.min(...ys), 4);
    expect((await AflwFull.open({ releaseFile: join(root, 'AFLWinfo_release.mat'), imagesDir: join(root, 'flickr'), part: 'all' })).length).toBe(6);
    // The usual 20,000 / 4,386 cut keeps everything of this small file in train.
    expect((await AflwFull.open({ releaseFile: join(root, 'AFLWinfo_release.mat'), imagesDir: join(root, 'flickr'), part: 'train' })).length).toBe(6);
  });

  it('refuses unknown split keys before reading the database, naming Aflw.open and the key', async () => {
    // A database that does not exist: reading it would fail first.
    const missing = join(tmp(), 'none');
    const splitFile = join(root, 'AFLWinfo_release.mat');
    await expect(Aflw.open({ root: missing, split: { file: splitFile, parts: 'test' } as never })).rejects.toThrow(
      new TypeError("Aflw.open: 'parts' must be one of the known options.split fields (file, part, trainCount), got an unknown options.split field"),
    );
    await expect(Aflw.open({ root: missing, split: 'list.txt' as never })).rejects.toThrow(new TypeError(`Aflw.open: 'options.split' must be an object, got "list.txt"`));
    await expectArgError(() => Aflw.open({ root: missing, split: { file: splitFile, part: 'val' as never } }), RangeError, 'Aflw.open', 'split.part');
    // Every documented key: the release's last 2 faces (trainCount 4 of 6) as the test part.
    const test = await Aflw.open({ root, points: 19, split: { file: splitFile, part: 'test', trainCount: 4 } });
    expect(test.length).toBe(2);
  });

  it('names the file and table or record of bad databases and split files', async () => {
    const dir = tmp();
    writeTree(dir, { 'notsql.sqlite': 'hello', 'list.txt': '39344\n99999\n', 'list2.txt': 'nowhere/x.jpg\n' });
    await expectFileError(() => Aflw.open({ sqliteFile: join(dir, 'notsql.sqlite') }), join(dir, 'notsql.sqlite'), {}, 'not an SQLite 3 database');
    await expectFileError(() => Aflw.open({ root: dir }), join(dir, 'aflw.sqlite'), {}, 'AFLW database not found');
    await expectFileError(() => Aflw.open({ root, split: { file: join(dir, 'list.txt') } }), join(dir, 'list.txt'), { line: 2 }, 'face_id 99999 is not in the database');
    await expectFileError(() => Aflw.open({ root, split: { file: join(dir, 'list2.txt') } }), join(dir, 'list2.txt'), { line: 1 }, 'image "nowhere/x.jpg" has no face in the database');
    // A database without the landmark tables.
    const initSqlJs = (await import('sql.js')).default;
    const SQL = await initSqlJs();
    const db = new SQL.Database();
    db.run('CREATE TABLE Faces (face_id INTEGER, file_id TEXT); CREATE TABLE FaceImages (file_id TEXT, filepath TEXT); CREATE TABLE FaceRect (face_id INTEGER, x, y, w, h)');
    writeTree(dir, { 'partial.sqlite': Buffer.from(db.export()) });
    await expectFileError(() => Aflw.open({ sqliteFile: join(dir, 'partial.sqlite') }), join(dir, 'partial.sqlite'), { record: 'table FeatureCoords' }, 'table missing');
    db.run('CREATE TABLE FeatureCoords (face_id INTEGER, feature_id INTEGER, x REAL, y REAL); CREATE TABLE FeatureCoordTypes (feature_id INTEGER, descr TEXT)');
    for (let i = 1; i <= 21; i++) db.run('INSERT INTO FeatureCoordTypes VALUES (?, ?)', [i, `p${i}`]);
    db.run("INSERT INTO Faces VALUES (1, 'a.jpg'); INSERT INTO FaceImages VALUES ('a.jpg', '0/a.jpg'); INSERT INTO FeatureCoords VALUES (1, 22, 1, 1)");
    writeTree(dir, { 'badfeature.sqlite': Buffer.from(db.export()) });
    await expectFileError(() => Aflw.open({ sqliteFile: join(dir, 'badfeature.sqlite') }), join(dir, 'badfeature.sqlite'), { record: 'FeatureCoords face_id=1 feature_id=22' }, 'feature_id not in FeatureCoordTypes');
    db.run("DELETE FROM FeatureCoords; INSERT INTO Faces VALUES (2, 'b.jpg')");
    writeTree(dir, { 'noimage.sqlite': Buffer.from(db.export()) });
    await expectFileError(() => Aflw.open({ sqliteFile: join(dir, 'noimage.sqlite') }), join(dir, 'noimage.sqlite'), { record: 'Faces face_id=2' }, 'no FaceImages row with file_id "b.jpg"');
    db.close();
    await expectFileError(() => readAflwRelease(join(fixtures, 'tinyface/Testing_Set/probe_img_ID_pairs.mat')), join(fixtures, 'tinyface/Testing_Set/probe_img_ID_pairs.mat'), { record: "variable 'nameList'" }, 'variable missing');
    await expectArgError(() => Aflw.open({ root, points: 68 as 21 }), TypeError, 'Aflw.open', 'points');
    await expectArgError(() => Aflw.open({}), TypeError, 'Aflw.open', 'root');
  });
});
