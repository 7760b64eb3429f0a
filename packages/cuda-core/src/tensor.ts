// Tensor: a contiguous view (storage + element offset + shape) of native memory.
import { addon, kernels, type NativeStorage } from './native.js';
import { DTYPE_CODE, DTYPES, dtypeOfTypedArray, typedArrayFor, type DType } from './dtype.js';
import { checkKeys, describe, rangeError, stateError, typeError } from './errors.js';
import type { GradNode } from './autograd.js';
import { noGrad, record, registerGradient, runBackward } from './autograd.js';

export type Device = 'cpu' | 'cuda';
/** Where {@link Tensor.to} may move a tensor: 'cpu', 'cuda' (device 0) or 'cuda:<index>'. */
export type DeviceSpec = Device | `cuda:${number}`;
/** @internal -1 for host memory, else the CUDA device index (the native storages' convention). */
export type DeviceIndex = number;
export const HOST: DeviceIndex = -1;
export type Shape = readonly number[];
export type TypedArray = Float32Array | Int32Array | Uint8Array;
/** Nested arrays of numbers, as accepted by {@link tensor}. */
export type NestedArray = number | NestedArray[];

/** Native memory shared by a tensor and its views; freed when the last one lets go. */
class StorageHandle {
  refs = 1;
  readonly device: DeviceIndex;
  constructor(readonly native: NativeStorage) {
    this.device = native.device;
  }
  ref(): void {
    this.refs++;
  }
  unref(): void {
    if (--this.refs === 0) this.native.free();
  }
}

let liveTensors = 0;
// The last resort when a tensor is dropped without dispose(): release its storage reference.
const finalizer = new FinalizationRegistry<StorageHandle>((handle) => {
  liveTensors--;
  handle.unref();
});

const scopeStack: Set<Tensor>[] = [];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

export class Tensor {
  /** Dimensions, outermost first (NCHW for images). */
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** 'cpu', or 'cuda' for memory on a CUDA device (which one: {@link Tensor.deviceId}). */
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  /** Whether operations on this tensor are recorded for {@link Tensor.backward}. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after backward(). */
  grad: Tensor | null = null;
  /** @internal the operation that produced this tensor, when recorded */
  _node: GradNode | null = null;
  /** @internal */
  readonly _handle: StorageHandle;
  /** @internal element offset of this view in its storage */
  readonly _offset: number;
  private disposedFlag = false;

  /** @internal use {@link tensor}, {@link zeros} and the ops to make tensors */
  constructor(handle: StorageHandle, offset: number, shape: Shape, dtype: DType) {
    this._handle = handle;
    this._offset = offset;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    this.device = handle.device === HOST ? 'cpu' : 'cuda';
    liveTensors++;
    finalizer.register(this, handle, this);
    const scope = scopeStack[scopeStack.length - 1];
    if (scope) scope.add(this);
  }

  /** 'cpu' or 'cuda:<index>'. */
  get deviceId(): string {
    return this._handle.device === HOST ? 'cpu' : `cuda:${this._handle.device}`;
  }

