// AFLW (Koestinger et al. 2011): aflw.sqlite (tables Faces, FaceImages, FaceRect, FacePose,
// FaceMetaData, FeatureCoords, FeatureCoordTypes) with the images under flickr/; 21 landmarks,
// a point being visible exactly when it was annotated. AFLW-Full (Zhu et al., CVPR 2016):
// the 19 points without the ears, 24,386 faces split 20,000 train / 4,386 test, published as
// AFLWinfo_release.mat (nameList, data, mask_new, bbox, ra).
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import type { Database, SqlJsStatic, SqlValue } from 'sql.js';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError, checkInt, checkKeys, checkOneOf, typeError } from '../errors.js';
import { exists, readBytes, readLines } from '../files.js';
import { LazyImage, type Box } from '../image.js';
import { matCells, matNumbers, matRows, matString, matVariable, readMat } from '../mat.js';
import { checkOptions, pathOption } from './common.js';
import { landmarkBox } from './w300.js';

/** AFLW's 21 points (FeatureCoordTypes 1..21), 0-based index order. */
export const AFLW21_NAMES = [
  'LeftBrowLeftCorner', 'LeftBrowCenter', 'LeftBrowRightCorner', 'RightBrowLeftCorner', 'RightBrowCenter', 'RightBrowRightCorner',
  'LeftEyeLeftCorner', 'LeftEyeCenter', 'LeftEyeRightCorner', 'RightEyeLeftCorner', 'RightEyeCenter', 'RightEyeRightCorner',
  'LeftEar', 'NoseLeft', 'NoseCenter', 'NoseRight', 'RightEar', 'MouthLeftCorner', 'MouthCenter', 'MouthRightCorner', 'ChinCenter',
] as const;

/** The 21-point indices kept by the 19-point AFLW-Full protocol (the ears, 12 and 16, dropped). */
export const AFLW19_FROM_21: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20];

export const AFLW19_NAMES: readonly string[] = AFLW19_FROM_21.map((i) => AFLW21_NAMES[i]);

export interface AflwAttributes {
  faceId: number;
  fileId: string;
  /** FaceImages.filepath (relative to the flickr folder). */
  file: string;
  /** FacePose as stored (radians; NaN if absent). */
  pose: { roll: number; pitch: number; yaw: number };
  /** FaceMetaData (null where absent). */
  sex: string | null;
  occluded: number | null;
  glasses: number | null;
}
export type AflwSample = FaceSample<AflwAttributes>;

let sqlPromise: Promise<SqlJsStatic> | null = null;
/** sql.js (SQLite compiled to WebAssembly), loaded once. */
async function sqlite(): Promise<SqlJsStatic> {
  if (!sqlPromise) {
    const require = createRequire(import.meta.url);
    const init = require('sql.js') as (config?: object) => Promise<SqlJsStatic>;
    sqlPromise = init();
  }
  return sqlPromise;
}

function rows(db: Database, sql: string): SqlValue[][] {
  const res = db.exec(sql);
  return res.length ? res[0].values : [];
}

const num = (v: SqlValue): number => (v === null || v === undefined ? NaN : Number(v));

/** One face of aflw.sqlite, as read. */
export interface AflwRecord {
  faceId: number;
  fileId: string;
  file: string;
  box: Box;
  points: Float32Array;
  visible: Uint8Array;
  pose: { roll: number; pitch: number; yaw: number };
  sex: string | null;
  occluded: number | null;
  glasses: number | null;
}

/** Which faces a split file keeps. */
export interface AflwSplit {
  /** AFLWinfo_release.mat (matched to the database faces), or a text file of face ids or image paths, one per line. */
  file: string;
  /** With a release .mat: 'train' (its first 20,000 of `ra`), 'test' (the other 4,386), 'frontal' (test faces with all 19 points visible). Ignored for text files. */
  part?: 'train' | 'test' | 'frontal';
  /** How many of `ra` are training faces (default 20,000). */
  trainCount?: number;
}

const AFLW_SPLIT_KEYS: Record<keyof AflwSplit, true> = { file: true, part: true, trainCount: true };

