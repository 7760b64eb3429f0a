// Colour handling around a pre-upsampled network: Y-only models see MATLAB rgb2ycbcr's Y in
// [0, 1] after bicubic enlargement, their output is clamped to the video range [16, 235] and
// recombined with the bicubically enlarged Cb and Cr; RGB models see and return RGB in [0, 1].
import { clamp, rangeError, tensor, typeError, type DeviceSpec, type Tensor } from '@lrface/cuda-core';
import { bicubicResize, checkImage, checkKeys, convertColor, yCbCrToRgb, toUint8, type RawImage } from '@lrface/datasets';
import type { SrNetwork } from './models.js';
import { TILE_OPTION_KEYS, tiledForward, type TileOptions } from './tiler.js';

/** Y range of BT.601 studio swing, in [0, 1] units: the clamp of the SRINC seed. */
export const Y_MIN = 16 / 255;
export const Y_MAX = 235 / 255;

export interface UpscaleImageOptions extends TileOptions {
  /** Clamp Y outputs to [16, 235] (default true for Y models; RGB outputs are clamped to [0, 255]). */
  clampY?: boolean;
}

const UPSCALE_IMAGE_OPTION_KEYS: Record<keyof UpscaleImageOptions, true> = { ...TILE_OPTION_KEYS, clampY: true };

/** The result of super-resolving one image. */
export interface UpscaledImage {
  /** 8-bit interleaved pixels: RGB for colour input, one channel for grey input. */
  image: RawImage<Uint8Array>;
  /** The 8-bit Y channel of the result (BT.601, what PSNR/SSIM are measured on). */
  y: RawImage<Uint8Array>;
  /** The network's float output [1, C, H, W] in [0, 1] (Y or RGB), before 8-bit rounding. */
  tensor: Tensor;
}

/** Interleaved float [0, 1] pixels from uint8 (0..255) or float ([0, 1]) pixels. */
export function toUnitFloat(img: RawImage): RawImage<Float32Array> {
  if (img.data instanceof Float32Array) return img as RawImage<Float32Array>;
  const d = new Float32Array(img.data.length);
  for (let i = 0; i < d.length; i++) d[i] = img.data[i] / 255;
  return { data: d, width: img.width, height: img.height, channels: img.channels };
}

function planesToTensor(img: RawImage<Float32Array>): Tensor {
  const { width: w, height: h, channels: c, data } = img;
  const out = new Float32Array(c * w * h);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < w * h; p++) out[ch * w * h + p] = data[p * c + ch];
  return tensor(out, [1, c, h, w]);
}

function interleave(planes: Float32Array, c: number, w: number, h: number): Float32Array {
  const out = new Float32Array(c * w * h);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < w * h; p++) out[p * c + ch] = planes[ch * w * h + p];
  return out;
}

/** MATLAB bicubic enlargement of an interleaved float image by an integer factor. */
export function bicubicUpscale(img: RawImage<Float32Array>, scale: number): RawImage<Float32Array> {
  const t = planesToTensor(img);
  const up = bicubicResize(t, { size: [img.height * scale, img.width * scale] });
  t.dispose();
  const d = up.data() as Float32Array;
  up.dispose();
  return { data: interleave(d, img.channels, img.width * scale, img.height * scale), width: img.width * scale, height: img.height * scale, channels: img.channels };
}

/**
 * Super-resolves one image (8-bit, or float in [0, 1]; RGB or one grey/Y channel) by an
 * integer `scale` with a pre-upsampled network.
 */
export function upscaleImage(net: SrNetwork, input: RawImage, scale: number, options: UpscaleImageOptions = {}): UpscaledImage {
  checkKeys('upscaleImage', options, UPSCALE_IMAGE_OPTION_KEYS);
  const { clampY: clampOption, ...tiling } = options;
  const img = checkImage('upscaleImage', 'input', input);
  if (!Number.isInteger(scale) || scale < 1) throw rangeError('upscaleImage', 'scale', 'an integer >= 1', scale);
  if (img.channels !== 1 && img.channels !== 3) throw rangeError('upscaleImage', 'input', 'an image with 1 or 3 channels', `${img.channels} channels`, true);
  if (img.width < 1 || img.height < 1) throw rangeError('upscaleImage', 'input', 'a non-empty image', `${img.width}x${img.height}`, true);
  if (net.channels === 3 && img.channels !== 3) throw rangeError('upscaleImage', 'input', 'an RGB image for an RGB model', '1 channel', true);
  if (net.channels !== 1 && net.channels !== 3) throw typeError('upscaleImage', 'net', 'a 1- or 3-channel network', net.channels);
  const unit = toUnitFloat(img);
  const W = img.width * scale;
  const H = img.height * scale;
  // Tiles are made on the host; a network moved to a device gets them there (to() is a view
  // when the devices match).
  const device = net.device as DeviceSpec;
  const run = (x: Tensor) => {
    const onDevice = x.to(device);
    try {
      return net.forward(onDevice);
    } finally {
      onDevice.dispose();
    }
  };
  if (net.channels === 3) {
    const up = bicubicUpscale(unit, scale);
    const x = planesToTensor(up);
    const raw = tiledForward(run, x, net.receptiveRadius, tiling);
    x.dispose();
    // The tensor is RGB in [0, 1] as the 8-bit image is, not the network's overshoot.
    const y = clamp(raw, 0, 1);
    raw.dispose();
    const rgb = toUint8({ data: interleave(y.data() as Float32Array, 3, W, H), width: W, height: H, channels: 3 }, 255);
    return { image: rgb, y: toUint8(convertColor(toUnitFloat(rgb), 'y'), 255), tensor: y };
  }
  // Y model: colour input goes through YCbCr; grey input is taken as Y itself.
  const ycc = img.channels === 3 ? convertColor(unit, 'ycbcr') : unit;
  const up = bicubicUpscale(ycc, scale);
  const lumaIn = new Float32Array(W * H);
  for (let p = 0; p < W * H; p++) lumaIn[p] = up.data[p * up.channels];
  const x = tensor(lumaIn, [1, 1, H, W]);
  const out = tiledForward(run, x, net.receptiveRadius, tiling);
  x.dispose();
  const luma = out.data() as Float32Array;
  const clampY = clampOption ?? true;
  for (let p = 0; p < luma.length; p++) luma[p] = clampY ? Math.min(Y_MAX, Math.max(Y_MIN, luma[p])) : luma[p];
  const result = tensor(luma, [1, 1, H, W]);
  out.dispose();
  const y8 = toUint8({ data: luma, width: W, height: H, channels: 1 }, 255);
  if (img.channels === 1) return { image: y8, y: y8, tensor: result };
  // Recombine the network's (8-bit rounded) Y with the bicubic chroma.
  const merged = new Float32Array(W * H * 3);
  for (let p = 0; p < W * H; p++) {
    merged[3 * p] = y8.data[p] / 255;
    merged[3 * p + 1] = up.data[3 * p + 1];
    merged[3 * p + 2] = up.data[3 * p + 2];
  }
  const rgb = toUint8(yCbCrToRgb({ data: merged, width: W, height: H, channels: 3 }), 255);
  return { image: rgb, y: y8, tensor: result };
}
