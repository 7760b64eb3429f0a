// Shipped and custom weight files: the model registry (architecture, input size, crop margin,
// the file and its sha256), writing a trained heatmap network to safetensors with its
// architecture in the metadata, and reading one back with integrity and shape checks.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { decodeSafetensors, saveSafetensors } from '@lrface/nn';
import { HeatmapUNet } from './models.js';
import type { UNetShape } from './presets.js';
import { Lgcn, resolveLgcnConfig, type LgcnConfig } from './lgcn.js';
import { PcaShapeModel } from './shape-model.js';

/** What a landmark model needs besides its tensors. */
export interface LandmarkModelSpec {
  /** Points predicted (68). */
  points: number;
  /** Network input side: faces are cropped and resized to inputSize x inputSize. */
  inputSize: number;
  /** Context around the face box, a fraction of its larger side on each side (the corpus crops': 0.2). */
  margin: number;
  /** The U-Net's shape. */
  network: UNetShape;
}

/** A shipped model: its spec and file (in the package's weights/ folder) with the file's sha256. */
export interface ShippedModel extends LandmarkModelSpec {
  file: string;
  sha256: string;
  description: string;
}

const NARROW_UNET: UNetShape = { widths: [16, 32, 32, 64], blocksPerGroup: 2, upsample: 'nearest' };

/** The models trained by this project (see the package README's model cards). */
export const SHIPPED_MODELS: Readonly<Record<string, ShippedModel>> = {
  lr68: {
    points: 68, inputSize: 32, margin: 0.2, network: NARROW_UNET,
    file: 'lr68.safetensors',
    sha256: '9ace8e8806cfbf7bfed9520dc93bfd81008276cec8502fbaa218e90f44405357',
    description: 'G2 on 32x32 faces: supervised pre-training on real HR faces resized to 32x32, then the S4 stage (G1 outputs and subsampled faces as the labelled set, real tiny faces as the unlabelled set, D2 and D3 active)',
  },
  hr68: {
    points: 68, inputSize: 128, margin: 0.2, network: NARROW_UNET,
    file: 'hr68.safetensors',
    sha256: '0ac30f577b2cc863f2a9c911ed72689eedc1e44a9727478035a77269cc5340dd',
    description: 'HR-LD: the U-Net heatmap generator trained supervised on 128x128 faces',
  },
};

/** The folder of the shipped weight files (packages/landmarks/weights). */
export function weightsDir(): string {
  return fileURLToPath(new URL('../weights/', import.meta.url));
}

/** The metadata key holding the spec as JSON. */
const SPEC_KEY = 'lrface.landmarks.spec';
/** The metadata key of an LGCN file: its config and crop margin as JSON. */
const LGCN_KEY = 'lrface.landmarks.lgcn';
/** The metadata key of an LGCN file's PCA shape model (PcaShapeModel.toJSON) as JSON. */
const SHAPE_MODEL_KEY = 'lrface.landmarks.shape-model';

/** Writes a trained heatmap network and its spec to `path` (safetensors, atomically). */
export function saveLandmarkWeights(path: string, network: HeatmapUNet, spec: LandmarkModelSpec, metadata: Record<string, string> = {}): void {
  if (typeof path !== 'string' || path === '') throw typeError('saveLandmarkWeights', 'path', 'a file path', path);
  if (!(network instanceof HeatmapUNet)) throw typeError('saveLandmarkWeights', 'network', 'a HeatmapUNet', network);
  checkSpec('saveLandmarkWeights', spec);
  saveSafetensors(path, network.stateDict(), { ...metadata, [SPEC_KEY]: JSON.stringify(spec) });
}

