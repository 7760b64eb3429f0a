// Labeled Faces in the Wild (Huang et al. 2007): images <Name>/<Name>_<nnnn>.jpg; View 1
// (pairsDevTrain.txt / pairsDevTest.txt, peopleDevTrain.txt / peopleDevTest.txt) and View 2
// (pairs.txt: "10 300" then per fold 300 matched "name i j" and 300 mismatched
// "name1 i name2 j" lines; people.txt: "10" then per fold a count and "name count" lines).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError, checkOneOf, typeError } from '../errors.js';
import { parseInteger, readLines, type Line } from '../files.js';
import { LazyImage } from '../image.js';
import { checkOptions, pathOption } from './common.js';

/** One LFW image: a person and the 1-based image number. */
export interface LfwImageRef {
  name: string;
  number: number;
}

/** One verification pair. `fold` is 0-based; View 1 files have a single fold 0. */
export interface LfwPair {
  fold: number;
  same: boolean;
  a: LfwImageRef;
  b: LfwImageRef;
  /** Line in the pairs file. */
  line: number;
}

/** A parsed pairs file: `folds` x (`perFold` matched + `perFold` mismatched) pairs. */
export interface LfwPairsFile {
  file: string;
  folds: number;
  perFold: number;
  pairs: LfwPair[];
}

/** A parsed people file: per fold, the people and how many images each has. */
export interface LfwPeopleFile {
  file: string;
  folds: { name: string; count: number }[][];
}

const NAME_RE = /^[^\s/\\]+$/;

function positive(file: string, l: Line, field: string, what: string): number {
  const v = parseInteger(file, l.line, field, what);
  if (v < 1) throw new DatasetFileError(file, { line: l.line }, `${what} must be >= 1, got ${v}`);
  return v;
}

function checkName(file: string, l: Line, name: string): string {
  if (!NAME_RE.test(name)) throw new DatasetFileError(file, { line: l.line }, `bad person name ${JSON.stringify(name)}`);
  return name;
}

/**
 * Parses a pairs file: View 2's pairs.txt (header "folds perFold") or View 1's
 * pairsDevTrain.txt / pairsDevTest.txt (header "perFold", one fold).
 */
export async function parseLfwPairs(file: string): Promise<LfwPairsFile> {
  const lines = (await readLines(file, 'LFW pairs file')).filter((l) => l.text.trim() !== '');
  if (lines.length === 0) throw new DatasetFileError(file, { line: 1 }, 'empty file (expected a header such as "10 300")');
  const head = lines[0].text.trim().split(/\s+/);
  if (head.length > 2) throw new DatasetFileError(file, { line: lines[0].line }, `expected a header "folds pairsPerFold" or "pairs", got ${JSON.stringify(lines[0].text)}`);
  const folds = head.length === 2 ? positive(file, lines[0], head[0], 'the fold count') : 1;
  const perFold = positive(file, lines[0], head[head.length - 1], 'the pairs per fold');
  const expected = folds * perFold * 2;
  if (lines.length - 1 !== expected)
    throw new DatasetFileError(file, { line: lines[lines.length - 1].line + 1 }, `header promises ${folds} fold(s) x ${2 * perFold} pairs = ${expected} lines, the file has ${lines.length - 1}`);
  const pairs: LfwPair[] = [];
  for (let k = 0; k < expected; k++) {
    const l = lines[1 + k];
    const fold = Math.floor(k / (2 * perFold));
    const same = k % (2 * perFold) < perFold;
    const f = l.text.trim().split(/\s+/);
    if (same) {
      if (f.length !== 3) throw new DatasetFileError(file, { line: l.line }, `matched pair ${(k % (2 * perFold)) + 1} of fold ${fold + 1} must be "name i j", got ${f.length} fields: ${JSON.stringify(l.text)}`);
      const name = checkName(file, l, f[0]);
      pairs.push({ fold, same, a: { name, number: positive(file, l, f[1], 'image number') }, b: { name, number: positive(file, l, f[2], 'image number') }, line: l.line });
    } else {
      if (f.length !== 4) throw new DatasetFileError(file, { line: l.line }, `mismatched pair ${(k % (2 * perFold)) - perFold + 1} of fold ${fold + 1} must be "name1 i name2 j", got ${f.length} fields: ${JSON.stringify(l.text)}`);
      pairs.push({
        fold,
        same,
        a: { name: checkName(file, l, f[0]), number: positive(file, l, f[1], 'image number') },
        b: { name: checkName(file, l, f[2]), number: positive(file, l, f[3], 'image number') },
        line: l.line,
      });
    }
  }
  return { file, folds, perFold, pairs };
}

