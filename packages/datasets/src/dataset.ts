// The common shape of every reader: a list of samples with a length, random access and async
// iteration. Annotations are parsed when a dataset is opened; pixels are decoded only when a
// sample's image is asked for.
import { rangeError, typeError } from './errors.js';
import type { Box, LazyImage } from './image.js';

/**
 * One image with its faces. `boxes`, `landmarks` and `visibility` are per face and aligned
 * (entry i of each describes face i). Landmarks are [x0, y0, x1, y1, ...] in the pixel
 * coordinates the annotation file uses (noted per reader); a point a file leaves out is NaN
 * and has visibility 0.
 */
export interface FaceSample<A = Record<string, unknown>> {
  /** Position in its dataset. */
  index: number;
  /** The image file, decoded on demand. */
  image: LazyImage;
  boxes: Box[];
  landmarks: Float32Array[];
  /** 1 visible / annotated, 0 not; one entry per point. */
  visibility: Uint8Array[];
  /** Who is in the image (a name or a numeric label), when the dataset says. */
  identity: string | number | null;
  /** Dataset-specific labels (per-face arrays are aligned with `boxes`). */
  attributes: A;
}

/** A finite, indexable, async-iterable collection. */
export abstract class Dataset<T> implements AsyncIterable<T>, Iterable<T> {
  /** Number of samples. */
  abstract get length(): number;
  /** The sample at `index` (metadata only; images decode lazily). */
  protected abstract item(index: number): T;

  /** A name for messages ("WIDER FACE val", ...). */
  get name(): string {
    return this.constructor.name;
  }

  /** The sample at `index`, 0 <= index < length (negative counts from the end). */
  get(index: number): T {
    if (typeof index !== 'number' || !Number.isInteger(index)) throw typeError(`${this.name}.get`, 'index', 'an integer', index);
    const n = this.length;
    const i = index < 0 ? index + n : index;
    if (i < 0 || i >= n) throw rangeError(`${this.name}.get`, 'index', `in [${-n}, ${n - 1}]`, index);
    return this.item(i);
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.length; i++) yield this.item(i);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (let i = 0; i < this.length; i++) yield this.item(i);
  }

  /** The samples at the given positions, as a dataset. */
  subset(indices: ArrayLike<number>): Dataset<T> {
    const n = this.length;
    const list = Int32Array.from(indices as ArrayLike<number>, (v) => {
      if (!Number.isInteger(v) || v < 0 || v >= n) throw rangeError(`${this.name}.subset`, 'indices', `integers in [0, ${n - 1}]`, v);
      return v;
    });
    return new MappedDataset(`${this.name} (subset)`, list.length, (i) => this.item(list[i]));
  }

  /** The samples for which `keep` is true, as a dataset (evaluated once, now). */
  filter(keep: (sample: T, index: number) => boolean): Dataset<T> {
    const kept: number[] = [];
    for (let i = 0; i < this.length; i++) if (keep(this.item(i), i)) kept.push(i);
    return this.subset(kept);
  }

  /** A dataset applying `fn` to each sample when it is read. */
  map<U>(fn: (sample: T, index: number) => U): Dataset<U> {
    return new MappedDataset(this.name, this.length, (i) => fn(this.item(i), i));
  }

  /** All samples as an array (metadata only). */
  toArray(): T[] {
    return Array.from(this);
  }
}

/** A dataset defined by a length and an item function. */
export class MappedDataset<T> extends Dataset<T> {
  constructor(
    private readonly label: string,
    private readonly count: number,
    private readonly at: (index: number) => T,
  ) {
    super();
  }
  override get name(): string {
    return this.label;
  }
  get length(): number {
    return this.count;
  }
  protected item(index: number): T {
    return this.at(index);
  }
}

/** A dataset over an array of ready samples. */
export class ArrayDataset<T> extends Dataset<T> {
  constructor(
    private readonly items: readonly T[],
    private readonly label = 'ArrayDataset',
  ) {
    super();
  }
  override get name(): string {
    return this.label;
  }
  get length(): number {
    return this.items.length;
  }
  protected item(index: number): T {
    return this.items[index];
  }
}

/** Builds a sample, filling empty per-face arrays and attributes. */
export function makeSample<A>(index: number, image: LazyImage, parts: Partial<Omit<FaceSample<A>, 'index' | 'image'>> & { attributes: A }): FaceSample<A> {
  return {
    index,
    image,
    boxes: parts.boxes ?? [],
    landmarks: parts.landmarks ?? [],
    visibility: parts.visibility ?? [],
    identity: parts.identity ?? null,
    attributes: parts.attributes,
  };
}