export interface AflwOptions {
  /** aflw/data (holding aflw.sqlite and flickr/). */
  root?: string;
  /** The database file, if not <root>/aflw.sqlite. */
  sqliteFile?: string;
  /** The image folder FaceImages.filepath is relative to (default <root>/flickr). */
  imagesDir?: string;
  /** 21 (default, every AFLW point) or 19 (AFLW-Full: no ears). */
  points?: 21 | 19;
  /** Keep only a split's faces. */
  split?: AflwSplit;
}

/** AFLW from its SQLite database: one sample per face. Coordinates as stored in the database. */
export class Aflw extends Dataset<AflwSample> {
  private constructor(
    readonly imagesDir: string,
    readonly pointNames: readonly string[],
    private readonly records: AflwRecord[],
  ) {
    super();
  }

  override get name(): string {
    return `AFLW (${this.pointNames.length} points)`;
  }

  static async open(options: AflwOptions): Promise<Aflw> {
    const fn = 'Aflw.open';
    checkOptions(fn, options, ['root', 'sqliteFile', 'imagesDir', 'points', 'split']);
    if (options.root === undefined && options.sqliteFile === undefined) throw typeError(fn, 'root', 'a folder (or give sqliteFile)', undefined);
    const root = options.root !== undefined ? pathOption(fn, 'root', options.root) : undefined;
    const file = options.sqliteFile !== undefined ? pathOption(fn, 'sqliteFile', options.sqliteFile) : join(root!, 'aflw.sqlite');
    const imagesDir = options.imagesDir !== undefined ? pathOption(fn, 'imagesDir', options.imagesDir) : join(root ?? join(file, '..'), 'flickr');
    const points = options.points ?? 21;
    if (points !== 21 && points !== 19) throw typeError(fn, 'points', '21 or 19', points);
    // The split is checked before the database is read.
    let split: { file: string; part: 'train' | 'test' | 'frontal'; trainCount: number } | null = null;
    if (options.split !== undefined) {
      checkKeys(fn, options.split, AFLW_SPLIT_KEYS, 'options.split');
      split = {
        file: pathOption(fn, 'split.file', options.split.file),
        part: checkOneOf(fn, 'split.part', options.split.part ?? 'train', ['train', 'test', 'frontal'] as const),
        trainCount: checkInt(fn, 'split.trainCount', options.split.trainCount ?? 20000, 0),
      };
    }
    const records = await readAflwSqlite(file);
    let kept = records;
    if (split) kept = extname(split.file) === '.mat' ? await matchRelease(records, split.file, split.part, file, split.trainCount) : await selectByList(records, split.file);
    if (points === 19) {
      kept = kept.map((r) => {
        const p = new Float32Array(38);
        const v = new Uint8Array(19);
        AFLW19_FROM_21.forEach((k, j) => {
          p[2 * j] = r.points[2 * k];
          p[2 * j + 1] = r.points[2 * k + 1];
          v[j] = r.visible[k];
        });
        return { ...r, points: p, visible: v };
      });
    }
    return new Aflw(imagesDir, points === 19 ? AFLW19_NAMES : AFLW21_NAMES, kept);
  }

  get length(): number {
    return this.records.length;
  }

  protected item(index: number): AflwSample {
    const r = this.records[index];
    return makeSample(index, new LazyImage(join(this.imagesDir, r.file)), {
      boxes: [{ ...r.box }],
      landmarks: [r.points.slice()],
      visibility: [r.visible.slice()],
      attributes: { faceId: r.faceId, fileId: r.fileId, file: r.file, pose: { ...r.pose }, sex: r.sex, occluded: r.occluded, glasses: r.glasses },
    });
  }
}