/**
 * Parses a people file: View 2's people.txt ("10", then per fold a count and that many
 * "name count" lines) or View 1's peopleDevTrain.txt / peopleDevTest.txt (a count, then lines),
 * or lfw-names.txt (only "name count" lines).
 */
export async function parseLfwPeople(file: string): Promise<LfwPeopleFile> {
  const lines = (await readLines(file, 'LFW people file')).filter((l) => l.text.trim() !== '');
  if (lines.length === 0) throw new DatasetFileError(file, { line: 1 }, 'empty file');
  const fields = (l: Line) => l.text.trim().split(/\s+/);
  const person = (l: Line) => {
    const f = fields(l);
    if (f.length !== 2) throw new DatasetFileError(file, { line: l.line }, `expected "name count", got ${JSON.stringify(l.text)}`);
    return { name: checkName(file, l, f[0]), count: positive(file, l, f[1], 'image count') };
  };
  if (fields(lines[0]).length === 2) return { file, folds: [lines.map(person)] };
  const first = positive(file, lines[0], fields(lines[0])[0], 'the first count');
  // One count line then people (View 1), or a fold count, then per fold a count and people (View 2).
  if (lines.length - 1 === first && fields(lines[1] ?? lines[0]).length === 2) return { file, folds: [lines.slice(1).map(person)] };
  const folds: { name: string; count: number }[][] = [];
  let i = 1;
  for (let f = 0; f < first; f++) {
    const countLine = lines[i++];
    if (!countLine) throw new DatasetFileError(file, { line: (lines.at(-1)?.line ?? 0) + 1 }, `file ends before fold ${f + 1} of ${first}`);
    if (fields(countLine).length !== 1) throw new DatasetFileError(file, { line: countLine.line }, `expected the people count of fold ${f + 1}, got ${JSON.stringify(countLine.text)}`);
    const n = positive(file, countLine, fields(countLine)[0], `the people count of fold ${f + 1}`);
    const people = [];
    for (let k = 0; k < n; k++) {
      const l = lines[i++];
      if (!l) throw new DatasetFileError(file, { line: (lines.at(-1)?.line ?? 0) + 1 }, `file ends inside fold ${f + 1} (person ${k + 1} of ${n})`);
      people.push(person(l));
    }
    folds.push(people);
  }
  if (i !== lines.length) throw new DatasetFileError(file, { line: lines[i].line }, `unexpected line after the last fold: ${JSON.stringify(lines[i].text)}`);
  return { file, folds };
}

/** How image files are laid out under the root. */
export type LfwLayout = 'nested' | 'flat';

export interface LfwOptions {
  /** The image folder (lfw/, lfw-deepfunneled/, ...). */
  root: string;
  /** 'nested' <Name>/<Name>_0001.jpg (default) or 'flat' <Name>_0001.jpg. */
  layout?: LfwLayout;
  /** Image file extension (default '.jpg'). */
  extension?: string;
}

export interface LfwAttributes {
  name: string;
  number: number;
  /** 0-based fold when the list came from a people file with folds. */
  fold?: number;
}
export type LfwSample = FaceSample<LfwAttributes>;

/** A pair with its two images. */
export interface LfwPairSample extends LfwPair {
  index: number;
  images: [LazyImage, LazyImage];
}

function imagePath(root: string, layout: LfwLayout, ext: string, ref: LfwImageRef): string {
  const file = `${ref.name}_${String(ref.number).padStart(4, '0')}${ext}`;
  return layout === 'flat' ? join(root, file) : join(root, ref.name, file);
}

/** LFW images: one sample per image, identity = the person's name. */
export class Lfw extends Dataset<LfwSample> {
  private constructor(
    readonly root: string,
    readonly layout: LfwLayout,
    readonly extension: string,
    private readonly refs: (LfwImageRef & { fold?: number })[],
  ) {
    super();
  }

