// The user-facing API: a registry of models by name and loadSuperResolver(name), whose
// upscale() takes file paths, encoded bytes, sharp instances, RawImages or tensors (or an array
// of them) and returns 8-bit images ready to encode.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildInfo, devices, isTensor, rangeError, typeError, type DeviceSpec, type Tensor } from '@lrface/cuda-core';
import { checkImage, checkKeys, checkUnitPixels, decodeImage, encodeImage, writeImage, type RawImage } from '@lrface/datasets';
import { createNetwork, type ArchName, type SrNetwork } from './models.js';
import { upscaleImage, type UpscaledImage } from './pipeline.js';
import { TILE_OPTION_KEYS, type TileOptions } from './tiler.js';
import { WeightsFileError, loadSrNetwork } from './weights.js';

/** A registered model: an architecture, its config, and shipped weights if any. */
export interface RegistryEntry {
  arch: ArchName;
  config: Record<string, unknown>;
  /** Scales the model handles (the first is the default). */
  scales: number[];
  description: string;
  /** Shipped weights (file name under packages/sr/weights) and their sha256. */
  weights?: { file: string; sha256: string };
}

/** Folder of the shipped weight files. */
export const WEIGHTS_DIR = fileURLToPath(new URL('../weights/', import.meta.url));

export const MODEL_REGISTRY: Readonly<Record<string, RegistryEntry>> = Object.freeze({
  bicubic: { arch: 'bicubic', config: {}, scales: [2, 3, 4, 8], description: 'MATLAB-compatible bicubic interpolation (no network)' },
  srcnn: { arch: 'srcnn', config: { kernels: [9, 1, 5] }, scales: [3, 2, 4], description: 'SRCNN 9-1-5 (Dong et al.), Y channel' },
  'srcnn-955': { arch: 'srcnn', config: { kernels: [9, 5, 5] }, scales: [3, 2, 4], description: 'SRCNN 9-5-5 (Dong et al.), Y channel' },
  srnet: { arch: 'srnet', config: {}, scales: [4], description: 'SRNET of Wu et al. (Table 1), RGB' },
  vdsr: { arch: 'vdsr', config: {}, scales: [2, 3, 4], description: 'VDSR, 20 layers, global residual (Kim et al.), Y channel' },
  drcn: { arch: 'drcn', config: {}, scales: [2, 3, 4], description: 'DRCN, 16 recursions with shared weights (Kim et al.), Y channel' },
  srinc: { arch: 'srinc', config: { scales: [4] }, scales: [4], description: 'SRINC (Knoche et al.), inception modules from config, Y channel' },
  'srinc-f': { arch: 'srinc-f', config: { scales: [2, 3, 4] }, scales: [2, 3, 4], description: 'SRINC-F: SRINC trained on a set of scales' },
  'face-x4': {
    arch: 'vdsr',
    config: {},
    scales: [4],
    description: 'VDSR fine-tuned on real face crops for x4 (shipped weights)',
    weights: { file: 'face-x4.safetensors', sha256: '5063555338b824cae0efeba1c9bb0bba4c91dde7cf75e3c97a0813b80fec5094' },
  },
});

export interface LoadOptions extends TileOptions {
  /** Weights file (.safetensors or PyTorch .pth) instead of the shipped ones. */
  weights?: string;
  /** 'cpu' (default), a device id from @lrface/cuda-core's devices() such as 'cuda:0', or 'cuda' for the first GPU. */
  device?: string;
  /** Build the network with fresh (untrained) weights when none are shipped, e.g. to train it. */
  untrained?: boolean;
}

/** What {@link SuperResolver.upscale} accepts for one image. */
export type SrInput = string | Uint8Array | RawImage | Tensor | { raw(): unknown; toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }> };

export interface UpscaleOptions extends TileOptions {
  /** Integer factor (default: the model's first scale). */
  scale?: number;
}

/**
 * One super-resolved image: `image` holds 8-bit interleaved pixels (RGB, or one channel for grey
 * input), `y` its BT.601 Y channel, `tensor` the network's float output [1, C, H, W] in [0, 1].
 * `png()` encodes the image, `save(file)` writes it (format from the extension).
 */
export interface SrResult extends UpscaledImage {
  scale: number;
  model: string;
  png(): Promise<Buffer>;
  save(file: string): Promise<void>;
}

