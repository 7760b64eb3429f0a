// The engine's global seeded generator. Counter-based (Philox4x32-10, native/cpu/random.h): a
// value depends only on the seed and on its position in the stream, never on the thread count,
// so {seed, counter} is the whole state and restores a run exactly.
import { empty, formatShape, parseDevice, type DeviceSpec, type Shape, type Tensor } from './tensor.js';
import { kernels } from './native.js';
import { checkKeys, rangeError, stateError, typeError } from './errors.js';
import { attr, defineOp, ref, type AttrSpec } from './ops/decl.js';

/** The generator's whole state: save it with a checkpoint, restore it to resume exactly. */
export interface RngState {
  /** The seed given to {@link manualSeed}, an integer in [0, 2^53). */
  seed: number;
  /** Position in the stream: 32-bit words drawn since seeding (a value takes 1 or 2). */
  counter: number;
}

const DEFAULT_SEED = 0x5eed;
const MAX_COUNTER = 2 ** 53;
let state: RngState = { seed: DEFAULT_SEED, counter: 0 };

// Where the values are made: 'cpu' (default), 'cuda' or 'cuda:<index>' (checked to be usable).
const deviceAttr: AttrSpec<number> = {
  expected: "'cpu', 'cuda' or 'cuda:<index>'",
  parse: (op, _name, value) => parseDevice(op, value ?? 'cpu'),
};

const randDecl = defineOp('rand', {}, { low: attr.number({ default: 0 }), high: attr.number({ default: 1 }), device: deviceAttr });
const randnDecl = defineOp('randn', {}, { mean: attr.number({ default: 0 }), std: attr.number({ min: 0, default: 1 }), device: deviceAttr });
const randintDecl = defineOp('randint', {}, { low: attr.int({ min: -(2 ** 31), max: 2 ** 31 - 1 }), high: attr.int({ min: -(2 ** 31) + 1, max: 2 ** 31 }), device: deviceAttr });
const randpermDecl = defineOp('randperm', {}, { n: attr.int({ min: 0, max: 2 ** 31 - 1 }), device: deviceAttr });

function checkSeed(op: string, name: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed)) throw typeError(op, name, 'an integer', seed);
  if (seed < 0 || seed > Number.MAX_SAFE_INTEGER) throw rangeError(op, name, `an integer in [0, ${Number.MAX_SAFE_INTEGER}]`, seed);
  return seed;
}

/** Seeds the global generator (torch.manual_seed) and rewinds it to its first value. */
export function manualSeed(seed: number): void {
  state = { seed: checkSeed('manualSeed', 'seed', seed), counter: 0 };
}

/** A copy of the generator's state, e.g. to store in a checkpoint. */
export function getRngState(): RngState {
  return { seed: state.seed, counter: state.counter };
}

/** Restores a state from {@link getRngState}; the following draws repeat those made after it was taken. */
export function setRngState(s: RngState): void {
  const op = 'setRngState';
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw typeError(op, 'state', 'an object { seed, counter }', s);
  const seed = checkSeed(op, 'state.seed', s.seed);
  if (typeof s.counter !== 'number' || !Number.isInteger(s.counter)) throw typeError(op, 'state.counter', 'an integer', s.counter);
  if (s.counter < 0 || s.counter > MAX_COUNTER) throw rangeError(op, 'state.counter', `an integer in [0, 2^53]`, s.counter);
  state = { seed, counter: s.counter };
}

/**
 * @internal reserves the stream words of a draw of `count` values taking `words` 32-bit words
 * each, and returns where it starts. Draws start at a multiple of 4 (one Philox block), so a
 * value never shares a block with another draw's.
 */
export function reserveCounters(op: string, count: number, words: number): { seed: number; offset: number } {
  if (count === 0) return { seed: state.seed, offset: 0 };
  const offset = Math.ceil(state.counter / 4) * 4;
  const end = offset + count * words;
  if (end > MAX_COUNTER) throw stateError(op, 'the random generator is exhausted (2^53 words drawn); call manualSeed');
  state.counter = end;
  return { seed: state.seed, offset };
}

function checkShape(op: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw typeError(op, 'shape', 'an array of non-negative integers', shape);
  for (const d of shape)
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
      throw rangeError(op, 'shape', 'an array of non-negative integers', formatShape(shape), true);
  return shape as number[];
}

/**
 * Uniform float32 values in [low, high) (defaults 0 and 1), from the global generator, on
 * `device` (the CPU by default; a device draws the same values).
 */
export function rand(shape: Shape, options: { low?: number; high?: number; device?: DeviceSpec } = {}): Tensor {
  const op = 'rand';
  const { a } = randDecl.parse({}, options);
  const dims = checkShape(op, shape);
  if (a.high < a.low) throw rangeError(op, 'high', `a number >= low (${a.low})`, a.high);
  const out = empty(dims, 'float32', a.device);
  const { seed, offset } = reserveCounters(op, out.size, 1);
  if (out.size > 0) kernels.random_uniform(...ref(out), out.size, seed, offset, a.low, a.high);
  return out;
}

/** Normal float32 values with the given mean and standard deviation (defaults 0 and 1), on `device`. */
export function randn(shape: Shape, options: { mean?: number; std?: number; device?: DeviceSpec } = {}): Tensor {
  const op = 'randn';
  const { a } = randnDecl.parse({}, options);
  const dims = checkShape(op, shape);
  const out = empty(dims, 'float32', a.device);
  const { seed, offset } = reserveCounters(op, out.size, 2);
  if (out.size > 0) kernels.random_normal(...ref(out), out.size, seed, offset, a.mean, a.std);
  return out;
}

// randint and randperm take their bounds as arguments: only the device is an option.
const DEVICE_OPTION_KEYS: Record<'device', true> = { device: true };

/** Uniform int32 integers in [low, high) (torch.randint), on `options.device`. */
export function randint(low: number, high: number, shape: Shape, options: { device?: DeviceSpec } = {}): Tensor {
  const op = 'randint';
  checkKeys(op, options, DEVICE_OPTION_KEYS);
  const { a } = randintDecl.parse({}, { low, high, device: options?.device });
  if (a.high <= a.low) throw rangeError(op, 'high', `an integer > low (${a.low})`, a.high);
  const dims = checkShape(op, shape);
  const out = empty(dims, 'int32', a.device);
  const { seed, offset } = reserveCounters(op, out.size, 2);
  if (out.size > 0) kernels.random_int(...ref(out), out.size, seed, offset, a.low, a.high);
  return out;
}

/**
 * A uniformly random permutation of 0..n-1 as int32 (torch.randperm). On a device it is drawn
 * (sorted) on the CPU and copied over: the same permutation either way.
 */
export function randperm(n: number, options: { device?: DeviceSpec } = {}): Tensor {
  const op = 'randperm';
  checkKeys(op, options, DEVICE_OPTION_KEYS);
  const { a } = randpermDecl.parse({}, { n, device: options?.device });
  const out = empty([a.n], 'int32');
  const { seed, offset } = reserveCounters(op, a.n, 2);
  if (a.n > 0) kernels.random_permutation(...ref(out), a.n, seed, offset);
  if (a.device === -1) return out;
  const moved = empty([a.n], 'int32', a.device);
  if (a.n > 0) kernels.copy(...ref(moved), ...ref(out), a.n);
  out.dispose();
  return moved;
}