  override get name(): string {
    return 'LFW';
  }

  private static check(fn: string, options: LfwOptions): { root: string; layout: LfwLayout; ext: string } {
    const root = pathOption(fn, 'root', options.root);
    const layout = checkOneOf(fn, 'layout', options.layout ?? 'nested', ['nested', 'flat'] as const);
    const ext = options.extension ?? '.jpg';
    if (typeof ext !== 'string') throw typeError(fn, 'extension', 'a string such as ".jpg"', ext);
    return { root, layout, ext };
  }

  /** Every image of the people a people file (or lfw-names.txt) lists, fold by fold. */
  static async fromPeople(options: LfwOptions & { peopleFile: string }): Promise<Lfw> {
    const fn = 'Lfw.fromPeople';
    checkOptions(fn, options, ['root', 'layout', 'extension', 'peopleFile']);
    const { root, layout, ext } = Lfw.check(fn, options);
    const people = await parseLfwPeople(pathOption(fn, 'peopleFile', options.peopleFile));
    const refs: (LfwImageRef & { fold?: number })[] = [];
    people.folds.forEach((fold, f) => {
      for (const p of fold) for (let k = 1; k <= p.count; k++) refs.push({ name: p.name, number: k, ...(people.folds.length > 1 ? { fold: f } : {}) });
    });
    return new Lfw(root, layout, ext, refs);
  }

  /** Every image found under the root (sorted by person, then number). */
  static async scan(options: LfwOptions): Promise<Lfw> {
    const fn = 'Lfw.scan';
    checkOptions(fn, options, ['root', 'layout', 'extension']);
    const { root, layout, ext } = Lfw.check(fn, options);
    const re = new RegExp(`^(.+)_(\\d{4})${ext.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const refs: LfwImageRef[] = [];
    let top: string[];
    try {
      top = (await readdir(root)).sort();
    } catch (err) {
      throw new DatasetFileError(root, {}, 'LFW image folder not found', { cause: err });
    }
    if (layout === 'flat') {
      for (const f of top) {
        const m = f.match(re);
        if (m) refs.push({ name: m[1], number: Number(m[2]) });
      }
    } else {
      for (const person of top) {
        let files: string[];
        try {
          files = (await readdir(join(root, person))).sort();
        } catch {
          continue; // not a person folder (a stray file)
        }
        for (const f of files) {
          const m = f.match(re);
          if (m && m[1] === person) refs.push({ name: person, number: Number(m[2]) });
        }
      }
    }
    return new Lfw(root, layout, ext, refs);
  }

  /** The verification pairs of a pairs file (View 1 or View 2), with their images. */
  static async pairs(options: LfwOptions & { pairsFile: string }): Promise<Dataset<LfwPairSample> & { folds: number; perFold: number }> {
    const fn = 'Lfw.pairs';
    checkOptions(fn, options, ['root', 'layout', 'extension', 'pairsFile']);
    const { root, layout, ext } = Lfw.check(fn, options);
    const parsed = await parseLfwPairs(pathOption(fn, 'pairsFile', options.pairsFile));
    const ds = new (class extends Dataset<LfwPairSample> {
      readonly folds = parsed.folds;
      readonly perFold = parsed.perFold;
      override get name(): string {
        return 'LFW pairs';
      }
      get length(): number {
        return parsed.pairs.length;
      }
      protected item(index: number): LfwPairSample {
        const p = parsed.pairs[index];
        return { ...p, a: { ...p.a }, b: { ...p.b }, index, images: [new LazyImage(imagePath(root, layout, ext, p.a)), new LazyImage(imagePath(root, layout, ext, p.b))] };
      }
    })();
    return ds;
  }

  get length(): number {
    return this.refs.length;
  }

  /** The file of an image. */
  path(ref: LfwImageRef): string {
    return imagePath(this.root, this.layout, this.extension, ref);
  }

  protected item(index: number): LfwSample {
    const r = this.refs[index];
    const attributes: LfwAttributes = { name: r.name, number: r.number };
    if (r.fold !== undefined) attributes.fold = r.fold;
    return makeSample(index, new LazyImage(this.path(r)), { identity: r.name, attributes });
  }
}
