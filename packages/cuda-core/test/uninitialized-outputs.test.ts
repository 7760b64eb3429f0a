import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { addon } from '../src/native.js';
import { expectError } from './helpers/check.js';
import { uniform } from './helpers/random.js';

// Ops whose outputs skip the zero fill must write every element: run each once on a clean
// block cache and once after filling the cache with NaN buffers of every size the op may
// take; any element left unwritten would come back NaN instead of its value.
function poisonCache(sizes: number[]): void {
  const held = sizes.map((n) => {
    const s = new addon.Storage(0, n);
    s.write(new Float32Array(n).fill(NaN));
    return s;
  });
  for (const s of held) s.free();
}

function sameAfterPoison(name: string, run: () => lr.Tensor): void {
  lr.emptyCache();
  const clean = lr.scope(() => Float32Array.from(run().data()));
  const sizes = [clean.length, 2 * clean.length, 4 * clean.length, 9 * clean.length];
  poisonCache(sizes);
  const again = lr.scope(() => Float32Array.from(run().data()));
  lr.emptyCache();
  expect(Array.from(again), name).toEqual(Array.from(clean));
  expect(clean.some(Number.isNaN), name).toBe(false);
}

describe('op outputs without the zero fill', () => {
  const x = (shape: number[], seed: number) => lr.tensor(uniform(shape.reduce((a, b) => a * b, 1), seed), shape);

  it('conv2d on every kernel path writes every output element', () => {
    const cases: [string, number[], number[], lr.Conv2dOptions][] = [
      ['direct (few outputs)', [2, 3, 9, 10], [8, 3, 3, 3], { padding: 1 }],
      ['gemm over all images (small planes)', [3, 20, 5, 4], [40, 20, 3, 3], { padding: 1 }],
      ['gemm per image', [2, 20, 22, 21], [40, 20, 3, 3], { padding: 1 }],
      ['strided', [2, 4, 9, 9], [30, 4, 3, 3], { stride: 2, padding: 1 }],
      ['depthwise', [2, 6, 7, 7], [6, 1, 3, 3], { groups: 6, stride: 2 }],
      ['Winograd', [2, 16, 12, 13], [16, 16, 3, 3], { padding: 1 }],
    ];
    for (const [i, [name, xs, ws, o]] of cases.entries()) {
      sameAfterPoison(name, () => lr.noGrad(() => lr.conv2d(x(xs, i), x(ws, 10 + i), x([ws[0]], 20 + i), o)));
      sameAfterPoison(`${name} + relu`, () => lr.noGrad(() => lr.conv2dRelu(x(xs, i), x(ws, 10 + i), undefined, o)));
      sameAfterPoison(`${name} + residual + relu`, () =>
        lr.noGrad(() => {
          const y = lr.conv2d(x(xs, i), x(ws, 10 + i), undefined, o);
          return lr.conv2dAddRelu(x(xs, i), x(ws, 10 + i), undefined, x(y.shape, 30 + i), o);
        }),
      );
    }
  });

  it('concat, stack, max pooling, prelu, binary and unary ops write every output element', () => {
    sameAfterPoison('concat', () => lr.concat([x([2, 3, 4, 5], 1), x([2, 1, 4, 5], 2), x([2, 0, 4, 5], 3), x([2, 2, 4, 5], 4)], 1));
    sameAfterPoison('stack', () => lr.stack([x([3, 5], 5), x([3, 5], 6)], 1));
    sameAfterPoison('max pool 3x3 s1 (no index)', () => lr.noGrad(() => lr.maxPool2d(x([2, 3, 9, 11], 7), { kernelSize: 3, stride: 1, padding: 1 })));
    sameAfterPoison('max pool 2x2', () => lr.maxPool2d(x([2, 3, 8, 9], 8), { kernelSize: 2 }));
    sameAfterPoison('max pool with index', () => lr.maxPool2d(x([1, 2, 7, 7], 9).requiresGrad_(), { kernelSize: 3, stride: 2, padding: 1 }));
    sameAfterPoison('prelu', () => lr.prelu(x([2, 3, 5, 7], 10), x([3], 11)));
    sameAfterPoison('add, broadcast', () => lr.add(x([2, 3, 5], 12), x([3, 1], 13)));
    sameAfterPoison('mul', () => lr.mul(x([4, 33], 14), x([4, 33], 15)));
    sameAfterPoison('relu', () => lr.relu(x([5, 37], 16)));
  });

  it('batch norm, resampling, pixel shuffles, padding, average pooling, softmax, dropout and l2 normalisation write every output element', () => {
    const stats = () => [x([3], 30), lr.add(x([3], 31), lr.tensor([1]))] as const;
    sameAfterPoison('batch norm, eval', () => lr.batchNorm2d(x([2, 3, 5, 7], 32), ...stats(), x([3], 33), x([3], 34), { training: false }));
    sameAfterPoison('batch norm, training', () => lr.noGrad(() => lr.batchNorm2d(x([2, 3, 5, 7], 35), null, null, null, null, { training: true })));
    for (const mode of ['nearest', 'bilinear', 'bicubic'] as const) {
      sameAfterPoison(`upsample ${mode} x2`, () => lr.upsample(x([2, 3, 5, 7], 36), { scaleFactor: 2, mode }));
      sameAfterPoison(`upsample ${mode} to 4x3`, () => lr.upsample(x([1, 2, 9, 7], 37), { size: [4, 3], mode }));
    }
    sameAfterPoison('pixel shuffle', () => lr.pixelShuffle(x([2, 12, 3, 5], 38), 2));
    sameAfterPoison('pixel unshuffle', () => lr.pixelUnshuffle(x([2, 3, 6, 9], 39), 3));
    for (const mode of ['constant', 'reflect', 'replicate'] as const)
      sameAfterPoison(`pad ${mode}`, () => lr.pad(x([2, 3, 5, 6], 40), [1, 2, 2, 1], { mode, value: 0.5 }));
    sameAfterPoison('pad, cropping', () => lr.pad(x([2, 3, 5, 6], 41), [-1, 0, 1, -2]));
    sameAfterPoison('average pool', () => lr.avgPool2d(x([2, 3, 9, 8], 42), { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }));
    sameAfterPoison('adaptive average pool', () => lr.adaptiveAvgPool2d(x([2, 3, 9, 7], 43), [4, 3]));
    sameAfterPoison('softmax', () => lr.softmax(x([3, 4, 5], 44), 1));
    sameAfterPoison('log softmax', () => lr.logSoftmax(x([3, 17], 45), 1));
    sameAfterPoison('dropout', () => lr.dropout(x([4, 33], 46), { p: 0.3, seed: 7 }));
    sameAfterPoison('l2 normalisation', () => lr.l2Normalize(x([3, 5, 2], 47), { axis: 1 }));
  });

  it('Storage takes the zero-fill flag as a boolean', () => {
    const s = new addon.Storage(0, 3, -1, false);
    expect(s.numel).toBe(3);
    s.free();
    expectError(() => new addon.Storage(0, 3, -1, 1 as never), TypeError, 'Storage', 'zeroed');
  });
});