function isSharp(v: unknown): v is Extract<SrInput, { raw(): unknown }> {
  return !!v && typeof v === 'object' && typeof (v as { raw?: unknown }).raw === 'function' && typeof (v as { toBuffer?: unknown }).toBuffer === 'function';
}

/** Decodes any accepted input to an 8-bit or float [0, 1] image. */
export async function readInput(input: SrInput): Promise<RawImage> {
  // Photos as a viewer shows them (EXIF orientation applied).
  if (typeof input === 'string' || input instanceof Uint8Array) return decodeImage(input, { orientation: 'exif' });
  if (isTensor(input)) {
    const t = input;
    const shape = t.rank === 4 && t.shape[0] === 1 ? t.shape.slice(1) : t.shape;
    if (t.dtype !== 'float32' || shape.length !== 3 || (shape[0] !== 1 && shape[0] !== 3))
      throw rangeError('upscale', 'input', 'a float32 [1, C, H, W] or [C, H, W] tensor with C = 1 or 3, values in [0, 1]', `${t.dtype} [${t.shape.join(',')}]`, true);
    const [c, h, w] = shape;
    const src = t.data() as Float32Array;
    const d = new Float32Array(c * h * w);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) d[p * c + ch] = src[ch * h * w + p];
    checkUnitPixels('upscale', 'input', d);
    return { data: d, width: w, height: h, channels: c };
  }
  if (isSharp(input)) {
    const s = input as unknown as { removeAlpha(): typeof s; toColourspace(c: string): typeof s; raw(): typeof s; toBuffer(o: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }> };
    const { data, info } = await s.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
  }
  if (input && typeof input === 'object' && 'data' in input) {
    const img = checkImage('upscale', 'input', input);
    if (img.data instanceof Float32Array) checkUnitPixels('upscale', 'input', img.data);
    return img;
  }
  throw typeError('upscale', 'input', 'a file path, a Buffer, a sharp instance, a RawImage or a tensor', input);
}

const UPSCALE_KEYS = { scale: true, ...TILE_OPTION_KEYS };
const LOAD_KEYS = { weights: true, device: true, untrained: true, ...TILE_OPTION_KEYS };

export class SuperResolver {
  private disposed = false;

  constructor(
    readonly name: string,
    readonly network: SrNetwork,
    readonly scales: number[],
    private readonly tileDefaults: TileOptions = {},
  ) {
    checkKeys('SuperResolver', tileDefaults, TILE_OPTION_KEYS, 'tileDefaults');
  }

  /** Super-resolves one input (or each of an array of inputs). */
  upscale(input: SrInput, options?: UpscaleOptions): Promise<SrResult>;
  upscale(input: SrInput[], options?: UpscaleOptions): Promise<SrResult[]>;
  async upscale(input: SrInput | SrInput[], options: UpscaleOptions = {}): Promise<SrResult | SrResult[]> {
    // Freed weights would otherwise fail deep inside the first layer, naming only its op; the
    // network may also have been disposed directly (sr.network.dispose()).
    if (this.disposed || this.network.disposed)
      throw new Error(`SuperResolver.upscale: the '${this.name}' super-resolver was disposed`);
    if (options === null || typeof options !== 'object') throw typeError('upscale', 'options', 'an object', options);
    checkKeys('upscale', options, UPSCALE_KEYS);
    const scale = options.scale ?? this.scales[0];
    if (typeof scale !== 'number' || !Number.isInteger(scale)) throw typeError('upscale', 'scale', 'an integer', scale);
    if (scale < 1 || scale > 16) throw rangeError('upscale', 'scale', 'in [1, 16]', scale);
    const { tile, overlap, batchSize, blend } = { ...this.tileDefaults, ...options };
    const one = async (x: SrInput): Promise<SrResult> => {
      const img = await readInput(x);
      const out = upscaleImage(this.network, img, scale, { tile, overlap, batchSize, blend });
      return {
        ...out,
        scale,
        model: this.name,
        png: () => encodeImage(out.image),
        save: (file: string) => writeImage(file, out.image, /\.jpe?g$/i.test(file) ? { format: 'jpeg', quality: 95 } : {}),
      };
    };
    if (Array.isArray(input)) {
      const results: SrResult[] = [];
      for (const x of input) results.push(await one(x));
      return results;
    }
    return one(input);
  }