/** Reads every face of aflw.sqlite with its rectangle, pose, metadata and 21 points. */
export async function readAflwSqlite(file: string): Promise<AflwRecord[]> {
  const SQL = await sqlite();
  const bytes = await readBytes(file, 'AFLW database');
  if (bytes.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') throw new DatasetFileError(file, {}, 'not an SQLite 3 database');
  const db = new SQL.Database(bytes);
  try {
    const tables = new Set(rows(db, "SELECT lower(name) FROM sqlite_master WHERE type IN ('table', 'view')").map((r) => String(r[0])));
    for (const t of ['Faces', 'FaceImages', 'FaceRect', 'FeatureCoords', 'FeatureCoordTypes'])
      if (!tables.has(t.toLowerCase())) throw new DatasetFileError(file, { record: `table ${t}` }, `table missing (the database has ${[...tables].join(', ') || 'no tables'})`);
    const query = (sql: string, table: string): SqlValue[][] => {
      try {
        return rows(db, sql);
      } catch (err) {
        throw new DatasetFileError(file, { record: `table ${table}` }, `unexpected columns (${(err as Error).message})`, { cause: err });
      }
    };
    const types = query('SELECT feature_id, descr FROM FeatureCoordTypes ORDER BY feature_id', 'FeatureCoordTypes');
    const featureIndex = new Map<number, number>();
    types.forEach((t, i) => featureIndex.set(num(t[0]), i));
    const nPoints = types.length;
    if (nPoints !== 21) throw new DatasetFileError(file, { record: 'table FeatureCoordTypes' }, `expected the 21 AFLW point types, found ${nPoints}`);
    const byFace = new Map<number, AflwRecord>();
    const list: AflwRecord[] = [];
    for (const r of query('SELECT f.face_id, f.file_id, i.filepath FROM Faces f LEFT JOIN FaceImages i ON f.file_id = i.file_id ORDER BY f.face_id', 'Faces')) {
      const faceId = num(r[0]);
      if (r[2] === null || r[2] === undefined) throw new DatasetFileError(file, { record: `Faces face_id=${faceId}` }, `no FaceImages row with file_id ${JSON.stringify(r[1])}`);
      if (byFace.has(faceId)) continue; // one image row per file_id is expected; extra joins repeat the face
      const rec: AflwRecord = {
        faceId,
        fileId: String(r[1]),
        file: String(r[2]),
        box: { x: NaN, y: NaN, width: NaN, height: NaN },
        points: new Float32Array(2 * nPoints).fill(NaN),
        visible: new Uint8Array(nPoints),
        pose: { roll: NaN, pitch: NaN, yaw: NaN },
        sex: null,
        occluded: null,
        glasses: null,
      };
      byFace.set(faceId, rec);
      list.push(rec);
    }
    for (const r of query('SELECT face_id, x, y, w, h FROM FaceRect ORDER BY rowid', 'FaceRect')) {
      const rec = byFace.get(num(r[0]));
      if (rec && Number.isNaN(rec.box.x)) rec.box = { x: num(r[1]), y: num(r[2]), width: num(r[3]), height: num(r[4]) };
    }
    for (const r of query('SELECT face_id, feature_id, x, y FROM FeatureCoords', 'FeatureCoords')) {
      const rec = byFace.get(num(r[0]));
      if (!rec) continue;
      const k = featureIndex.get(num(r[1]));
      if (k === undefined) throw new DatasetFileError(file, { record: `FeatureCoords face_id=${num(r[0])} feature_id=${String(r[1])}` }, 'feature_id not in FeatureCoordTypes');
      rec.points[2 * k] = num(r[2]);
      rec.points[2 * k + 1] = num(r[3]);
      rec.visible[k] = 1;
    }
    if (tables.has('facepose'))
      for (const r of query('SELECT face_id, roll, pitch, yaw FROM FacePose', 'FacePose')) {
        const rec = byFace.get(num(r[0]));
        if (rec) rec.pose = { roll: num(r[1]), pitch: num(r[2]), yaw: num(r[3]) };
      }
    if (tables.has('facemetadata'))
      for (const r of query('SELECT face_id, sex, occluded, glasses FROM FaceMetaData', 'FaceMetaData')) {
        const rec = byFace.get(num(r[0]));
        if (rec) {
          rec.sex = r[1] === null ? null : String(r[1]);
          rec.occluded = r[2] === null ? null : num(r[2]);
          rec.glasses = r[3] === null ? null : num(r[3]);
        }
      }
    for (const rec of list) if (Number.isNaN(rec.box.x)) rec.box = landmarkBox(rec.points);
    return list;
  } finally {
    db.close();
  }
}

/** The AFLW-Full release (AFLWinfo_release.mat), parsed. */
export interface AflwRelease {
  file: string;
  names: string[];
  /** Per face: 19 points [x0, y0, ...] (the release's 1-based MATLAB pixel coordinates). */
  points: Float32Array[];
  visible: Uint8Array[];
  /** The released boxes (converted from [left right top bottom]). */
  boxes: Box[];
  /** 0-based face indices: train = the first 20,000 of `ra`, test = the rest. */
  train: number[];
  test: number[];
}

/** Reads AFLWinfo_release.mat. */
export async function readAflwRelease(file: string, trainCount = 20000): Promise<AflwRelease> {
  const mat = await readMat(file);
  const nameCells = matCells(file, 'nameList', matVariable(mat, 'nameList'));
  const names = nameCells.map((c, i) => {
    // Each entry is a char array, or a 1x1 cell holding one.
    const inner = c.type === 'cell' ? c.cells[0] : c;
    return matString(file, `nameList{${i + 1}}`, inner).trim();
  });
  const n = names.length;
  const data = matRows(file, 'data', matVariable(mat, 'data'));
  const mask = matRows(file, 'mask_new', matVariable(mat, 'mask_new'));
  const bbox = matRows(file, 'bbox', matVariable(mat, 'bbox'));
  const ra = Array.from(matNumbers(file, 'ra', matVariable(mat, 'ra')));
  const check = (what: string, got: number, cols: number, actualCols: number | undefined) => {
    if (got !== n || (n > 0 && actualCols !== cols))
      throw new DatasetFileError(file, { record: `variable ${what}` }, `expected ${n} x ${cols} (one row per nameList entry), got ${got} x ${actualCols ?? 0}`);
  };
  check('data', data.length, 38, data[0]?.length);
  check('mask_new', mask.length, 19, mask[0]?.length);
  check('bbox', bbox.length, 4, bbox[0]?.length);
  const sorted = [...ra].sort((a, b) => a - b);
  if (ra.length !== n || sorted.some((v, i) => v !== i + 1)) throw new DatasetFileError(file, { record: 'variable ra' }, `expected a permutation of 1..${n}, got ${ra.length} values`);
  const points = data.map((row) => {
    const p = new Float32Array(38);
    for (let k = 0; k < 19; k++) {
      p[2 * k] = row[k];
      p[2 * k + 1] = row[19 + k];
    }
    return p;
  });
  const visible = mask.map((row) => Uint8Array.from(row, (v) => (v ? 1 : 0)));
  const boxes = bbox.map(([l, r, t, b]) => ({ x: l, y: t, width: r - l, height: b - t }));
  const cut = Math.min(trainCount, n);
  return { file, names, points, visible, boxes, train: ra.slice(0, cut).map((v) => v - 1), test: ra.slice(cut).map((v) => v - 1) };
}

function releaseIndices(rel: AflwRelease, part: 'train' | 'test' | 'frontal'): number[] {
  if (part === 'train') return rel.train;
  if (part === 'test') return rel.test;
  return rel.test.filter((i) => rel.visible[i].every((v) => v === 1));
}

/** Picks, for each release face of a part, the database face of the same image with the nearest 19 points. */
async function matchRelease(records: AflwRecord[], file: string, part: 'train' | 'test' | 'frontal', dbFile: string, trainCount: number): Promise<AflwRecord[]> {
  const rel = await readAflwRelease(file, trainCount);
  const byImage = new Map<string, AflwRecord[]>();
  for (const r of records) {
    const list = byImage.get(r.file) ?? [];
    list.push(r);
    byImage.set(r.file, list);
  }
  const out: AflwRecord[] = [];
  for (const i of releaseIndices(rel, part)) {
    const candidates = byImage.get(rel.names[i]) ?? [];
    let best: AflwRecord | null = null;
    let bestD = Infinity;
    for (const c of candidates) {
      let d = 0;
      let n = 0;
      AFLW19_FROM_21.forEach((k, j) => {
        if (!c.visible[k] || !rel.visible[i][j]) return;
        d += Math.hypot(c.points[2 * k] - rel.points[i][2 * j], c.points[2 * k + 1] - rel.points[i][2 * j + 1]);
        n++;
      });
      const mean = n ? d / n : Infinity;
      if (mean < bestD) {
        bestD = mean;
        best = c;
      }
    }
    if (!best) throw new DatasetFileError(file, { record: `nameList{${i + 1}}` }, `image ${rel.names[i]} has no face in ${dbFile} with shared visible points`);
    out.push(best);
  }
  return out;
}

/** Keeps the faces a text file lists (face ids, or image paths keeping every face of the image). */
async function selectByList(records: AflwRecord[], file: string): Promise<AflwRecord[]> {
  const lines = (await readLines(file, 'AFLW split file')).filter((l) => l.text.trim() !== '');
  const byId = new Map(records.map((r) => [r.faceId, r]));
  const byImage = new Map<string, AflwRecord[]>();
  for (const r of records) byImage.set(r.file, [...(byImage.get(r.file) ?? []), r]);
  const out: AflwRecord[] = [];
  for (const l of lines) {
    const entry = l.text.trim().split(/[\s,]+/)[0];
    if (/^\d+$/.test(entry)) {
      const r = byId.get(Number(entry));
      if (!r) throw new DatasetFileError(file, { line: l.line }, `face_id ${entry} is not in the database`);
      out.push(r);
    } else {
      const list = byImage.get(entry) ?? byImage.get(entry.replace(/^(\.\/)?(aflw\/)?(data\/)?(flickr\/)?/, ''));
      if (!list) throw new DatasetFileError(file, { line: l.line }, `image ${JSON.stringify(entry)} has no face in the database`);
      out.push(...list);
    }
  }
  return out;
}

export interface AflwFullOptions {
  /** AFLWinfo_release.mat. */
  releaseFile: string;
  /** The flickr folder nameList paths are relative to. */
  imagesDir: string;
  /** 'train' (20,000), 'test' (4,386), 'frontal' (test faces with all 19 points visible) or 'all'. Default 'test'. */
  part?: 'train' | 'test' | 'frontal' | 'all';
  /** How many of `ra` are training faces (default 20,000). */
  trainCount?: number;
}

export interface AflwFullAttributes {
  /** Row in the release (0-based). */
  releaseIndex: number;
  file: string;
}

/** AFLW-Full straight from AFLWinfo_release.mat: 19 points, visibility and the released boxes. */
export class AflwFull extends Dataset<FaceSample<AflwFullAttributes>> {
  private constructor(
    readonly part: string,
    readonly imagesDir: string,
    private readonly rel: AflwRelease,
    private readonly indices: number[],
  ) {
    super();
  }

  override get name(): string {
    return `AFLW-Full ${this.part}`;
  }

  static async open(options: AflwFullOptions): Promise<AflwFull> {
    const fn = 'AflwFull.open';
    checkOptions(fn, options, ['releaseFile', 'imagesDir', 'part', 'trainCount']);
    const file = pathOption(fn, 'releaseFile', options.releaseFile);
    const imagesDir = pathOption(fn, 'imagesDir', options.imagesDir);
    const part = checkOneOf(fn, 'part', options.part ?? 'test', ['train', 'test', 'frontal', 'all'] as const);
    if (!(await exists(file))) throw new DatasetFileError(file, {}, 'AFLW-Full release file not found');
    const rel = await readAflwRelease(file, checkInt(fn, 'trainCount', options.trainCount ?? 20000, 0));
    const indices = part === 'all' ? rel.names.map((_, i) => i) : releaseIndices(rel, part);
    return new AflwFull(part, imagesDir, rel, indices);
  }

  get length(): number {
    return this.indices.length;
  }

  protected item(index: number): FaceSample<AflwFullAttributes> {
    const i = this.indices[index];
    const r = this.rel;
    return makeSample(index, new LazyImage(join(this.imagesDir, r.names[i])), {
      boxes: [{ ...r.boxes[i] }],
      landmarks: [r.points[i].slice()],
      visibility: [r.visible[i].slice()],
      attributes: { releaseIndex: i, file: r.names[i] },
    });
  }
}
