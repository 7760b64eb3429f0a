// Tiled inference for images of any size (the SRINC seed's patch decomposition): the image is
// cut into overlapping tiles on a regular grid whose last row and column are shifted back to
// end at the image border (so they overlap more), tiles run through the network in batches,
// and the outputs are recomposed either by keeping each tile's centre (exact when the margin
// covers the receptive field) or by averaging overlapping outputs.
import { checkKeys, noGrad, rangeError, tensor, typeError, isTensor, type Tensor } from '@lrface/cuda-core';

export interface TileOptions {
  /** Tile side in pixels (default 128; clipped to the image). */
  tile?: number;
  /**
   * Pixels discarded at each inner tile edge (default: the network's receptive-field radius, cut
   * to less than half the tile for tiles smaller than twice that).
   */
  overlap?: number;
  /** Tiles per forward pass (default 8). */
  batchSize?: number;
  /** 'crop' (default): keep tile centres; 'average': mean of every tile covering a pixel. */
  blend?: 'crop' | 'average';
}

/** @internal TileOptions' keys, for the functions that take them among their own options. */
export const TILE_OPTION_KEYS: Record<keyof TileOptions, true> = { tile: true, overlap: true, batchSize: true, blend: true };

/** Start offsets of tiles of length `tile` along an axis of length `n` with stride `stride`. */
export function tileStarts(n: number, tile: number, stride: number): number[] {
  if (tile >= n) return [0];
  const starts: number[] = [];
  for (let s = 0; s + tile < n; s += stride) starts.push(s);
  // The last tile ends at the border; it may overlap its neighbour by more than the margin.
  starts.push(n - tile);
  return starts;
}

/** The [from, to) range of a tile's output kept in 'crop' mode. */
function keptRange(start: number, tile: number, n: number, margin: number): [number, number] {
  return [start === 0 ? 0 : start + margin, start + tile >= n ? n : start + tile - margin];
}

/**
 * Runs a same-size network `forward` ([B, C, t, t] -> [B, C', t, t]) on [N, C, H, W] input
 * tile by tile and returns the recomposed [N, C', H, W] output.
 */
export function tiledForward(forward: (x: Tensor) => Tensor, x: Tensor, radius: number, options: TileOptions = {}): Tensor {
  checkKeys('tiledForward', options, TILE_OPTION_KEYS);
  if (!isTensor(x) || x.dtype !== 'float32' || x.rank !== 4) throw typeError('tiledForward', 'x', 'a float32 [N, C, H, W] tensor', x);
  const [n, c, h, w] = x.shape;
  const tile = options.tile ?? 128;
  if (!Number.isInteger(tile) || tile < 1) throw rangeError('tiledForward', 'tile', 'an integer >= 1', tile);
  // A tile the user made small asks for less memory, not for an error about an overlap they never
  // set: the default margin shrinks to fit (seams may show where it is below the radius).
  const margin = options.overlap ?? Math.min(radius, Math.floor((tile - 1) / 2));
  if (!Number.isInteger(margin) || margin < 0) throw rangeError('tiledForward', 'overlap', 'an integer >= 0', margin);
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw rangeError('tiledForward', 'batchSize', 'an integer >= 1', batchSize);
  const blend = options.blend ?? 'crop';
  if (blend !== 'crop' && blend !== 'average') throw typeError('tiledForward', 'blend', "'crop' or 'average'", blend);
  const th = Math.min(tile, h);
  const tw = Math.min(tile, w);
  const strideY = th - 2 * margin;
  const strideX = tw - 2 * margin;
  if ((th < h && strideY < 1) || (tw < w && strideX < 1))
    throw rangeError('tiledForward', 'overlap', `less than half the tile (${tile})`, margin);
  const ys = tileStarts(h, th, strideY);
  const xs = tileStarts(w, tw, strideX);
  const src = x.data() as Float32Array;
  const jobs: { img: number; y: number; x: number }[] = [];
  for (let i = 0; i < n; i++) for (const y0 of ys) for (const x0 of xs) jobs.push({ img: i, y: y0, x: x0 });
  let out: Float32Array | null = null;
  let weight: Float32Array | null = null;
  let outC = 0;
  const plane = h * w;
  for (let b = 0; b < jobs.length; b += batchSize) {
    const batch = jobs.slice(b, b + batchSize);
    const buf = new Float32Array(batch.length * c * th * tw);
    batch.forEach((job, k) => {
      for (let ch = 0; ch < c; ch++)
        for (let r = 0; r < th; r++) {
          const from = (job.img * c + ch) * plane + (job.y + r) * w + job.x;
          buf.set(src.subarray(from, from + tw), ((k * c + ch) * th + r) * tw);
        }
    });
    const res = noGrad(() => {
      const input = tensor(buf, [batch.length, c, th, tw]);
      const y = forward(input);
      input.dispose();
      if (y.rank !== 4 || y.shape[0] !== batch.length || y.shape[2] !== th || y.shape[3] !== tw)
        throw rangeError('tiledForward', 'forward', `a same-size network ([${batch.length}, C, ${th}, ${tw}] out)`, `[${y.shape.join(',')}]`, true);
      const d = y.data() as Float32Array;
      const oc = y.shape[1];
      y.dispose();
      return { d, oc };
    });
    if (!out) {
      outC = res.oc;
      out = new Float32Array(n * outC * plane);
      if (blend === 'average') weight = new Float32Array(plane);
    }
    batch.forEach((job, k) => {
      const [ya, yb] = blend === 'crop' ? keptRange(job.y, th, h, margin) : [job.y, job.y + th];
      const [xa, xb] = blend === 'crop' ? keptRange(job.x, tw, w, margin) : [job.x, job.x + tw];
      for (let ch = 0; ch < outC; ch++)
        for (let r = ya; r < yb; r++) {
          const dst = (job.img * outC + ch) * plane + r * w;
          const srcRow = ((k * outC + ch) * th + (r - job.y)) * tw - job.x;
          if (blend === 'crop') out!.set(res.d.subarray(srcRow + xa, srcRow + xb), dst + xa);
          else for (let q = xa; q < xb; q++) out![dst + q] += res.d[srcRow + q];
        }
      if (weight && job.img === 0) for (let r = ya; r < yb; r++) for (let q = xa; q < xb; q++) weight[r * w + q] += 1;
    });
  }
  if (weight) for (let p = 0; p < out!.length; p++) out![p] /= weight[p % plane];
  return tensor(out!, [n, outC, h, w]);
}
