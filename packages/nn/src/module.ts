// Module: parameters, buffers and sub-modules by dotted name, as torch.nn.Module.
import { Tensor, checkKeys, typeError, zeros, type DeviceSpec } from '@lrface/cuda-core';

export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export interface LoadOptions {
  /** Fail on missing or unexpected keys (default true). Shape mismatches always fail. */
  strict?: boolean;
  /** Renames each incoming key before matching (e.g. strip 'module.'); return null to drop it. */
  mapKey?: (key: string) => string | null;
}

const LOAD_OPTION_KEYS: Record<keyof LoadOptions, true> = { strict: true, mapKey: true };
const NUM_PARAMETERS_OPTION_KEYS: Record<'trainable', true> = { trainable: true };

export abstract class Module {
  /** Train mode (batch statistics, dropout) or eval mode. */
  training = true;
  private readonly paramNames = new Set<string>();
  private readonly bufferNames = new Set<string>();
  private readonly moduleNames = new Set<string>();
  private readonly nonPersistent = new Set<string>();

  /** Runs the module. */
  abstract forward(...inputs: unknown[]): unknown;

  /** Registers `tensor` as a trainable parameter under `name` (also set as this[name]). */
  protected registerParameter(name: string, tensor: Tensor | null): void {
    if (tensor) tensor.requiresGrad_(true);
    (this as Record<string, unknown>)[name] = tensor;
    this.paramNames.add(name);
  }

  /**
   * Registers a non-trainable tensor (running statistics). A persistent buffer (the default)
   * is part of the state dict; a non-persistent one is not, as in PyTorch.
   */
  protected registerBuffer(name: string, tensor: Tensor | null, options: { persistent?: boolean } = {}): void {
    (this as Record<string, unknown>)[name] = tensor;
    this.bufferNames.add(name);
    if (options.persistent === false) this.nonPersistent.add(name);
    else this.nonPersistent.delete(name);
  }

  /**
   * Local state names that a loaded state dict may lack without counting as missing; they
   * keep their current value. BatchNorm2d lists 'num_batches_tracked', which PyTorch
   * checkpoints from before version 0.4.1 do not have.
   */
  protected optionalStateKeys(): string[] {
    return [];
  }

  /** Registers a child module under `name`. */
  protected registerModule(name: string, module: Module | null): void {
    (this as Record<string, unknown>)[name] = module;
    this.moduleNames.add(name);
  }

  /** @internal renames or removes registrations (spectral norm moves 'weight' to 'weight_orig'). */
  _unregister(name: string): void {
    this.paramNames.delete(name);
    this.bufferNames.delete(name);
    this.moduleNames.delete(name);
    this.nonPersistent.delete(name);
  }

  /** @internal */
  _register(kind: 'parameter' | 'buffer' | 'module', name: string, value: Tensor | Module | null): void {
    if (kind === 'parameter') this.registerParameter(name, value as Tensor | null);
    else if (kind === 'buffer') this.registerBuffer(name, value as Tensor | null);
    else this.registerModule(name, value as Module | null);
  }

  private attr(name: string): unknown {
    return (this as Record<string, unknown>)[name];
  }

