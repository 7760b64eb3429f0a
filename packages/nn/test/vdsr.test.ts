// The published check: a real PyTorch VDSR checkpoint (legacy pickle of a whole model)
// loads into a VDSR built from our layers and reaches the published Set5 PSNR.
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Conv2d, Module, ReLU, Sequential, loadTorchStateDict } from '../src/index.js';
import { decodePng, sharedDataDir } from '@lrface/test-data';

const data = sharedDataDir;
const weights = `${data}weights/vdsr-pytorch/model_epoch_50.pth`;

class ConvReluBlock extends Module {
  declare conv: Conv2d;
  declare relu: ReLU;
  constructor() {
    super();
    this.registerModule('conv', new Conv2d(64, 64, 3, { padding: 1, bias: false }));
    this.registerModule('relu', new ReLU());
  }
  forward(x: lr.Tensor): lr.Tensor {
    return this.relu.forward(this.conv.forward(x));
  }
}

/** VDSR (Kim et al. 2016) with the module names of the public PyTorch implementation. */
class Vdsr extends Module {
  declare residual_layer: Sequential;
  declare input: Conv2d;
  declare output: Conv2d;
  declare relu: ReLU;
  constructor() {
    super();
    this.registerModule('residual_layer', new Sequential(...Array.from({ length: 18 }, () => new ConvReluBlock())));
    this.registerModule('input', new Conv2d(1, 64, 3, { padding: 1, bias: false }));
    this.registerModule('output', new Conv2d(64, 1, 3, { padding: 1, bias: false }));
    this.registerModule('relu', new ReLU());
  }
  forward(x: lr.Tensor): lr.Tensor {
    return lr.scope(() => lr.add(this.output.forward(this.residual_layer.forward(this.relu.forward(this.input.forward(x)))), x));
  }
}

/** Y of MATLAB rgb2ycbcr on uint8 RGB, in [0, 255] before rounding. */
function luma(img: ReturnType<typeof decodePng>, h: number, w: number): Float32Array {
  const y = new Float32Array(h * w);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      const o = (i * img.width + j) * img.channels;
      y[i * w + j] = Math.round(16 + (65.481 * img.data[o] + 128.553 * img.data[o + 1] + 24.966 * img.data[o + 2]) / 255);
    }
  return y;
}

describe.skipIf(!existsSync(weights))('VDSR from a PyTorch checkpoint', () => {
  const names = ['baby', 'bird', 'butterfly', 'head', 'woman'];
  const required: Record<number, number> = { 2: 37.4, 3: 33.6, 4: 31.3 };
  const scales = (process.env.LRFACE_VDSR_SCALES ?? '2,3,4').split(',').map(Number);
  let model: Vdsr;

  beforeAll(() => {
    const state = loadTorchStateDict(weights);
    expect(state.size).toBe(20);
    expect(state.get('input.weight')!.shape).toEqual([64, 1, 3, 3]);
    model = new Vdsr().eval();
    model.loadStateDict(state);
  });

  // One test per scale: each is 5 full Set5 images through 20 convolutions of 64 channels
  // (about 35 s on 2 idle cores), so the limit leaves room for a busy machine.
  for (const scale of scales)
    it(`loads the legacy whole-model pickle and reaches the published Set5 PSNR at x${scale}`, { timeout: 600_000 }, () => {
      let total = 0;
      for (const name of names) {
        const img = decodePng(`${data}set5/${name}_GT.png`);
        const h = img.height - (img.height % scale), w = img.width - (img.width % scale);
        const gt = luma(img, h, w);
        const psnr = lr.noGrad(() =>
          lr.scope(() => {
            const hr = lr.tensor(gt.map((v) => v / 255), [1, 1, h, w]);
            const bicubic = lr.upsample(lr.upsample(hr, { scaleFactor: 1 / scale, mode: 'bicubic' }), { scaleFactor: scale, mode: 'bicubic' });
            const out = model.forward(bicubic).data();
            let se = 0;
            let n = 0;
            for (let i = scale; i < h - scale; i++)
              for (let j = scale; j < w - scale; j++) {
                const v = Math.min(Math.max(out[i * w + j] * 255, 0), 255);
                se += (v - gt[i * w + j]) ** 2;
                n++;
              }
            return 10 * Math.log10((255 * 255) / (se / n));
          }),
        );
        total += psnr;
      }
      const mean = total / names.length;
      console.log(`VDSR Set5 x${scale}: ${mean.toFixed(2)} dB (required >= ${required[scale]})`);
      expect(mean).toBeGreaterThanOrEqual(required[scale]);
    });
});
