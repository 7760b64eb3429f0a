// Evaluation as the SR literature does it: modcrop each HR image to a multiple of the scale,
// degrade it with MATLAB bicubic (antialiased, in floating point as the benchmark scripts do),
// super-resolve, and score PSNR/SSIM on 8-bit Y with a border of `scale` against bicubic.
import { tensor } from '@lrface/cuda-core';
import { bicubicResize, checkKeys, modcrop, type RawImage } from '@lrface/datasets';
import { BicubicIdentity, type SrNetwork } from './models.js';
import { toUnitFloat, upscaleImage } from './pipeline.js';
import { srScores } from './metrics.js';
import { TILE_OPTION_KEYS, type TileOptions } from './tiler.js';

/** MATLAB imresize(hr, 1/scale, 'bicubic') of an interleaved image, kept as float [0, 1] (no 8-bit rounding). */
export function bicubicDownImage(hr: RawImage, scale: number): RawImage<Float32Array> {
  const u = toUnitFloat(hr);
  const { width: w, height: h, channels: c } = u;
  const planes = new Float32Array(c * w * h);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < w * h; p++) planes[ch * w * h + p] = u.data[p * c + ch];
  const x = tensor(planes, [1, c, h, w]);
  const lr = bicubicResize(x, { size: [h / scale, w / scale] });
  const d = lr.data() as Float32Array;
  x.dispose();
  lr.dispose();
  const lw = w / scale, lh = h / scale;
  const out = new Float32Array(c * lw * lh);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < lw * lh; p++) out[p * c + ch] = d[ch * lw * lh + p];
  return { data: out, width: lw, height: lh, channels: c };
}

/** The bicubic result (8-bit Y) of an LR image through the same colour pipeline as the networks. */
export function bicubicBaseline(lr: RawImage, scale: number): RawImage<Uint8Array> {
  const out = upscaleImage(identityY, lr, scale);
  out.tensor.dispose();
  return out.y;
}

const identityY = new BicubicIdentity(1);

const EVALUATE_OPTION_KEYS: Record<keyof TileOptions | 'quantizeLr', true> = { ...TILE_OPTION_KEYS, quantizeLr: true };
const EVALUATE_IMAGES_OPTION_KEYS: Record<keyof TileOptions | 'quantizeLr' | 'onImage', true> = { ...EVALUATE_OPTION_KEYS, onImage: true };

export interface ImageScores {
  psnr: number;
  ssim: number;
  bicubicPsnr: number;
  bicubicSsim: number;
}

/** Scores of a network and of bicubic on one HR image degraded by `scale`. */
export function evaluateImage(net: SrNetwork, image: RawImage, scale: number, options: TileOptions & { quantizeLr?: boolean } = {}): ImageScores {
  checkKeys('evaluateImage', options, EVALUATE_OPTION_KEYS);
  const { quantizeLr, ...tiling } = options;
  const hr = modcrop(image, scale);
  let lr: RawImage = bicubicDownImage(hr, scale);
  if (quantizeLr) {
    const q = new Uint8Array(lr.data.length);
    for (let i = 0; i < q.length; i++) q[i] = Math.min(255, Math.max(0, Math.round(lr.data[i] * 255)));
    lr = { ...lr, data: q };
  }
  const out = upscaleImage(net, lr, scale, tiling);
  out.tensor.dispose();
  const a = srScores(out.y, hr, scale);
  const b = srScores(bicubicBaseline(lr, scale), hr, scale);
  return { psnr: a.psnr, ssim: a.ssim, bicubicPsnr: b.psnr, bicubicSsim: b.ssim };
}

/** Mean scores over HR images (see {@link evaluateImage}). */
export function evaluateNetwork(net: SrNetwork, images: RawImage[], scale: number, options: TileOptions & { quantizeLr?: boolean } = {}): ImageScores {
  checkKeys('evaluateNetwork', options, EVALUATE_OPTION_KEYS);
  const r = evaluateImages(net.arch, net, images, scale, options);
  return { psnr: r.psnr, ssim: r.ssim, bicubicPsnr: r.bicubic_psnr, bicubicSsim: r.bicubic_ssim };
}

/** The JSON line of `lrface eval-sr`: means over the images. */
export interface FolderScores {
  model: string;
  scale: number;
  images: number;
  psnr: number;
  ssim: number;
  bicubic_psnr: number;
  bicubic_ssim: number;
}

/**
 * Evaluates a network on HR images (see {@link evaluateImage}); `onImage` is called after each
 * image with its index and scores (for progress output and per-image tables).
 */
export function evaluateImages(model: string, net: SrNetwork, images: RawImage[], scale: number, options: TileOptions & { quantizeLr?: boolean; onImage?: (index: number, scores: ImageScores) => void } = {}): FolderScores {
  checkKeys('evaluateImages', options, EVALUATE_IMAGES_OPTION_KEYS);
  if (!Array.isArray(images) || images.length === 0) throw new RangeError(`evaluateImages: 'images' must be a non-empty array, got ${images?.length ?? typeof images}`);
  const { onImage, ...tile } = options;
  const sum = { psnr: 0, ssim: 0, bicubicPsnr: 0, bicubicSsim: 0 };
  images.forEach((img, i) => {
    const s = evaluateImage(net, img, scale, tile);
    onImage?.(i, s);
    sum.psnr += s.psnr;
    sum.ssim += s.ssim;
    sum.bicubicPsnr += s.bicubicPsnr;
    sum.bicubicSsim += s.bicubicSsim;
  });
  const n = images.length;
  return { model, scale, images: n, psnr: sum.psnr / n, ssim: sum.ssim / n, bicubic_psnr: sum.bicubicPsnr / n, bicubic_ssim: sum.bicubicSsim / n };
}
