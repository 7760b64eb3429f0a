// The inference API: load a shipped (or custom) landmark model and detect 68 points on faces.
// A face box is cropped with the model's margin (square, about the box centre), resized to the
// model input (32 for lr68, 128 for hr68), the heatmaps are decoded (argmax + sub-pixel
// refinement, peak value as confidence) and mapped back to image coordinates.
import { join } from 'node:path';
import * as ops from '@lrface/cuda-core';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { checkBox, checkUnitPixels, cropAffine, decodeImage, grayToRgb, invertAffine, mirrorMapFor, rgbToGrayPixels, tensorToImage, transformPoints, warpAffine, type Affine, type Box, type RawImage } from '@lrface/datasets';
import { decodeHeatmaps, type Refinement } from './decode.js';
import { SHIPPED_MODELS, loadLandmarkWeights, loadLgcnWeights, weightsDir, type LandmarkModelSpec, type LgcnModelSpec } from './weights.js';
import type { Lgcn } from './lgcn.js';
import type { PcaShapeModel, ShapeFitOptions } from './shape-model.js';
import type { HeatmapUNet } from './models.js';

/** What `detect` accepts: a file path, encoded bytes, a sharp instance, decoded pixels or an image tensor. */
export type LandmarkInput = string | Uint8Array | RawImage | Tensor | { clone(): unknown; png(): unknown; toBuffer(): Promise<Buffer> };

export interface LoadDetectorOptions {
  /** A custom weights file (written by saveLandmarkWeights) instead of the shipped one. */
  weights?: string;
  /** 'cpu' (default) or a device id from @lrface/cuda-core's devices(). */
  device?: string;
}

export interface DetectOptions {
  /** The face box in image pixels (default: the whole image); for a batch, one box for all or one per image. */
  box?: Box | Box[];
  /** Heatmap peak refinement (default 'quarter'). */
  refine?: Refinement;
  /**
   * Also run the mirrored crop and average its heatmaps, mirrored back with left and right
   * points swapped, into the direct ones (default true): twice the compute, steadier points.
   */
  flip?: boolean;
}
const DETECT_OPTION_KEYS: Record<keyof DetectOptions, true> = { box: true, refine: true, flip: true };
const LOAD_DETECTOR_OPTION_KEYS: Record<keyof LoadDetectorOptions, true> = { weights: true, device: true };

export interface LandmarkResult {
  /** 68 points [x, y] in image pixels. */
  points: [number, number][];
  /** Per point, the heatmap peak value (roughly 0..1). */
  confidence: number[];
  /** The face box used. */
  box: Box;
}

const FN = 'LandmarkDetector.detect';
const DETECT = FN;

function isSharp(v: unknown): v is { clone(): { png(): { toBuffer(): Promise<Buffer> } } } {
  const s = v as { clone?: unknown; png?: unknown; toBuffer?: unknown };
  return typeof v === 'object' && v !== null && typeof s.clone === 'function' && typeof s.png === 'function' && typeof s.toBuffer === 'function';
}

function isRawImage(v: unknown): v is RawImage {
  const r = v as RawImage;
  return typeof v === 'object' && v !== null && (r.data instanceof Uint8Array || r.data instanceof Float32Array) && typeof r.width === 'number' && typeof r.height === 'number' && typeof r.channels === 'number';
}

