// YouTube Faces (Wolf, Hassner, Maoz, CVPR 2011): frames in
// frame_images_DB/<Name>/<video>/<video>.<frame>.jpg, one <Name>.labeled_faces.txt per person
// ("Name\video\video.frame.jpg,0,x,y,w,h,0.0,1" with x, y the face centre), and splits.txt with
// 5,000 video pairs in 10 splits.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError, typeError } from '../errors.js';
import { exists, parseInteger, parseNumber, readLines } from '../files.js';
import { LazyImage, type Box } from '../image.js';
import { checkOptions, pathOption } from './common.js';

/** One labelled frame. */
export interface YtfFrame {
  /** Path relative to frame_images_DB, with forward slashes. */
  file: string;
  name: string;
  video: string;
  /** The frame number in the file name (<video>.<frame>.jpg). */
  frame: number;
  box: Box;
}

/** One video pair of splits.txt. `split` is 0-based: split k of the file is k - 1 here (an evaluation's fold index). */
export interface YtfPair {
  split: number;
  /** "Name/video". */
  a: string;
  b: string;
  same: boolean;
  line: number;
}

/** Parses <Name>.labeled_faces.txt. Boxes are converted from centre + size to top-left + size. */
export async function parseYtfLabeledFaces(file: string): Promise<YtfFrame[]> {
  const lines = await readLines(file, 'YouTube Faces labeled_faces file');
  const out: YtfFrame[] = [];
  for (const l of lines) {
    if (l.text.trim() === '') continue;
    const f = l.text.split(',');
    if (f.length < 6) throw new DatasetFileError(file, { line: l.line }, `expected "filename,ignore,x,y,width,height,ignore,ignore", got ${f.length} fields: ${JSON.stringify(l.text)}`);
    const rel = f[0].trim().replace(/\\/g, '/');
    const parts = rel.split('/');
    const m = parts.length === 3 ? parts[2].match(/^(.+)\.(\d+)\.(jpg|png)$/i) : null;
    if (!m) throw new DatasetFileError(file, { line: l.line }, `expected a frame path "Name\\video\\video.frame.jpg", got ${JSON.stringify(f[0])}`);
    const cx = parseNumber(file, l.line, f[2], 'x (face centre)');
    const cy = parseNumber(file, l.line, f[3], 'y (face centre)');
    const w = parseNumber(file, l.line, f[4], 'width');
    const h = parseNumber(file, l.line, f[5], 'height');
    out.push({ file: rel, name: parts[0], video: parts[1], frame: Number(m[2]), box: { x: cx - w / 2, y: cy - h / 2, width: w, height: h } });
  }
  return out;
}

/**
 * Parses splits.txt: a header line, then one pair per line with comma-separated fields: the
 * split number, (a pair number,) the two videos as Name/video, and the same-person flag.
 * The two video fields are recognised by their slash, so either column layout reads.
 */
export async function parseYtfSplits(file: string): Promise<YtfPair[]> {
  const lines = (await readLines(file, 'YouTube Faces splits file')).filter((l) => l.text.trim() !== '');
  const out: YtfPair[] = [];
  for (const l of lines) {
    const f = l.text.split(',').map((s) => s.trim());
    const videos = f.map((s, i) => [s, i] as const).filter(([s]) => /^[^/\s]+\/[^/\s]+$/.test(s));
    if (videos.length === 0 && out.length === 0 && !/^\d/.test(f[0])) continue; // the header
    if (videos.length !== 2 || f.length < 4)
      throw new DatasetFileError(file, { line: l.line }, `expected "split, [pair,] Name/video, Name/video, same", got ${JSON.stringify(l.text)}`);
    const split = parseInteger(file, l.line, f[0], 'split number');
    if (split < 1) throw new DatasetFileError(file, { line: l.line }, `split numbers start at 1, got ${split}`);
    const sameField = f[videos[1][1] + 1];
    if (sameField === undefined) throw new DatasetFileError(file, { line: l.line }, 'missing the same-person flag after the second video');
    const same = parseInteger(file, l.line, sameField, 'same-person flag');
    if (same !== 0 && same !== 1) throw new DatasetFileError(file, { line: l.line }, `same-person flag must be 0 or 1, got ${same}`);
    out.push({ split: split - 1, a: videos[0][0], b: videos[1][0], same: same === 1, line: l.line });
  }
  return out;
}

export interface YtfOptions {
  /** The YouTubeFaces folder (holding frame_images_DB/). */
  root: string;
  /** Read only these people's labeled_faces files (default: every *.labeled_faces.txt). */
  people?: string[];
  /** The frame folder, if not <root>/frame_images_DB. */
  framesDir?: string;
}