function checkSpec(fn: string, spec: unknown): LandmarkModelSpec {
  const s = spec as LandmarkModelSpec;
  if (s === null || typeof s !== 'object') throw typeError(fn, 'spec', 'a landmark model spec', spec);
  if (!Number.isInteger(s.points) || s.points < 1) throw rangeError(fn, 'spec.points', 'an integer >= 1', s.points);
  if (!Number.isInteger(s.inputSize) || s.inputSize < 16 || s.inputSize % 16) throw rangeError(fn, 'spec.inputSize', 'a multiple of 16', s.inputSize);
  if (typeof s.margin !== 'number' || !(s.margin >= 0 && s.margin < 2)) throw rangeError(fn, 'spec.margin', 'a number in [0, 2)', s.margin);
  if (s.network === null || typeof s.network !== 'object') throw typeError(fn, 'spec.network', 'a U-Net shape', s.network);
  return s;
}

/** The sha256 of a file's bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A weights file read and checked: the network in eval mode and its spec. */
export interface LoadedLandmarkWeights {
  network: HeatmapUNet;
  spec: LandmarkModelSpec;
  file: string;
}

const LOAD_LANDMARK_WEIGHTS_OPTION_KEYS: Record<'expectedSha256' | 'fallbackSpec', true> = { expectedSha256: true, fallbackSpec: true };
const SAVE_LGCN_WEIGHTS_OPTION_KEYS: Record<'shapeModel' | 'margin' | 'metadata', true> = { shapeModel: true, margin: true, metadata: true };
const LOAD_LGCN_WEIGHTS_OPTION_KEYS: Record<'expectedSha256', true> = { expectedSha256: true };

/**
 * Reads a landmark weights file. With `expectedSha256` the file's digest must match (a shipped
 * file); the spec comes from the file's metadata, else from `fallbackSpec`. Every tensor must
 * match the network the spec describes. Errors name the file and what is wrong.
 */
export function loadLandmarkWeights(file: string, options: { expectedSha256?: string; fallbackSpec?: LandmarkModelSpec } = {}): LoadedLandmarkWeights {
  const fn = 'loadLandmarkWeights';
  checkKeys(fn, options, LOAD_LANDMARK_WEIGHTS_OPTION_KEYS);
  const decoded = readWeightsFile(fn, file, options.expectedSha256);
  if (decoded.metadata[LGCN_KEY] !== undefined && decoded.metadata[SPEC_KEY] === undefined)
    throw new Error(`${file}: holds an LGCN model (saveLgcnWeights), not a U-Net landmark model; load it with loadLgcnDetector or loadLgcnWeights`);
  let spec: LandmarkModelSpec;
  const specText = decoded.metadata[SPEC_KEY];
  if (specText !== undefined) {
    try {
      spec = JSON.parse(specText);
    } catch {
      throw new Error(`${file}: corrupt weights file: metadata '${SPEC_KEY}' is not valid JSON`);
    }
  } else if (options.fallbackSpec) spec = options.fallbackSpec;
  else throw new Error(`${file}: weights file lacks the '${SPEC_KEY}' metadata (the architecture); not a landmark model written by saveLandmarkWeights`);
  try {
    checkSpec(fn, spec);
  } catch (err) {
    throw new Error(`${file}: invalid model spec in the metadata: ${(err as Error).message}`);
  }
  const network = new HeatmapUNet({ inChannels: 3, outChannels: spec.points + 1, ...spec.network });
  loadCheckedState(file, network, decoded.tensors, `the ${spec.inputSize}x${spec.inputSize} ${spec.points}-point model`);
  return { network, spec, file };
}

