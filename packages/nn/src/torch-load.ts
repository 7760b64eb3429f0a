// Reads PyTorch checkpoints (.pth/.pt) without PyTorch: the zip format (torch >= 1.6) and
// the legacy format (a sequence of pickles followed by raw storages), through the
// restricted unpickler. Nothing in the file is executed.
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { Tensor, checkKeys } from '@lrface/cuda-core';
import { PickledObject, PickleGlobal, TensorRef, unpickle, UnpicklingError } from './pickle.js';
import { tensorFromRaw } from './safetensors.js';

const STORAGE_DTYPES: Record<string, [string, number]> = {
  FloatStorage: ['F32', 4], DoubleStorage: ['F64', 8], HalfStorage: ['F16', 2], BFloat16Storage: ['BF16', 2],
  LongStorage: ['I64', 8], IntStorage: ['I32', 4], ShortStorage: ['I16', 2], CharStorage: ['I8', 1],
  ByteStorage: ['U8', 1], BoolStorage: ['BOOL', 1],
};

interface StorageRef {
  dtype: string;
  elementSize: number;
  key: string;
  numel: number;
  /** Element offset into the root storage (legacy views). */
  viewOffset: number;
  bytes?: Uint8Array;
}

function storageFromPid(source: string, pid: unknown[], byKey: Map<string, StorageRef>): StorageRef | PickleGlobal {
  const [kind, type, key, , numel, view] = pid as [string, PickleGlobal, string, string, number, unknown];
  if (kind === 'module') return pid[1] as PickleGlobal; // legacy: a pickled class
  if (kind !== 'storage') throw new RangeError(`${source}: unknown persistent id kind '${String(kind)}'`);
  const typeName = type instanceof PickleGlobal ? type.name : String(type);
  const dt = STORAGE_DTYPES[typeName];
  if (!dt) throw new RangeError(`${source}: unsupported storage type '${typeName}'`);
  let root = byKey.get(String(key));
  if (!root) {
    root = { dtype: dt[0], elementSize: dt[1], key: String(key), numel: Number(numel), viewOffset: 0 };
    byKey.set(root.key, root);
  }
  if (Array.isArray(view) && view.length === 3) {
    // legacy storage view: (view_key, offset, size)
    const [viewKey, offset, size] = view as [string, number, number];
    const v: StorageRef = { ...root, key: String(viewKey), numel: size, viewOffset: offset };
    byKey.set(`view:${viewKey}`, v);
    return v;
  }
  return root;
}

/** Materialises a tensor from its storage, offset, sizes and strides (any stride layout). */
function materialise(source: string, name: string, ref: TensorRef): Tensor {
  const storage = ref.storage as StorageRef;
  if (!storage || !storage.bytes) throw new RangeError(`${source}: tensor '${name}' refers to a storage whose data is missing`);
  if (!Array.isArray(ref.size) || !Array.isArray(ref.stride) || ref.size.length !== ref.stride.length)
    throw new RangeError(`${source}: tensor '${name}' has malformed sizes or strides`);
  const size = ref.size.map(Number);
  const stride = ref.stride.map(Number);
  if (!size.every((d) => Number.isInteger(d) && d >= 0) || !stride.every((d) => Number.isInteger(d) && d >= 0))
    throw new RangeError(`${source}: tensor '${name}' has malformed sizes [${size.join(',')}] or strides [${stride.join(',')}]`);
  const n = size.reduce((a, b) => a * b, 1);
  const es = storage.elementSize;
  const base = storage.viewOffset + Number(ref.storageOffset);
  if (!Number.isInteger(base) || base < 0) throw new RangeError(`${source}: tensor '${name}' has a bad storage offset ${String(ref.storageOffset)}`);
  if (n === 0) return tensorFromRaw(source, name, storage.dtype, size, new Uint8Array(0));
  // The furthest element the view reaches must lie inside the storage.
  const last = base + size.reduce((acc, d, k) => acc + (d - 1) * stride[k], 0);
  if ((last + 1) * es > storage.bytes.byteLength) throw new RangeError(`${source}: tensor '${name}' reaches past its storage`);
  let contiguous = true;
  for (let k = size.length - 1, expect = 1; k >= 0; k--) {
    if (size[k] !== 1 && stride[k] !== expect) contiguous = false;
    expect *= size[k];
  }
  // Contiguous (the usual case): one slice of the storage, no per-element walk.
  if (contiguous) return tensorFromRaw(source, name, storage.dtype, size, storage.bytes.subarray(base * es, (base + n) * es));
  const out = new Uint8Array(n * es);
  const idx = new Array(size.length).fill(0);
  for (let i = 0; i < n; i++) {
    let off = base;
    for (let k = 0; k < size.length; k++) off += idx[k] * stride[k];
    out.set(storage.bytes.subarray(off * es, off * es + es), i * es);
    for (let k = size.length - 1; k >= 0; k--) {
      if (++idx[k] < size[k]) break;
      idx[k] = 0;
    }
  }
  return tensorFromRaw(source, name, storage.dtype, size, out);
}

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  localOffset: number;
}

