// WIDER FACE (Yang et al., CVPR 2016): face boxes with blur / expression / illumination /
// invalid / occlusion / pose labels, from the official wider_face_<split>_bbx_gt.txt or the
// official wider_face_<split>.mat, images under WIDER_<split>/images/<event>/<name>.jpg.
import { join } from 'node:path';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError, checkOneOf } from '../errors.js';
import { exists, parseInteger, readLines } from '../files.js';
import { LazyImage, type Box } from '../image.js';
import { matCells, matRows, matString, matVariable, readMat } from '../mat.js';
import { checkOptions, pathOption, sizePredicate, type SizeFilter } from './common.js';

/** The six per-face labels, in the order of the text file's columns 5-10. */
export const WIDER_LABELS = ['blur', 'expression', 'illumination', 'invalid', 'occlusion', 'pose'] as const;
export type WiderLabel = (typeof WIDER_LABELS)[number];

/**
 * Per-image attributes: the event folder and one label array per attribute, aligned with the
 * boxes. Meanings (readme.txt): blur 0 clear / 1 normal / 2 heavy; expression 0 typical /
 * 1 exaggerate; illumination 0 normal / 1 extreme; invalid 0 valid / 1 invalid; occlusion
 * 0 none / 1 partial / 2 heavy; pose 0 typical / 1 atypical.
 */
export type WiderAttributes = { event: string; file: string } & Record<WiderLabel, Uint8Array>;

export type WiderSample = FaceSample<WiderAttributes>;

/** One face as its own sample (see {@link WiderFace.faces}). */
export type WiderFaceAttributes = { event: string; file: string; face: number } & Record<WiderLabel, number>;

/** One image of a WIDER FACE annotation file. */
export interface WiderRecord {
  file: string;
  event: string;
  boxes: Box[];
  labels: Record<WiderLabel, Uint8Array>;
}

export interface WiderFaceOptions {
  /** The folder holding wider_face_split/ and WIDER_<split>/ (as the archives unpack). */
  root: string;
  /** Default 'val'. 'test' has no boxes (its file list only). */
  split?: 'train' | 'val' | 'test';
  /** Which annotation file to read: the text file or the MATLAB file (default: 'mat' if present, else 'txt'). */
  format?: 'txt' | 'mat';
  /** An annotation file elsewhere than <root>/wider_face_split/. */
  annotationFile?: string;
  /** An image folder elsewhere than <root>/WIDER_<split>/images. */
  imagesDir?: string;
}

/** Which faces to keep, per image (see {@link WiderFace.filterFaces}); boxes without area are always dropped. */
export interface WiderFaceFilter extends SizeFilter {
  /** Drop faces labelled invalid (default true). */
  dropInvalid?: boolean;
  /** Keep faces with a label at most this value, e.g. { blur: 1, occlusion: 0 }. */
  maxLabels?: Partial<Record<WiderLabel, number>>;
  /** Drop images left with no face (default true). */
  dropEmptyImages?: boolean;
}

function emptyLabels(n: number): Record<WiderLabel, Uint8Array> {
  return Object.fromEntries(WIDER_LABELS.map((l) => [l, new Uint8Array(n)])) as Record<WiderLabel, Uint8Array>;
}

/** Parses wider_face_<split>_bbx_gt.txt. */
export async function parseWiderText(file: string): Promise<WiderRecord[]> {
  const lines = await readLines(file, 'WIDER FACE annotation file');
  const out: WiderRecord[] = [];
  let i = 0;
  const next = (what: string) => {
    if (i >= lines.length) throw new DatasetFileError(file, { line: lines.length + 1 }, `file ends where ${what} was expected`);
    return lines[i++];
  };
  while (i < lines.length) {
    const nameLine = next('an image path');
    if (nameLine.text.trim() === '') continue;
    const path = nameLine.text.trim();
    if (!/\.(jpe?g|png)$/i.test(path) || path.split(/\s+/).length !== 1)
      throw new DatasetFileError(file, { line: nameLine.line }, `expected an image path like "0--Parade/0_Parade_marchingband_1_465.jpg", got ${JSON.stringify(path)}`);
    const countLine = next(`the face count of ${path}`);
    const n = parseInteger(file, countLine.line, countLine.text.trim(), `the face count of ${path}`);
    if (n < 0) throw new DatasetFileError(file, { line: countLine.line }, `face count must be >= 0, got ${n}`);
    // An image without faces is followed by one all-zero placeholder row.
    const rows = Math.max(n, 1);
    const boxes: Box[] = [];
    const labels = emptyLabels(n);
    for (let k = 0; k < rows; k++) {
      const row = next(`face ${k + 1} of ${n} of ${path}`);
      const f = row.text.trim().split(/\s+/);
      if (f.length < 10) throw new DatasetFileError(file, { line: row.line }, `expected 10 values "x y w h blur expression illumination invalid occlusion pose", got ${f.length}: ${JSON.stringify(row.text)}`);
      const v = f.slice(0, 10).map((s, j) => parseInteger(file, row.line, s, `column ${j + 1}`));
      if (n === 0) continue;
      boxes.push({ x: v[0], y: v[1], width: v[2], height: v[3] });
      WIDER_LABELS.forEach((l, j) => (labels[l][k] = v[4 + j]));
    }
    const slash = path.indexOf('/');
    out.push({ file: path, event: slash > 0 ? path.slice(0, slash) : '', boxes, labels });
  }
  return out;
}

