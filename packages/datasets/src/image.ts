// Image I/O through sharp (libvips): decoding to interleaved 8-bit pixels, conversion to and
// from NCHW tensors, encoding, and cropping by a box with a margin.
import sharp, { type OutputInfo } from 'sharp';
import { tensor, writeFileAtomic, type Tensor } from '@lrface/cuda-core';
import { DatasetFileError, checkInt, checkKeys, checkNumber, checkOneOf, rangeError, typeError } from './errors.js';
import { rgbToGrayPixels, rgbToYCbCrPixels, rgbToYPixels, yCbCrToRgbPixels } from './color.js';

/** Interleaved (HWC) pixels: uint8 0..255, or float32 (usually 0..1). */
export interface RawImage<T extends Uint8Array | Float32Array = Uint8Array | Float32Array> {
  data: T;
  width: number;
  height: number;
  /** 1 (grey / Y) or 3 (RGB / YCbCr). */
  channels: number;
}

/** An axis-aligned box in pixel coordinates: top-left corner, width and height. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Checks a face box given to `fn` as `arg`: numbers, finite, a positive size and, given the
 * image it is in, overlapping that image. The crop of a box wholly outside its image is border
 * fill only, and whatever is computed from it (points, features) carries no sign of failure.
 * `imageName` says which image in the message (default 'the image').
 */
export function checkBox(fn: string, arg: string, box: unknown, image?: { width: number; height: number }, imageName = 'the image'): Box {
  const b = box as Box;
  if (box === null || typeof box !== 'object' || ![b.x, b.y, b.width, b.height].every((v) => typeof v === 'number'))
    throw typeError(fn, arg, 'a box {x, y, width, height} of numbers', box);
  const text = `{x: ${b.x}, y: ${b.y}, width: ${b.width}, height: ${b.height}}`;
  if (![b.x, b.y, b.width, b.height].every(Number.isFinite) || !(b.width > 0 && b.height > 0))
    throw rangeError(fn, arg, 'a box with finite x, y and a positive width and height', text, true);
  if (image && !(b.x < image.width && b.x + b.width > 0 && b.y < image.height && b.y + b.height > 0))
    throw rangeError(fn, arg, `a box overlapping ${imageName} (${image.width}x${image.height})`, text, true);
  return { x: b.x, y: b.y, width: b.width, height: b.height };
}

/**
 * 'rgb': sRGB; 'y': MATLAB rgb2ycbcr's Y (16..235); 'ycbcr': all three rgb2ycbcr channels;
 * 'gray': MATLAB rgb2gray.
 */
export type ColorMode = 'rgb' | 'y' | 'ycbcr' | 'gray';
const COLOR_MODES = ['rgb', 'y', 'ycbcr', 'gray'] as const;

/** Converts 3-channel RGB pixels to another colour mode (the data type is kept). */
export function convertColor<T extends Uint8Array | Float32Array>(img: RawImage<T>, mode: ColorMode): RawImage<T> {
  checkOneOf('convertColor', 'mode', mode, COLOR_MODES);
  if (mode === 'rgb') return img;
  if (img.channels !== 3) throw rangeError('convertColor', 'img', 'an RGB image (3 channels)', `${img.channels} channels`, true);
  const n = img.width * img.height;
  if (mode === 'y') return { data: rgbToYPixels(img.data, n), width: img.width, height: img.height, channels: 1 };
  if (mode === 'gray') return { data: rgbToGrayPixels(img.data, n), width: img.width, height: img.height, channels: 1 };
  return { data: rgbToYCbCrPixels(img.data, n), width: img.width, height: img.height, channels: 3 };
}

/** YCbCr pixels (MATLAB's convention) back to RGB. */
export function yCbCrToRgb<T extends Uint8Array | Float32Array>(img: RawImage<T>): RawImage<T> {
  if (img.channels !== 3) throw rangeError('yCbCrToRgb', 'img', 'a 3-channel image', `${img.channels} channels`, true);
  return { data: yCbCrToRgbPixels(img.data, img.width * img.height), width: img.width, height: img.height, channels: 3 };
}

