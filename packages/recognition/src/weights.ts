// Weight files of recognition networks: our .safetensors (tensors + metadata naming the
// architecture and its config, so the file alone rebuilds the network) and PyTorch checkpoints
// of the public code (LightCNN's released .pth.tar, whose keys carry DataParallel's 'module.').
// Every error names the file and what is wrong.
import { readFileSync } from 'node:fs';
import type { Tensor } from '@lrface/cuda-core';
import { checkKeys, typeError } from '@lrface/cuda-core';
import { decodeSafetensors, encodeSafetensors, loadTorchStateDict, writeFileAtomic } from '@lrface/nn';
import { RECOGNITION_ARCHS, createRecognitionNetwork, type RecognitionArch, type RecognitionNetwork } from './models.js';

const FORMAT = 'lrface-recognition-1';

/** An error about a weights file: the message starts with the file. */
export class RecognitionWeightsError extends Error {
  constructor(readonly file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'RecognitionWeightsError';
  }
}

/** Writes a network's weights, architecture and config to a .safetensors file atomically. */
export function saveRecognitionWeights(file: string, network: RecognitionNetwork, meta: { note?: string } = {}): void {
  if (typeof file !== 'string' || file === '') throw typeError('saveRecognitionWeights', 'file', 'a path string', file);
  if (!network || !RECOGNITION_ARCHS.includes(network.arch)) throw typeError('saveRecognitionWeights', 'network', 'a recognition network', network);
  checkKeys('saveRecognitionWeights', meta, SAVE_META_KEYS, 'meta');
  const metadata: Record<string, string> = { format: FORMAT, arch: network.arch, config: JSON.stringify(network.config) };
  if (meta.note) metadata.note = meta.note;
  writeFileAtomic(file, encodeSafetensors(network.stateDict(), metadata), 'saveRecognitionWeights');
}

export interface LoadRecognitionOptions {
  /** For PyTorch checkpoints, which carry no architecture: the network to build. */
  arch?: RecognitionArch;
  /** Its config (e.g. { numClasses: 79077 } for LightCNN's released MS-Celeb-1M head). */
  config?: Record<string, unknown>;
}

const LOAD_RECOGNITION_OPTION_KEYS: Record<keyof LoadRecognitionOptions, true> = { arch: true, config: true };
const SAVE_META_KEYS: Record<'note', true> = { note: true };

function torchTensors(file: string): Map<string, Tensor> {
  let tensors: Map<string, Tensor>;
  try {
    tensors = loadTorchStateDict(file);
  } catch (err) {
    throw new RecognitionWeightsError(file, `not a usable PyTorch checkpoint (${(err as Error).message})`, { cause: err });
  }
  // Checkpoints saved from nn.DataParallel prefix every key with 'module.'.
  const stripped = new Map<string, Tensor>();
  for (const [k, v] of tensors) stripped.set(k.startsWith('module.') ? k.slice('module.'.length) : k, v);
  return stripped;
}

/**
 * Builds the network a weights file describes and loads its weights: our .safetensors files
 * name their architecture; PyTorch checkpoints (.pth, .pt, .pth.tar) need `options.arch`.
 * Every tensor must match the network by name and shape.
 */
export function loadRecognitionNetwork(file: string, options: LoadRecognitionOptions = {}): RecognitionNetwork {
  if (typeof file !== 'string' || file === '') throw typeError('loadRecognitionNetwork', 'file', 'a path string', file);
  checkKeys('loadRecognitionNetwork', options, LOAD_RECOGNITION_OPTION_KEYS);
  let tensors: Map<string, Tensor>;
  let arch: RecognitionArch | undefined = options.arch;
  let config: Record<string, unknown> = options.config ?? {};
  if (/\.(pth|pt|tar)$/i.test(file)) {
    if (!arch) throw new RecognitionWeightsError(file, `a PyTorch checkpoint names no architecture: pass options.arch (${RECOGNITION_ARCHS.join(', ')})`);
    tensors = torchTensors(file);
  } else if (/\.safetensors$/i.test(file)) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new RecognitionWeightsError(file, `cannot read weights (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
    }
    let decoded: { tensors: Map<string, Tensor>; metadata: Record<string, string> };
    try {
      decoded = decodeSafetensors(bytes, file);
    } catch (err) {
      throw new RecognitionWeightsError(file, `corrupt weights (${(err as Error).message.replace(`${file}: `, '')})`, { cause: err });
    }
    tensors = decoded.tensors;
    const m = decoded.metadata;
    if (m.format === FORMAT) {
      if (!RECOGNITION_ARCHS.includes(m.arch as RecognitionArch)) throw new RecognitionWeightsError(file, `unknown architecture '${m.arch}' in its metadata`);
      if (arch && arch !== m.arch) throw new RecognitionWeightsError(file, `holds a '${m.arch}' network, not the '${arch}' asked for`);
      arch = m.arch as RecognitionArch;
      try {
        config = { ...JSON.parse(m.config ?? '{}'), ...options.config };
      } catch {
        throw new RecognitionWeightsError(file, "corrupt metadata: 'config' is not JSON");
      }
    } else if (!arch) {
      throw new RecognitionWeightsError(file, `not an lrface recognition weights file (metadata format '${m.format ?? 'none'}'): pass options.arch`);
    }
  } else {
    throw new RecognitionWeightsError(file, 'unknown weights format (expected .safetensors, .pth, .pt or .pth.tar)');
  }
  let network: RecognitionNetwork;
  try {
    network = createRecognitionNetwork(arch!, config);
  } catch (err) {
    throw new RecognitionWeightsError(file, `its config does not build a ${arch} (${(err as Error).message})`, { cause: err });
  }
  try {
    network.loadStateDict(tensors);
  } catch (err) {
    network.dispose();
    throw new RecognitionWeightsError(file, `the weights do not fit a ${arch} with this config (${(err as Error).message})`, { cause: err });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return network;
}