/** Any accepted input as 8-bit RGB pixels. */
async function toRgb(input: unknown, arg: string, FN = DETECT): Promise<RawImage<Uint8Array>[]> {
  if (typeof input === 'string' || (input instanceof Uint8Array && !isRawImage(input))) {
    if (typeof input === 'string' && input === '') throw typeError(FN, arg, 'a non-empty file path', input);
    // Photos as a viewer shows them (EXIF orientation applied): boxes are in upright coordinates.
    return [await decodeImage(input as string | Uint8Array, { orientation: 'exif' })];
  }
  if (isSharp(input)) {
    let png: Buffer;
    try {
      png = await input.clone().png().toBuffer();
    } catch (err) {
      throw new TypeError(`${FN}: '${arg}' is a sharp instance that cannot be encoded: ${(err as Error).message}`, { cause: err });
    }
    return [await decodeImage(png)];
  }
  if (ops.isTensor(input)) {
    const t = input as Tensor;
    if (t.dtype !== 'float32' && t.dtype !== 'uint8') throw typeError(FN, arg, 'a float32 (0..1) or uint8 image tensor', t);
    if (!((t.rank === 3 && (t.shape[0] === 3 || t.shape[0] === 1)) || (t.rank === 4 && (t.shape[1] === 3 || t.shape[1] === 1))))
      throw rangeError(FN, arg, 'an image tensor [C, H, W] or [N, C, H, W] with C = 1 or 3', t);
    if (t.dtype === 'float32') checkUnitPixels(FN, arg, t.data() as Float32Array, 'a uint8 tensor');
    // One image per batch entry (split's number is a section count: N sections of one image).
    const items = t.rank === 3 ? [t] : ops.split(t, t.shape[0], 0);
    try {
      return items.map((item) => grayToRgb(tensorToImage(item) as RawImage<Uint8Array>));
    } finally {
      if (items[0] !== t) items.forEach((item) => item.dispose());
    }
  }
  if (isRawImage(input)) {
    const { width, height, channels, data } = input;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || (channels !== 1 && channels !== 3) || data.length !== width * height * channels)
      throw rangeError(FN, arg, 'decoded pixels with width * height * channels (1 or 3) values', `${width}x${height}x${channels} with ${data.length} values`, true);
    if (!(data instanceof Uint8Array)) checkUnitPixels(FN, arg, data, 'a Uint8Array');
    const bytes = data instanceof Uint8Array ? data : Uint8Array.from(data, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
    return [grayToRgb({ data: bytes, width, height, channels })];
  }
  throw typeError(FN, arg, 'an image: a file path, encoded bytes, a sharp instance, decoded pixels {data, width, height, channels} or an image Tensor', input);
}

/** The images of a detect call as 8-bit RGB, one checked face box per image, and whether the call is a batch. */
async function imagesAndBoxes(FN: string, input: unknown, box: Box | Box[] | undefined): Promise<{ images: RawImage<Uint8Array>[]; boxes: Box[]; batched: boolean }> {
  // [x, y, w, h] would otherwise be read as four boxes and reported as a batch-size mismatch.
  if (Array.isArray(box) && box.length > 0 && box.every((v) => typeof v === 'number'))
    throw typeError(FN, 'box', 'a box object { x, y, width, height } (or an array of such boxes, one per image)', `[${box.join(', ')}]`, true);
  const batched = Array.isArray(input) || (ops.isTensor(input) && (input as Tensor).rank === 4 && (input as Tensor).shape[0] > 1);
  if (Array.isArray(input) && input.length === 0) throw rangeError(FN, 'input', 'a non-empty array of images', input);
  const images: RawImage<Uint8Array>[] = [];
  if (Array.isArray(input)) for (const [i, item] of input.entries()) images.push(...(await toRgb(item, `input[${i}]`, FN)));
  else images.push(...(await toRgb(input, 'input', FN)));
  let boxes: Box[];
  if (box === undefined) boxes = images.map((img) => ({ x: 0, y: 0, width: img.width, height: img.height }));
  else if (Array.isArray(box)) {
    if (box.length !== images.length) throw rangeError(FN, 'box', `one box per image (${images.length})`, `${box.length} boxes`, true);
    boxes = box.map((b, i) => checkBox(FN, `box[${i}]`, b));
  } else {
    const b = checkBox(FN, 'box', box);
    boxes = images.map(() => b);
  }
  images.forEach((img, i) => checkBox(FN, Array.isArray(box) ? `box[${i}]` : 'box', boxes[i], img, images.length === 1 ? 'the image' : `input[${i}]`));
  return { images, boxes, batched };
}

/** A loaded landmark model. */
export class LandmarkDetector {
  constructor(readonly name: string, readonly network: HeatmapUNet, readonly spec: LandmarkModelSpec, readonly device: string, readonly file: string) {}

  /** The model input side (32 for lr68, 128 for hr68). */
  get inputSize(): number {
    return this.spec.inputSize;
  }