  /** Direct children with their names. */
  *namedChildren(): Generator<[string, Module]> {
    for (const name of this.moduleNames) {
      const m = this.attr(name);
      if (m instanceof Module) yield [name, m];
    }
  }

  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }

  /** This module and every descendant, with dotted names ('' for this one). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, child] of this.namedChildren()) yield* child.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  /** Parameters by dotted name; a parameter shared by several modules comes once unless removeDuplicate is false. */
  *namedParameters(prefix = '', removeDuplicate = true): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix))
      for (const name of m.paramNames) {
        const t = m.attr(name);
        if (!(t instanceof Tensor) || (removeDuplicate && seen.has(t))) continue;
        seen.add(t);
        yield [path ? `${path}.${name}` : name, t];
      }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [path, m] of this.namedModules(prefix))
      for (const name of m.bufferNames) {
        const t = m.attr(name);
        if (t instanceof Tensor) yield [path ? `${path}.${name}` : name, t];
      }
  }

  buffers(): Tensor[] {
    return [...this.namedBuffers()].map(([, t]) => t);
  }

  /** Sets train (true) or eval (false) mode on this module and its descendants. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Calls fn on every module, children first (as torch's apply). */
  apply(fn: (m: Module) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this);
    return this;
  }

  /** Stops gradients for every parameter (fine-tuning other parts). */
  freeze(): this {
    for (const p of this.parameters()) p.requiresGrad = false;
    return this;
  }

  unfreeze(): this {
    for (const p of this.parameters()) p.requiresGrad = true;
    return this;
  }

  /** Number of parameter elements (trainable only with { trainable: true }). */
  numParameters(options: { trainable?: boolean } = {}): number {
    checkKeys('numParameters', options, NUM_PARAMETERS_OPTION_KEYS);
    return this.parameters()
      .filter((p) => !options.trainable || p.requiresGrad)
      .reduce((n, p) => n + p.size, 0);
  }

  /**
   * Moves every parameter and buffer (and their gradients) to `device` ('cpu', 'cuda',
   * 'cuda:<index>') in place, as torch's Module.to: the tensor objects stay the same, so
   * references to them stay valid, an optimiser's included (its state is made on each
   * parameter's device, and follows a parameter moved later at the next step). Where the
   * device cannot be used it throws the engine's Error (with devices()'s reason) and changes
   * nothing.
   */
  to(device: DeviceSpec): this {
    // Checked on an empty tensor first: the same error as Tensor.to, before anything moves.
    const probe = zeros([0]);
    try {
      probe.to(device).dispose();
    } finally {
      probe.dispose();
    }
    for (const t of new Set([...this.parameters(), ...this.buffers()])) t._moveTo_(device);
    return this;
  }

  /** The device of the first parameter (or buffer): 'cpu' or 'cuda:<index>'; 'cpu' for a module without tensors. */
  get device(): string {
    const first = this.parameters()[0] ?? this.buffers()[0];
    return first ? first.deviceId : 'cpu';
  }

  /** Parameters and persistent buffers by dotted name (the tensors themselves, not copies), in PyTorch's order. */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [path, m] of this.namedModules()) {
      const key = (name: string) => (path ? `${path}.${name}` : name);
      for (const name of m.paramNames) {
        const t = m.attr(name);
        if (t instanceof Tensor) out.set(key(name), t);
      }
      for (const name of m.bufferNames) {
        const t = m.attr(name);
        if (t instanceof Tensor && !m.nonPersistent.has(name)) out.set(key(name), t);
      }
    }
    return out;
  }

  /**
   * Copies values from `state` into this module's parameters and buffers. Names the
   * missing and unexpected keys (an error in strict mode) and every shape mismatch.
   */
  loadStateDict(state: StateDict | Record<string, Tensor>, options: LoadOptions = {}): LoadResult {
    checkKeys('loadStateDict', options, LOAD_OPTION_KEYS);
    const { strict = true, mapKey } = options;
    // Anything else would read as an empty state and fail later as 'missing keys', hiding the real mistake.
    if (!(state instanceof Map) && (state === null || typeof state !== 'object' || Array.isArray(state) || state instanceof Tensor))
      throw typeError('loadStateDict', 'state', 'a state dict (a Map or an object of tensors by name)', state);
    const incoming = new Map<string, Tensor>();
    for (const [key, value] of state instanceof Map ? state : Object.entries(state)) {
      const k = mapKey ? mapKey(key) : key;
      if (k !== null) incoming.set(k, value);
    }
    const own = this.stateDict();
    const optional = new Set<string>();
    for (const [path, m] of this.namedModules()) for (const name of m.optionalStateKeys()) optional.add(path ? `${path}.${name}` : name);
    const missingKeys = [...own.keys()].filter((k) => !incoming.has(k) && !optional.has(k));
    const unexpectedKeys = [...incoming.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    for (const [k, target] of own) {
      const src = incoming.get(k);
      if (src && src.shape.join(',') !== target.shape.join(',')) mismatches.push(`${k}: expected [${target.shape.join(',')}], got [${src.shape.join(',')}]`);
    }
    const problems: string[] = [];
    if (mismatches.length) problems.push(`shape mismatches: ${mismatches.join('; ')}`);
    if (strict && missingKeys.length) problems.push(`missing keys: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    if (problems.length) throw new RangeError(`loadStateDict: 'state' does not fit the module (${problems.join('; ')})`);
    for (const [k, target] of own) {
      const src = incoming.get(k);
      if (src) target.assign(src);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Whether any parameter or buffer was freed (by dispose(), here or on a parent). */
  get disposed(): boolean {
    return [...this.parameters(), ...this.buffers()].some((t) => t.isDisposed);
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }
}

/**
 * Applies `layers` in order from `x` and returns the last result, disposing each intermediate
 * result once the next layer has consumed it (`x` is left alone; a layer that returns its
 * input disposes nothing). A deep network then holds two activations at a time instead of all
 * of them, and freed buffers are reused for the next layer; what autograd saved for backward
 * stays alive through its own references.
 */
export function chain(x: Tensor, layers: Iterable<Module | ((h: Tensor) => Tensor)>): Tensor {
  let h = x;
  for (const layer of layers) {
    const next = (layer instanceof Module ? layer.forward(h) : layer(h)) as Tensor;
    if (h !== x && next !== h) h.dispose();
    h = next;
  }
  return h;
}

/**
 * Runs modules in order, each on the previous one's output; children named '0', '1', ...
 * Intermediate outputs are disposed as the next module takes them ({@link chain}).
 */
export class Sequential extends Module {
  readonly length: number;
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => {
      if (!(m instanceof Module)) throw new TypeError(`Sequential: 'modules[${i}]' must be a Module, got ${typeof m}`);
      this.registerModule(String(i), m);
    });
    this.length = modules.length;
  }

  at(index: number): Module {
    return this.children()[index];
  }

  forward(x: Tensor): Tensor {
    return chain(x, this.children());
  }
}

/** Holds modules in a list (children '0', '1', ...) for a forward written by the owner, as torch.nn.ModuleList. */
export class ModuleList extends Module {
  private items: Module[] = [];
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  get length(): number {
    return this.items.length;
  }
  append(module: Module): this {
    if (!(module instanceof Module)) throw new TypeError(`ModuleList: 'modules[${this.items.length}]' must be a Module, got ${typeof module}`);
    this.registerModule(String(this.items.length), module);
    this.items.push(module);
    return this;
  }
  at(index: number): Module {
    const m = this.items[index < 0 ? this.items.length + index : index];
    if (!m) throw new RangeError(`ModuleList.at: 'index' must be in [-${this.items.length}, ${this.items.length}), got ${index}`);
    return m;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.items[Symbol.iterator]();
  }
  forward(): never {
    throw new Error('ModuleList: has no forward; iterate over it in the owning module');
  }
}

/** Holds named modules for a forward written by the owner, as torch.nn.ModuleDict. */
export class ModuleDict extends Module {
  private readonly entries = new Map<string, Module>();
  constructor(modules: Record<string, Module> = {}) {
    super();
    for (const [k, m] of Object.entries(modules)) this.set(k, m);
  }
  set(name: string, module: Module): this {
    if (!/^[^.]+$/.test(name)) throw new RangeError(`ModuleDict: 'name' must be non-empty without '.', got '${name}'`);
    if (!(module instanceof Module)) throw new TypeError(`ModuleDict: 'modules.${name}' must be a Module, got ${typeof module}`);
    this.registerModule(name, module);
    this.entries.set(name, module);
    return this;
  }
  get(name: string): Module {
    const m = this.entries.get(name);
    if (!m) throw new RangeError(`ModuleDict.get: no module '${name}' (has: ${[...this.entries.keys()].join(', ')})`);
    return m;
  }
  has(name: string): boolean {
    return this.entries.has(name);
  }
  keys(): string[] {
    return [...this.entries.keys()];
  }
  forward(): never {
    throw new Error('ModuleDict: has no forward; pick its modules in the owning module');
  }
}
