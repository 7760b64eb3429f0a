// convBatchNorm: in eval mode one convolution with the batch norm folded into its weights,
// against the two layers run one after the other (and a plain-loop reference of both).
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { BatchNorm2d, Conv2d, PReLU, ResidualBlock, convBatchNorm } from '../src/index.js';

let seed = 1;
const uniform = (n: number, lo = -1, hi = 1) => {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    out[i] = lo + ((hi - lo) * seed) / 2147483648;
  }
  return out;
};
const rand = (shape: number[], lo = -1, hi = 1) => lr.tensor(uniform(shape.reduce((a, b) => a * b, 1), lo, hi), shape);

/** A batch norm with running statistics and affine parameters away from their initial values. */
function trainedBatchNorm(c: number, affine = true): BatchNorm2d {
  const bn = new BatchNorm2d(c, { affine, eps: 1e-3 });
  bn.running_mean!.assign(uniform(c));
  bn.running_var!.assign(uniform(c, 0.2, 3));
  if (affine) {
    bn.weight!.assign(uniform(c, -2, 2));
    bn.bias!.assign(uniform(c));
  }
  return bn;
}

/** bn(conv(x)) (+ ReLU) written out in loops: direct convolution, then (v - mean) / sqrt(var + eps) * gamma + beta. */
function reference(x: lr.Tensor, conv: Conv2d, bn: BatchNorm2d, relu: boolean): Float64Array {
  const [n, c, h, w] = x.shape;
  const [o, cg, kh, kw] = conv.weight.shape;
  const groups = conv.options.groups, og = o / groups;
  const pad = conv.options.padding as number;
  const xd = x.data(), wd = conv.weight.data(), bd = conv.bias?.data();
  const mean = bn.running_mean!.data(), variance = bn.running_var!.data();
  const gamma = bn.weight?.data(), beta = bn.bias?.data();
  const oh = h + 2 * pad - kh + 1, ow = w + 2 * pad - kw + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < o; k++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let v = bd ? bd[k] : 0;
          const g = Math.floor(k / og);
          for (let ci = 0; ci < cg; ci++)
            for (let p = 0; p < kh; p++)
              for (let q = 0; q < kw; q++) {
                const y = i + p - pad, xx = j + q - pad;
                if (y >= 0 && y < h && xx >= 0 && xx < w) v += xd[((b * c + g * cg + ci) * h + y) * w + xx] * wd[((k * cg + ci) * kh + p) * kw + q];
              }
          v = ((v - mean[k]) / Math.sqrt(variance[k] + bn.eps)) * (gamma ? gamma[k] : 1) + (beta ? beta[k] : 0);
          out[((b * o + k) * oh + i) * ow + j] = relu ? Math.max(v, 0) : v;
        }
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst, what).toBeLessThan(tol);
}

