import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectError, gradcheck } from './helpers/check.js';
import { uniform } from './helpers/random.js';

describe('autograd', () => {
  it('computes gradients through a small graph and frees it afterwards', () => {
    const x = lr.tensor([1, 2, 3]).requiresGrad_();
    const y = lr.sum(lr.mul(x, x)); // dy/dx = 2x
    y.backward();
    expect(Array.from(x.grad!.data())).toEqual([2, 4, 6]);
    expectError(() => y.backward(), Error, 'backward', 'freed');
  });

  it('accumulates gradients across backward calls and over reused inputs', () => {
    const x = lr.tensor([1, -2]).requiresGrad_();
    lr.sum(lr.add(x, x)).backward();
    expect(Array.from(x.grad!.data())).toEqual([2, 2]);
    lr.sum(lr.mul(x, 3)).backward();
    expect(Array.from(x.grad!.data())).toEqual([5, 5]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
  });

  it('keeps the graph with retainGraph', () => {
    const x = lr.tensor([2]).requiresGrad_();
    const y = lr.mul(x, x);
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expect(x.grad!.item()).toBe(8);
  });

  it('does not record under noGrad, nor through detach()', () => {
    const x = lr.tensor([1, 2]).requiresGrad_();
    const y = lr.noGrad(() => lr.mul(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(lr.isGradEnabled()).toBe(true);
    const z = lr.mul(x.detach(), 2);
    expect(z.requiresGrad).toBe(false);
    expectError(() => z.backward(), Error, 'backward', 'does not require grad');
  });

  it('needs an explicit gradient for non-scalar outputs', () => {
    const x = lr.tensor([1, 2]).requiresGrad_();
    const y = lr.mul(x, x);
    expectError(() => y.backward(), RangeError, "'gradient'");
    expectError(() => y.backward(lr.tensor([1, 2, 3])), RangeError, "'gradient'");
    y.backward(lr.tensor([1, 10]));
    expect(Array.from(x.grad!.data())).toEqual([2, 40]);
  });

  it('survives disposing intermediates before backward', () => {
    const x = lr.tensor([3]).requiresGrad_();
    const y = lr.scope(() => lr.sum(lr.exp(lr.mul(x, 2))));
    y.backward();
    expect(x.grad!.item()).toBeCloseTo(2 * Math.exp(6), 2);
  });

  it('frees what a forward pass saved once its outputs are disposed, when no backward follows', () => {
    const w = lr.randn([8, 3, 3, 3]).requiresGrad_();
    const x = lr.randn([2, 3, 12, 12]);
    const before = lr.memory();
    // A validation-style forward in training mode: its loss is read, never differentiated.
    for (let i = 0; i < 20; i++) lr.scope(() => lr.mean(lr.square(lr.relu(lr.conv2d(x, w, null, { padding: 1 })))).item());
    expect(lr.memory().tensors).toBe(before.tensors);
    expect(lr.memory().bytes).toBe(before.bytes);
    // The same with retainGraph: disposing the output lets the kept graph go.
    const y = lr.scope(() => lr.sum(lr.exp(lr.mul(w, 0.1))));
    y.backward(undefined, { retainGraph: true });
    w.zeroGrad();
    const held = lr.memory().tensors;
    y.dispose();
    expect(lr.memory().tensors).toBeLessThan(held);
    expect(lr.memory().tensors).toBe(before.tensors);
  });

  it('keeps the graph below a disposed output while a later result still needs it', () => {
    const x = lr.tensor([1, 2]).requiresGrad_();
    const h = lr.exp(x);
    const loss = lr.sum(lr.mul(h, h));
    h.dispose(); // the loss's graph goes through h's node
    loss.backward();
    expect(Array.from(x.grad!.data()).map((v) => +v.toFixed(3))).toEqual([2 * Math.exp(2), 2 * Math.exp(4)].map((v) => +v.toFixed(3)));
  });

  it('handles deep chains without recursion limits', () => {
    const x = lr.tensor([1]).requiresGrad_();
    let y = x;
    for (let i = 0; i < 20000; i++) y = lr.affine(y, 1, 0.0001);
    y.backward();
    expect(x.grad!.item()).toBe(1);
  });

  it('rejects requiresGrad on integer tensors', () => {
    expectError(() => lr.tensor(new Int32Array([1])).requiresGrad_(), TypeError, 'float32');
  });

  it('gradcheck catches a deliberately wrong gradient', () => {
    // An op whose registered gradient is 5% off: the finite-difference check must reject it.
    lr.registerGradient('test_broken_square', (ctx, g) => {
      const x = ctx.saved.x;
      return [lr.mul(g, lr.mul(x, 2 * 1.05))];
    });
    const brokenSquare = (x: lr.Tensor) => {
      const out = lr.noGrad(() => lr.mul(x, x));
      lr.record('test_broken_square', [x], out, { x });
      return out;
    };
    const data = uniform(12, 5, 0.5, 1.5);
    expect(() => gradcheck(brokenSquare, [{ data, shape: [12] }])).toThrow(/gradcheck/);
    // The correct gradient passes the same check.
    expect(gradcheck((x) => lr.mul(x, x), [{ data, shape: [12] }])).toBeLessThan(0.02);
  });
});