  /** The network input for `box` of `img`: the square crop with the margin, resized; and the image -> input map. */
  crop(img: RawImage<Uint8Array>, box: Box): { pixels: RawImage<Float32Array>; affine: Affine } {
    const S = this.spec.inputSize;
    const affine = cropAffine(box, [S, S], this.spec.margin);
    const pixels = warpAffine(img, affine, S, S, { fill: 'replicate', antialias: true }) as unknown as RawImage;
    const out = new Float32Array(pixels.data.length);
    for (let i = 0; i < out.length; i++) out[i] = pixels.data[i];
    return { pixels: { data: out, width: S, height: S, channels: 3 }, affine };
  }

  /**
   * 68 points on the face in `box` of `input` (default: the whole image). An array input (or a
   * batched tensor) runs as one batch and returns one result per image.
   */
  detect(input: LandmarkInput, options?: DetectOptions): Promise<LandmarkResult>;
  detect(input: LandmarkInput[], options?: DetectOptions): Promise<LandmarkResult[]>;
  async detect(input: LandmarkInput | LandmarkInput[], options: DetectOptions = {}): Promise<LandmarkResult | LandmarkResult[]> {
    // The detector is freed through its network (detector.network.dispose()): without this check
    // the freed weights surface deep inside the first layer, naming only its op.
    if (this.network.disposed)
      throw new Error(`${FN}: the '${this.name}' detector's network was disposed`);
    checkKeys(FN, options, DETECT_OPTION_KEYS);
    const flip = options.flip ?? true;
    if (typeof flip !== 'boolean') throw typeError(FN, 'flip', 'a boolean', flip);
    const { images, boxes, batched } = await imagesAndBoxes(FN, input, options.box);
    const refine = options.refine ?? 'quarter';
    const S = this.spec.inputSize;
    const crops = images.map((img, i) => this.crop(img, boxes[i]));
    const n = images.length, plane = S * S;
    // The crops in [-1, 1], followed (with flip) by their mirror images.
    const batch = new Float32Array((flip ? 2 : 1) * n * 3 * plane);
    crops.forEach(({ pixels }, i) => {
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++) {
            const v = (pixels.data[(y * S + x) * 3 + c] / 255) * 2 - 1;
            batch[(i * 3 + c) * plane + y * S + x] = v;
            if (flip) batch[((n + i) * 3 + c) * plane + y * S + (S - 1 - x)] = v;
          }
    });
    this.network.eval();
    const decoded = ops.noGrad(() => ops.scope(() => {
      let heatmaps = this.network.forward(ops.tensor(batch, [batch.length / (3 * plane), 3, S, S], 'float32', this.network.device as ops.DeviceSpec));
      if (flip) heatmaps = averageMirrored(heatmaps, n, mirrorMapFor(this.spec.points));
      // Every point gets its argmax, however weak: the peak value is reported as the confidence.
      return decodeHeatmaps(heatmaps, { background: true, refine, minPeak: -Infinity, affines: crops.map((c) => c.affine) });
    }));
    const count = decoded.count;
    const results = images.map((_, i): LandmarkResult => ({
      points: Array.from({ length: count }, (_, k): [number, number] => [decoded.points[(i * count + k) * 2], decoded.points[(i * count + k) * 2 + 1]]),
      confidence: Array.from(decoded.confidence.subarray(i * count, (i + 1) * count)),
      box: boxes[i],
    }));
    return batched ? results : results[0];
  }
}

/**
 * Heatmaps [2n, P + 1, S, S] of n crops followed by their mirror images -> [n, P + 1, S, S]: the
 * mean of each crop's maps and its mirror's maps flipped back, point k taking the mirror's
 * map of its left-right partner (the background map stays in place).
 */
export function averageMirrored(heatmaps: Tensor, n: number, mirror: readonly number[]): Tensor {
  const [total, maps, h, w] = heatmaps.shape;
  if (heatmaps.rank !== 4 || total !== 2 * n || maps !== mirror.length + 1)
    throw rangeError('averageMirrored', 'heatmaps', `[${2 * n}, ${mirror.length + 1}, H, W]`, heatmaps);
  const src = heatmaps.data() as Float32Array;
  const out = new Float32Array(n * maps * h * w);
  const plane = h * w;
  for (let i = 0; i < n; i++)
    for (let m = 0; m < maps; m++) {
      const partner = m < mirror.length ? mirror[m] : m;
      const direct = (i * maps + m) * plane, mirrored = ((n + i) * maps + partner) * plane, dst = (i * maps + m) * plane;
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[dst + y * w + x] = 0.5 * (src[direct + y * w + x] + src[mirrored + y * w + (w - 1 - x)]);
    }
  return ops.tensor(out, [n, maps, h, w]);
}