describe('convBatchNorm', () => {
  const cases: [string, number, number, number, boolean, boolean][] = [
    // name, in, out, groups, conv bias, affine
    ['no conv bias', 5, 7, 1, false, true],
    ['conv bias', 4, 6, 1, true, true],
    ['grouped, no affine', 6, 4, 2, true, false],
  ];
  for (const [name, cin, cout, groups, bias, affine] of cases)
    for (const relu of [false, true])
      it(`eval mode, ${name}${relu ? ', relu' : ''}: one convolution equal to the two layers`, () => {
        const conv = new Conv2d(cin, cout, 3, { padding: 1, bias, groups });
        const bn = trainedBatchNorm(cout, affine);
        bn.eval();
        const x = rand([2, cin, 6, 5]);
        const folded = convBatchNorm(x, conv, bn, { relu, fold: true });
        const layers = lr.scope(() => {
          const h = bn.forward(conv.forward(x));
          return relu ? lr.relu(h) : h;
        });
        expect(folded.shape).toEqual([2, cout, 6, 5]);
        expectClose(folded.data(), layers.data(), 2e-5, 'folded vs layers');
        expectClose(folded.data(), reference(x, conv, bn, relu), 2e-5, 'folded vs loops');
      });

  it('eval mode: gradients to the input, the conv weights and the batch norm affine equal the two layers', () => {
    const conv = new Conv2d(3, 4, 3, { padding: 1 });
    const bn = trainedBatchNorm(4);
    bn.eval();
    const x = rand([2, 3, 5, 5]);
    const r = rand([2, 4, 5, 5]);
    const grads = (run: (xg: lr.Tensor) => lr.Tensor) => {
      for (const p of [conv.weight, conv.bias!, bn.weight!, bn.bias!]) p.requiresGrad_().grad = null;
      const xg = x.detach().requiresGrad_();
      lr.sum(lr.mul(run(xg), r)).backward();
      return [xg.grad!, conv.weight.grad!, conv.bias!.grad!, bn.weight!.grad!, bn.bias!.grad!].map((t) => Float32Array.from(t.data()));
    };
    const folded = grads((xg) => convBatchNorm(xg, conv, bn, { relu: true, fold: true }));
    const layers = grads((xg) => lr.relu(bn.forward(conv.forward(xg))));
    ['x', 'conv.weight', 'conv.bias', 'bn.weight', 'bn.bias'].forEach((name, i) => expectClose(folded[i], layers[i], 5e-5, name));
  });

  it('training mode runs the two layers, batch statistics and running-statistics update included', () => {
    const conv = new Conv2d(3, 4, 3, { padding: 1 });
    const a = trainedBatchNorm(4), b = trainedBatchNorm(4);
    b.loadStateDict(a.stateDict());
    const x = rand([3, 3, 4, 4]);
    const y = convBatchNorm(x, conv, a, { relu: true, fold: true });
    const expected = lr.relu(b.forward(conv.forward(x)));
    expect(Array.from(y.data())).toEqual(Array.from(expected.data()));
    expect(Array.from(a.running_mean!.data())).toEqual(Array.from(b.running_mean!.data()));
  });

  it('without running statistics, or after a conv with its own ReLU, runs the layers as they are', () => {
    const conv = new Conv2d(2, 3, 3, { padding: 1 });
    const untracked = new BatchNorm2d(3, { trackRunningStats: false });
    untracked.eval(); // batch statistics all the same: nothing to fold
    const x = rand([2, 2, 4, 4]);
    expect(Array.from(convBatchNorm(x, conv, untracked, { fold: true }).data())).toEqual(Array.from(untracked.forward(conv.forward(x)).data()));
    const reluConv = new Conv2d(2, 3, 3, { padding: 1, activation: 'relu' });
    reluConv.weight.assign(conv.weight.data());
    reluConv.bias!.assign(conv.bias!.data());
    const bn = trainedBatchNorm(3);
    bn.eval();
    expect(Array.from(convBatchNorm(x, reluConv, bn, { fold: true }).data())).toEqual(Array.from(bn.forward(reluConv.forward(x)).data()));
    expect(Array.from(convBatchNorm(x, conv, null, { relu: true, fold: true }).data())).toEqual(Array.from(lr.relu(conv.forward(x)).data()));
  });

  it("folds by default from 2^17 output values, not below; fold: false never folds; bad options are refused", () => {
    const conv = new Conv2d(4, 8, 3, { padding: 1 });
    const bn = trainedBatchNorm(8);
    bn.eval();
    const layers = (x: lr.Tensor) => lr.scope(() => lr.relu(bn.forward(conv.forward(x))));
    const exact = (a: lr.Tensor, b: lr.Tensor) => {
      const bd = b.data();
      return Array.from(a.data()).every((v, i) => Object.is(v, bd[i]));
    };
    // 2 x 8 x 90 x 91 = 131040 outputs, one image row short of 2^17: the two layers, bit for bit.
    const small = rand([2, 4, 90, 91]);
    expect(exact(convBatchNorm(small, conv, bn, { relu: true }), layers(small))).toBe(true);
    // 2 x 8 x 91 x 91 = 132496: folded (equal up to rounding, not bit for bit).
    const large = rand([2, 4, 91, 91]);
    const folded = convBatchNorm(large, conv, bn, { relu: true });
    expect(exact(folded, convBatchNorm(large, conv, bn, { relu: true, fold: true }))).toBe(true);
    expect(exact(folded, layers(large))).toBe(false);
    expectClose(folded.data(), layers(large).data(), 2e-5, 'auto, large');
    expect(exact(convBatchNorm(large, conv, bn, { relu: true, fold: false }), layers(large))).toBe(true);
    expect(() => convBatchNorm(small, conv, bn, { fold: 'yes' as unknown as boolean })).toThrow(new TypeError("convBatchNorm: 'fold' must be true, false or 'auto', got \"yes\""));
    expect(() => convBatchNorm(small, conv, bn, { relu: 1 as unknown as boolean })).toThrow(/convBatchNorm: 'relu' must be a boolean, got 1/);
    expect(() => convBatchNorm(small, conv, bn, { folds: true } as never)).toThrow(/convBatchNorm: 'folds' must be one of the known options \(relu, fold, residual\)/);
  });

  it('adds a residual before the ReLU: folded, unfolded and without a batch norm (inside the convolution)', () => {
    const conv = new Conv2d(4, 6, 3, { padding: 1 });
    const bn = trainedBatchNorm(6);
    bn.eval();
    const x = rand([2, 4, 7, 5]);
    const r = rand([2, 6, 7, 5], -3, 3);
    const layers = (withBn: boolean) => lr.scope(() => lr.relu(lr.add(withBn ? bn.forward(conv.forward(x)) : conv.forward(x), r)));
    for (const fold of [true, false]) {
      const y = convBatchNorm(x, conv, bn, { relu: true, fold, residual: r });
      expectClose(y.data(), layers(true).data(), 2e-5, `fold ${fold}`);
      if (!fold) expect(Array.from(y.data())).toEqual(Array.from(layers(true).data()));
    }
    // No batch norm: conv2dAddRelu, equal to the layers bit for bit.
    expect(Array.from(convBatchNorm(x, conv, null, { relu: true, residual: r }).data())).toEqual(Array.from(layers(false).data()));
    expect(() => convBatchNorm(x, conv, bn, { residual: [1] as unknown as lr.Tensor })).toThrow(/convBatchNorm: 'residual' must be a Tensor/);
  });

  it('ResidualBlock without batch norm adds its input inside the second convolution, equal to the add bit for bit, gradients included', () => {
    const block = new ResidualBlock(4);
    const x = rand([2, 4, 6, 7]);
    const r = rand([2, 4, 6, 7]);
    const grads = (run: (xg: lr.Tensor) => lr.Tensor) => {
      for (const p of block.parameters()) p.grad = null;
      const xg = x.detach().requiresGrad_();
      const y = run(xg);
      lr.sum(lr.mul(y, r)).backward();
      return [y, xg.grad!, ...block.parameters().map((p) => p.grad!)].map((t) => Array.from(t.data()));
    };
    const fused = grads((xg) => block.forward(xg));
    const layers = grads((xg) => lr.add(xg, block.conv2.forward(lr.relu(block.conv1.forward(xg)))));
    fused.forEach((v, i) => expect(v, `tensor ${i}`).toEqual(layers[i]));
  });

  it("folds ResidualBlock's batch norms in eval mode, its activation kept where it is not a ReLU", () => {
    for (const activation of [undefined, new PReLU(4)]) {
      const block = new ResidualBlock(4, { batchNorm: true, ...(activation ? { activation } : {}) });
      for (const bn of [block.bn1!, block.bn2!]) {
        const trained = trainedBatchNorm(4);
        bn.loadStateDict(trained.stateDict());
      }
      block.eval();
      const x = rand([2, 4, 128, 128]); // 2^17 outputs: folded
      const expected = lr.scope(() => {
        let h = block.bn1!.forward(block.conv1.forward(x));
        h = block.act.forward(h) as lr.Tensor;
        h = block.bn2!.forward(block.conv2.forward(h));
        return lr.add(x, h);
      });
      expectClose(block.forward(x).data(), expected.data(), 2e-5, activation ? 'PReLU' : 'ReLU');
    }
  });
});