  /** Frees the network's weights; upscale() throws afterwards. */
  dispose(): void {
    // Bicubic has no weights to free: the flag keeps upscale() failing after dispose() all the same.
    this.disposed = true;
    this.network.dispose();
  }
}

/** Names of the registered models. */
export function listModels(): string[] {
  return Object.keys(MODEL_REGISTRY);
}

/**
 * Loads a registered model by name. Shipped weights are checked against their sha256;
 * `{ weights }` loads a .safetensors or PyTorch .pth file of the model's architecture instead
 * (the public VDSR checkpoint loads as 'vdsr'; a file recording another architecture is refused).
 * Architectures without shipped weights need `weights` or `untrained: true`. Unknown option keys
 * are a TypeError.
 */
export async function loadSuperResolver(name: string, options: LoadOptions = {}): Promise<SuperResolver> {
  if (typeof name !== 'string') throw typeError('loadSuperResolver', 'name', 'a model name string', name);
  const entry = MODEL_REGISTRY[name];
  if (!entry) throw rangeError('loadSuperResolver', 'name', `one of ${listModels().join(', ')}`, name);
  if (options === null || typeof options !== 'object') throw typeError('loadSuperResolver', 'options', 'an object', options);
  checkKeys('loadSuperResolver', options, LOAD_KEYS);
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string') throw typeError('loadSuperResolver', 'device', "a device id such as 'cpu' or 'cuda:0'", device);
  if (device === 'cuda') {
    const info = buildInfo();
    if (!info.cudaAvailable) throw new Error(`loadSuperResolver: device 'cuda' is not available here (${info.cudaReason || 'no CUDA device'})`);
  }
  // The rule of @lrface/landmarks' loadLandmarkDetector: an id from devices(), or 'cuda' for the first GPU.
  const known = devices().map((d) => d.id);
  if (!known.includes(device) && !(device === 'cuda' && known.some((d) => d.startsWith('cuda'))))
    throw rangeError('loadSuperResolver', 'device', `one of the devices here (${known.join(', ')})`, device);
  const tile: TileOptions = { tile: options.tile, overlap: options.overlap, batchSize: options.batchSize, blend: options.blend };
  let net: SrNetwork;
  let scales = entry.scales;
  if (options.weights !== undefined) {
    const file = options.weights;
    if (typeof file !== 'string') throw typeError('loadSuperResolver', 'weights', 'a non-empty file path', file);
    if (file === '') throw rangeError('loadSuperResolver', 'weights', 'a non-empty file path', file);
    if (entry.arch === 'bicubic') throw rangeError('loadSuperResolver', 'weights', `left out for '${name}' (bicubic interpolation has no weights)`, JSON.stringify(file), true);
    // A file recording another architecture would build that network under this model's name.
    const checkMeta = (meta: { arch?: ArchName }) => {
      if (meta.arch === undefined || meta.arch === entry.arch) return;
      const fits = listModels().filter((m) => MODEL_REGISTRY[m].arch === meta.arch);
      throw new WeightsFileError(file, `holds '${meta.arch}' weights, but '${name}' is a '${entry.arch}' model${fits.length ? ` (load it as ${fits.map((m) => `'${m}'`).join(' or ')})` : ''}`);
    };
    const { net: n, meta } = loadSrNetwork(file, { arch: entry.arch, config: entry.config, checkMeta });
    net = n;
    if (meta.scales?.length) scales = meta.scales;
  } else if (entry.weights) {
    const file = WEIGHTS_DIR + entry.weights.file;
    if (!existsSync(file)) throw new WeightsFileError(file, `the shipped weights of '${name}' are missing (reinstall @lrface/sr)`);
    net = loadSrNetwork(file, { arch: entry.arch, config: entry.config, sha256: entry.weights.sha256 }).net;
  } else if (entry.arch === 'bicubic' || options.untrained) {
    net = createNetwork(entry.arch, entry.config);
  } else {
    throw rangeError('loadSuperResolver', 'weights', `a weights file: '${name}' has no shipped weights (or pass untrained: true)`, undefined, true);
  }
  net.setPadding?.('same');
  net.eval();
  net.to(device as DeviceSpec);
  return new SuperResolver(name, net, scales, tile);
}