/** Checks that a value is a consistent RawImage. */
export function checkImage(fn: string, arg: string, img: unknown): RawImage {
  const i = img as RawImage;
  if (!i || typeof i !== 'object' || !(i.data instanceof Uint8Array || i.data instanceof Float32Array))
    throw typeError(fn, arg, 'an image { data: Uint8Array | Float32Array, width, height, channels }', img);
  if (![i.width, i.height, i.channels].every((v) => Number.isInteger(v) && v >= 0) || i.data.length !== i.width * i.height * i.channels)
    throw rangeError(fn, arg, 'an image whose data length is width*height*channels', `${i.width}x${i.height}x${i.channels} with ${i.data.length} values`, true);
  return i;
}

function sourceName(source: string | Uint8Array): string {
  return typeof source === 'string' ? source : `<${source.length}-byte buffer>`;
}

function wrapSharpError(source: string | Uint8Array, err: unknown): DatasetFileError {
  const msg = (err as Error)?.message ?? String(err);
  const reason = /missing|ENOENT|no such file/i.test(msg) ? 'image not found' : `cannot decode image (${msg})`;
  return new DatasetFileError(sourceName(source), {}, reason, { cause: err });
}

export interface DecodeOptions {
  /** Default 'rgb'. */
  color?: ColorMode;
  /**
   * 'stored' (default): the pixel grid as stored, which dataset annotations refer to (as
   * MATLAB's imread sees it). 'exif': turned upright by the EXIF orientation tag, as image
   * viewers show a phone photo.
   */
  orientation?: 'stored' | 'exif';
}

/**
 * How far float pixels may stray from [0, 1]: bicubic resampling of an image in [0, 1] (an
 * enlarged low-resolution face) overshoots by up to about 0.28 at hard edges (the kernel's
 * negative lobes, in 2-D; real photos by a few hundredths). 8-bit values or mean-subtracted
 * pixels lie far beyond.
 */
export const UNIT_PIXEL_TOLERANCE = 0.3;

/**
 * Rejects float pixels outside [0, 1] (within {@link UNIT_PIXEL_TOLERANCE}) or not finite: 8-bit
 * values passed as floats, or NaN, would otherwise become a white or black image without a word.
 * `eightBit` says where 8-bit values belong ('a Uint8Array', 'a uint8 tensor').
 */
export function checkUnitPixels(fn: string, arg: string, data: ArrayLike<number>, eightBit = 'a Uint8Array'): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v >= -UNIT_PIXEL_TOLERANCE && v <= 1 + UNIT_PIXEL_TOLERANCE) continue;
    const got = Number.isFinite(v) ? `${Number(v.toPrecision(6))} at index ${i}` : `a non-finite value (${v}) at index ${i}`;
    throw rangeError(fn, arg, `float pixels in [0, 1] (8-bit values belong in ${eightBit}, or divide them by 255)`, got, true);
  }
}

/**
 * Decodes an image file or encoded bytes (JPEG, PNG, WebP, TIFF, GIF, ...) to 8-bit pixels.
 * Alpha is dropped; grey and CMYK sources become sRGB first. EXIF orientation is applied only
 * with `orientation: 'exif'`.
 */
export async function decodeImage(source: string | Uint8Array, options: DecodeOptions = {}): Promise<RawImage<Uint8Array>> {
  checkKeys('decodeImage', options, ['color', 'orientation']);
  const color = checkOneOf('decodeImage', 'color', options.color ?? 'rgb', COLOR_MODES);
  const orientation = checkOneOf('decodeImage', 'orientation', options.orientation ?? 'stored', ['stored', 'exif'] as const);
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) throw typeError('decodeImage', 'source', 'a file path or a Uint8Array', source);
  let out: { data: Buffer; info: OutputInfo };
  try {
    let pipeline = sharp(source, { failOn: 'error', limitInputPixels: 1 << 30 });
    if (orientation === 'exif') pipeline = pipeline.rotate();
    out = await pipeline.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw wrapSharpError(source, err);
  }
  const rgb: RawImage<Uint8Array> = {
    data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length),
    width: out.info.width,
    height: out.info.height,
    channels: out.info.channels,
  };
  if (rgb.channels === 1 && color === 'rgb') return grayToRgb(rgb);
  return convertColor(rgb, color);
}

