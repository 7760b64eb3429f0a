// The real-face corpus: square HR face crops (with reference points where a source has them)
// and real tiny faces, written as PNGs with one index JSON, from the shared data folder.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DatasetFileError,
  DlibXml,
  WiderFace,
  bicubicResize,
  checkInt,
  checkKeys,
  checkNumber,
  cropImage,
  decodeImage,
  imageToTensor,
  rangeError,
  tensorToImage,
  toUint8,
  typeError,
  writeImage,
} from '@lrface/datasets';
import type { Box, RawImage } from '@lrface/datasets';
import { scope } from '@lrface/cuda-core';
import { ReferenceDetector } from './detector.js';
import { refineFaceBox } from './refine.js';
import type { RefineFaceBoxOptions } from './refine.js';

/** Where an HR crop came from. */
export type CorpusSource = 'wider-19-couple' | 'dlib-faces' | 'misc-faces-aflw' | 'misc-faces-facenet' | 'lfw';

/** One face in the corpus. Paths are relative to the corpus folder. */
export interface CorpusItem {
  /** A stable id: source + image + face number. */
  id: string;
  /** The crop PNG (size x size, RGB). */
  file: string;
  source: CorpusSource | 'wider-0-parade' | 'dlib-faces-small' | string;
  /** The original image (path as the source names it). */
  image: string;
  /** The face box in the original image. */
  box: Box;
  /** The region of the original image the crop covers (before resizing). */
  region: Box;
  /** 68 reference points [x0, y0, ...] in crop pixel coordinates, or null when none are known yet. */
  landmarks: number[] | null;
  /** Who produced the points ('dlib shape predictor', ...), null without points. */
  landmarkSource: string | null;
  licence: string;
  /** Held out by source image: every face of one image is in the same split. */
  split: 'train' | 'test';
}

/** The index JSON (`index.json` in the corpus folder). */
export interface FaceCorpusIndex {
  version: 1;
  /** HR crop side in pixels. */
  size: number;
  /** Margin around the box, as a fraction of the box size on each side. */
  margin: number;
  /** Real HR faces with their crops resized to size x size. */
  hr: CorpusItem[];
  /** Real tiny faces at their native size (cropped square with the same margin, not resized). */
  lr: CorpusItem[];
  /** Per source: origin and licence. */
  sources: Record<string, { origin: string; licence: string }>;
  /** Faces left out while building, with the reason (duplicates, implausible points, ...). */
  rejected?: { id: string; reason: string }[];
}

/** Options of {@link buildFaceCorpus}. */
export interface BuildFaceCorpusOptions {
  /** Output folder (created). */
  outDir: string;
  /** The shared data folder holding widerface/, dlib-faces/, misc-faces/, lfw/. */
  dataDir: string;
  /** HR crop side (default 128). */
  size?: number;
  /** Context around each box, as a fraction of its size per side (default 0.2). */
  margin?: number;
  /** Smallest HR face box side, max(w, h) (default 64). */
  minHrSize?: number;
  /** Tiny-face box side range [min, max] for the LR set (default [20, 40]). */
  lrSizeRange?: [number, number];
  /** At most this many faces per source (default: all), for quick builds and tests. */
  limitPerSource?: number;
  /** Which HR sources to read (default: all). */
  sources?: CorpusSource[];
  /** Whether to build the tiny-face set (default true). */
  tiny?: boolean;
  /**
   * The HR reference detector: when given, every HR crop gets its 68 points from it (run on
   * the original image with the face box); otherwise only sources with their own points have them.
   */
  detector?: ReferenceDetector;
  /**
   * Extra folders of aligned face images (e.g. LFW's 250x250 centred images fetched for local
   * use) where every image has its face at the same box; recorded with origin and licence.
   */
  extraSources?: ExtraSource[];
  /**
   * A training crop whose difference hash (256 bits, {@link differenceHash}) is within this many
   * bits of a test crop's is left out as a possible copy of a test photo, and of training crops
   * this close only the first is kept (default 32; different faces of the corpus lie 66 bits
   * and more apart).
   */
  nearDuplicateBits?: number;
}

/**
 * A folder of face images (see {@link BuildFaceCorpusOptions.extraSources}): every image with
 * its face at `box`, or, with `boxes`, the listed images with their own boxes.
 */
