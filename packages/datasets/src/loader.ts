// A data loader: shuffles a dataset, runs an async per-sample transform (decode, crop, augment,
// degrade) with many samples in flight, and collates results into NCHW batch tensors.
// Decoding happens in sharp's native worker threads, so while the caller runs a training step
// the next batches keep decoding; `prefetch` bounds how far ahead it works.
import { tensor, type Tensor } from '@lrface/cuda-core';
import { availableParallelism } from 'node:os';
import type { Dataset } from './dataset.js';
import { checkInt, checkKeys, rangeError, typeError } from './errors.js';
import { writeCHW, type RawImage } from './image.js';
import { Rng } from './random.js';

/** An array with a shape, collated by stacking along a new batch axis. */
export interface ShapedArray {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
}

/**
 * What a transform may return per field: an image (stacked to [N, C, H, W] float32, 8-bit
 * values divided by 255), a shaped array (stacked to [N, ...shape]), a Float32Array (stacked to
 * [N, length]), or a number (to [N] float32; int32 with `intFields`).
 */
export type Field = RawImage | ShapedArray | Float32Array | number;
export type Example = Record<string, Field>;

/** A batch: one tensor per field, plus the dataset indices it holds. */
export type Batch<K extends string = string> = Record<K, Tensor> & { indices: Int32Array };

export interface DataLoaderOptions<S, E extends Example> {
  dataset: Dataset<S>;
  /** Samples per batch. */
  batchSize: number;
  /** sample -> fields. May be async (decoding is). Gets a generator seeded for that sample and epoch. */
  transform: (sample: S, rng: Rng, index: number) => E | Promise<E>;
  /** Shuffle every epoch (default false). */
  shuffle?: boolean;
  /** Seed for shuffling and per-sample generators (default 0): a run is reproducible whatever the timing. */
  seed?: number;
  /** Drop a last, smaller batch (default false). */
  dropLast?: boolean;
  /** Samples transformed at once (default 4 x available cores). */
  concurrency?: number;
  /** Batches prepared ahead of the one being consumed (default 2). */
  prefetch?: number;
  /** Fields collated as int32 instead of float32 (numbers only). */
  intFields?: string[];
  /** Divide 8-bit image fields by 255 (default true). */
  normalize?: boolean;
}

/** Per-sample seed: depends only on (seed, epoch, index), never on scheduling. */
function sampleSeed(seed: number, epoch: number, index: number): number {
  // Both halves of a seed up to 2^53 count.
  let h = (seed ^ Math.imul(Math.floor(seed / 2 ** 32), 0x27d4eb2f) ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ epoch, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ index, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) * 2048 + ((index * 2654435761) >>> 21);
}

function isImage(v: unknown): v is RawImage {
  return typeof v === 'object' && v !== null && 'width' in v && 'height' in v && 'channels' in v && 'data' in v;
}

/** Stacks examples into tensors. */
export function collate(examples: Example[], options: { intFields?: string[]; normalize?: boolean } = {}): Record<string, Tensor> {
  if (!Array.isArray(examples) || examples.length === 0) throw typeError('collate', 'examples', 'a non-empty array', examples);
  const out: Record<string, Tensor> = {};
  const n = examples.length;
  const keys = Object.keys(examples[0]);
  try {
    for (const key of keys) {
      const first = examples[0][key];
      const values = examples.map((e, i) => {
        if (!(key in e)) throw rangeError('collate', `examples[${i}]`, `an example with field '${key}' like examples[0]`, 'no such field', true);
        return e[key];
      });
      if (typeof first === 'number') {
        if (!values.every((v) => typeof v === 'number')) throw typeError('collate', key, 'a number in every example', values.find((v) => typeof v !== 'number'));
        const int = options.intFields?.includes(key);
        out[key] = tensor(int ? Int32Array.from(values as number[]) : Float32Array.from(values as number[]), [n], int ? 'int32' : 'float32');
      } else if (isImage(first)) {
        const { width: w, height: h, channels: c } = first;
        const size = w * h * c;
        const data = new Float32Array(n * size);
        values.forEach((v, i) => {
          if (!isImage(v) || v.width !== w || v.height !== h || v.channels !== c)
            throw rangeError('collate', key, `images of one size (${w}x${h}x${c}, as example 0)`, isImage(v) ? `${v.width}x${v.height}x${v.channels} in example ${i}` : 'a non-image', true);
          writeCHW(v, data, i * size, v.data instanceof Uint8Array && options.normalize !== false ? 1 / 255 : 1);
        });
        out[key] = tensor(data, [n, c, h, w]);
      } else if (first instanceof Float32Array || (typeof first === 'object' && first !== null && 'shape' in first)) {
        const shaped = (v: Field): ShapedArray => (v instanceof Float32Array ? { data: v, shape: [v.length] } : (v as ShapedArray));
        const f = shaped(first);
        const size = f.data.length;
        const dtype = f.data instanceof Int32Array ? 'int32' : f.data instanceof Uint8Array ? 'uint8' : 'float32';
        const data = dtype === 'int32' ? new Int32Array(n * size) : dtype === 'uint8' ? new Uint8Array(n * size) : new Float32Array(n * size);
        values.forEach((v, i) => {
          const s = shaped(v);
          if (!s || s.data.length !== size || s.shape.join() !== f.shape.join())
            throw rangeError('collate', key, `arrays of shape [${f.shape.join(',')}] (as example 0)`, `shape [${s?.shape?.join(',')}] in example ${i}`, true);
          data.set(s.data, i * size);
        });
        out[key] = tensor(data, [n, ...f.shape], dtype);
      } else throw typeError('collate', key, 'an image, a Float32Array, a { data, shape } array or a number', first);
    }
  } catch (err) {
    for (const t of Object.values(out)) t.dispose();
    throw err;
  }
  return out;
}

