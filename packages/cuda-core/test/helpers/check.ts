// Assertions shared by the engine's tests: closeness to a reference, error class and
// argument name, and central finite-difference gradient checks.
import { expect } from 'vitest';
import { noGrad, scope, tensor, type Tensor } from '../../src/index.js';
import { rng } from './random.js';

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const bound = atol + rtol * Math.abs(expected[i]);
    const bad = !(err <= bound) && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]));
    if (bad && (worst < 0 || err > worstErr)) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0)
    throw new Error(`mismatch at index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (|err| ${worstErr})`);
}

/** Asserts that fn throws `cls` and that the message names each of `words` (e.g. "'weight'"). */
export function expectError(fn: () => unknown, cls: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, ...words: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected an error').toBeInstanceOf(cls);
  if (cls === Error) expect((caught as Error).constructor).toBe(Error);
  for (const w of words) expect((caught as Error).message).toContain(w);
}

export interface GradcheckInput {
  data: Float32Array;
  shape: number[];
  /** Leave false for inputs that are not differentiated (integer-like parameters). */
  grad?: boolean;
}

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** At most this many elements of each input are perturbed (chosen at random). */
  maxElements?: number;
  seed?: number;
}

/**
 * Compares autograd's gradients of L = sum(f(inputs) * R), R random, with central finite
 * differences. L is accumulated in float64 from the float32 outputs. Returns the worst
 * relative error; throws with details when a gradient is wrong.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: GradcheckInput[], options: GradcheckOptions = {}): number {
  const { eps = 3e-3, atol = 3e-3, rtol = 2e-2, maxElements = 40, seed = 7 } = options;
  const random = rng(seed);
  // Analytic gradients
  const leaves = inputs.map((inp) => tensor(inp.data.slice(), inp.shape));
  inputs.forEach((inp, i) => {
    if (inp.grad !== false) leaves[i].requiresGrad_();
  });
  const y = f(...leaves);
  const weights = new Float32Array(y.size);
  for (let i = 0; i < weights.length; i++) weights[i] = random() * 2 - 1;
  const w = tensor(weights, y.shape);
  y.backward(w);
  const analytic = leaves.map((l) => (l.grad ? (l.grad.data() as Float32Array) : null));
  w.dispose();
  y.dispose();
  leaves.forEach((l) => l.dispose());

  const loss = (datas: Float32Array[]): number =>
    noGrad(() =>
      scope(() => {
        const out = f(...datas.map((d, i) => tensor(d, inputs[i].shape))).data();
        let acc = 0;
        for (let i = 0; i < out.length; i++) acc += out[i] * weights[i];
        return acc;
      }),
    );

  let worst = 0;
  inputs.forEach((inp, i) => {
    if (inp.grad === false) return;
    const ana = analytic[i];
    if (!ana) throw new Error(`gradcheck: input ${i} received no gradient`);
    const n = inp.data.length;
    const picks = n <= maxElements ? [...Array(n).keys()] : Array.from({ length: maxElements }, () => Math.floor(random() * n));
    for (const k of picks) {
      const datas = inputs.map((x) => x.data.slice());
      const orig = datas[i][k];
      datas[i][k] = orig + eps;
      const plus = loss(datas);
      datas[i][k] = orig - eps;
      const minus = loss(datas);
      // The perturbation actually applied, after float32 rounding.
      const h = Math.fround(orig + eps) - Math.fround(orig - eps);
      const numeric = (plus - minus) / h;
      const err = Math.abs(numeric - ana[k]);
      if (err > atol + rtol * Math.abs(numeric))
        throw new Error(`gradcheck: input ${i} element ${k}: autograd ${ana[k]}, finite difference ${numeric}`);
      worst = Math.max(worst, err / (Math.abs(numeric) + atol));
    }
  });
  return worst;
}