/** A 1-channel image as RGB with three equal channels (an RGB image is returned as it is). */
export function grayToRgb<T extends Uint8Array | Float32Array>(img: RawImage<T>): RawImage<T> {
  if (img.channels !== 1) return img;
  const d = new (img.data.constructor as { new (n: number): T })(img.width * img.height * 3);
  for (let i = 0; i < img.data.length; i++) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = img.data[i];
  return { data: d, width: img.width, height: img.height, channels: 3 };
}

const sizeCache = new Map<string, { width: number; height: number }>();

/** Image width and height from the file header, remembered per path (a few thousand entries). */
export async function imageSize(source: string | Uint8Array): Promise<{ width: number; height: number }> {
  if (typeof source === 'string') {
    const hit = sizeCache.get(source);
    if (hit) return hit;
  }
  const info = await imageInfo(source);
  const size = { width: info.width, height: info.height };
  if (typeof source === 'string') {
    if (sizeCache.size >= 4096) sizeCache.delete(sizeCache.keys().next().value as string);
    sizeCache.set(source, size);
  }
  return size;
}

/**
 * Decodes only an integer region of an image (sharp extracts it natively, so the full-size
 * pixels never reach JavaScript). Parts of the region outside the image are zero.
 */
export async function decodeRegion(source: string | Uint8Array, region: Box, options: DecodeOptions = {}): Promise<RawImage<Uint8Array>> {
  checkKeys('decodeRegion', options, ['color']);
  const color = checkOneOf('decodeRegion', 'color', options.color ?? 'rgb', COLOR_MODES);
  const { x, y, width: w, height: h } = region;
  if (![x, y, w, h].every(Number.isInteger) || w < 1 || h < 1) throw rangeError('decodeRegion', 'region', 'integer x, y and positive integer width, height', `{x: ${x}, y: ${y}, width: ${w}, height: ${h}}`, true);
  const { width: W, height: H } = await imageSize(source);
  const left = Math.max(0, x);
  const top = Math.max(0, y);
  const right = Math.min(W, x + w);
  const bottom = Math.min(H, y + h);
  const channels = color === 'y' || color === 'gray' ? 1 : 3;
  if (right <= left || bottom <= top) return { data: new Uint8Array(w * h * channels), width: w, height: h, channels };
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await sharp(source, { failOn: 'error', limitInputPixels: 1 << 30 })
      .extract({ left, top, width: right - left, height: bottom - top })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw wrapSharpError(source, err);
  }
  let part: RawImage<Uint8Array> = { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length), width: out.info.width, height: out.info.height, channels: out.info.channels };
  if (part.channels === 1) {
    const d = new Uint8Array(part.width * part.height * 3);
    for (let i = 0; i < part.data.length; i++) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = part.data[i];
    part = { ...part, data: d, channels: 3 };
  }
  part = convertColor(part, color);
  if (left === x && top === y && right - left === w && bottom - top === h) return part;
  // Place the decoded part inside a zero canvas of the requested size.
  return cropImage(part, { x: x - left, y: y - top, width: w, height: h }).image;
}

/** Width, height and format of an image without decoding its pixels. */
export async function imageInfo(source: string | Uint8Array): Promise<{ width: number; height: number; channels: number; format: string }> {
  try {
    const m = await sharp(source).metadata();
    return { width: m.width ?? 0, height: m.height ?? 0, channels: m.channels ?? 0, format: m.format ?? 'unknown' };
  } catch (err) {
    throw wrapSharpError(source, err);
  }
}

