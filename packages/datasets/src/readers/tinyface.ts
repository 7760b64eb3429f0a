// TinyFace (Cheng, Zhu, Gong, ACCV 2018): native low-resolution faces.
//   Training_Set/<id>/<id>_<k>.jpg                 labelled training faces (identity = folder)
//   Testing_Set/Probe/<id>_<k>.jpg                 probes
//   Testing_Set/Gallery_Match/<id>_<k>.jpg         gallery faces of the probe identities
//   Testing_Set/Gallery_Distractor/*.jpg           unlabelled distractors (added to the gallery)
//   Testing_Set/probe_img_ID_pairs.mat             probe_set (cell of file names), probe_ids
//   Testing_Set/gallery_match_img_ID_pairs.mat     gallery_set, gallery_ids
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError, checkOneOf } from '../errors.js';
import { exists } from '../files.js';
import { LazyImage } from '../image.js';
import { matCells, matNumbers, matString, matVariable, readMat } from '../mat.js';
import { checkOptions, pathOption } from './common.js';

export type TinyFacePart = 'train' | 'probe' | 'galleryMatch' | 'distractor';
const PARTS = ['train', 'probe', 'galleryMatch', 'distractor'] as const;

export interface TinyFaceAttributes {
  part: TinyFacePart;
  /** Path relative to the TinyFace root. */
  file: string;
}
/** identity: the numeric identity label; null for distractors. */
export type TinyFaceSample = FaceSample<TinyFaceAttributes>;

export interface TinyFaceOptions {
  /** The folder holding Training_Set/ and Testing_Set/ (or a folder with tinyface/ inside). */
  root: string;
  /** Default 'train'. */
  part?: TinyFacePart;
}

/** One TinyFace image: its path relative to the root and its identity (null for distractors). */
export interface TinyFaceEntry {
  file: string;
  id: number | null;
}

const IMAGE_RE = /\.(jpe?g|png|bmp)$/i;

async function listImages(dir: string, what: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => IMAGE_RE.test(f)).sort();
  } catch (err) {
    throw new DatasetFileError(dir, {}, `${what} folder not found`, { cause: err });
  }
}

/** Reads a TinyFace id-pairs MAT-file: `<prefix>_set` (cell of names) and `<prefix>_ids`. */
export async function readTinyFaceIdPairs(file: string, prefix: 'probe' | 'gallery'): Promise<TinyFaceEntry[]> {
  const mat = await readMat(file);
  const names = matCells(file, `${prefix}_set`, matVariable(mat, `${prefix}_set`));
  const ids = matNumbers(file, `${prefix}_ids`, matVariable(mat, `${prefix}_ids`));
  if (names.length !== ids.length) throw new DatasetFileError(file, { record: `variable ${prefix}_ids` }, `has ${ids.length} ids for ${names.length} names in ${prefix}_set`);
  return names.map((n, i) => {
    const id = ids[i];
    if (!Number.isInteger(id)) throw new DatasetFileError(file, { record: `variable ${prefix}_ids(${i + 1})` }, `identity must be an integer, got ${id}`);
    return { file: matString(file, `${prefix}_set{${i + 1}}`, n).trim(), id };
  });
}

/** The identity in a labelled TinyFace file name (<id>_<k>.jpg), or null. */
export function tinyFaceIdentity(file: string): number | null {
  const m = file.match(/(?:^|\/)(\d+)_\d+\.[^/]+$/);
  return m ? Number(m[1]) : null;
}

/** One part of TinyFace: one sample per face image. */
export class TinyFace extends Dataset<TinyFaceSample> {
  private constructor(
    readonly root: string,
    readonly part: TinyFacePart,
    private readonly entries: TinyFaceEntry[],
  ) {
    super();
  }

  override get name(): string {
    return `TinyFace ${this.part}`;
  }

  private static async findRoot(fn: string, given: string): Promise<string> {
    const root = pathOption(fn, 'root', given);
    if (await exists(join(root, 'Testing_Set'))) return root;
    if (await exists(join(root, 'tinyface', 'Testing_Set'))) return join(root, 'tinyface');
    if (await exists(join(root, 'Training_Set'))) return root;
    if (await exists(join(root, 'tinyface', 'Training_Set'))) return join(root, 'tinyface');
    throw new DatasetFileError(root, {}, 'TinyFace root not found (no Training_Set/ or Testing_Set/ inside it or inside tinyface/)');
  }