/** Parses wider_face_<split>.mat (event_list, file_list, face_bbx_list and the six *_label_list cells). */
export async function parseWiderMat(file: string): Promise<WiderRecord[]> {
  const mat = await readMat(file);
  const events = matCells(file, 'event_list', matVariable(mat, 'event_list'));
  const files = matCells(file, 'file_list', matVariable(mat, 'file_list'));
  const boxesCell = matCells(file, 'face_bbx_list', matVariable(mat, 'face_bbx_list'));
  const labelCells = Object.fromEntries(WIDER_LABELS.map((l) => [l, mat.variables.has(`${l}_label_list`) ? matCells(file, `${l}_label_list`, mat.variables.get(`${l}_label_list`)!) : null]));
  for (const [name, list] of [['file_list', files], ['face_bbx_list', boxesCell]] as const)
    if (list.length !== events.length) throw new DatasetFileError(file, { record: `variable ${name}` }, `has ${list.length} events, event_list has ${events.length}`);
  const out: WiderRecord[] = [];
  for (let e = 0; e < events.length; e++) {
    const event = matString(file, `event_list{${e + 1}}`, events[e]);
    const names = matCells(file, `file_list{${e + 1}}`, files[e]);
    const boxLists = matCells(file, `face_bbx_list{${e + 1}}`, boxesCell[e]);
    if (boxLists.length !== names.length)
      throw new DatasetFileError(file, { record: `variable face_bbx_list{${e + 1}}` }, `has ${boxLists.length} images, file_list{${e + 1}} has ${names.length}`);
    for (let i = 0; i < names.length; i++) {
      const where = `{${e + 1}}{${i + 1}}`;
      const name = matString(file, `file_list${where}`, names[i]);
      const rows = matRows(file, `face_bbx_list${where}`, boxLists[i]);
      if (rows.length > 0 && rows[0].length !== 4) throw new DatasetFileError(file, { record: `variable face_bbx_list${where}` }, `expected N x 4 boxes, got ${rows.length} x ${rows[0].length}`);
      const labels = emptyLabels(rows.length);
      for (const l of WIDER_LABELS) {
        const cells = labelCells[l];
        if (!cells) continue;
        const values = matRows(file, `${l}_label_list${where}`, matCells(file, `${l}_label_list{${e + 1}}`, cells[e])[i]).flat();
        if (values.length !== rows.length) throw new DatasetFileError(file, { record: `variable ${l}_label_list${where}` }, `has ${values.length} labels for ${rows.length} boxes`);
        labels[l].set(values);
      }
      out.push({ file: `${event}/${name}.jpg`, event, boxes: rows.map((r) => ({ x: r[0], y: r[1], width: r[2], height: r[3] })), labels });
    }
  }
  return out;
}

/** Parses wider_face_test_filelist.txt (image paths only). */
async function parseWiderFileList(file: string): Promise<WiderRecord[]> {
  const lines = await readLines(file, 'WIDER FACE file list');
  return lines
    .filter((l) => l.text.trim() !== '')
    .map((l) => {
      const path = l.text.trim();
      const slash = path.indexOf('/');
      return { file: path, event: slash > 0 ? path.slice(0, slash) : '', boxes: [], labels: emptyLabels(0) };
    });
}

/** WIDER FACE: one sample per image, every face box with its six labels. */
export class WiderFace extends Dataset<WiderSample> {
  private constructor(
    readonly split: string,
    readonly imagesDir: string,
    readonly annotationFile: string,
    private readonly records: WiderRecord[],
  ) {
    super();
  }

  override get name(): string {
    return `WIDER FACE ${this.split}`;
  }