function readZip(source: string, buf: Buffer): Map<string, () => Uint8Array> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--)
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) throw new RangeError(`${source}: zip end record not found (truncated file?)`);
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64: locator just before the end record
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) throw new RangeError(`${source}: zip64 locator missing`);
    const rec = Number(buf.readBigUInt64LE(loc + 8));
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const entries = new Map<string, () => Uint8Array>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw new RangeError(`${source}: corrupt zip central directory (entry ${i})`);
    const method = buf.readUInt16LE(p + 10);
    let compressedSize = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let localOffset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field: sizes and offset that did not fit 32 bits
    let e = p + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (buf.readUInt32LE(p + 24) === 0xffffffff) q += 8;
        if (compressedSize === 0xffffffff) {
          compressedSize = Number(buf.readBigUInt64LE(q));
          q += 8;
        }
        if (localOffset === 0xffffffff) localOffset = Number(buf.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    const entry: ZipEntry = { name, method, compressedSize, localOffset };
    entries.set(name, () => {
      const lp = entry.localOffset;
      if (lp + 30 > buf.length || buf.readUInt32LE(lp) !== 0x04034b50) throw new RangeError(`${source}: corrupt zip entry '${name}'`);
      const start = lp + 30 + buf.readUInt16LE(lp + 26) + buf.readUInt16LE(lp + 28);
      if (start + entry.compressedSize > buf.length) throw new RangeError(`${source}: zip entry '${name}' is truncated`);
      const raw = buf.subarray(start, start + entry.compressedSize);
      if (entry.method === 0) return raw;
      if (entry.method === 8) return inflateRawSync(raw);
      throw new RangeError(`${source}: zip entry '${name}' uses unsupported compression ${entry.method}`);
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Turns pickled containers into plain JS: Maps with string keys become objects, TensorRefs become Tensors. */
function resolve(source: string, value: unknown, path: string, seen: Map<unknown, unknown>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return seen.get(value);
  if (value instanceof TensorRef) {
    const t = materialise(source, path || 'tensor', value);
    seen.set(value, t);
    return t;
  }
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    seen.set(value, out);
    for (const [k, v] of value) out.set(k, resolve(source, v, path ? `${path}.${String(k)}` : String(k), seen));
    return out;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    value.forEach((v, i) => out.push(resolve(source, v, `${path}[${i}]`, seen)));
    return out;
  }
  if (value instanceof PickledObject) {
    const out = new PickledObject(value.className, value.args);
    seen.set(value, out);
    out.state = resolve(source, value.state, path, seen);
    for (const [k, v] of value.dictItems) out.dictItems.set(k, resolve(source, v, path ? `${path}.${String(k)}` : String(k), seen));
    value.listItems.forEach((v, i) => out.listItems.push(resolve(source, v, `${path}[${i}]`, seen)));
    return out;
  }
  return value;
}

/** The object stored in a PyTorch checkpoint, with tensors as engine tensors. */
export function loadTorchCheckpoint(path: string): unknown {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`loadTorchCheckpoint: cannot read '${path}': ${(err as Error).message}`);
  }
  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown) => {
    if (!Array.isArray(pid)) throw new RangeError(`${path}: persistent id is not a tuple`);
    return storageFromPid(path, pid, storages);
  };
  try {
    if (buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50) {
      const entries = readZip(path, buf);
      const pkl = [...entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
      if (!pkl) throw new RangeError(`${path}: zip checkpoint without data.pkl`);
      const prefix = pkl.slice(0, -'data.pkl'.length);
      const { value } = unpickle(entries.get(pkl)!(), { source: path, persistentLoad });
      for (const s of storages.values()) {
        const read = entries.get(`${prefix}data/${s.key}`);
        if (!read) throw new RangeError(`${path}: storage '${s.key}' is missing from the archive`);
        s.bytes = read();
      }
      return resolve(path, value, '', new Map());
    }
    // Legacy: magic number, protocol version, system info, the object, the storage keys, raw storages.
    let offset = 0;
    const magic = unpickle(buf, { offset, source: path });
    if (magic.value !== 0x1950a86a20f9469cfc6c && magic.value !== 1.1954703714603882e23)
      throw new RangeError(`${path}: not a PyTorch checkpoint (neither a zip archive nor the legacy magic number)`);
    offset = magic.end;
    offset = unpickle(buf, { offset, source: path }).end; // protocol version
    offset = unpickle(buf, { offset, source: path }).end; // system info
    const main = unpickle(buf, { offset, source: path, persistentLoad });
    const keys = unpickle(buf, { offset: main.end, source: path });
    offset = keys.end;
    for (const key of keys.value as string[]) {
      const s = storages.get(String(key));
      if (offset + 8 > buf.length) throw new RangeError(`${path}: truncated before storage '${key}'`);
      const numel = Number(buf.readBigInt64LE(offset));
      offset += 8;
      const es = s?.elementSize ?? 4;
      if (!(numel >= 0) || (s && numel !== s.numel)) throw new RangeError(`${path}: storage '${key}' records ${numel} elements, the pickle expects ${s?.numel ?? 'none'}`);
      if (offset + numel * es > buf.length) throw new RangeError(`${path}: storage '${key}' is truncated (${numel} elements expected)`);
      if (s) s.bytes = buf.subarray(offset, offset + numel * es);
      offset += numel * es;
    }
    for (const [k, v] of storages) if (k.startsWith('view:')) v.bytes = storages.get(v.key)?.bytes;
    return resolve(path, main.value, '', new Map());
  } catch (err) {
    if (err instanceof UnpicklingError) throw new RangeError(err.message);
    if (err instanceof RangeError || err instanceof TypeError) throw err;
    throw new RangeError(`${path}: unreadable checkpoint: ${(err as Error).message}`);
  }
}