/** The names of the shipped models. */
export function landmarkModels(): string[] {
  return Object.keys(SHIPPED_MODELS);
}

/**
 * Loads a landmark model: a shipped one by name ('lr68', 'hr68'), its file checked against the
 * recorded sha256, or `options.weights`, a custom file of the same architecture family.
 */
export async function loadLandmarkDetector(name: string, options: LoadDetectorOptions = {}): Promise<LandmarkDetector> {
  const fn = 'loadLandmarkDetector';
  if (typeof name !== 'string') throw typeError(fn, 'name', `a model name (${landmarkModels().join(', ')})`, name);
  checkKeys(fn, options, LOAD_DETECTOR_OPTION_KEYS);
  const shipped = SHIPPED_MODELS[name];
  if (!shipped && options.weights === undefined) throw rangeError(fn, 'name', `one of ${landmarkModels().join(', ')} (or pass { weights } for a custom file)`, name);
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string') throw typeError(fn, 'device', "a device id such as 'cpu'", device);
  const known = ops.devices().map((d) => d.id);
  const deviceOk = known.includes(device) || (device === 'cuda' && known.some((d) => d.startsWith('cuda')));
  if (!deviceOk) throw rangeError(fn, 'device', `one of the devices here (${known.join(', ')})`, device);
  let loaded;
  if (options.weights !== undefined) {
    if (typeof options.weights !== 'string' || options.weights === '') throw typeError(fn, 'weights', 'a weights file path', options.weights);
    loaded = loadLandmarkWeights(options.weights, shipped ? { fallbackSpec: shipped } : {});
  } else {
    if (!shipped.sha256) throw new Error(`${fn}: the '${name}' weights have not been recorded in this build (no sha256); pass { weights } for a file`);
    loaded = loadLandmarkWeights(join(weightsDir(), shipped.file), { expectedSha256: shipped.sha256 });
  }
  loaded.network.to(device as ops.DeviceSpec);
  return new LandmarkDetector(name, loaded.network, loaded.spec, device, loaded.file);
}

// ---------------------------------------------------------------------------------------------
// LGCN

/** Options of {@link LgcnDetector.detect}. */
export interface LgcnDetectOptions {
  /** The face box in image pixels (default: the whole image); for a batch, one box for all or one per image. */
  box?: Box | Box[];
  /**
   * Fit the PCA shape model to the heatmaps (default true when the weights file has one). Without
   * it each point is its heatmap's arg-max with quarter-pixel refinement.
   */
  shapeModel?: boolean;
  /** Options of the shape-model fit (the paper's values by default). */
  fit?: ShapeFitOptions;
}
const LGCN_DETECT_OPTION_KEYS: Record<keyof LgcnDetectOptions, true> = { box: true, shapeModel: true, fit: true };
const SHAPE_FIT_OPTION_KEYS: Record<keyof ShapeFitOptions, true> = { windowSizes: true, thresh: true, minWeight: true, useOrderingConstraints: true, snapToMaxima: true, refineRadius: true };

const LGCN_DETECT = 'LgcnDetector.detect';

/**
 * A loaded LGCN: the face box is cropped as a square with the model's margin, resized to the
 * grey input (96x96), the network's heatmaps are fitted with the shape model (or decoded by
 * arg-max) and the points mapped back to the image.
 */
export class LgcnDetector {
  constructor(readonly network: Lgcn, readonly shapeModel: PcaShapeModel | null, readonly spec: LgcnModelSpec, readonly device: string, readonly file: string) {}

  /** The network input side. */
  get inputSize(): number {
    return this.network.config.inputSize;
  }

  /** The grey network input for `box` of `img` ([-1, 1], row-major S x S) and the image -> input map. */
  crop(img: RawImage<Uint8Array>, box: Box): { pixels: Float32Array; affine: Affine } {
    const S = this.inputSize;
    const affine = cropAffine(box, [S, S], this.spec.margin);
    const rgb = warpAffine(img, affine, S, S, { fill: 'replicate', antialias: true }) as RawImage<Uint8Array>;
    const grey = rgbToGrayPixels(Float32Array.from(rgb.data), S * S);
    return { pixels: grey.map((v) => (v / 255) * 2 - 1), affine };
  }