export interface ExtraSource {
  /** Source name in the index (letters, digits, '-', '_'). */
  name: string;
  dir: string;
  /** The face box shared by every image (aligned folders); optional when `boxes` is given. */
  box?: Box;
  /**
   * A JSON file mapping image paths (relative to `dir`) to a box or a list of boxes: only
   * these images are read, with one face per box (photos with several faces).
   */
  boxes?: string;
  origin: string;
  licence: string;
  /** Fraction of images (by a hash of the file name) in the test split (default 0.1). */
  testFraction?: number;
  /**
   * Refine each box from the reference detector's points and leave out implausible faces
   * ({@link refineFaceBox}; needs `detector`); an object sets the refinement's options.
   */
  refine?: boolean | RefineFaceBoxOptions;
  /** At most this many images of the folder (in sorted order; default all). */
  limit?: number;
}

const SOURCES: Record<string, { origin: string; licence: string }> = {
  'wider-19-couple': { origin: 'WIDER FACE val 19--Couple (shared/data/widerface, via SihanWang-WHU/Face_Detection)', licence: 'WIDER FACE: research use only' },
  'wider-0-parade': { origin: 'WIDER FACE val 0--Parade (shared/data/widerface, via SihanWang-WHU/Face_Detection)', licence: 'WIDER FACE: research use only' },
  'dlib-faces': { origin: "dlib examples/faces (davisking/dlib), PASCAL VOC photos; boxes by people, points by dlib's model", licence: 'PASCAL VOC images: Flickr terms; dlib: BSL-1.0' },
  'dlib-faces-small': { origin: "dlib examples/faces (davisking/dlib), PASCAL VOC photos; boxes by people", licence: 'PASCAL VOC images: Flickr terms; dlib: BSL-1.0' },
  'misc-faces-aflw': { origin: 'face-alignment test/assets aflw-test.jpg (1adrianb/face-alignment); points: FAN 3D prediction', licence: 'BSD-3-Clause (repository); AFLW image: research use' },
  'misc-faces-facenet': { origin: 'facenet-pytorch data/test_images_aligned (timesler/facenet-pytorch), MTCNN-aligned 160x160', licence: 'MIT (repository)' },
  lfw: { origin: 'LFW original 250x250 images (shared/data/lfw, via davidsandberg/facenet)', licence: 'LFW: research use' },
};

/** How reference points from {@link ReferenceDetector} are labelled in the index. */
export const REFERENCE_LANDMARKS = "face-api FaceLandmark68Net (MIT weights) on lrface's engine (model output)";

const ALL_SOURCES: CorpusSource[] = ['wider-19-couple', 'dlib-faces', 'misc-faces-aflw', 'misc-faces-facenet', 'lfw'];

/** A face to crop: image file, box, optional points in image coordinates. */
interface FaceJob {
  source: string;
  imageFile: string;
  imageName: string;
  face: number;
  box: Box;
  points: Float32Array | null;
  landmarkSource: string | null;
  split: 'train' | 'test';
  /** Refine the box from the detector's points (extra sources). */
  refine?: boolean | RefineFaceBoxOptions;
}

/** Stable hash of a string to [0, 1): assigns a train/test split per source image. */
function unitHash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

