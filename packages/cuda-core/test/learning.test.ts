// End-to-end: the engine trains a small network on real pixels.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { decodePng, lumaOf, sharedDataDir } from '@lrface/test-data';
import { rng } from './helpers/random.js';

const dataDir = sharedDataDir;
const images = ['set5/butterfly_GT.png', 'set5/head_GT.png', 'public-domain/astronaut.png'].map((p) => dataDir + p);
const haveData = images.every((p) => existsSync(p));

/** Y patches (size x size) cut at random from the images, as [N, 1, size, size]. */
function cutPatches(count: number, size: number, seed: number): lr.Tensor {
  const random = rng(seed);
  const lumas = images.map((p) => {
    const img = decodePng(p);
    return { img, y: lumaOf(img) };
  });
  const out = new Float32Array(count * size * size);
  for (let n = 0; n < count; n++) {
    const { img, y } = lumas[n % lumas.length];
    const x0 = Math.floor(random() * (img.width - size));
    const y0 = Math.floor(random() * (img.height - size));
    for (let r = 0; r < size; r++)
      for (let c = 0; c < size; c++) out[n * size * size + r * size + c] = y[(y0 + r) * img.width + x0 + c];
  }
  return lr.tensor(out, [count, 1, size, size]);
}

function kaiming(shape: number[], seed: number): lr.Tensor {
  const random = rng(seed);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const bound = Math.sqrt(6 / fanIn);
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (random() * 2 - 1) * bound);
  return lr.tensor(data, shape).requiresGrad_();
}

describe.skipIf(!haveData)('learning on real pixels', () => {
  it('an SRCNN-shaped 3-layer net fits x2 bicubic-degraded Y patches (loss < 50% of start)', () => {
    const size = 32;
    const hr = cutPatches(16, size, 3);
    // x2 bicubic degradation (MATLAB imresize: down with antialiasing, then up).
    const lrInput = lr.noGrad(() => {
      const down = lr.upsample(hr, { size: [size / 2, size / 2], mode: 'bicubic' });
      const up = lr.upsample(down, { size: [size, size], mode: 'bicubic' });
      down.dispose();
      return up;
    });
    const params = [kaiming([16, 1, 9, 9], 1), lr.zeros([16]).requiresGrad_(), kaiming([8, 16, 1, 1], 2), lr.zeros([8]).requiresGrad_(), kaiming([1, 8, 5, 5], 3), lr.zeros([1]).requiresGrad_()];
    const [w1, b1, w2, b2, w3, b3] = params;
    const forward = () => {
      const h1 = lr.relu(lr.conv2d(lrInput, w1, b1, { padding: 4 }));
      const h2 = lr.relu(lr.conv2d(h1, w2, b2));
      return lr.conv2d(h2, w3, b3, { padding: 2 });
    };
    // Plain Adam, written here so the test depends on the engine only.
    const m = params.map((p) => lr.zeros(p.shape));
    const v = params.map((p) => lr.zeros(p.shape));
    const [beta1, beta2, rate] = [0.9, 0.999, 3e-3];
    const losses: number[] = [];
    for (let step = 1; step <= 150; step++) {
      const loss = lr.scope(() => {
        const l = lr.mean(lr.square(lr.sub(forward(), hr)));
        l.backward();
        return l.item();
      });
      losses.push(loss);
      lr.noGrad(() =>
        lr.scope(() => {
          params.forEach((p, i) => {
            const g = p.grad!;
            m[i].assign(lr.add(lr.mul(m[i], beta1), lr.mul(g, 1 - beta1)));
            v[i].assign(lr.add(lr.mul(v[i], beta2), lr.mul(lr.square(g), 1 - beta2)));
            const mHat = lr.div(m[i], 1 - beta1 ** step);
            const vHat = lr.div(v[i], 1 - beta2 ** step);
            p.assign(lr.sub(p, lr.div(lr.mul(mHat, rate), lr.add(lr.sqrt(vHat), 1e-8))));
            p.zeroGrad();
          });
        }),
      );
    }
    // Free everything so a later garbage collection cannot shift the memory test's counts.
    [hr, lrInput, ...params, ...m, ...v].forEach((t) => t.dispose());
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(0.5 * losses[0]);
  });
});

describe('memory over a long training loop', () => {
  it('5,000 forward/backward steps leave live tensors and native bytes flat', () => {
    const x = lr.tensor(Float32Array.from({ length: 2 * 1 * 8 * 8 }, (_, i) => Math.sin(i)), [2, 1, 8, 8]);
    const target = lr.tensor(Float32Array.from({ length: 2 * 1 * 8 * 8 }, (_, i) => Math.cos(i)), [2, 1, 8, 8]);
    const w1 = kaiming([4, 1, 3, 3], 7);
    const w2 = kaiming([1, 4, 3, 3], 8);
    const step = () => {
      lr.scope(() => {
        const h = lr.relu(lr.conv2d(x, w1, undefined, { padding: 1 }));
        const y = lr.conv2d(lr.maxPool2d(h, { kernelSize: 2 }), w2, undefined, { padding: 1 });
        const loss = lr.mean(lr.square(lr.sub(lr.upsample(y, { scaleFactor: 2, mode: 'nearest' }), target)));
        loss.backward();
        lr.noGrad(() => {
          w1.assign(lr.sub(w1, lr.mul(w1.grad!, 1e-3)));
          w2.assign(lr.sub(w2, lr.mul(w2.grad!, 1e-3)));
        });
        w1.zeroGrad();
        w2.zeroGrad();
      });
    };
    for (let i = 0; i < 100; i++) step();
    const start = lr.memory();
    const samples: number[] = [];
    for (let i = 0; i < 5000; i++) {
      step();
      if (i % 500 === 0) samples.push(lr.memory().bytes);
    }
    const end = lr.memory();
    expect(end.tensors).toBe(start.tensors);
    expect(end.buffers).toBe(start.buffers);
    expect(end.bytes).toBe(start.bytes);
    expect(new Set(samples).size).toBe(1);
  });
});
