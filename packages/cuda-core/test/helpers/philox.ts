// An independent JS model of the engine's counter-based generator, for checking the native
// kernels bit for bit: the stream of a seed is a sequence of 32-bit words, word k being word
// k % 4 of the Philox4x32-10 block keyed by the seed with counter (k / 4 low, k / 4 high,
// stream, 0). Slow (BigInt); meant for a few thousand values.

/** Philox4x32-10 of a 4-word counter and 2-word key (Salmon et al., SC'11). */
export function philox4x32(counter: readonly number[], key: readonly number[]): number[] {
  let c = counter.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const p0 = 0xd2511f53n * BigInt(c[0]);
    const p1 = 0xcd9e8d57n * BigInt(c[2]);
    c = [(Number(p1 >> 32n) ^ c[1] ^ k0) >>> 0, Number(p1 & 0xffffffffn), (Number(p0 >> 32n) ^ c[3] ^ k1) >>> 0, Number(p0 & 0xffffffffn)];
  }
  return c;
}

export const STREAM_GENERATOR = 0;
export const STREAM_DROPOUT = 1;

/** Philox block number `index` of `stream` of `seed` (seed and index below 2^53). */
export function block(seed: number, stream: number, index: number): number[] {
  const lo = (v: number) => v % 2 ** 32;
  const hi = (v: number) => Math.floor(v / 2 ** 32);
  return philox4x32([lo(index), hi(index), stream, 0], [lo(seed), hi(seed)]);
}

/** Word k of the stream. */
export function wordAt(seed: number, stream: number, k: number): number {
  return block(seed, stream, Math.floor(k / 4))[k % 4];
}

/** Words (lo, hi) as an unsigned 64-bit BigInt. */
export function join64(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** A 32-bit word as a double in [0, 1). */
export function unit32(w: number): number {
  return w * 2 ** -32;
}

/** The top 53 of 64 bits as a double in [0, 1). */
export function unit64(bits: bigint): number {
  return Number(bits >> 11n) * 2 ** -53;
}

/** 64-bit value j of a draw starting at word `offset` (a multiple of 4): half j % 2 of block offset/4 + j/2. */
export function u64At(seed: number, stream: number, offset: number, j: number): bigint {
  const b = block(seed, stream, offset / 4 + Math.floor(j / 2));
  return j % 2 ? join64(b[2], b[3]) : join64(b[0], b[1]);
}