/**
 * Iterates batches: `for await (const batch of loader) { ... }` runs one epoch; the next loop
 * runs the next epoch (reshuffled). The caller owns (and disposes) each batch's tensors.
 */
export class DataLoader<S, E extends Example = Example> implements AsyncIterable<Batch<Extract<keyof E, string>>> {
  readonly dataset: Dataset<S>;
  readonly batchSize: number;
  private readonly options: DataLoaderOptions<S, E>;
  private readonly concurrency: number;
  private readonly prefetch: number;
  /** The epoch the next iteration runs (starting at 0). */
  epoch = 0;

  constructor(options: DataLoaderOptions<S, E>) {
    const fn = 'DataLoader';
    if (!options || typeof options !== 'object') throw typeError(fn, 'options', 'an options object', options);
    checkKeys(fn, options, ['dataset', 'batchSize', 'transform', 'shuffle', 'seed', 'dropLast', 'concurrency', 'prefetch', 'intFields', 'normalize']);
    const ds = options.dataset as Dataset<S>;
    if (!ds || typeof ds.get !== 'function' || typeof ds.length !== 'number') throw typeError(fn, 'dataset', 'a Dataset', ds);
    if (typeof options.transform !== 'function') throw typeError(fn, 'transform', 'a function (sample, rng, index) => fields', options.transform);
    this.dataset = ds;
    this.batchSize = checkInt(fn, 'batchSize', options.batchSize, 1);
    checkInt(fn, 'seed', options.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
    this.concurrency = checkInt(fn, 'concurrency', options.concurrency ?? 4 * availableParallelism(), 1);
    this.prefetch = checkInt(fn, 'prefetch', options.prefetch ?? 2, 0);
    this.options = options;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.options.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The order of dataset indices for an epoch. */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    if (!this.options.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return new Rng(sampleSeed(this.options.seed ?? 0, epoch, 0x7fffffff)).permutation(n);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch<Extract<keyof E, string>>> {
    const epoch = this.epoch++;
    const order = this.order(epoch);
    const total = this.options.dropLast ? this.length * this.batchSize : order.length;
    const seed = this.options.seed ?? 0;
    const results: (Promise<E> | undefined)[] = new Array(total);
    let launched = 0;
    let active = 0;
    const wakers: (() => void)[] = [];
    const limit = Math.min(total, (this.prefetch + 1) * this.batchSize);
    // Start of the batch being assembled or consumed: work may run `prefetch` batches past it.
    let consumedUpTo = 0;
    // Starts transforms while under the concurrency cap and within the prefetch window.
    const pump = () => {
      while (launched < total && active < this.concurrency && launched < consumedUpTo + limit) {
        const pos = launched++;
        const index = order[pos];
        active++;
        const p = (async () => {
          const sample = this.dataset.get(index);
          return this.options.transform(sample, new Rng(sampleSeed(seed, epoch, index)), index);
        })();
        results[pos] = p;
        p.then(
          () => undefined,
          () => undefined,
        ).finally(() => {
          active--;
          pump();
          wakers.splice(0).forEach((w) => w());
        });
      }
    };
    try {
      for (let start = 0; start < total; start += this.batchSize) {
        const end = Math.min(total, start + this.batchSize);
        consumedUpTo = start;
        pump();
        const examples: E[] = [];
        for (let pos = start; pos < end; pos++) {
          while (!results[pos]) await new Promise<void>((r) => wakers.push(r));
          try {
            examples.push(await results[pos]!);
          } catch (err) {
            const e = err as Error;
            throw new Error(`DataLoader: sample ${order[pos]} of ${this.dataset.name} failed: ${e?.message ?? String(err)}`, { cause: err });
          }
          results[pos] = undefined;
        }
        const batch = collate(examples, { intFields: this.options.intFields ?? [], normalize: this.options.normalize ?? true }) as Batch<Extract<keyof E, string>>;
        (batch as { indices: Int32Array }).indices = Int32Array.from(order.subarray(start, end));
        yield batch;
      }
    } finally {
      // Let transforms still running settle so their rejections are not unhandled.
      for (const p of results) p?.catch(() => undefined);
    }
  }
}