  /** @internal -1 on the CPU, else the CUDA device index */
  get _deviceIndex(): DeviceIndex {
    return this._handle.device;
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /** @internal the native storage, checked to be alive */
  _storage(op: string): NativeStorage {
    if (this.disposedFlag) throw stateError(op, `a disposed tensor ${formatShape(this.shape)} was used`);
    return this._handle.native;
  }

  /** Frees this tensor's reference to its memory. Using it afterwards throws. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    finalizer.unregister(this);
    liveTensors--;
    this._handle.unref();
    for (const scope of scopeStack) scope.delete(this);
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    if (this._node) {
      // The graph behind it stays while a later node (e.g. a loss computed from it) needs it.
      this._node.release();
      this._node = null;
    }
  }

  /** A copy of the elements as a TypedArray (Float32Array, Int32Array or Uint8Array). */
  data(): TypedArray {
    return this._storage('data').read(this._offset, this.size);
  }

  /** The elements as nested arrays of numbers. */
  toArray(): NestedArray {
    const flat = Array.from(this.data());
    if (this.shape.length === 0) return flat[0];
    const build = (dim: number, start: number): NestedArray[] => {
      const n = this.shape[dim];
      const stride = shapeSize(this.shape.slice(dim + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) out.push(dim === this.shape.length - 1 ? flat[start + i] : build(dim + 1, start + i * stride));
      return out;
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw rangeError('item', 'tensor', 'a tensor of one element', `shape ${formatShape(this.shape)}`, true);
    return this.data()[0];
  }

  /** Marks this tensor as a leaf whose gradient backward() accumulates into `grad`. */
  requiresGrad_(flag = true): this {
    if (flag && this.dtype !== 'float32') throw typeError('requiresGrad_', 'tensor', 'float32', this.dtype, true);
    this.requiresGrad = flag;
    return this;
  }

  /** A tensor sharing this one's memory but cut from the autograd graph. */
  detach(): Tensor {
    return this._view(this._offset, this.shape);
  }

  /**
   * Computes gradients of this tensor with respect to every leaf that requires them.
   * A non-scalar tensor needs `gradient` of the same shape. The graph is freed afterwards
   * unless `retainGraph` is set.
   */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    checkKeys('backward', options, BACKWARD_OPTION_KEYS);
    runBackward(this, gradient, options.retainGraph ?? false);
  }

  /**
   * Overwrites the elements in place from a tensor of the same shape (converting dtype,
   * copying across devices) or a TypedArray of the same length. Not recorded by autograd:
   * for optimiser updates and loading weights.
   */
  assign(source: Tensor | TypedArray): this {
    const op = 'assign';
    const storage = this._storage(op);
    if (source instanceof Tensor) {
      if (source.shape.join(',') !== this.shape.join(','))
        throw rangeError(op, 'source', `shape ${formatShape(this.shape)}`, `shape ${formatShape(source.shape)}`, true);
      if (source._deviceIndex === this._deviceIndex) kernels.cast(storage, this._offset, source._storage(op), source._offset, this.size);
      else if (source.dtype === this.dtype) kernels.copy(storage, this._offset, source._storage(op), source._offset, this.size);
      else {
        // Across devices and dtypes: move first, then convert where this tensor lives.
        const moved = noGrad(() => source.to(deviceName(this._deviceIndex) as DeviceSpec));
        kernels.cast(storage, this._offset, moved._storage(op), moved._offset, this.size);
        moved.dispose();
      }
      return this;
    }
    const dtype = dtypeOfTypedArray(source);
    if (dtype === null) throw typeError(op, 'source', 'a Tensor or a TypedArray', source);
    if (source.length !== this.size) throw rangeError(op, 'source', `${this.size} elements`, source.length);
    if (dtype === this.dtype) storage.write(source, this._offset);
    else {
      const converted = typedArrayFor(this.dtype, this.size);
      for (let i = 0; i < this.size; i++) converted[i] = source[i];
      storage.write(converted, this._offset);
    }
    return this;
  }

  /** Clears the accumulated gradient. */
  zeroGrad(): void {
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** @internal a new tensor over the same storage */
  _view(offset: number, shape: Shape): Tensor {
    this._storage('view');
    this._handle.ref();
    return new Tensor(this._handle, offset, shape, this.dtype);
  }

  /**
   * This tensor on `device` ('cpu', 'cuda' or 'cuda:<index>'): a copy when the device
   * differs, otherwise a view of the same memory. Recorded by autograd (the gradient goes
   * back to this tensor's device). Copies to the host wait for the device's queued work.
   */
  to(device: DeviceSpec): Tensor {
    const op = 'to';
    const target = parseDevice(op, device);
    this._storage(op);
    if (target === this._handle.device) {
      const view = this._view(this._offset, this.shape);
      recordTransfer(this, view);
      return view;
    }
    const out = empty(this.shape, this.dtype, target);
    if (this.size > 0) kernels.copy(out._storage(op), out._offset, this._storage(op), this._offset, this.size);
    recordTransfer(this, out);
    return out;
  }

  /**
   * @internal Moves this tensor to `device` in place, as PyTorch's Module.to does with
   * `param.data`: the object stays the same, so every reference to it (a module attribute,
   * a tied weight, an optimiser's list) stays valid, and its memory becomes a copy on
   * `device`; its gradient moves too. Views taken earlier keep the old memory. Only for
   * tensors outside an autograd graph (parameters, buffers): a recorded result would leave
   * its graph pointing at memory it no longer has.
   */
  _moveTo_(device: DeviceSpec): this {
    const op = 'to';
    const target = parseDevice(op, device);
    this._storage(op);
    if (this._node) throw stateError(op, `cannot move a tensor ${formatShape(this.shape)} produced by a recorded operation in place; move its leaves, or use to()`);
    if (target === this._handle.device) return this;
    const moved = empty(this.shape, this.dtype, target);
    if (this.size > 0) kernels.copy(moved._storage(op), moved._offset, this._storage(op), this._offset, this.size);
    // Kept out of any enclosing scope(): it belongs to this tensor, which outlives the scope.
    const grad = this.grad ? keep(noGrad(() => this.grad!.to(device))) : null;
    // Take over the copy's storage reference; the copy object itself is retired without unref.
    const handle = moved._handle;
    handle.ref();
    moved.dispose();
    finalizer.unregister(this);
    this._handle.unref();
    const self = this as unknown as { _handle: StorageHandle; _offset: number; device: Device };
    self._handle = handle;
    self._offset = 0;
    self.device = handle.device === HOST ? 'cpu' : 'cuda';
    finalizer.register(this, handle, this);
    if (this.grad) {
      this.grad.dispose();
      this.grad = grad;
    }
    return this;
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${formatShape(this.shape)}, ${this.deviceId})`;
  }
}

let transferGradientRegistered = false;

// to() is differentiable: the gradient is moved back to the source's device.
function recordTransfer(source: Tensor, out: Tensor): void {
  if (!transferGradientRegistered) {
    // Registered on first use: autograd.js may still be loading when this module is evaluated.
    registerGradient('to', (ctx, g) => [g.to(deviceName(ctx.attrs.device as DeviceIndex) as DeviceSpec)]);
    transferGradientRegistered = true;
  }
  record('to', [source], out, {}, { device: source._deviceIndex });
}

const BACKWARD_OPTION_KEYS: Record<'retainGraph', true> = { retainGraph: true };

/** @internal allocates a zeroed tensor on the host (device -1) or a CUDA device */
export function empty(shape: Shape, dtype: DType = 'float32', device: DeviceIndex = HOST): Tensor {
  const native = device === HOST ? new addon.Storage(DTYPE_CODE[dtype], shapeSize(shape)) : new addon.Storage(DTYPE_CODE[dtype], shapeSize(shape), device);
  return new Tensor(new StorageHandle(native), 0, shape, dtype);
}

/**
 * Like {@link empty} without the zero fill of host memory: for op outputs whose kernel writes
 * every element (the fill would be one more pass over memory per op).
 * @internal
 */
export function uninitialized(shape: Shape, dtype: DType = 'float32', device: DeviceIndex = HOST): Tensor {
  const native = new addon.Storage(DTYPE_CODE[dtype], shapeSize(shape), device, device !== HOST);
  return new Tensor(new StorageHandle(native), 0, shape, dtype);
}

let cudaInfoOnce: ReturnType<typeof addon.cudaInfo> | undefined;

/**
 * Resolves 'cpu' / 'cuda' / 'cuda:<index>' to a device index, checking that the device can
 * be used: where CUDA cannot, the error carries devices()'s reason.
 */
export function parseDevice(op: string, device: unknown): DeviceIndex {
  if (typeof device !== 'string') throw typeError(op, 'device', "'cpu', 'cuda' or 'cuda:<index>'", device);
  if (device === 'cpu') return HOST;
  const match = /^cuda(?::(\d+))?$/.exec(device);
  if (!match) throw rangeError(op, 'device', "'cpu', 'cuda' or 'cuda:<index>'", device);
  const index = match[1] === undefined ? 0 : Number(match[1]);
  cudaInfoOnce ??= addon.cudaInfo();  // devices do not come and go while the process runs
  const cuda = cudaInfoOnce;
  if (!cuda.available) throw stateError(op, `cannot use device '${device}': CUDA is not available: ${cuda.reason}`);
  if (!cuda.devices.some((d) => d.index === index))
    throw rangeError(op, 'device', `one of ${cuda.devices.map((d) => `'cuda:${d.index}'`).join(', ')}`, device);
  return index;
}

/** @internal the name of a device index in messages */
export function deviceName(device: DeviceIndex): string {
  return device === HOST ? 'cpu' : `cuda:${device}`;
}

function checkShape(op: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw typeError(op, 'shape', 'an array of non-negative integers', shape);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
      throw rangeError(op, 'shape', 'an array of non-negative integers', `[${shape.join(',')}]`, true);
  }
  return shape as number[];
}

function checkDType(op: string, dtype: unknown): DType {
  if (typeof dtype !== 'string' || !DTYPES.includes(dtype as DType))
    throw typeError(op, 'dtype', `one of ${DTYPES.join(', ')}`, dtype);
  return dtype as DType;
}

function flattenNested(op: string, value: NestedArray, shape: number[], depth: number, out: number[]): void {
  if (typeof value === 'number') {
    if (depth !== shape.length) throw rangeError(op, 'data', 'a regular nested array', 'a ragged array', true);
    out.push(value);
    return;
  }
  if (!Array.isArray(value)) throw typeError(op, 'data', 'numbers or nested arrays of numbers', value);
  if (depth === shape.length) shape.push(value.length);
  else if (shape[depth] !== value.length) throw rangeError(op, 'data', 'a regular nested array', 'a ragged array', true);
  for (const v of value) flattenNested(op, v, shape, depth + 1, out);
}

/**
 * Makes a tensor from a TypedArray, a nested array or a number.
 * `shape` is required for a flat array that is not 1-D; the dtype follows the TypedArray
 * (float32 for plain numbers) unless given.
 */
export function tensor(data: TypedArray | NestedArray | readonly number[], shape?: Shape, dtype?: DType, device: DeviceSpec = 'cpu'): Tensor {
  const op = 'tensor';
  const target = parseDevice(op, device);
  let flat: ArrayLike<number>;
  let inferredShape: number[];
  let inferredDType: DType = 'float32';
  const arrayDType = dtypeOfTypedArray(data);
  if (arrayDType) {
    flat = data as TypedArray;
    inferredShape = [(data as TypedArray).length];
    inferredDType = arrayDType;
  } else if (ArrayBuffer.isView(data)) {
    throw typeError(op, 'data', 'a Float32Array, Int32Array, Uint8Array, number or nested array', data);
  } else if (typeof data === 'number' || Array.isArray(data)) {
    const values: number[] = [];
    inferredShape = [];
    flattenNested(op, data as NestedArray, inferredShape, 0, values);
    flat = values;
  } else {
    throw typeError(op, 'data', 'a Float32Array, Int32Array, Uint8Array, number or nested array', data);
  }
  const finalShape = shape === undefined ? inferredShape : checkShape(op, shape);
  const finalDType = dtype === undefined ? inferredDType : checkDType(op, dtype);
  if (shapeSize(finalShape) !== flat.length)
    throw rangeError(op, 'shape', `${flat.length} elements to match the data`, `${formatShape(finalShape)} (${shapeSize(finalShape)})`, true);
  const out = empty(finalShape, finalDType, target);
  let typed: TypedArray;
  if (arrayDType === finalDType) typed = data as TypedArray;
  else {
    typed = typedArrayFor(finalDType, flat.length);
    for (let i = 0; i < flat.length; i++) typed[i] = flat[i];
  }
  if (typed.length > 0) out._storage(op).write(typed, 0);
  return out;
}

/** A tensor of the given shape filled with `value`, on `device` (the CPU by default). */
export function full(shape: Shape, value: number, dtype: DType = 'float32', device: DeviceSpec = 'cpu'): Tensor {
  checkShape('full', shape as unknown);
  checkDType('full', dtype);
  if (typeof value !== 'number') throw typeError('full', 'value', 'a number', value);
  const out = empty(shape, dtype, parseDevice('full', device));
  if (value !== 0 && out.size > 0) {
    const arr = typedArrayFor(dtype, out.size);
    arr.fill(value);
    out._storage('full').write(arr, 0);
  }
  return out;
}

export function zeros(shape: Shape, dtype: DType = 'float32', device: DeviceSpec = 'cpu'): Tensor {
  return full(shape, 0, dtype, device);
}

export function ones(shape: Shape, dtype: DType = 'float32', device: DeviceSpec = 'cpu'): Tensor {
  return full(shape, 1, dtype, device);
}

/** Checks that a value is a live tensor; the first thing every op does with its inputs. */
export function isTensor(value: unknown): value is Tensor {
  return value instanceof Tensor;
}

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns
 * (a tensor, or arrays / plain objects holding tensors) and those passed to {@link keep}.
 */
export function scope<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw typeError('scope', 'fn', 'a function', fn);
  const created = new Set<Tensor>();
  scopeStack.push(created);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopeStack.pop();
    for (const t of created) t.dispose();
    throw err;
  }
  scopeStack.pop();
  if (result instanceof Promise) throw typeError('scope', 'fn', 'a synchronous function', 'a Promise', true);
  const kept = new Set<Tensor>();
  collectTensors(result, kept, 0);
  const parent = scopeStack[scopeStack.length - 1];
  for (const t of created) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth: number): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
}

/** Takes a tensor out of every enclosing {@link scope}, so it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopeStack) s.delete(t);
  return t;
}

export interface MemoryInfo {
  /** Tensor objects not yet disposed (views count separately). */
  tensors: number;
  /** Native buffers alive. */
  buffers: number;
  /** Bytes held by live native buffers. */
  bytes: number;
  /** Bytes of freed buffers kept for reuse (see {@link emptyCache}; LRFACE_HOST_CACHE_MB caps it, default 1024). */
  cached: number;
  /** Bytes of CUDA device memory held by live tensors (block sizes as allocated), all devices. */
  deviceBytes: number;
  /** Bytes of freed CUDA device blocks kept by the caching allocator for reuse. */
  deviceCached: number;
  /** CUDA device buffers alive. */
  deviceBuffers: number;
}

/** What the engine holds now. */
export function memory(): MemoryInfo {
  const native = addon.liveStorage();
  return {
    tensors: liveTensors,
    buffers: native.count,
    bytes: native.bytes,
    cached: native.cached,
    deviceBytes: native.deviceBytes,
    deviceCached: native.deviceCached,
    deviceBuffers: native.deviceBuffers,
  };
}

/** Returns the freed buffers kept for reuse to the operating system, and the cached CUDA blocks to the driver. */
export function emptyCache(): void {
  addon.emptyCache();
}

export { describe };