function isTensorMap(v: unknown): v is Map<string, Tensor> {
  return v instanceof Map && v.size > 0 && [...v.values()].every((x) => x instanceof Tensor);
}

/** The parameters and buffers of a pickled nn.Module, by dotted name. */
function moduleState(obj: PickledObject, prefix: string, out: Map<string, Tensor>): void {
  const state = obj.state instanceof Map ? obj.state : new Map();
  for (const field of ['_parameters', '_buffers'])
    for (const [k, v] of (state.get(field) as Map<string, unknown> | undefined) ?? []) if (v instanceof Tensor) out.set(prefix + String(k), v);
  for (const [k, v] of (state.get('_modules') as Map<string, unknown> | undefined) ?? []) if (v instanceof PickledObject) moduleState(v, `${prefix}${String(k)}.`, out);
}

const LOAD_TORCH_STATE_DICT_OPTION_KEYS: Record<'key', true> = { key: true };

/**
 * The state dict in a checkpoint: a saved state dict itself, one under a usual key
 * ('state_dict', 'model_state_dict', 'model', 'net', 'generator'), or the state of a pickled
 * whole model. `key` picks the entry explicitly.
 */
export function loadTorchStateDict(path: string, options: { key?: string } = {}): Map<string, Tensor> {
  checkKeys('loadTorchStateDict', options, LOAD_TORCH_STATE_DICT_OPTION_KEYS);
  const root = loadTorchCheckpoint(path);
  const pick = (v: unknown): Map<string, Tensor> | null => {
    if (isTensorMap(v)) return v;
    if (v instanceof PickledObject) {
      const out = new Map<string, Tensor>();
      moduleState(v, '', out);
      return out.size ? out : null;
    }
    return null;
  };
  if (options.key !== undefined) {
    const entry = root instanceof Map ? root.get(options.key) : undefined;
    const found = pick(entry);
    if (!found) throw new RangeError(`loadTorchStateDict: '${path}' has no state dict under key '${options.key}'`);
    return found;
  }
  const direct = pick(root);
  if (direct) return direct;
  if (root instanceof Map)
    for (const k of ['state_dict', 'model_state_dict', 'model', 'net', 'generator', 'module']) {
      const found = pick(root.get(k));
      if (found) return found;
    }
  throw new RangeError(`loadTorchStateDict: no state dict found in '${path}' (keys: ${root instanceof Map ? [...root.keys()].join(', ') : typeof root})`);
}
