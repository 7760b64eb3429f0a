// A small seeded generator for data pipelines. It is separate from the engine's generator on
// purpose: shuffling and augmenting must not move the training generator's stream, and a
// loader's randomness must depend only on its own seed.

/** A seeded pseudo-random stream (SplitMix64 state advance, xorshift-multiply output). */
export class Rng {
  private hi: number;
  private lo: number;
  private spare: number | null = null;

  constructor(seed = 0) {
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER)
      throw new RangeError(`Rng: 'seed' must be an integer in [0, ${Number.MAX_SAFE_INTEGER}], got ${String(seed)}`);
    this.hi = Math.floor(seed / 2 ** 32) >>> 0;
    this.lo = seed >>> 0;
  }

  /**
   * The generator of a run resumed at `step` (a fresh run at step 0 gets `seed` itself): the
   * seed alone would draw the same patches, faces or batch order as the run's first steps
   * again, so a run stopped and resumed often would keep seeing the start of its data.
   */
  static resumed(seed: number, step: number): Rng {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`Rng.resumed: 'step' must be an integer >= 0, got ${String(step)}`);
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) return new Rng(seed); // the constructor names the problem
    return new Rng(step === 0 ? seed : ((seed % 2 ** 31) * 1_000_003 + step) % Number.MAX_SAFE_INTEGER);
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    // SplitMix64: state += 0x9E3779B97F4A7C15, then mix (done on 32-bit halves).
    const lo = (this.lo + 0x7f4a7c15) >>> 0;
    const carry = lo < this.lo ? 1 : 0;
    this.hi = (this.hi + 0x9e3779b9 + carry) >>> 0;
    this.lo = lo;
    let a = this.hi ^ (this.hi >>> 15);
    let b = this.lo ^ (this.lo >>> 13) ^ (a << 7);
    a = Math.imul(a ^ (b >>> 16), 0x85ebca6b);
    b = Math.imul(b ^ (a >>> 13), 0xc2b2ae35);
    return (a ^ b ^ (b >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A standard normal draw (Box-Muller, both values used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = this.next();
    while (u <= 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A child generator whose stream depends only on this one's next draw (for per-sample streams). */
  fork(): Rng {
    return new Rng(this.nextUint32() * 2097152 + (this.nextUint32() >>> 11));
  }

  /** Fisher-Yates shuffle of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

/** The generator for a seed, or a fresh one seeded from Math.random when none is given. */
export function rngFrom(seed: number | Rng | undefined): Rng {
  if (seed instanceof Rng) return seed;
  return new Rng(seed ?? Math.floor(Math.random() * 2 ** 52));
}