export interface ToTensorOptions {
  /** 'float32' (default) or 'uint8'. */
  dtype?: 'float32' | 'uint8';
  /** float32 only: divide 8-bit values by 255 (default true). */
  normalize?: boolean;
  /** Add the batch axis: [1, C, H, W] (default) instead of [C, H, W]. */
  batch?: boolean;
}

/** Writes HWC pixels into a CHW float32 array at `offset` (for batching without temporaries). */
export function writeCHW(img: RawImage, out: Float32Array, offset: number, scale = 1): void {
  const { width: w, height: h, channels: c, data } = img;
  const plane = w * h;
  for (let ch = 0; ch < c; ch++) {
    const base = offset + ch * plane;
    for (let p = 0, q = ch; p < plane; p++, q += c) out[base + p] = data[q] * scale;
  }
}

/** An image as an NCHW tensor ([1, C, H, W], or [C, H, W] with batch: false). */
export function imageToTensor(img: RawImage, options: ToTensorOptions = {}): Tensor {
  checkKeys('imageToTensor', options, ['dtype', 'normalize', 'batch']);
  checkImage('imageToTensor', 'img', img);
  const dtype = checkOneOf('imageToTensor', 'dtype', options.dtype ?? 'float32', ['float32', 'uint8'] as const);
  const { width: w, height: h, channels: c } = img;
  const shape = options.batch === false ? [c, h, w] : [1, c, h, w];
  if (dtype === 'uint8') {
    if (!(img.data instanceof Uint8Array)) throw typeError('imageToTensor', 'img', "8-bit pixels for dtype 'uint8'", img.data);
    const out = new Uint8Array(c * h * w);
    const plane = w * h;
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < plane; p++) out[ch * plane + p] = img.data[p * c + ch];
    return tensor(out, shape, 'uint8');
  }
  const out = new Float32Array(c * h * w);
  const scale = img.data instanceof Uint8Array && options.normalize !== false ? 1 / 255 : 1;
  writeCHW(img, out, 0, scale);
  return tensor(out, shape);
}

export interface FromTensorOptions {
  /** Multiply float values by 255 before rounding to 8 bits (default true: values in [0, 1]). */
  denormalize?: boolean;
  /** Return float32 pixels instead of rounded 8-bit ones (default false). */
  float?: boolean;
}

/** An NCHW ([1, C, H, W]) or CHW tensor back to interleaved pixels, rounded and clamped to 8 bits. */
export function tensorToImage(t: Tensor, options: FromTensorOptions = {}): RawImage {
  checkKeys('tensorToImage', options, ['denormalize', 'float']);
  const shape = t.shape;
  if (!(shape.length === 3 || (shape.length === 4 && shape[0] === 1)))
    throw rangeError('tensorToImage', 't', 'a [1, C, H, W] or [C, H, W] tensor', `shape [${shape.join(',')}]`, true);
  const [c, h, w] = shape.slice(-3);
  const src = t.data();
  const plane = h * w;
  if (t.dtype === 'uint8') {
    const out = new Uint8Array(c * plane);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < plane; p++) out[p * c + ch] = src[ch * plane + p];
    return { data: out, width: w, height: h, channels: c };
  }
  const scale = options.denormalize === false ? 1 : 255;
  if (options.float) {
    const out = new Float32Array(c * plane);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < plane; p++) out[p * c + ch] = src[ch * plane + p] * scale;
    return { data: out, width: w, height: h, channels: c };
  }
  const out = new Uint8Array(c * plane);
  for (let ch = 0; ch < c; ch++)
    for (let p = 0; p < plane; p++) {
      const v = src[ch * plane + p] * scale;
      out[p * c + ch] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  return { data: out, width: w, height: h, channels: c };
}

/** Rounds and clamps float pixels (0..255 scale) to 8 bits. */
export function toUint8(img: RawImage, scale = 1): RawImage<Uint8Array> {
  if (img.data instanceof Uint8Array && scale === 1) return img as RawImage<Uint8Array>;
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = img.data[i] * scale;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  return { data: out, width: img.width, height: img.height, channels: img.channels };
}

