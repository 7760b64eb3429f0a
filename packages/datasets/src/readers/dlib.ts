// dlib's imglab XML (the format of dlib's training.xml / testing.xml and the iBUG 300-W
// "labels_ibug_300W*.xml"): <image file='..'> holding <box top left width height [ignore='1']>
// elements, each with optional <label> and <part name='00' x y/> children.
import { dirname, isAbsolute, join } from 'node:path';
import { Dataset, makeSample, type FaceSample } from '../dataset.js';
import { DatasetFileError } from '../errors.js';
import { parseNumber, readBytes } from '../files.js';
import { LazyImage, type Box } from '../image.js';
import { checkOptions, pathOption } from './common.js';

/** An element of a parsed XML document. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
  line: number;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

/** A small XML parser (elements, attributes, text; comments, PIs and DOCTYPE skipped) with line numbers. */
export function parseXml(text: string, file: string): XmlElement {
  let pos = 0;
  let line = 1;
  const advance = (to: number) => {
    for (let i = pos; i < to; i++) if (text.charCodeAt(i) === 10) line++;
    pos = to;
  };
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '', line: 1 };
  const stack: XmlElement[] = [root];
  while (pos < text.length) {
    const lt = text.indexOf('<', pos);
    if (lt < 0) {
      stack[stack.length - 1].text += unescapeXml(text.slice(pos));
      advance(text.length);
      break;
    }
    if (lt > pos) {
      stack[stack.length - 1].text += unescapeXml(text.slice(pos, lt));
      advance(lt);
    }
    const skipTo = (end: string, what: string) => {
      const e = text.indexOf(end, pos);
      if (e < 0) throw new DatasetFileError(file, { line }, `unterminated ${what}`);
      advance(e + end.length);
    };
    if (text.startsWith('<!--', pos)) skipTo('-->', 'comment');
    else if (text.startsWith('<?', pos)) skipTo('?>', 'processing instruction');
    else if (text.startsWith('<![CDATA[', pos)) {
      const e = text.indexOf(']]>', pos);
      if (e < 0) throw new DatasetFileError(file, { line }, 'unterminated CDATA section');
      stack[stack.length - 1].text += text.slice(pos + 9, e);
      advance(e + 3);
    } else if (text.startsWith('<!', pos)) skipTo('>', 'declaration');
    else if (text.startsWith('</', pos)) {
      const m = /^<\/\s*([\w:.-]+)\s*>/.exec(text.slice(pos, pos + 200));
      if (!m) throw new DatasetFileError(file, { line }, 'malformed closing tag');
      const open = stack.pop()!;
      if (open === root || open.name !== m[1])
        throw new DatasetFileError(file, { line }, `closing tag </${m[1]}> does not match ${open === root ? 'any open element' : `<${open.name}> opened on line ${open.line}`}`);
      advance(pos + m[0].length);
    } else {
      const m = /^<([\w:.-]+)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(text.slice(pos, pos + 4096));
      if (!m) throw new DatasetFileError(file, { line }, `malformed tag ${JSON.stringify(text.slice(pos, pos + 40))}`);
      const el: XmlElement = { name: m[1], attrs: {}, children: [], text: '', line };
      for (const a of m[2].matchAll(/([\w:.-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) el.attrs[a[1]] = unescapeXml(a[3] ?? a[4]);
      stack[stack.length - 1].children.push(el);
      if (!m[3]) stack.push(el);
      advance(pos + m[0].length);
    }
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1];
    throw new DatasetFileError(file, { line }, `file ends inside <${open.name}> opened on line ${open.line}`);
  }
  return root;
}

export interface DlibAttributes {
  /** The image path as written in the XML. */
  file: string;
  /** Per box: 1 when the box is marked ignore='1'. */
  ignore: Uint8Array;
  /** Per box: its <label> text ('' if none). */
  labels: string[];
  /** Image size when the XML states it. */
  width?: number;
  height?: number;
}
export type DlibSample = FaceSample<DlibAttributes>;

export interface DlibXmlOptions {
  /** The XML file. */
  file: string;
  /** Where relative image paths start (default: the XML's folder, as imglab resolves them). */
  imagesDir?: string;
  /** Points per face (default: 1 + the largest part index found, 0 without parts). */
  points?: number;
}

interface DlibRecord {
  image: string;
  file: string;
  boxes: Box[];
  parts: Map<number, [number, number]>[];
  ignore: number[];
  labels: string[];
  width?: number;
  height?: number;
}

/** A dlib imglab dataset: one sample per image; landmarks ordered by numeric part name. */
export class DlibXml extends Dataset<DlibSample> {
  private constructor(
    readonly file: string,
    readonly points: number,
    private readonly records: DlibRecord[],
  ) {
    super();
  }

  override get name(): string {
    return `dlib XML ${this.file}`;
  }

  static async open(options: DlibXmlOptions): Promise<DlibXml> {
    const fn = 'DlibXml.open';
    checkOptions(fn, options, ['file', 'imagesDir', 'points']);
    const file = pathOption(fn, 'file', options.file);
    const imagesDir = options.imagesDir !== undefined ? pathOption(fn, 'imagesDir', options.imagesDir) : dirname(file);
    const bytes = await readBytes(file, 'dlib XML file');
    // imglab writes ISO-8859-1; plain ASCII either way in practice.
    const head = bytes.subarray(0, 100).toString('latin1');
    const text = /encoding=['"](iso-8859-1|latin-?1)['"]/i.test(head) ? bytes.toString('latin1') : bytes.toString('utf8');
    const doc = parseXml(text, file);
    const dataset = doc.children.find((c) => c.name === 'dataset');
    if (!dataset) throw new DatasetFileError(file, { line: 1 }, 'no <dataset> element');
    const images = dataset.children.find((c) => c.name === 'images');
    if (!images) throw new DatasetFileError(file, { line: dataset.line }, '<dataset> has no <images> element');
    const num = (el: XmlElement, key: string) => {
      if (el.attrs[key] === undefined) throw new DatasetFileError(file, { line: el.line }, `<${el.name}> is missing the '${key}' attribute`);
      return parseNumber(file, el.line, el.attrs[key], `<${el.name}> ${key}`);
    };
    let maxPart = -1;
    const records: DlibRecord[] = [];
    for (const img of images.children) {
      if (img.name !== 'image') continue;
      const rel = img.attrs.file;
      if (!rel) throw new DatasetFileError(file, { line: img.line }, "<image> is missing the 'file' attribute");
      const rec: DlibRecord = { image: isAbsolute(rel) ? rel : join(imagesDir, rel), file: rel, boxes: [], parts: [], ignore: [], labels: [] };
      if (img.attrs.width !== undefined) rec.width = num(img, 'width');
      if (img.attrs.height !== undefined) rec.height = num(img, 'height');
      for (const box of img.children) {
        if (box.name !== 'box') continue;
        rec.boxes.push({ x: num(box, 'left'), y: num(box, 'top'), width: num(box, 'width'), height: num(box, 'height') });
        rec.ignore.push(box.attrs.ignore !== undefined && box.attrs.ignore !== '0' ? 1 : 0);
        rec.labels.push(box.children.find((c) => c.name === 'label')?.text.trim() ?? '');
        const parts = new Map<number, [number, number]>();
        for (const p of box.children) {
          if (p.name !== 'part') continue;
          const nameAttr = p.attrs.name ?? '';
          const idx = Number(nameAttr);
          if (!/^\d+$/.test(nameAttr)) throw new DatasetFileError(file, { line: p.line }, `part names must be numbers ("00", "01", ...), got ${JSON.stringify(nameAttr)}`);
          if (parts.has(idx)) throw new DatasetFileError(file, { line: p.line }, `part ${nameAttr} appears twice in this box`);
          parts.set(idx, [num(p, 'x'), num(p, 'y')]);
          maxPart = Math.max(maxPart, idx);
        }
        rec.parts.push(parts);
      }
      records.push(rec);
    }
    const points = options.points ?? maxPart + 1;
    if (!Number.isInteger(points) || points < 0) throw new DatasetFileError(file, {}, `bad point count ${points}`);
    if (maxPart >= points) throw new DatasetFileError(file, {}, `part index ${maxPart} does not fit ${points} points`);
    return new DlibXml(file, points, records);
  }

  get length(): number {
    return this.records.length;
  }

  protected item(index: number): DlibSample {
    const r = this.records[index];
    const landmarks: Float32Array[] = [];
    const visibility: Uint8Array[] = [];
    if (this.points > 0) {
      for (const parts of r.parts) {
        const pts = new Float32Array(2 * this.points).fill(NaN);
        const vis = new Uint8Array(this.points);
        for (const [k, [x, y]] of parts) {
          pts[2 * k] = x;
          pts[2 * k + 1] = y;
          vis[k] = 1;
        }
        landmarks.push(pts);
        visibility.push(vis);
      }
    }
    const attributes: DlibAttributes = { file: r.file, ignore: Uint8Array.from(r.ignore), labels: [...r.labels] };
    if (r.width !== undefined) attributes.width = r.width;
    if (r.height !== undefined) attributes.height = r.height;
    return makeSample(index, new LazyImage(r.image), { boxes: r.boxes.map((b) => ({ ...b })), landmarks, visibility, attributes });
  }
}