  /** 68 points on the face in `box` of `input`; an array input (or a batched tensor) returns one result per image. */
  detect(input: LandmarkInput, options?: LgcnDetectOptions): Promise<LandmarkResult>;
  detect(input: LandmarkInput[], options?: LgcnDetectOptions): Promise<LandmarkResult[]>;
  async detect(input: LandmarkInput | LandmarkInput[], options: LgcnDetectOptions = {}): Promise<LandmarkResult | LandmarkResult[]> {
    const FN = LGCN_DETECT;
    if (this.network.disposed) throw new Error(`${FN}: the LGCN detector's network (${this.file}) was disposed`);
    checkKeys(FN, options, LGCN_DETECT_OPTION_KEYS);
    // Before the network runs, and even when no shape model is fitted: a misspelt fit key is a mistake either way.
    if (options.fit !== undefined) checkKeys(FN, options.fit, SHAPE_FIT_OPTION_KEYS, 'options.fit');
    const useModel = options.shapeModel ?? this.shapeModel !== null;
    if (typeof useModel !== 'boolean') throw typeError(FN, 'shapeModel', 'a boolean', useModel);
    if (useModel && !this.shapeModel) throw rangeError(FN, 'shapeModel', `false: ${this.file} holds no shape model`, true);
    const { images, boxes, batched } = await imagesAndBoxes(FN, input, options.box);
    const S = this.inputSize, plane = S * S, n = images.length;
    const crops = images.map((img, i) => this.crop(img, boxes[i]));
    const batch = new Float32Array(n * plane);
    crops.forEach((c, i) => batch.set(c.pixels, i * plane));
    this.network.eval();
    const heatmaps = ops.noGrad(() => ops.scope(() => {
      const out = this.network.forward(ops.tensor(batch, [n, 1, S, S], 'float32', this.network.device as ops.DeviceSpec));
      return Float32Array.from(out.output.data() as Float32Array);
    }));
    const K = this.network.config.numLandmarks;
    const results: LandmarkResult[] = [];
    for (let i = 0; i < n; i++) {
      const maps = heatmaps.subarray(i * K * plane, (i + 1) * K * plane);
      let points: ArrayLike<number>;
      let confidence: ArrayLike<number>;
      if (useModel) {
        const fit = this.shapeModel!.fitHeatmaps(maps, options.fit ?? {});
        points = transformPoints(fit.points, invertAffine(crops[i].affine));
        confidence = fit.confidence;
      } else {
        const d = decodeHeatmaps(maps, [1, K, S, S], { refine: 'quarter', minPeak: -Infinity, affines: crops[i].affine });
        points = d.points;
        confidence = d.confidence;
      }
      results.push({
        points: Array.from({ length: K }, (_, k): [number, number] => [points[2 * k], points[2 * k + 1]]),
        confidence: Array.from(confidence),
        box: boxes[i],
      });
    }
    return batched ? results : results[0];
  }
}

/**
 * Loads an LGCN written by saveLgcnWeights (the network, its config and its shape model) as a
 * detector. A file of another architecture is refused, naming the file.
 */
export async function loadLgcnDetector(weights: string, options: { device?: string } = {}): Promise<LgcnDetector> {
  const fn = 'loadLgcnDetector';
  if (typeof weights !== 'string' || weights === '') throw typeError(fn, 'weights', 'a weights file path', weights);
  checkKeys(fn, options, ['device']);
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string') throw typeError(fn, 'device', "a device id such as 'cpu'", device);
  const known = ops.devices().map((d) => d.id);
  if (!(known.includes(device) || (device === 'cuda' && known.some((d) => d.startsWith('cuda'))))) throw rangeError(fn, 'device', `one of the devices here (${known.join(', ')})`, device);
  const loaded = loadLgcnWeights(weights);
  loaded.network.to(device as ops.DeviceSpec);
  return new LgcnDetector(loaded.network, loaded.shapeModel, loaded.spec, device, loaded.file);
}