/** The bounding box of the finite points of [x0, y0, ...]. */
function pointsBox(points: ArrayLike<number>): Box {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i + 1 < points.length; i += 2) {
    const x = points[i], y = points[i + 1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

async function hrJobs(dataDir: string, source: CorpusSource, minHr: number): Promise<FaceJob[]> {
  const jobs: FaceJob[] = [];
  if (source === 'wider-19-couple') {
    const root = join(dataDir, 'widerface');
    const faces = (await WiderFace.open({ root, split: 'val' })).faces({ minSize: minHr });
    for (const s of faces) {
      if (!s.attributes.event.startsWith('19--') || !existsSync(s.image.source as string)) continue;
      // Reserved as the held-out evaluation set of sr and landmarks.
      jobs.push({ source, imageFile: s.image.source as string, imageName: s.attributes.file, face: s.attributes.face, box: s.boxes[0], points: null, landmarkSource: null, split: 'test' });
    }
  } else if (source === 'dlib-faces') {
    for (const xml of ['training_with_face_landmarks.xml', 'testing_with_face_landmarks.xml']) {
      const ds = await DlibXml.open({ file: join(dataDir, 'dlib-faces', xml) });
      for (const s of ds)
        s.boxes.forEach((box, k) => {
          if (s.attributes.ignore[k] || Math.max(box.width, box.height) < minHr) return;
          const split = unitHash(s.attributes.file) < 0.2 ? 'test' : 'train';
          jobs.push({ source, imageFile: s.image.source as string, imageName: s.attributes.file, face: k, box, points: s.landmarks[k], landmarkSource: "dlib's 68-point shape predictor (model output)", split });
        });
    }
  } else if (source === 'misc-faces-aflw') {
    const file = join(dataDir, 'misc-faces', 'face-alignment', 'aflw-test.reference_3d_68.json');
    let ref: { image: string; points_xyz: number[][] };
    try {
      ref = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new DatasetFileError(file, {}, `cannot read reference points: ${(err as Error).message}`);
    }
    if (!Array.isArray(ref.points_xyz) || ref.points_xyz.length !== 68) throw new DatasetFileError(file, {}, `'points_xyz' must hold 68 points`);
    const points = Float32Array.from(ref.points_xyz.flatMap((p) => [p[0], p[1]]));
    jobs.push({ source, imageFile: join(dataDir, 'misc-faces', 'face-alignment', ref.image), imageName: ref.image, face: 0, box: pointsBox(points), points, landmarkSource: 'face-alignment FAN (model output)', split: 'train' });
  } else if (source === 'misc-faces-facenet') {
    const dir = join(dataDir, 'misc-faces', 'facenet-pytorch-aligned');
    for (const f of ['angelina_jolie.png', 'bradley_cooper.png', 'kate_siegel.png', 'paul_rudd.png', 'shea_whigham.png']) {
      // MTCNN crops: the face fills the 160x160 image; this box with the default 0.2 margin is the whole image.
      if (existsSync(join(dir, f))) jobs.push({ source, imageFile: join(dir, f), imageName: f, face: 0, box: { x: 23, y: 23, width: 114, height: 114 }, points: null, landmarkSource: null, split: 'train' });
    }
  } else if (source === 'lfw') {
    const dir = join(dataDir, 'lfw', 'images');
    const { readdir } = await import('node:fs/promises');
    for (const f of (existsSync(dir) ? await readdir(dir) : []).sort()) {
      if (!/\.jpe?g$/i.test(f)) continue;
      // LFW images are 250x250 centred on the Viola-Jones detection, which was enlarged 2.2x.
      jobs.push({ source, imageFile: join(dir, f), imageName: f, face: 0, box: { x: 68, y: 68, width: 114, height: 114 }, points: null, landmarkSource: null, split: unitHash(f.replace(/_\d+\.jpe?g$/i, '')) < 0.2 ? 'test' : 'train' });
    }
  }
  return jobs;
}

const isBox = (b: unknown): b is Box =>
  b !== null && typeof b === 'object' && [(b as Box).x, (b as Box).y, (b as Box).width, (b as Box).height].every((v) => typeof v === 'number' && Number.isFinite(v)) && (b as Box).width > 0 && (b as Box).height > 0;

/** Reads an extra source's per-image boxes file: { "relative/path.jpg": box | box[] }. */
export async function readBoxesFile(file: string): Promise<Map<string, Box[]>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new DatasetFileError(file, {}, `cannot read the boxes file: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new DatasetFileError(file, {}, 'a boxes file maps image paths to a box or a list of boxes');
  const out = new Map<string, Box[]>();
  for (const [image, v] of Object.entries(json)) {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || !list.every(isBox)) throw new DatasetFileError(file, { record: image }, 'expected a box {x, y, width, height} of positive size, or a list of them');
    out.set(image, list);
  }
  return out;
}

/** The images of an extra source, sorted: with the source's fixed box, or the boxes of its boxes file. */
async function extraJobs(e: ExtraSource): Promise<FaceJob[]> {
  const { readdir } = await import('node:fs/promises');
  const testFraction = e.testFraction ?? 0.1;
  const boxes = e.boxes !== undefined ? await readBoxesFile(e.boxes) : null;
  const files = boxes ? [...boxes.keys()].sort() : (await readdir(e.dir, { recursive: true })).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  const jobs: FaceJob[] = [];
  for (const f of files.slice(0, e.limit ?? Infinity)) {
    if (boxes && !existsSync(join(e.dir, f))) throw new DatasetFileError(e.boxes!, { record: f }, `no such image in ${e.dir}`);
    // Held out by identity when the folder is per person (LFW's layout), else by file.
    const split = unitHash(f.includes('/') ? f.slice(0, f.indexOf('/')) : f) < testFraction ? 'test' : 'train';
    (boxes ? boxes.get(f)! : [e.box!]).forEach((box, face) =>
      jobs.push({ source: e.name, imageFile: join(e.dir, f), imageName: f, face, box, points: null, landmarkSource: null, split, refine: e.refine }),
    );
  }
  return jobs;
}

/**
 * A difference hash of an image (side * side bits, as hex digits): grey levels averaged over a
 * (side + 1) x side grid, one bit per horizontal neighbour pair (left brighter than right).
 * Re-encoded or rescaled copies of a photo differ in few bits; different faces in many.
 */
export function differenceHash(img: RawImage, side = 16): string {
  checkInt('differenceHash', 'side', side, 2, 64);
  if (side % 2 !== 0) throw rangeError('differenceHash', 'side', 'an even number (whole hex digits)', side);
  const cols = side + 1;
  const grey = new Float64Array(cols * side);
  const count = new Float64Array(cols * side);
  const c = img.channels;
  for (let y = 0; y < img.height; y++) {
    const gy = Math.min(side - 1, Math.floor((y * side) / img.height));
    for (let x = 0; x < img.width; x++) {
      const gx = Math.min(cols - 1, Math.floor((x * cols) / img.width));
      const o = (y * img.width + x) * c;
      const v = c >= 3 ? 0.299 * img.data[o] + 0.587 * img.data[o + 1] + 0.114 * img.data[o + 2] : img.data[o];
      grey[gy * cols + gx] += v;
      count[gy * cols + gx]++;
    }
  }
  let hex = '';
  for (let n = 0; n < (side * side) / 4; n++) {
    let nibble = 0;
    for (let b = 0; b < 4; b++) {
      const bit = n * 4 + b;
      const y = Math.floor(bit / side), x = bit % side;
      const left = grey[y * cols + x] / count[y * cols + x];
      const right = grey[y * cols + x + 1] / count[y * cols + x + 1];
      nibble = (nibble << 1) | (left > right ? 1 : 0);
    }
    hex += nibble.toString(16);
  }
  return hex;
}

/** Number of differing bits of two hex hashes of the same length. */
export function hammingDistance(a: string, b: string): number {
  if (a.length !== b.length) throw rangeError('hammingDistance', 'b', `a hash of ${a.length} hex digits`, b);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    let v = parseInt(a[i], 16) ^ parseInt(b[i], 16);
    for (; v; v &= v - 1) d++;
  }
  return d;
}

async function lrJobs(dataDir: string, range: [number, number]): Promise<FaceJob[]> {
  const jobs: FaceJob[] = [];
  const faces = (await WiderFace.open({ root: join(dataDir, 'widerface'), split: 'val' })).faces({ minSize: range[0], maxSize: range[1] });
  for (const s of faces) {
    if (!s.attributes.event.startsWith('0--') || !existsSync(s.image.source as string)) continue;
    jobs.push({ source: 'wider-0-parade', imageFile: s.image.source as string, imageName: s.attributes.file, face: s.attributes.face, box: s.boxes[0], points: null, landmarkSource: null, split: 'train' });
  }
  for (const xml of ['training.xml', 'testing.xml']) {
    const ds2 = await DlibXml.open({ file: join(dataDir, 'dlib-faces', xml) });
    for (const s of ds2)
      s.boxes.forEach((box, k) => {
        const side = Math.max(box.width, box.height);
        if (s.attributes.ignore[k] || side < range[0] || side > range[1]) return;
        jobs.push({ source: 'dlib-faces-small', imageFile: s.image.source as string, imageName: `${xml}:${s.attributes.file}`, face: k, box, points: null, landmarkSource: null, split: 'train' });
      });
  }
  return jobs;
}

/** Resizes 8-bit RGB pixels to size x size with MATLAB-style bicubic (antialiased when shrinking). */
function resizeSquare(img: RawImage, size: number): RawImage<Uint8Array> {
  if (img.width === size && img.height === size) return toUint8(img);
  return scope(() => toUint8(tensorToImage(bicubicResize(imageToTensor(img, { batch: true }), { size: [size, size] }))));
}

async function writeJobs(outDir: string, sub: string, jobs: FaceJob[], margin: number, size: number | null, sourceInfo: Record<string, { licence: string }>, hashes?: Map<string, string>): Promise<CorpusItem[]> {
  const items: CorpusItem[] = [];
  const byImage = new Map<string, FaceJob[]>();
  for (const j of jobs) byImage.set(j.imageFile, [...(byImage.get(j.imageFile) ?? []), j]);
  await mkdir(join(outDir, sub), { recursive: true });
  for (const [file, list] of byImage) {
    const img = await decodeImage(file);
    for (const j of list) {
      const { image, region } = cropImage(img, j.box, { margin, square: true, fill: 'replicate' });
      const out = size === null ? image : resizeSquare(image, size);
      const s = out.width / region.width;
      const id = `${j.source}/${j.imageName.replace(/\.[a-z]+$/i, '').replace(/[^A-Za-z0-9_.-]+/g, '_')}_${j.face}`;
      const rel = `${sub}/${id.replace(/\//g, '__')}.png`;
      await writeImage(join(outDir, rel), out);
      hashes?.set(id, differenceHash(out));
      let landmarks: number[] | null = null;
      if (j.points) {
        // Pixel centres: crop pixel u covers source [region.x + u/s, region.x + (u+1)/s).
        landmarks = Array.from(j.points, (v, i) => (v - (i % 2 === 0 ? region.x : region.y) + 0.5) * s - 0.5);
      }
      items.push({ id, file: rel, source: j.source, image: j.imageName, box: j.box, region, landmarks, landmarkSource: landmarks ? j.landmarkSource : null, licence: sourceInfo[j.source].licence, split: j.split });
    }
  }
  return items;
}

/**
 * Builds the corpus from the shared data folder: HR crops (size x size, square with a margin,
 * bicubic) of faces of at least `minHrSize` px, and native-size crops of real tiny faces, with
 * `index.json` (written last, atomically). WIDER 19--Couple faces form the held-out test split.
 */
export async function buildFaceCorpus(options: BuildFaceCorpusOptions): Promise<FaceCorpusIndex> {
  const fn = 'buildFaceCorpus';
  if (options === null || typeof options !== 'object') throw typeError(fn, 'options', 'an object', options);
  checkKeys(fn, options, ['outDir', 'dataDir', 'size', 'margin', 'minHrSize', 'lrSizeRange', 'limitPerSource', 'sources', 'tiny', 'detector', 'extraSources', 'nearDuplicateBits']);
  if (typeof options.outDir !== 'string' || options.outDir === '') throw typeError(fn, 'outDir', 'a non-empty path string', options.outDir);
  if (typeof options.dataDir !== 'string' || options.dataDir === '') throw typeError(fn, 'dataDir', 'a non-empty path string', options.dataDir);
  if (!existsSync(options.dataDir)) throw rangeError(fn, 'dataDir', 'an existing folder', options.dataDir);
  const size = checkInt(fn, 'size', options.size ?? 128, 8, 4096);
  const margin = checkNumber(fn, 'margin', options.margin ?? 0.2, 0, 2);
  const minHr = checkNumber(fn, 'minHrSize', options.minHrSize ?? 64, 1);
  const range = options.lrSizeRange ?? [20, 40];
  if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === 'number' && v > 0) || range[0] > range[1])
    throw rangeError(fn, 'lrSizeRange', '[min, max] with 0 < min <= max', range);
  const limit = options.limitPerSource === undefined ? Infinity : checkInt(fn, 'limitPerSource', options.limitPerSource, 1);
  const nearBits = checkInt(fn, 'nearDuplicateBits', options.nearDuplicateBits ?? 32, 0, 256);
  if (options.detector !== undefined && !(options.detector instanceof ReferenceDetector)) throw typeError(fn, 'detector', 'a ReferenceDetector (loadReferenceDetector())', options.detector);
  const sources = options.sources ?? ALL_SOURCES;
  if (!Array.isArray(sources)) throw typeError(fn, 'sources', 'an array of source names', sources);
  for (const s of sources) if (!ALL_SOURCES.includes(s)) throw rangeError(fn, 'sources', `names among ${ALL_SOURCES.join(', ')}`, s);

  const extras = options.extraSources ?? [];
  if (!Array.isArray(extras)) throw typeError(fn, 'extraSources', 'an array', extras);
  const sourceInfo: Record<string, { origin: string; licence: string }> = { ...SOURCES };
  for (const [k, e] of extras.entries()) {
    if (!e || typeof e.name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(e.name) || e.name in sourceInfo) throw rangeError(fn, `extraSources[${k}].name`, 'a new name of letters, digits, - or _', e?.name);
    if (typeof e.dir !== 'string' || !existsSync(e.dir)) throw rangeError(fn, `extraSources[${k}].dir`, 'an existing folder', e.dir);
    if (typeof e.origin !== 'string' || typeof e.licence !== 'string') throw typeError(fn, `extraSources[${k}]`, "'origin' and 'licence' strings", e);
    if (e.boxes !== undefined && (typeof e.boxes !== 'string' || !existsSync(e.boxes))) throw rangeError(fn, `extraSources[${k}].boxes`, 'an existing JSON file', e.boxes);
    if (e.boxes === undefined && !isBox(e.box)) throw typeError(fn, `extraSources[${k}].box`, '{x, y, width, height} of positive size (or a boxes file)', e.box);
    if (e.testFraction !== undefined) checkNumber(fn, `extraSources[${k}].testFraction`, e.testFraction, 0, 1);
    if (e.limit !== undefined) checkInt(fn, `extraSources[${k}].limit`, e.limit, 1);
    if (e.refine !== undefined && typeof e.refine !== 'boolean' && (e.refine === null || typeof e.refine !== 'object')) throw typeError(fn, `extraSources[${k}].refine`, 'a boolean or refinement options', e.refine);
    if (e.refine && !options.detector) throw rangeError(fn, `extraSources[${k}].refine`, "false without a 'detector' (refining needs the reference detector)", e.refine);
    sourceInfo[e.name] = { origin: e.origin, licence: e.licence };
  }
  const hr: CorpusItem[] = [];
  const rejected: { id: string; reason: string }[] = [];
  const jobId = (j: FaceJob) => `${j.source}/${j.imageName}#${j.face}`;
  const jobLists: FaceJob[][] = [];
  for (const source of sources) jobLists.push((await hrJobs(options.dataDir, source, minHr)).slice(0, limit));
  for (const e of extras) jobLists.push((await extraJobs(e)).slice(0, limit));
  // The same photo twice (byte-identical files) is kept once: its first source and file win.
  const firstWithHash = new Map<string, { source: string; file: string }>();
  const hashes = new Map<string, string>();
  for (const list of jobLists) {
    const jobs: FaceJob[] = [];
    for (const j of list) {
      const digest = createHash('sha256').update(await readFile(j.imageFile)).digest('hex');
      const first = firstWithHash.get(digest) ?? { source: j.source, file: j.imageFile };
      firstWithHash.set(digest, first);
      if (first.file !== j.imageFile || first.source !== j.source) {
        rejected.push({ id: jobId(j), reason: `same file as ${first.file} (${first.source})` });
        continue;
      }
      if (options.detector && j.refine) {
        const refined = await refineFaceBox(options.detector, j.imageFile, j.box, j.refine === true ? { minSize: minHr } : { minSize: minHr, ...j.refine });
        if (refined.rejected) {
          rejected.push({ id: jobId(j), reason: refined.rejected });
          continue;
        }
        j.box = refined.box;
        j.points = refined.points;
        j.landmarkSource = REFERENCE_LANDMARKS;
      } else if (options.detector) {
        j.points = Float32Array.from((await options.detector.detect68(j.imageFile, j.box)).flat());
        j.landmarkSource = REFERENCE_LANDMARKS;
      }
      jobs.push(j);
    }
    hr.push(...(await writeJobs(options.outDir, 'hr', jobs, margin, size, sourceInfo, hashes)));
  }
  // Training crops that look like a test crop (near-identical difference hashes) are left out.
  const testHashes = hr.filter((i) => i.split === 'test').map((i) => [i.id, hashes.get(i.id)!] as const);
  for (let k = hr.length - 1; k >= 0; k--) {
    const item = hr[k];
    if (item.split !== 'train') continue;
    const near = testHashes.find(([, h]) => hammingDistance(h, hashes.get(item.id)!) <= nearBits);
    if (!near) continue;
    rejected.push({ id: item.id, reason: `near-duplicate of test crop ${near[0]}` });
    await unlink(join(options.outDir, item.file));
    hr.splice(k, 1);
  }
  // Of training crops that look alike (the same photo twice, e.g. re-encoded), the first stays.
  const keptTrain: (readonly [string, string])[] = [];
  for (let k = 0; k < hr.length; k++) {
    const item = hr[k];
    if (item.split !== 'train') continue;
    const hash = hashes.get(item.id)!;
    const near = keptTrain.find(([, h]) => hammingDistance(h, hash) <= nearBits);
    if (!near) {
      keptTrain.push([item.id, hash]);
      continue;
    }
    rejected.push({ id: item.id, reason: `near-duplicate of training crop ${near[0]}` });
    await unlink(join(options.outDir, item.file));
    hr.splice(k--, 1);
  }
  const lr: CorpusItem[] = [];
  if (options.tiny ?? true) {
    const jobs = await lrJobs(options.dataDir, range);
    const perSource = new Map<string, number>();
    const kept = jobs.filter((j) => {
      const n = perSource.get(j.source) ?? 0;
      perSource.set(j.source, n + 1);
      return n < limit;
    });
    lr.push(...(await writeJobs(options.outDir, 'lr', kept, margin, null, sourceInfo)));
  }
  const used = new Set([...hr, ...lr].map((i) => i.source));
  const index: FaceCorpusIndex = { version: 1, size, margin, hr, lr, sources: Object.fromEntries(Object.entries(sourceInfo).filter(([k]) => used.has(k))), rejected };
  const file = join(options.outDir, 'index.json');
  await writeFile(file + '.tmp', JSON.stringify(index, null, 1));
  await rename(file + '.tmp', file);
  return index;
}

