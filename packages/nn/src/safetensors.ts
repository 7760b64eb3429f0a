// safetensors: an 8-byte little-endian header length, a JSON header of
// { name: { dtype, shape, data_offsets: [begin, end] } }, then the raw little-endian data.
import { readFileSync } from 'node:fs';
import { tensor, writeFileAtomic, type DType, type Tensor } from '@lrface/cuda-core';

const WRITE_DTYPE: Record<DType, string> = { float32: 'F32', int32: 'I32', uint8: 'U8' };
const ELEMENT_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Serialises named tensors (and optional string metadata) to safetensors bytes. */
export function encodeSafetensors(tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>): Buffer {
  const entries = [...(tensors instanceof Map ? tensors : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : 1));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const datas: Uint8Array[] = [];
  for (const [name, t] of entries) {
    const d = t.data();
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    header[name] = { dtype: WRITE_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    datas.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces to 8-byte alignment, as the reference implementation does.
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json), ...datas]);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Converts raw little-endian values of a stored dtype to an engine tensor (f16/bf16/f64 -> float32, i64 -> int32). */
export function tensorFromRaw(source: string, name: string, dtype: string, shape: number[], raw: Uint8Array): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const bad = (why: string) => new RangeError(`${source}: tensor '${name}': ${why}`);
  if (!(dtype in ELEMENT_BYTES)) throw bad(`unsupported dtype '${dtype}'`);
  if (raw.byteLength !== n * ELEMENT_BYTES[dtype]) throw bad(`${raw.byteLength} bytes do not hold ${n} values of ${dtype}`);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return tensor(out, shape);
    }
    case 'F64': return tensor(Float32Array.from({ length: n }, (_, i) => view.getFloat64(i * 8, true)), shape);
    case 'F16': return tensor(Float32Array.from({ length: n }, (_, i) => halfToFloat(view.getUint16(i * 2, true))), shape);
    case 'BF16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = view.getUint16(i * 2, true) << 16;
      return tensor(out, shape);
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw bad(`int64 value ${v} does not fit int32`);
        out[i] = Number(v);
      }
      return tensor(out, shape);
    }
    case 'I32': return tensor(Int32Array.from({ length: n }, (_, i) => view.getInt32(i * 4, true)), shape);
    case 'I16': return tensor(Int32Array.from({ length: n }, (_, i) => view.getInt16(i * 2, true)), shape);
    case 'I8': return tensor(Int32Array.from({ length: n }, (_, i) => view.getInt8(i)), shape);
    case 'U8':
    case 'BOOL': return tensor(Uint8Array.from(raw), shape);
    default: throw bad(`unsupported dtype '${dtype}'`);
  }
}

/** Parses safetensors bytes; `source` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const fail = (why: string) => new RangeError(`${source}: not a valid safetensors file: ${why}`);
  if (bytes.byteLength < 8) throw fail(`${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8) throw fail(`header length ${headerLen} exceeds the file (${buf.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen));
  } catch (err) {
    throw fail(`header is not JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw fail('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  try {
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') {
        if (!info || typeof info !== 'object' || Array.isArray(info) || !Object.values(info).every((v) => typeof v === 'string'))
          throw fail('__metadata__ must map names to strings');
        metadata = info as Record<string, string>;
        continue;
      }
      const entry = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof entry?.dtype !== 'string' || !Array.isArray(entry.shape) || !Array.isArray(entry.data_offsets) || entry.data_offsets.length !== 2)
        throw fail(`entry '${name}' needs dtype, shape and data_offsets`);
      const shape = entry.shape as number[];
      if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`entry '${name}' has a bad shape`);
      const [begin, end] = entry.data_offsets as number[];
      if (!(Number.isInteger(begin) && Number.isInteger(end) && begin >= 0 && end >= begin && end <= dataLen))
        throw fail(`entry '${name}' data_offsets [${begin}, ${end}] fall outside the ${dataLen} data bytes (truncated file?)`);
      tensors.set(name, tensorFromRaw(source, name, entry.dtype, shape, bytes.subarray(dataStart + begin, dataStart + end)));
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata };
}

/** Writes named tensors to a .safetensors file atomically. */
export function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata), 'saveSafetensors');
}

/** Reads a .safetensors file. Errors name the file and what is wrong with it. */
export function loadSafetensors(path: string): Map<string, Tensor> {
  return decodeSafetensors(readFileSync(path), path).tensors;
}
