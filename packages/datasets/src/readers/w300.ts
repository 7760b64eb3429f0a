// 300-W (Sagonas et al. 2013/2016): 68 iBUG-scheme landmarks per face, as .pts files beside the
// images (afw, helen, lfpw, ibug and the 300-W test set), or as the CSV layout of
// HRNet-Facial-Landmark-Detection (image_name, scale, center_w, center_h, x0, y0, ..., x67, y67).
import { readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError, checkOneOf, typeError } from '../errors.js';
import { exists, parseInteger, parseNumber, readLines, type Line } from '../files.js';
import { LazyImage, type Box } from '../image.js';
import { checkOptions, pathOption } from './common.js';

/** The standard 300-W subsets (see 07_evaluation_protocols: 3,148 / 554 / 135 / 689 / 600 faces). */
export type W300Subset = 'train' | 'common' | 'challenging' | 'full' | 'test' | 'indoor' | 'outdoor';
export const W300_SUBSETS = ['train', 'common', 'challenging', 'full', 'test', 'indoor', 'outdoor'] as const;

/** Folders (relative to the 300-W root) holding each subset's images and .pts files. */
export const W300_FOLDERS: Record<W300Subset, readonly string[]> = {
  train: ['lfpw/trainset', 'helen/trainset', 'afw'],
  common: ['lfpw/testset', 'helen/testset'],
  challenging: ['ibug'],
  full: ['lfpw/testset', 'helen/testset', 'ibug'],
  test: ['300W/01_Indoor', '300W/02_Outdoor'],
  indoor: ['300W/01_Indoor'],
  outdoor: ['300W/02_Outdoor'],
};

export interface W300Attributes {
  /** The image's path relative to the dataset root (e.g. "helen/testset/296814969_3.jpg"). */
  file: string;
  /** The folder it came from ("lfpw/testset", "ibug", ...). */
  folder: string;
  /** CSV layout only: HRNet's scale (box side / 200) and centre. */
  scale?: number;
  center?: [number, number];
}

export type W300Sample = FaceSample<W300Attributes>;

/** Parses one .pts file: `version: 1`, `n_points: N`, `{`, N lines `x y`, `}`. Returns 2N values. */
export function parsePts(file: string, lines: Line[]): Float32Array {
  const body = lines.filter((l) => l.text.trim() !== '');
  let i = 0;
  const expect = (re: RegExp, what: string): RegExpMatchArray => {
    const l = body[i];
    if (!l) throw new DatasetFileError(file, { line: (lines.at(-1)?.line ?? 0) + 1 }, `file ends where ${what} was expected`);
    const m = l.text.trim().match(re);
    if (!m) throw new DatasetFileError(file, { line: l.line }, `expected ${what}, got ${JSON.stringify(l.text.trim())}`);
    i++;
    return m;
  };
  expect(/^version:\s*\S+$/, '"version: 1"');
  const nLine = body[i];
  const n = parseInteger(file, nLine?.line ?? 1, expect(/^n_points:\s*(\S+)$/, '"n_points: <count>"')[1], 'n_points');
  if (n <= 0) throw new DatasetFileError(file, { line: nLine.line }, `n_points must be positive, got ${n}`);
  expect(/^\{$/, '"{"');
  const pts = new Float32Array(2 * n);
  for (let k = 0; k < n; k++) {
    const l = body[i];
    const m = expect(/^(\S+)\s+(\S+)$/, `point ${k + 1} of ${n} as "x y"`);
    pts[2 * k] = parseNumber(file, l.line, m[1], `x of point ${k + 1}`);
    pts[2 * k + 1] = parseNumber(file, l.line, m[2], `y of point ${k + 1}`);
  }
  expect(/^\}$/, '"}" after the last point');
  return pts;
}

/** Reads a .pts file. */
export async function readPts(file: string): Promise<Float32Array> {
  return parsePts(file, await readLines(file, 'landmark (.pts) file'));
}