/** An opened corpus: the index with absolute paths resolved. */
export interface FaceCorpus extends FaceCorpusIndex {
  dir: string;
  /** Absolute path of an item's PNG. */
  path(item: CorpusItem): string;
}

/** Reads `<dir>/index.json`, checking its structure; errors name the file and what is wrong. */
export async function openFaceCorpus(dir: string): Promise<FaceCorpus> {
  if (typeof dir !== 'string' || dir === '') throw typeError('openFaceCorpus', 'dir', 'a non-empty path string', dir);
  const file = join(dir, 'index.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DatasetFileError(file, {}, `no corpus index (build one with tools/face-corpus/scripts/build.mjs)`);
  }
  let index: FaceCorpusIndex;
  try {
    index = JSON.parse(text);
  } catch (err) {
    throw new DatasetFileError(file, {}, `index is not valid JSON: ${(err as Error).message}`);
  }
  if (index === null || typeof index !== 'object' || index.version !== 1) throw new DatasetFileError(file, {}, `unsupported index (expected version 1)`);
  if (!Array.isArray(index.hr) || !Array.isArray(index.lr)) throw new DatasetFileError(file, {}, `index lacks the 'hr' and 'lr' item lists`);
  for (const [list, items] of [['hr', index.hr], ['lr', index.lr]] as const)
    items.forEach((it, k) => {
      if (!it || typeof it.file !== 'string' || typeof it.id !== 'string' || (it.split !== 'train' && it.split !== 'test'))
        throw new DatasetFileError(file, {}, `${list}[${k}] lacks 'id', 'file' or a train/test 'split'`);
      if (it.landmarks !== null && (!Array.isArray(it.landmarks) || it.landmarks.length !== 136))
        throw new DatasetFileError(file, {}, `${list}[${k}].landmarks must be null or 136 numbers`);
    });
  return { ...index, dir, path: (item) => join(dir, item.file) };
}

