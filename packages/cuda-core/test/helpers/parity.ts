// Device-against-CPU comparison shared by the CUDA suites.
import { expect } from 'vitest';
import * as lr from '../../src/index.js';
import { expectClose } from './check.js';
import { size, uniform } from './random.js';

export interface Input {
  data: Float32Array;
  shape: number[];
  grad?: boolean;
}

/**
 * Runs f on the CPU and on the device with the same inputs; compares the outputs, then the
 * gradients of sum(f(...) * R) for a random R, per input that asks for one.
 */
export function parity(f: (...xs: lr.Tensor[]) => lr.Tensor, inputs: Input[], tol = { atol: 1e-5, rtol: 1e-4 }): void {
  const run = (device: 'cpu' | 'cuda') => {
    const leaves = inputs.map((i) => lr.tensor(i.data, i.shape, 'float32', device).requiresGrad_(i.grad ?? true));
    const y = f(...leaves);
    expect(y.device).toBe(device);
    const r = lr.tensor(uniform(y.size, 99), y.shape, 'float32', device);
    const loss = lr.sum(lr.mul(y, r));
    loss.backward();
    const out = { y: y.to('cpu').data(), grads: leaves.map((l) => (l.grad ? l.grad.to('cpu').data() : null)) };
    for (const l of leaves) expect(l.grad === null || l.grad.device === device).toBe(true);
    [y, r, loss, ...leaves].forEach((t) => t.dispose());
    return out;
  };
  const cpu = run('cpu');
  const gpu = run('cuda');
  expectClose(gpu.y, cpu.y, tol.atol, tol.rtol);
  cpu.grads.forEach((g, i) => {
    if (g === null) expect(gpu.grads[i]).toBeNull();
    else expectClose(gpu.grads[i]!, g, tol.atol, tol.rtol);
  });
}

export const input = (shape: number[], seed: number, data?: Float32Array): Input => ({ shape, data: data ?? uniform(size(shape), seed) });
export const positive = (shape: number[], seed: number): Input => ({ shape, data: uniform(size(shape), seed, 0.2, 2) });