/** The tight box around a set of points (NaN points ignored). */
export function landmarkBox(points: ArrayLike<number>): Box {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let k = 0; k + 1 < points.length; k += 2) {
    const x = points[k];
    const y = points[k + 1];
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  if (x0 === Infinity) return { x: 0, y: 0, width: 0, height: 0 };
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

interface W300Record {
  image: string;
  file: string;
  folder: string;
  points: Float32Array;
  box: Box;
  scale?: number;
  center?: [number, number];
}

const IMAGE_EXTS = ['.jpg', '.png', '.jpeg', '.JPG', '.PNG'];

export interface W300Options {
  /** The 300-W root (holding afw/, helen/, lfpw/, ibug/, 300W/). */
  root: string;
  /** Default 'full'. */
  subset?: W300Subset;
  /** Folders to read instead of the subset's (relative to root), e.g. ['Test/01_Indoor']. */
  folders?: string[];
}

export interface W300CsvOptions {
  /** The CSV file (.csv or .csv.gz). */
  file: string;
  /** Where image_name paths are relative to (default: the CSV's folder). */
  imagesDir?: string;
}

/** 300-W: one sample per face, 68 points (coordinates as written in the files: 1-based pixels). */
export class W300 extends Dataset<W300Sample> {
  private constructor(
    private readonly label: string,
    private readonly records: W300Record[],
  ) {
    super();
  }

  override get name(): string {
    return this.label;
  }

  /** Reads every .pts file of a subset's folders (sorted by name) and pairs it with its image. */
  static async open(options: W300Options): Promise<W300> {
    const fn = 'W300.open';
    checkOptions(fn, options, ['root', 'subset', 'folders']);
    const root = pathOption(fn, 'root', options.root);
    const subset = checkOneOf(fn, 'subset', options.subset ?? 'full', W300_SUBSETS);
    let folders = options.folders ?? [...W300_FOLDERS[subset]];
    if (!options.folders && (subset === 'test' || subset === 'indoor' || subset === 'outdoor') && !(await exists(join(root, '300W'))) && (await exists(join(root, 'Test'))))
      folders = folders.map((f) => f.replace(/^300W\//, 'Test/'));
    const records: W300Record[] = [];
    for (const folder of folders) {
      const dir = join(root, folder);
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch (err) {
        throw new DatasetFileError(dir, {}, `300-W folder for subset '${subset}' not found`, { cause: err });
      }
      const set = new Set(names);
      for (const name of names) {
        if (extname(name) !== '.pts') continue;
        const stem = name.slice(0, -4);
        const img = IMAGE_EXTS.map((e) => stem + e).find((n) => set.has(n));
        if (!img) throw new DatasetFileError(join(dir, name), {}, `no image beside it (looked for ${stem}.jpg / .png)`);
        const points = await readPts(join(dir, name));
        records.push({ image: join(dir, img), file: `${folder}/${img}`, folder, points, box: landmarkBox(points) });
      }
    }
    return new W300(`300-W ${subset}`, records);
  }

  /** Reads the HRNet CSV layout (gzip allowed): image_name, scale, center_w, center_h, then x, y per point. */
  static async fromCsv(options: W300CsvOptions): Promise<W300> {
    const fn = 'W300.fromCsv';
    checkOptions(fn, options, ['file', 'imagesDir']);
    const file = pathOption(fn, 'file', options.file);
    const imagesDir = options.imagesDir !== undefined ? pathOption(fn, 'imagesDir', options.imagesDir) : dirname(file);
    const lines = (await readLines(file, '300-W CSV file')).filter((l) => l.text.trim() !== '');
    if (lines.length === 0) throw new DatasetFileError(file, { line: 1 }, 'empty file (expected a header line)');
    const header = lines[0].text.split(',').map((s) => s.trim());
    if (header[0] !== 'image_name' || header[1] !== 'scale' || header[2] !== 'center_w' || header[3] !== 'center_h')
      throw new DatasetFileError(file, { line: lines[0].line }, `expected a header starting "image_name,scale,center_w,center_h", got ${JSON.stringify(lines[0].text.slice(0, 60))}`);
    const nValues = header.length - 4;
    if (nValues <= 0 || nValues % 2 !== 0) throw new DatasetFileError(file, { line: lines[0].line }, `expected x, y columns in pairs after the centre, got ${nValues} columns`);
    const records: W300Record[] = [];
    for (const l of lines.slice(1)) {
      const f = l.text.split(',');
      if (f.length !== header.length) throw new DatasetFileError(file, { line: l.line }, `expected ${header.length} comma-separated values, got ${f.length}`);
      const name = f[0].trim();
      if (name === '') throw new DatasetFileError(file, { line: l.line }, 'empty image_name');
      const scale = parseNumber(file, l.line, f[1], 'scale');
      const cx = parseNumber(file, l.line, f[2], 'center_w');
      const cy = parseNumber(file, l.line, f[3], 'center_h');
      const points = new Float32Array(nValues);
      for (let k = 0; k < nValues; k++) points[k] = parseNumber(file, l.line, f[4 + k], header[4 + k] || `column ${5 + k}`);
      const side = scale * 200;
      records.push({
        image: join(imagesDir, name),
        file: name,
        folder: dirname(name),
        points,
        box: { x: cx - side / 2, y: cy - side / 2, width: side, height: side },
        scale,
        center: [cx, cy],
      });
    }
    return new W300(`300-W ${basename(file).replace(/\.csv(\.gz)?$/, '')}`, records);
  }

  get length(): number {
    return this.records.length;
  }

  /** Number of landmarks per face (68 for 300-W). */
  get pointCount(): number {
    return this.records.length ? this.records[0].points.length / 2 : 68;
  }

  protected item(index: number): W300Sample {
    const r = this.records[index];
    const attributes: W300Attributes = { file: r.file, folder: r.folder };
    if (r.scale !== undefined) {
      attributes.scale = r.scale;
      attributes.center = [...r.center!];
    }
    return makeSample(index, new LazyImage(r.image), {
      boxes: [{ ...r.box }],
      landmarks: [r.points.slice()],
      visibility: [new Uint8Array(r.points.length / 2).fill(1)],
      attributes,
    });
  }

  /** The samples whose folder starts with one of the given prefixes (e.g. ['ibug']). */
  folders(prefixes: string[]): Dataset<W300Sample> {
    if (!Array.isArray(prefixes)) throw typeError('W300.folders', 'prefixes', 'an array of folder prefixes', prefixes);
    return this.filter((s) => prefixes.some((p) => s.attributes.file.startsWith(p)));
  }
}
