// The engine's seeded random generator: counter-based, so a value depends only on the seed
// and how many values were drawn before it — never on the thread count.
import { empty, type Shape, type Tensor } from './tensor.js';
import { kernels } from './native.js';
import { rangeError, typeError } from './errors.js';
import { ref } from './ops/decl.js';

/** The generator's whole state: save it with a checkpoint, restore it to resume exactly. */
export interface RngState {
  seed: number;
  counter: number;
}

let state: RngState = { seed: 0x5eed, counter: 0 };

function checkSeed(op: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed)) throw typeError(op, 'seed', 'an integer', seed);
  if (seed < 0 || seed > Number.MAX_SAFE_INTEGER) throw rangeError(op, 'seed', `in [0, ${Number.MAX_SAFE_INTEGER}]`, seed);
  return seed;
}

/** Seeds the global generator (as torch.manual_seed). */
export function manualSeed(seed: number): void {
  state = { seed: checkSeed('manualSeed', seed), counter: 0 };
}

export function getRngState(): RngState {
  return { ...state };
}

export function setRngState(s: RngState): void {
  if (!s || typeof s !== 'object') throw typeError('setRngState', 'state', 'an object { seed, counter }', s);
  checkSeed('setRngState', s.seed);
  if (!Number.isInteger(s.counter) || s.counter < 0) throw rangeError('setRngState', 'state.counter', 'a non-negative integer', s.counter);
  state = { seed: s.seed, counter: s.counter };
}

/** Reserves `count` counters and returns the first: the stream position of a draw. */
export function nextRandomOffset(count: number): { seed: number; offset: number } {
  const out = { seed: state.seed, offset: state.counter };
  state.counter += count;
  return out;
}

/** @internal fills `out` from the generator (kind: 0 uniform, 1 normal, 2 integers, 3 keep-mask). */
export function fillRandom(out: Tensor, kind: number, a: number, b: number, seed?: number): void {
  const n = out.size;
  // Normal draws use two counters per value.
  const { seed: s, offset } = seed === undefined ? nextRandomOffset(kind === 1 ? 2 * n : n) : { seed, offset: 0 };
  kernels.random_fill(...ref(out), kind, Math.floor(s / 2 ** 32), s >>> 0, offset, n, a, b);
}

function checkShapeArg(op: string, shape: unknown): Shape {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    throw typeError(op, 'shape', 'an array of non-negative integers', shape);
  return shape;
}

/** Uniform float32 values in [low, high). */
export function rand(shape: Shape, options: { low?: number; high?: number } = {}): Tensor {
  const { low = 0, high = 1 } = options;
  checkShapeArg('rand', shape);
  if (!(Number.isFinite(low) && Number.isFinite(high) && high > low)) throw rangeError('rand', 'high', `a finite number > low (${low})`, high);
  const out = empty(shape);
  fillRandom(out, 0, low, high);
  return out;
}

/** Normal float32 values with the given mean and standard deviation. */
export function randn(shape: Shape, options: { mean?: number; std?: number } = {}): Tensor {
  const { mean = 0, std = 1 } = options;
  checkShapeArg('randn', shape);
  if (!Number.isFinite(mean)) throw rangeError('randn', 'mean', 'a finite number', mean);
  if (!(Number.isFinite(std) && std >= 0)) throw rangeError('randn', 'std', 'a finite number >= 0', std);
  const out = empty(shape);
  fillRandom(out, 1, mean, std);
  return out;
}

/** Uniform int32 integers in [low, high). */
export function randint(low: number, high: number, shape: Shape): Tensor {
  if (!Number.isInteger(low)) throw typeError('randint', 'low', 'an integer', low);
  if (!Number.isInteger(high) || high <= low) throw rangeError('randint', 'high', `an integer > low (${low})`, high);
  if (low < -(2 ** 31) || high > 2 ** 31) throw rangeError('randint', 'high', 'within the int32 range', high);
  checkShapeArg('randint', shape);
  const out = empty(shape, 'int32');
  fillRandom(out, 2, low, high);
  return out;
}

/** A random permutation of 0..n-1 (int32), Fisher-Yates on the generator's stream. */
export function randperm(n: number): Tensor {
  if (!Number.isInteger(n) || n < 0) throw rangeError('randperm', 'n', 'a non-negative integer', n);
  const u = empty([n]);
  if (n > 0) fillRandom(u, 0, 0, 1);
  const draws = u.data();
  u.dispose();
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(draws[i] * (i + 1)));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const out = empty([n], 'int32');
  if (n > 0) out.assign(perm);
  return out;
}