export interface YtfAttributes {
  name: string;
  video: string;
  frame: number;
  file: string;
}
export type YtfSample = FaceSample<YtfAttributes>;

/** A video: its person, id and the dataset indices of its frames (in frame order). */
export interface YtfVideo {
  name: string;
  video: string;
  frames: number[];
}

/** A pair of splits.txt with both videos' frame indices. */
export interface YtfPairSample extends YtfPair {
  index: number;
  videos: [YtfVideo, YtfVideo];
}

/** YouTube Faces frames: one sample per labelled frame, identity = the person's name. */
export class Ytf extends Dataset<YtfSample> {
  private readonly videoMap = new Map<string, YtfVideo>();

  private constructor(
    readonly framesDir: string,
    private readonly frames: YtfFrame[],
  ) {
    super();
    frames.forEach((f, i) => {
      const key = `${f.name}/${f.video}`;
      let v = this.videoMap.get(key);
      if (!v) this.videoMap.set(key, (v = { name: f.name, video: f.video, frames: [] }));
      v.frames.push(i);
    });
    for (const v of this.videoMap.values()) v.frames.sort((a, b) => frames[a].frame - frames[b].frame);
  }

  override get name(): string {
    return 'YouTube Faces';
  }

  /** Reads the labeled_faces files (no images). */
  static async open(options: YtfOptions): Promise<Ytf> {
    const fn = 'Ytf.open';
    checkOptions(fn, options, ['root', 'people', 'framesDir']);
    const root = pathOption(fn, 'root', options.root);
    const framesDir = options.framesDir !== undefined ? pathOption(fn, 'framesDir', options.framesDir) : join(root, 'frame_images_DB');
    let people: string[];
    if (options.people !== undefined) {
      if (!Array.isArray(options.people) || !options.people.every((p) => typeof p === 'string')) throw typeError(fn, 'people', 'an array of names', options.people);
      people = [...new Set(options.people)];
    } else {
      let names: string[];
      try {
        names = await readdir(framesDir);
      } catch (err) {
        throw new DatasetFileError(framesDir, {}, 'frame_images_DB folder not found', { cause: err });
      }
      people = names.filter((n) => n.endsWith('.labeled_faces.txt')).map((n) => n.slice(0, -'.labeled_faces.txt'.length)).sort();
    }
    const frames: YtfFrame[] = [];
    for (const p of people) frames.push(...(await parseYtfLabeledFaces(join(framesDir, `${p}.labeled_faces.txt`))));
    return new Ytf(framesDir, frames);
  }

  get length(): number {
    return this.frames.length;
  }

  protected item(index: number): YtfSample {
    const f = this.frames[index];
    return makeSample(index, new LazyImage(join(this.framesDir, f.file)), {
      boxes: [{ ...f.box }],
      identity: f.name,
      attributes: { name: f.name, video: f.video, frame: f.frame, file: f.file },
    });
  }

  /** Every video, keyed "Name/video". */
  get videos(): ReadonlyMap<string, YtfVideo> {
    return this.videoMap;
  }

  /** The video "Name/video", or an error naming it. */
  video(key: string): YtfVideo {
    const v = this.videoMap.get(key);
    if (!v) throw new DatasetFileError(this.framesDir, { record: `video ${key}` }, 'no labelled frames for this video (is its labeled_faces.txt read?)');
    return v;
  }

  /** The pairs of splits.txt (default <root>/splits.txt or <root>/meta_data/splits.txt) with their videos. */
  async pairs(splitsFile?: string): Promise<Dataset<YtfPairSample>> {
    let file = splitsFile !== undefined ? pathOption('Ytf.pairs', 'splitsFile', splitsFile) : join(this.framesDir, '..', 'splits.txt');
    if (splitsFile === undefined && !(await exists(file)) && (await exists(join(this.framesDir, '..', 'meta_data', 'splits.txt')))) file = join(this.framesDir, '..', 'meta_data', 'splits.txt');
    const pairs = await parseYtfSplits(file);
    const resolved = pairs.map((p) => {
      const va = this.videoMap.get(p.a);
      const vb = this.videoMap.get(p.b);
      if (!va || !vb) throw new DatasetFileError(file, { line: p.line }, `video ${!va ? p.a : p.b} has no labelled frames in ${this.framesDir}`);
      return [va, vb] as [YtfVideo, YtfVideo];
    });
    return new (class extends Dataset<YtfPairSample> {
      override get name(): string {
        return 'YouTube Faces pairs';
      }
      get length(): number {
        return pairs.length;
      }
      protected item(index: number): YtfPairSample {
        return { ...pairs[index], index, videos: resolved[index] };
      }
    })();
  }
}