  /** Opens a split; reads the annotation file now, no images. */
  static async open(options: WiderFaceOptions): Promise<WiderFace> {
    const fn = 'WiderFace.open';
    checkOptions(fn, options, ['root', 'split', 'format', 'annotationFile', 'imagesDir']);
    const root = pathOption(fn, 'root', options.root);
    const split = checkOneOf(fn, 'split', options.split ?? 'val', ['train', 'val', 'test'] as const);
    const imagesDir = options.imagesDir !== undefined ? pathOption(fn, 'imagesDir', options.imagesDir) : join(root, `WIDER_${split}`, 'images');
    let file: string;
    let format: 'txt' | 'mat' | 'list';
    if (options.annotationFile !== undefined) {
      file = pathOption(fn, 'annotationFile', options.annotationFile);
      format = options.format ?? (file.endsWith('.mat') ? 'mat' : split === 'test' ? 'list' : 'txt');
    } else if (split === 'test') {
      file = join(root, 'wider_face_split', 'wider_face_test_filelist.txt');
      format = 'list';
    } else {
      const mat = join(root, 'wider_face_split', `wider_face_${split}.mat`);
      const txt = join(root, 'wider_face_split', `wider_face_${split}_bbx_gt.txt`);
      format = options.format ? checkOneOf(fn, 'format', options.format, ['txt', 'mat'] as const) : (await exists(mat)) ? 'mat' : 'txt';
      file = format === 'mat' ? mat : txt;
    }
    const records = format === 'mat' ? await parseWiderMat(file) : format === 'txt' ? await parseWiderText(file) : await parseWiderFileList(file);
    return new WiderFace(split, imagesDir, file, records);
  }

  get length(): number {
    return this.records.length;
  }

  /** Total number of face boxes. */
  get faceCount(): number {
    return this.records.reduce((n, r) => n + r.boxes.length, 0);
  }

  protected item(index: number): WiderSample {
    const r = this.records[index];
    return makeSample(index, new LazyImage(join(this.imagesDir, r.file)), {
      boxes: r.boxes.map((b) => ({ ...b })),
      attributes: { event: r.event, file: r.file, ...(Object.fromEntries(WIDER_LABELS.map((l) => [l, r.labels[l].slice()])) as Record<WiderLabel, Uint8Array>) },
    });
  }

  private keepFace(filter: WiderFaceFilter): (r: WiderRecord, k: number) => boolean {
    const fn = 'WiderFace.filterFaces';
    checkOptions(fn, filter, ['minSize', 'maxSize', 'measure', 'dropInvalid', 'maxLabels', 'dropEmptyImages']);
    const inSize = sizePredicate(fn, filter);
    const dropInvalid = filter.dropInvalid ?? true;
    const maxLabels = Object.entries(filter.maxLabels ?? {}).map(([l, v]) => [checkOneOf(fn, 'maxLabels', l, WIDER_LABELS), v] as const);
    // A box without area (the all-zero placeholder rows) is never a face.
    return (r, k) =>
      r.boxes[k].width > 0 &&
      r.boxes[k].height > 0 &&
      inSize(r.boxes[k]) && !(dropInvalid && r.labels.invalid[k] === 1) && maxLabels.every(([l, v]) => r.labels[l][k] <= (v as number));
  }

  /**
   * The same images with only the faces that pass a filter, e.g. the LR group
   * { minSize: 20, maxSize: 40 } or the HR group { minSize: 100 }.
   */
  filterFaces(filter: WiderFaceFilter): WiderFace {
    const keep = this.keepFace(filter);
    const records: WiderRecord[] = [];
    for (const r of this.records) {
      const idx = r.boxes.map((_, k) => k).filter((k) => keep(r, k));
      if (idx.length === 0 && (filter.dropEmptyImages ?? true)) continue;
      const labels = emptyLabels(idx.length);
      for (const l of WIDER_LABELS) idx.forEach((k, j) => (labels[l][j] = r.labels[l][k]));
      records.push({ file: r.file, event: r.event, boxes: idx.map((k) => r.boxes[k]), labels });
    }
    return new WiderFace(this.split, this.imagesDir, this.annotationFile, records);
  }

  /** One sample per face (box list of length 1), optionally filtered. */
  faces(filter: WiderFaceFilter = {}): Dataset<FaceSample<WiderFaceAttributes>> {
    const keep = this.keepFace(filter);
    const list: [number, number][] = [];
    this.records.forEach((r, i) => r.boxes.forEach((_, k) => keep(r, k) && list.push([i, k])));
    const dir = this.imagesDir;
    const records = this.records;
    const name = `${this.name} faces`;
    return new (class extends Dataset<FaceSample<WiderFaceAttributes>> {
      override get name(): string {
        return name;
      }
      get length(): number {
        return list.length;
      }
      protected item(index: number): FaceSample<WiderFaceAttributes> {
        const [i, k] = list[index];
        const r = records[i];
        const attributes = { event: r.event, file: r.file, face: k } as WiderFaceAttributes;
        for (const l of WIDER_LABELS) attributes[l] = r.labels[l][k];
        return makeSample(index, new LazyImage(join(dir, r.file)), { boxes: [{ ...r.boxes[k] }], attributes });
      }
    })();
  }
}