export interface EncodeOptions {
  /** 'png' (default) or 'jpeg'. */
  format?: 'png' | 'jpeg';
  /** JPEG quality 1..100 (default 75, libjpeg's default). */
  quality?: number;
}

/** Encodes 8-bit pixels (1 or 3 channels) as PNG or baseline JPEG (4:2:0, as libjpeg's defaults). */
export async function encodeImage(img: RawImage, options: EncodeOptions = {}): Promise<Buffer> {
  checkKeys('encodeImage', options, ['format', 'quality']);
  checkImage('encodeImage', 'img', img);
  const format = checkOneOf('encodeImage', 'format', options.format ?? 'png', ['png', 'jpeg'] as const);
  const quality = checkInt('encodeImage', 'quality', options.quality ?? 75, 1, 100);
  if (img.channels !== 1 && img.channels !== 3) throw rangeError('encodeImage', 'img', 'an image with 1 or 3 channels', `${img.channels} channels`, true);
  const u8 = toUint8(img);
  const s = sharp(Buffer.from(u8.data.buffer, u8.data.byteOffset, u8.data.length), { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 } });
  return format === 'png'
    ? s.png().toBuffer()
    : s.jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false, trellisQuantisation: false, overshootDeringing: false, optimiseScans: false, optimiseCoding: true }).toBuffer();
}

export interface CropOptions {
  /**
   * Extra context around the box, as a fraction of its size on each side (0.2 widens a
   * 100-px box by 20 px left and right). Default 0.
   */
  margin?: number;
  /** Grow the shorter side so the crop is square, about the box centre. Default false. */
  square?: boolean;
  /** How pixels outside the image are filled: 'zeros' (default) or 'replicate' (edge pixels). */
  fill?: 'zeros' | 'replicate';
}

/** The integer pixel region a crop covers: the box, widened by the margin (and squared). */
export function cropRegion(box: Box, options: CropOptions = {}): Box {
  const margin = checkNumber('cropRegion', 'margin', options.margin ?? 0, 0);
  let { x, y, width, height } = box;
  if (![x, y, width, height].every(Number.isFinite) || width <= 0 || height <= 0)
    throw rangeError('cropRegion', 'box', 'a box with finite x, y and positive width, height', `{x: ${x}, y: ${y}, width: ${width}, height: ${height}}`, true);
  x -= width * margin;
  y -= height * margin;
  width *= 1 + 2 * margin;
  height *= 1 + 2 * margin;
  if (options.square) {
    const side = Math.max(width, height);
    x -= (side - width) / 2;
    y -= (side - height) / 2;
    width = height = side;
  }
  const left = Math.round(x);
  const top = Math.round(y);
  return { x: left, y: top, width: Math.max(1, Math.round(x + width) - left), height: Math.max(1, Math.round(y + height) - top) };
}

/**
 * Crops decoded pixels to a box widened by a margin. Parts outside the image are zeros or
 * replicated edge pixels. Returns the pixels and the integer region used (in source coordinates),
 * so annotations map into the crop by subtracting region.x / region.y.
 */
