// Shipped and custom weight files: the model registry (architecture, input size, crop margin,
// the file and its sha256), writing a trained heatmap network to safetensors with its
// architecture in the metadata, and reading one back with integrity and shape checks.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rangeError, typeError } from '@lrface/cuda-core';
import { decodeSafetensors, saveSafetensors } from '@lrface/nn';
import { HeatmapUNet } from './models.js';
import type { UNetShape } from './presets.js';

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

/**
 * Reads a landmark weights file. With `expectedSha256` the file's digest must match (a shipped
 * file); the spec comes from the file's metadata, else from `fallbackSpec`. Every tensor must
 * match the network the spec describes. Errors name the file and what is wrong.
 */
export function loadLandmarkWeights(file: string, options: { expectedSha256?: string; fallbackSpec?: LandmarkModelSpec } = {}): LoadedLandmarkWeights {
  const fn = 'loadLandmarkWeights';
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
  if (options.expectedSha256) {
    const digest = sha256Hex(bytes);
    if (digest !== options.expectedSha256)
      throw new Error(`${file}: corrupt weights file: sha256 ${digest} does not match the recorded ${options.expectedSha256} (${bytes.length} bytes; re-install the package or pass { weights } for a custom file)`);
  }
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes, file);
  } catch (err) {
    throw new Error(`${file}: corrupt weights file: ${(err as Error).message.replace(`${file}: `, '')}`, { cause: err });
  }
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
  const expected = network.stateDict();
  for (const [name, t] of expected) {
    const got = decoded.tensors.get(name);
    if (!got) throw new Error(`${file}: weights file lacks tensor '${name}' of the ${spec.inputSize}x${spec.inputSize} ${spec.points}-point model`);
    if (got.shape.length !== t.shape.length || got.shape.some((d, i) => d !== t.shape[i]))
      throw new Error(`${file}: tensor '${name}' has shape [${got.shape.join(',')}], the model needs [${t.shape.join(',')}]`);
  }
  for (const name of decoded.tensors.keys()) if (!expected.has(name)) throw new Error(`${file}: unexpected tensor '${name}' (not part of the model)`);
  network.loadStateDict(decoded.tensors);
  for (const t of decoded.tensors.values()) t.dispose();
  network.eval();
  return { network, spec, file };
}
