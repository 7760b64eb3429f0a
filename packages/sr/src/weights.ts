// Weight files: our .safetensors (tensors + metadata naming the architecture, its config and the
// scales), PyTorch .pth state dicts (the public VDSR checkpoint), and the sha256 check of
// shipped files. Every error names the file and what is wrong.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkKeys, rangeError, typeError, type Tensor } from '@lrface/cuda-core';
import { decodeSafetensors, encodeSafetensors, loadTorchStateDict, writeFileAtomic } from '@lrface/nn';
import { ARCHS, createNetwork, type ArchName, type SrNetwork } from './models.js';

/** What our weight files record beside the tensors. */
export interface SrWeightsMeta {
  arch: ArchName;
  config: Record<string, unknown>;
  /** Scales the weights were trained for. */
  scales: number[];
  /** Free-form provenance (data, init, steps). */
  note?: string;
}

/** An error about a weights file: the message starts with the file. */
export class WeightsFileError extends Error {
  constructor(readonly file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'WeightsFileError';
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function readWeights(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new WeightsFileError(file, `cannot read weights (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}

const SAVE_META_KEYS: Record<'scales' | 'note', true> = { scales: true, note: true };
const READ_OPTION_KEYS: Record<'sha256', true> = { sha256: true };
const FALLBACK_KEYS: Record<'arch' | 'config' | 'sha256' | 'checkMeta', true> = { arch: true, config: true, sha256: true, checkMeta: true };

/** Writes a network's weights and metadata to a .safetensors file atomically; returns its sha256. */
export function saveSrWeights(file: string, net: SrNetwork, meta: { scales: number[]; note?: string }): string {
  if (typeof file !== 'string' || file === '') throw typeError('saveSrWeights', 'file', 'a non-empty path string', file);
  checkKeys('saveSrWeights', meta, SAVE_META_KEYS, 'meta');
  const metadata: Record<string, string> = {
    format: 'lrface-sr-1',
    arch: net.arch,
    config: JSON.stringify(net.config),
    scales: JSON.stringify(meta.scales),
  };
  if (meta.note) metadata.note = meta.note;
  const bytes = encodeSafetensors(net.stateDict(), metadata);
  writeFileAtomic(file, bytes, 'saveSrWeights');
  return sha256(bytes);
}

/** The tensors and (for our files) the metadata of a .safetensors or .pth weights file. */
export function readSrWeights(file: string, options: { sha256?: string } = {}): { tensors: Map<string, Tensor>; meta: Partial<SrWeightsMeta> } {
  checkKeys('readSrWeights', options, READ_OPTION_KEYS);
  if (typeof file !== 'string') throw typeError('readSrWeights', 'file', 'a non-empty path string', file);
  if (file === '') throw rangeError('readSrWeights', 'file', 'a non-empty path string', file);
  if (/\.(pth|pt)$/i.test(file)) {
    let tensors: Map<string, Tensor>;
    try {
      tensors = loadTorchStateDict(file);
    } catch (err) {
      throw new WeightsFileError(file, `not a usable PyTorch checkpoint (${(err as Error).message})`, { cause: err });
    }
    return { tensors, meta: {} };
  }
  if (!/\.safetensors$/i.test(file)) throw new WeightsFileError(file, 'unknown weights format (expected .safetensors, .pth or .pt)');
  const bytes = readWeights(file);
  if (options.sha256) {
    const got = sha256(bytes);
    if (got !== options.sha256) throw new WeightsFileError(file, `sha256 mismatch (expected ${options.sha256}, got ${got}): the file is corrupt or not the shipped one`);
  }
  let decoded: { tensors: Map<string, Tensor>; metadata: Record<string, string> };
  try {
    decoded = decodeSafetensors(bytes, file);
  } catch (err) {
    throw new WeightsFileError(file, `corrupt weights (${(err as Error).message.replace(`${file}: `, '')})`, { cause: err });
  }
  const m = decoded.metadata;
  const meta: Partial<SrWeightsMeta> = {};
  try {
    if (m.arch !== undefined) {
      if (!(ARCHS as readonly string[]).includes(m.arch)) throw new Error(`unknown architecture '${m.arch}'`);
      meta.arch = m.arch as ArchName;
    }
    if (m.config !== undefined) meta.config = JSON.parse(m.config);
    if (m.scales !== undefined) meta.scales = JSON.parse(m.scales);
    if (m.note !== undefined) meta.note = m.note;
  } catch (err) {
    for (const t of decoded.tensors.values()) t.dispose();
    throw new WeightsFileError(file, `bad metadata (${(err as Error).message})`, { cause: err });
  }
  return { tensors: decoded.tensors, meta };
}

/**
 * Builds the network a weights file describes (or `arch`/`config` for files without our
 * metadata, such as .pth) and loads the tensors into it.
 */
export function loadSrNetwork(
  file: string,
  fallback: {
    arch: ArchName;
    config?: Record<string, unknown>;
    sha256?: string;
    /** Called with the file's metadata before the network is built; throws to refuse the file. */
    checkMeta?: (meta: Partial<SrWeightsMeta>) => void;
  },
): { net: SrNetwork; meta: Partial<SrWeightsMeta> } {
  checkKeys('loadSrNetwork', fallback, FALLBACK_KEYS, 'fallback');
  const { tensors, meta } = readSrWeights(file, { sha256: fallback.sha256 });
  try {
    fallback.checkMeta?.(meta);
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  const arch = meta.arch ?? fallback.arch;
  let net: SrNetwork;
  try {
    net = createNetwork(arch, meta.config ?? fallback.config ?? {});
  } catch (err) {
    throw new WeightsFileError(file, `its config does not build a '${arch}' network (${(err as Error).message})`, { cause: err });
  }
  try {
    net.loadStateDict(tensors);
  } catch (err) {
    net.dispose();
    throw new WeightsFileError(file, `weights do not fit the '${arch}' network (${(err as Error).message.replace(/^loadStateDict: 'state' does not fit the module /, '')})`, { cause: err });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { net, meta: { ...meta, arch } };
}