export function cropImage<T extends Uint8Array | Float32Array>(img: RawImage<T>, box: Box, options: CropOptions = {}): { image: RawImage<T>; region: Box } {
  checkKeys('cropImage', options, ['margin', 'square', 'fill']);
  checkImage('cropImage', 'img', img);
  const fill = checkOneOf('cropImage', 'fill', options.fill ?? 'zeros', ['zeros', 'replicate'] as const);
  const region = cropRegion(box, options);
  const { width: W, height: H, channels: c } = img;
  if (W === 0 || H === 0) throw rangeError('cropImage', 'img', 'a non-empty image', `${W}x${H}`, true);
  const out = (img.data instanceof Uint8Array ? new Uint8Array(region.width * region.height * c) : new Float32Array(region.width * region.height * c)) as T;
  for (let r = 0; r < region.height; r++) {
    let sy = region.y + r;
    if (sy < 0 || sy >= H) {
      if (fill === 'zeros') continue;
      sy = sy < 0 ? 0 : H - 1;
    }
    const x0 = Math.max(0, region.x);
    const x1 = Math.min(W, region.x + region.width);
    const rowOut = r * region.width * c;
    if (x1 > x0) out.set(img.data.subarray((sy * W + x0) * c, (sy * W + x1) * c), rowOut + (x0 - region.x) * c);
    if (fill === 'replicate') {
      for (let cx = 0; cx < region.width; cx++) {
        const sx = region.x + cx;
        if (sx >= 0 && sx < W) continue;
        const src = (sy * W + (sx < 0 ? 0 : W - 1)) * c;
        for (let k = 0; k < c; k++) out[rowOut + cx * c + k] = img.data[src + k];
      }
    }
  }
  return { image: { data: out, width: region.width, height: region.height, channels: c }, region };
}

/**
 * An image that is read and decoded only when asked for (a dataset sample carries one per
 * image, so listing and shuffling a dataset never touches the pixels).
 */
export class LazyImage {
  /** A file path or encoded bytes. */
  readonly source: string | Uint8Array;
  constructor(source: string | Uint8Array) {
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) throw typeError('LazyImage', 'source', 'a file path or a Uint8Array', source);
    this.source = source;
  }

  /** The file path, or a description of the buffer. */
  get name(): string {
    return sourceName(this.source);
  }

  /** Decodes only a region (see {@link decodeRegion}). */
  decodeRegion(region: Box, options: DecodeOptions = {}): Promise<RawImage<Uint8Array>> {
    return decodeRegion(this.source, region, options);
  }

  /** Decodes the pixels (see {@link decodeImage}). */
  decode(options: DecodeOptions = {}): Promise<RawImage<Uint8Array>> {
    return decodeImage(this.source, options);
  }

  /** Size and format without decoding. */
  info(): Promise<{ width: number; height: number; channels: number; format: string }> {
    return imageInfo(this.source);
  }

  /** Decodes straight to an NCHW tensor. */
  async tensor(options: DecodeOptions & ToTensorOptions = {}): Promise<Tensor> {
    const { color, ...rest } = options;
    return imageToTensor(await this.decode(color ? { color } : {}), rest);
  }

  /** Decodes and crops to a box with a margin (see {@link cropImage}). */
  async crop(box: Box, options: CropOptions & DecodeOptions = {}): Promise<{ image: RawImage<Uint8Array>; region: Box }> {
    const { color, ...rest } = options;
    return cropImage(await this.decode(color ? { color } : {}), box, rest);
  }
}

/**
 * Writes 8-bit pixels to a PNG or JPEG file: the format follows the extension (.png, .jpg,
 * .jpeg), or options.format for other names. An extension naming another format than the one
 * written is an error, so a file's name never lies about its bytes.
 */
export async function writeImage(file: string, img: RawImage, options: EncodeOptions = {}): Promise<void> {
  if (typeof file !== 'string' || file === '') throw typeError('writeImage', 'file', 'a non-empty path string', file);
  const ext = /\.(png|jpe?g)$/i.exec(file)?.[1].toLowerCase();
  const byExtension = ext === undefined ? undefined : ext === 'png' ? 'png' : 'jpeg';
  if (options.format === undefined && byExtension === undefined)
    throw rangeError('writeImage', 'file', "a name ending in .png, .jpg or .jpeg (the formats written), or options.format", file);
  if (options.format !== undefined && byExtension !== undefined && options.format !== byExtension)
    throw rangeError('writeImage', 'file', `a name matching format '${options.format}'`, file);
  const format = options.format ?? byExtension;
  // Atomically: an interrupted write leaves the previous file, and a file linked to it unchanged.
  writeFileAtomic(file, await encodeImage(img, { ...options, format }), 'writeImage');
}