/** Copies `tensors` into `network` after checking that the names and shapes are exactly the network's; frees them; eval mode. */
function loadCheckedState(file: string, network: HeatmapUNet | Lgcn, tensors: Map<string, Tensor>, what: string): void {
  const expected = network.stateDict();
  try {
    for (const [name, t] of expected) {
      const got = tensors.get(name);
      if (!got) throw new Error(`${file}: weights file lacks tensor '${name}' of ${what}`);
      if (got.shape.length !== t.shape.length || got.shape.some((d, i) => d !== t.shape[i]))
        throw new Error(`${file}: tensor '${name}' has shape [${got.shape.join(',')}], the model needs [${t.shape.join(',')}]`);
    }
    for (const name of tensors.keys()) if (!expected.has(name)) throw new Error(`${file}: unexpected tensor '${name}' (not part of the model)`);
    network.loadStateDict(tensors);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  network.eval();
}

/** Reads and decodes a .safetensors weights file (optionally checking its sha256); errors name the file. */
function readWeightsFile(fn: string, file: string, expectedSha256?: string): ReturnType<typeof decodeSafetensors> {
  if (typeof file !== 'string' || file === '') throw typeError(fn, 'file', 'a weights file path', file);
  if (existsSync(file) && statSync(file).isDirectory()) throw new Error(`${file}: is a directory, not a weights file (pass the .safetensors file in it)`);
  // Other formats (a PyTorch .pth, a .ckpt) would be parsed as safetensors and reported as
  // corrupt with a meaningless header length; say what is wrong before reading anything.
  const ext = extname(file);
  if (ext.toLowerCase() !== '.safetensors')
    throw new RangeError(`${file}: only .safetensors weight files are supported, got ${ext ? `a '${ext}' file` : 'a file without an extension'} (convert it to safetensors, or write one with saveLandmarkWeights)`);
  if (!existsSync(file)) throw new Error(`${file}: weights file not found`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    // Node's messages (EACCES, EISDIR, ...) do not always name the path.
    throw new Error(`${file}: cannot read the weights file: ${(err as Error).message}`, { cause: err });
  }
  if (expectedSha256) {
    const digest = sha256Hex(bytes);
    if (digest !== expectedSha256)
      throw new Error(`${file}: corrupt weights file: sha256 ${digest} does not match the recorded ${expectedSha256} (${bytes.length} bytes; re-install the package or pass { weights } for a custom file)`);
  }
  try {
    return decodeSafetensors(bytes, file);
  } catch (err) {
    throw new Error(`${file}: corrupt weights file: ${(err as Error).message.replace(`${file}: `, '')}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// LGCN

/** What an LGCN weights file holds besides its tensors. */
export interface LgcnModelSpec {
  /** The network's config, every field filled in. */
  network: Required<LgcnConfig>;
  /** Context around the face box, a fraction of its larger side on each side (default 0.2, the corpus crops'). */
  margin: number;
}

/** An LGCN weights file read and checked: the network in eval mode, its spec and shape model (null if the file has none). */
export interface LoadedLgcnWeights {
  network: Lgcn;
  spec: LgcnModelSpec;
  shapeModel: PcaShapeModel | null;
  file: string;
}

function checkShapeModelFits(fn: string, model: PcaShapeModel, config: Required<LgcnConfig>): void {
  if (model.points !== config.numLandmarks || model.imageSize !== config.inputSize)
    throw rangeError(fn, 'shapeModel', `a model of ${config.numLandmarks} points in a ${config.inputSize}x${config.inputSize} frame (the network's)`, `${model.points} points in ${model.imageSize}x${model.imageSize}`, true);
}

/**
 * Writes an LGCN network, its config, the crop margin and (optionally) its PCA shape model to
 * one .safetensors file, atomically. The shape model goes into the metadata as JSON (exact).
 */
export function saveLgcnWeights(path: string, network: Lgcn, options: { shapeModel?: PcaShapeModel | null; margin?: number; metadata?: Record<string, string> } = {}): void {
  const fn = 'saveLgcnWeights';
  if (typeof path !== 'string' || path === '') throw typeError(fn, 'path', 'a file path', path);
  if (!(network instanceof Lgcn)) throw typeError(fn, 'network', 'an Lgcn', network);
  if (network.disposed) throw new Error(`${fn}: the LGCN network ('network') was disposed`);
  if (options === null || typeof options !== 'object') throw typeError(fn, 'options', 'an object', options);
  checkKeys(fn, options, SAVE_LGCN_WEIGHTS_OPTION_KEYS);
  const margin = options.margin ?? 0.2;
  if (typeof margin !== 'number' || !(margin >= 0 && margin < 2)) throw rangeError(fn, 'margin', 'a number in [0, 2)', margin);
  const shapeModel = options.shapeModel ?? null;
  if (shapeModel !== null && !(shapeModel instanceof PcaShapeModel)) throw typeError(fn, 'shapeModel', 'a PcaShapeModel or null', shapeModel);
  if (shapeModel) checkShapeModelFits(fn, shapeModel, network.config);
  const spec: LgcnModelSpec = { network: network.config, margin };
  const metadata: Record<string, string> = { ...(options.metadata ?? {}), [LGCN_KEY]: JSON.stringify(spec) };
  if (shapeModel) metadata[SHAPE_MODEL_KEY] = JSON.stringify(shapeModel.toJSON());
  saveSafetensors(path, network.stateDict(), metadata);
}

/**
 * Reads an LGCN file written by saveLgcnWeights: the config, every tensor checked against the
 * network it describes (the frozen Gaussian kernel included), and the shape model. A file of
 * another architecture, or a corrupt one, is an error naming the file and what is wrong.
 */
export function loadLgcnWeights(file: string, options: { expectedSha256?: string } = {}): LoadedLgcnWeights {
  const fn = 'loadLgcnWeights';
  checkKeys(fn, options, LOAD_LGCN_WEIGHTS_OPTION_KEYS);
  const decoded = readWeightsFile(fn, file, options.expectedSha256);
  const specText = decoded.metadata[LGCN_KEY];
  const drop = () => decoded.tensors.forEach((t) => t.dispose());
  if (specText === undefined) {
    drop();
    if (decoded.metadata[SPEC_KEY] !== undefined) throw new Error(`${file}: holds a U-Net landmark model (saveLandmarkWeights), not LGCN; load it with loadLandmarkDetector`);
    throw new Error(`${file}: weights file lacks the '${LGCN_KEY}' metadata (the architecture); not an LGCN model written by saveLgcnWeights`);
  }
  let network: Lgcn;
  let spec: LgcnModelSpec;
  let shapeModel: PcaShapeModel | null = null;
  try {
    try {
      spec = JSON.parse(specText);
    } catch {
      throw new Error(`${file}: corrupt weights file: metadata '${LGCN_KEY}' is not valid JSON`);
    }
    if (spec === null || typeof spec !== 'object' || typeof spec.margin !== 'number' || !(spec.margin >= 0 && spec.margin < 2))
      throw new Error(`${file}: invalid LGCN spec in the metadata: 'margin' must be a number in [0, 2)`);
    try {
      spec = { network: resolveLgcnConfig(spec.network, fn), margin: spec.margin };
    } catch (err) {
      throw new Error(`${file}: invalid LGCN config in the metadata: ${(err as Error).message}`);
    }
    const shapeText = decoded.metadata[SHAPE_MODEL_KEY];
    if (shapeText !== undefined) {
      try {
        shapeModel = PcaShapeModel.fromJSON(shapeText);
        checkShapeModelFits(fn, shapeModel, spec.network);
      } catch (err) {
        throw new Error(`${file}: invalid shape model in the metadata: ${(err as Error).message}`);
      }
    }
    network = new Lgcn(spec.network);
    // The frozen Gaussian follows from the config; a file whose kernel differs is not what it says.
    const kernel = decoded.tensors.get('kernelConv.weight');
    if (kernel && kernel.shape.join(',') === network.kernelConv.weight.shape.join(',')) {
      const want = network.kernelConv.weight.data() as Float32Array;
      const got = kernel.data() as Float32Array;
      if (want.some((v, i) => !(Math.abs(v - got[i]) <= 1e-6)))
        throw new Error(`${file}: tensor 'kernelConv.weight' is not the Gaussian of the config (sigma ${spec.network.kernelSigma}, size ${spec.network.kernelSize})`);
    }
  } catch (err) {
    drop();
    throw err;
  }
  const S = spec.network.inputSize;
  loadCheckedState(file, network, decoded.tensors, `the ${S}x${S} ${spec.network.numLandmarks}-point LGCN`);
  return { network, spec, shapeModel, file };
}
