// Seeded random numbers for reproducible tests.
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi). */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Uniform values whose magnitude is at least `gap`, away from kinks at zero (relu, abs). */
export function awayFromZero(n: number, seed: number, gap = 0.05): Float32Array {
  const out = uniform(n, seed);
  for (let i = 0; i < n; i++) if (Math.abs(out[i]) < gap) out[i] = out[i] < 0 ? -gap - Math.abs(out[i]) : gap + out[i];
  return out;
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