  /** Opens one part. Probe and gallery identities come from the official MAT-files. */
  static async open(options: TinyFaceOptions): Promise<TinyFace> {
    const fn = 'TinyFace.open';
    checkOptions(fn, options, ['root', 'part']);
    const part = checkOneOf(fn, 'part', options.part ?? 'train', PARTS);
    const root = await TinyFace.findRoot(fn, options.root);
    const entries: TinyFaceEntry[] = [];
    if (part === 'train') {
      const dir = join(root, 'Training_Set');
      let folders: string[];
      try {
        folders = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch (err) {
        throw new DatasetFileError(dir, {}, 'Training_Set folder not found', { cause: err });
      }
      folders.sort((a, b) => (Number(a) - Number(b)) || a.localeCompare(b));
      for (const folder of folders) {
        const id = Number(folder);
        if (!Number.isInteger(id)) throw new DatasetFileError(join(dir, folder), {}, 'training identity folders must be named by their integer label');
        for (const f of await listImages(join(dir, folder), 'identity')) entries.push({ file: `Training_Set/${folder}/${f}`, id });
      }
    } else if (part === 'distractor') {
      for (const f of await listImages(join(root, 'Testing_Set', 'Gallery_Distractor'), 'Gallery_Distractor')) entries.push({ file: `Testing_Set/Gallery_Distractor/${f}`, id: null });
    } else {
      const [matName, prefix, folder] = part === 'probe' ? ['probe_img_ID_pairs.mat', 'probe', 'Probe'] as const : ['gallery_match_img_ID_pairs.mat', 'gallery', 'Gallery_Match'] as const;
      const list = await readTinyFaceIdPairs(join(root, 'Testing_Set', matName), prefix);
      for (const e of list) entries.push({ file: `Testing_Set/${folder}/${e.file}`, id: e.id });
    }
    return new TinyFace(root, part, entries);
  }

  /**
   * The closed-set identification protocol's inputs: probes, and the gallery = matched faces
   * followed by the distractors (identity null). Every probe identity occurs in the gallery.
   */
  static async identification(options: { root: string; distractors?: boolean }): Promise<{ probe: TinyFace; gallery: Dataset<TinyFaceSample>; galleryMatch: TinyFace; distractors: TinyFace | null }> {
    const fn = 'TinyFace.identification';
    checkOptions(fn, options, ['root', 'distractors']);
    const probe = await TinyFace.open({ root: options.root, part: 'probe' });
    const galleryMatch = await TinyFace.open({ root: options.root, part: 'galleryMatch' });
    const distractors = options.distractors === false ? null : await TinyFace.open({ root: options.root, part: 'distractor' });
    const galleryIds = new Set(galleryMatch.entries.map((e) => e.id));
    const missing = probe.entries.find((e) => !galleryIds.has(e.id));
    if (missing) throw new DatasetFileError(join(probe.root, 'Testing_Set', 'probe_img_ID_pairs.mat'), { record: `probe ${missing.file}` }, `identity ${missing.id} is not in the gallery (the protocol is closed-set)`);
    const entries = [...galleryMatch.entries, ...(distractors?.entries ?? [])];
    const gallery = new TinyFace(probe.root, 'galleryMatch', entries);
    return { probe, gallery, galleryMatch, distractors };
  }

  get length(): number {
    return this.entries.length;
  }

  /** Number of distinct identities (distractors not counted). */
  get identityCount(): number {
    return new Set(this.entries.filter((e) => e.id !== null).map((e) => e.id)).size;
  }

  protected item(index: number): TinyFaceSample {
    const e = this.entries[index];
    const part: TinyFacePart = e.file.includes('/Gallery_Distractor/') ? 'distractor' : this.part;
    return makeSample(index, new LazyImage(join(this.root, e.file)), { identity: e.id, attributes: { part, file: e.file } });
  }
}
