// Colour conversions as MATLAB's rgb2ycbcr / ycbcr2rgb / rgb2gray define them (ITU-R BT.601,
// studio swing: Y in [16, 235], Cb and Cr in [16, 240] for 8-bit data), the convention the
// super-resolution benchmarks measure PSNR in.

/** rgb2ycbcr's matrix (rows Y, Cb, Cr) for R, G, B in [0, 1], giving 8-bit-scaled values. */
export const YCBCR_MATRIX: readonly (readonly number[])[] = [
  [65.481, 128.553, 24.966],
  [-37.797, -74.203, 112.0],
  [112.0, -93.786, -18.214],
];
/** rgb2ycbcr's offset in 8-bit units. */
export const YCBCR_OFFSET: readonly number[] = [16, 128, 128];

function invert3(m: readonly (readonly number[])[]): number[][] {
  const [a, b, c] = m[0];
  const [d, e, f] = m[1];
  const [g, h, i] = m[2];
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}
const INVERSE = invert3(YCBCR_MATRIX);

const round8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * RGB -> YCbCr on interleaved pixels. uint8 in -> uint8 out, rounded and saturated as MATLAB
 * does for uint8 images; float32 in [0, 1] -> float32 in [16/255, 235/255] (MATLAB's double case).
 */
export function rgbToYCbCrPixels<T extends Uint8Array | Float32Array>(rgb: T, pixels: number): T {
  const isByte = rgb instanceof Uint8Array;
  const out = (isByte ? new Uint8Array(pixels * 3) : new Float32Array(pixels * 3)) as T;
  const s = isByte ? 1 / 255 : 1 / 255;
  const M = YCBCR_MATRIX;
  for (let p = 0; p < pixels; p++) {
    const o = p * 3;
    const r = rgb[o];
    const g = rgb[o + 1];
    const b = rgb[o + 2];
    for (let k = 0; k < 3; k++) {
      if (isByte) out[o + k] = round8(YCBCR_OFFSET[k] + (M[k][0] * r + M[k][1] * g + M[k][2] * b) * s);
      else out[o + k] = (YCBCR_OFFSET[k] + M[k][0] * r + M[k][1] * g + M[k][2] * b) / 255;
    }
  }
  return out;
}

/** The Y channel alone of {@link rgbToYCbCrPixels} (one value per pixel). */
export function rgbToYPixels<T extends Uint8Array | Float32Array>(rgb: T, pixels: number): T {
  const isByte = rgb instanceof Uint8Array;
  const out = (isByte ? new Uint8Array(pixels) : new Float32Array(pixels)) as T;
  const [m0, m1, m2] = YCBCR_MATRIX[0];
  for (let p = 0; p < pixels; p++) {
    const o = p * 3;
    const v = m0 * rgb[o] + m1 * rgb[o + 1] + m2 * rgb[o + 2];
    out[p] = isByte ? round8(16 + v / 255) : (16 + v) / 255;
  }
  return out;
}

/** YCbCr -> RGB, the inverse of {@link rgbToYCbCrPixels} (MATLAB's ycbcr2rgb). */
export function yCbCrToRgbPixels<T extends Uint8Array | Float32Array>(ycc: T, pixels: number): T {
  const isByte = ycc instanceof Uint8Array;
  const out = (isByte ? new Uint8Array(pixels * 3) : new Float32Array(pixels * 3)) as T;
  const N = INVERSE;
  for (let p = 0; p < pixels; p++) {
    const o = p * 3;
    // Both cases: rgb = 255 * inv(M) * (ycc - offset) with ycc in 8-bit units.
    const scale = isByte ? 1 : 255;
    const y = ycc[o] * scale - YCBCR_OFFSET[0];
    const cb = ycc[o + 1] * scale - YCBCR_OFFSET[1];
    const cr = ycc[o + 2] * scale - YCBCR_OFFSET[2];
    for (let k = 0; k < 3; k++) {
      const v = (N[k][0] * y + N[k][1] * cb + N[k][2] * cr) * 255;
      out[o + k] = isByte ? round8(v) : v / 255;
    }
  }
  return out;
}

/** MATLAB rgb2gray: 0.298936 R + 0.587043 G + 0.114021 B (its rounded BT.601 luma weights). */
export function rgbToGrayPixels<T extends Uint8Array | Float32Array>(rgb: T, pixels: number): T {
  const isByte = rgb instanceof Uint8Array;
  const out = (isByte ? new Uint8Array(pixels) : new Float32Array(pixels)) as T;
  for (let p = 0; p < pixels; p++) {
    const o = p * 3;
    const v = 0.298936021293775 * rgb[o] + 0.587043074451121 * rgb[o + 1] + 0.114020904255103 * rgb[o + 2];
    out[p] = isByte ? round8(v) : v;
  }
  return out;
}
