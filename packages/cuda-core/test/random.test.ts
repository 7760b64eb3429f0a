import { afterEach, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { expectClose, expectError } from './helpers/check.js';
import { block, join64, philox4x32, STREAM_GENERATOR, u64At, unit32, unit64, wordAt } from './helpers/philox.js';

const threadsAtStart = lr.numThreads();
afterEach(() => lr.setNumThreads(threadsAtStart));

/** The largest float32 below f. */
function floatBelow(f: number): number {
  if (f === 0) return -(2 ** -149);
  const a = new Float32Array([f]);
  new Int32Array(a.buffer)[0] += f > 0 ? -1 : 1;
  return a[0];
}

// The reference generator, value by value (see native/cpu/random.h); `offset` is the draw's first word.
const ref = {
  rand(seed: number, offset: number, n: number, low = 0, high = 1): number[] {
    return Array.from({ length: n }, (_, i) => {
      const v = Math.fround(low + (high - low) * unit32(wordAt(seed, STREAM_GENERATOR, offset + i)));
      if (high > low && v >= Math.fround(high)) return floatBelow(Math.fround(high));
      return Math.max(v, Math.fround(low));
    });
  },
  randn(seed: number, offset: number, n: number, mean = 0, std = 1): number[] {
    return Array.from({ length: n }, (_, i) => {
      const b = block(seed, STREAM_GENERATOR, offset / 4 + Math.floor(i / 2));
      const u1 = 1 - unit64(join64(b[0], b[1]));
      const u2 = unit64(join64(b[2], b[3]));
      const r = Math.sqrt(-2 * Math.log(u1));
      return mean + std * r * (i % 2 ? Math.sin(2 * Math.PI * u2) : Math.cos(2 * Math.PI * u2));
    });
  },
  randint(seed: number, offset: number, n: number, low: number, high: number): number[] {
    return Array.from({ length: n }, (_, i) => low + Number((u64At(seed, STREAM_GENERATOR, offset, i) * BigInt(high - low)) >> 64n));
  },
  randperm(seed: number, offset: number, n: number): number[] {
    const keys = Array.from({ length: n }, (_, i) => ({ key: u64At(seed, STREAM_GENERATOR, offset, i), i }));
    keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
    return keys.map((k) => k.i);
  },
};

describe('the Philox reference', () => {
  it('reproduces the published Random123 known-answer vectors', () => {
    const hex = (w: number[]) => w.map((v) => v.toString(16).padStart(8, '0'));
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });
});

describe('random generator', () => {
  it('rand, randn, randint and randperm match the reference generator value for value', () => {
    const seed = 2 ** 33 + 12345; // uses both key words
    lr.manualSeed(seed);
    // Draws start at a multiple of 4 words; rand takes 1 word a value, the others 2.
    expectClose(lr.rand([3, 7], { low: -2, high: 5 }).data(), ref.rand(seed, 0, 21, -2, 5), 0, 0);
    expect(lr.getRngState()).toEqual({ seed, counter: 21 });
    expectClose(lr.randn([33], { mean: 1, std: 2 }).data(), ref.randn(seed, 24, 33, 1, 2), 1e-6, 1e-6);
    expectClose(lr.randn([8]).data(), ref.randn(seed, 92, 8), 1e-6, 1e-6);
    expect(Array.from(lr.randint(-5, 9, [41]).data())).toEqual(ref.randint(seed, 108, 41, -5, 9));
    expect(Array.from(lr.randint(-(2 ** 31), 2 ** 31, [20]).data())).toEqual(ref.randint(seed, 192, 20, -(2 ** 31), 2 ** 31));
    expect(Array.from(lr.randperm(50).data())).toEqual(ref.randperm(seed, 232, 50));
    expect(lr.getRngState()).toEqual({ seed, counter: 332 });
    expectClose(lr.rand([5]).data(), ref.rand(seed, 332, 5), 0, 0);
    expectClose(lr.rand([3]).data(), ref.rand(seed, 340, 3), 0, 0);
  });
  it('same seed, same numbers; another seed, other numbers', () => {
    lr.manualSeed(123);
    const a = lr.randn([1000]).data();
    lr.manualSeed(123);
    const b = lr.randn([1000]).data();
    lr.manualSeed(124);
    const c = lr.randn([1000]).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    // consecutive draws continue the stream instead of repeating it
    lr.manualSeed(123);
    lr.randn([500]);
    expect(Array.from(lr.randn([500]).data())).toEqual(Array.from(a.slice(500)));
  });
  it('does not depend on the thread count', () => {
    const draws: [string, () => lr.Tensor][] = [
      ['rand', () => lr.rand([70001])],
      ['randn', () => lr.randn([70001], { std: 3 })],
      ['randint', () => lr.randint(0, 1000, [70001])],
      ['randperm', () => lr.randperm(100003)], // several merge rounds
    ];
    for (const [, draw] of draws) {
      const results = [1, 2, 3].map((threads) => {
        lr.setNumThreads(threads);
        lr.manualSeed(5);
        lr.rand([3]); // odd offset
        return Array.from(draw().data());
      });
      expect(results[1]).toEqual(results[0]);
      expect(results[2]).toEqual(results[0]);
    }
  });
  it('state round-trips through getRngState / setRngState', () => {
    lr.manualSeed(77);
    lr.rand([10]);
    const state = lr.getRngState();
    expect(state).toEqual({ seed: 77, counter: 10 });
    const next = lr.randn([10]).data();
    const after = lr.getRngState();
    lr.setRngState(state);
    expect(Array.from(lr.randn([10]).data())).toEqual(Array.from(next));
    expect(lr.getRngState()).toEqual(after);
    // a JSON round trip (as in a checkpoint) restores it too
    lr.setRngState(JSON.parse(JSON.stringify(state)));
    expect(Array.from(lr.randn([10]).data())).toEqual(Array.from(next));
    // the returned state is a copy
    const copy = lr.getRngState();
    copy.counter = 0;
    expect(lr.getRngState().counter).toBe(32);
  });
  it('empty shapes draw nothing', () => {
    lr.manualSeed(1);
    expect(lr.rand([0, 3]).shape).toEqual([0, 3]);
    expect(lr.randn([2, 0]).shape).toEqual([2, 0]);
    expect(lr.randint(0, 2, [0]).shape).toEqual([0]);
    expect(lr.randperm(0).shape).toEqual([0]);
    expect(lr.getRngState().counter).toBe(0);
    expect(Array.from(lr.randperm(1).data())).toEqual([0]);
    expect(lr.rand([]).shape).toEqual([]);
  });
});

describe('distributions', () => {
  it('randn has the requested mean and standard deviation', () => {
    lr.manualSeed(1);
    const n = 200000;
    for (const [mean, std] of [[0, 1], [2, 3], [-1, 0.01]]) {
      const z = lr.randn([n], { mean, std }).data();
      let s = 0;
      for (const v of z) s += v;
      const m = s / n;
      let ss = 0, fourth = 0;
      for (const v of z) {
        ss += (v - m) ** 2;
        fourth += ((v - mean) / std) ** 4;
      }
      // 5 standard errors: of the mean std/sqrt(n), of the std about std/sqrt(2n)
      expect(Math.abs(m - mean)).toBeLessThan((5 * std) / Math.sqrt(n));
      expect(Math.abs(Math.sqrt(ss / n) - std)).toBeLessThan((5 * std) / Math.sqrt(2 * n));
      // kurtosis 3 (a normal), its standard error is about sqrt(96/n)
      expect(Math.abs(fourth / n - 3)).toBeLessThan(5 * Math.sqrt(96 / n));
    }
    expect(new Set(lr.randn([10], { mean: 4, std: 0 }).data())).toEqual(new Set([4]));
  });
  it('rand is uniform in [low, high)', () => {
    lr.manualSeed(2);
    const n = 200000;
    const u = lr.rand([n], { low: -1, high: 3 }).data();
    let mn = Infinity, mx = -Infinity, s = 0;
    const bins = new Array(10).fill(0);
    for (const v of u) {
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
      s += v;
      bins[Math.floor((v + 1) / 0.4)]++;
    }
    expect(mn).toBeGreaterThanOrEqual(-1);
    expect(mx).toBeLessThan(3);
    expect(Math.abs(s / n - 1)).toBeLessThan(5 * (4 / Math.sqrt(12)) / Math.sqrt(n));
    for (const b of bins) expect(Math.abs(b - n / 10)).toBeLessThan(5 * Math.sqrt(n * 0.1 * 0.9));
    expect(new Set(lr.rand([5], { low: 2, high: 2 }).data())).toEqual(new Set([2]));
    // the top of the range never appears, even when rounding to float32 would reach it
    const tight = lr.rand([20000], { low: 1, high: 1 + 2 ** -22 }).data();
    for (const v of tight) expect(v < Math.fround(1 + 2 ** -22) && v >= 1).toBe(true);
  });
  it('randint covers [low, high) evenly and randperm is a uniform permutation', () => {
    lr.manualSeed(3);
    const n = 60000;
    const k = lr.randint(-3, 3, [n]);
    expect(k.dtype).toBe('int32');
    const counts = new Map<number, number>();
    for (const v of k.data()) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2]);
    for (const c of counts.values()) expect(Math.abs(c - n / 6)).toBeLessThan(5 * Math.sqrt(n * (1 / 6) * (5 / 6)));
    const wide = Array.from(lr.randint(-(2 ** 31), 2 ** 31, [1000]).data());
    expect(wide.some((v) => v < -(2 ** 30))).toBe(true);
    expect(wide.some((v) => v > 2 ** 30)).toBe(true);

    const p = lr.randperm(100000);
    expect(p.dtype).toBe('int32');
    const sorted = Array.from(p.data()).sort((a, b) => a - b);
    expect(sorted.every((v, i) => v === i)).toBe(true);
    // where 0 lands in 2000 permutations of 5: each place about 400 times
    const places = new Array(5).fill(0);
    for (let t = 0; t < 2000; t++) places[Array.from(lr.randperm(5).data()).indexOf(0)]++;
    for (const c of places) expect(Math.abs(c - 400)).toBeLessThan(5 * Math.sqrt(2000 * 0.2 * 0.8));
  });
});

describe('errors', () => {
  it('reject bad arguments naming them', () => {
    expectError(() => lr.manualSeed(-1), RangeError, 'manualSeed', "'seed'");
    expectError(() => lr.manualSeed(2 ** 53), RangeError, 'manualSeed', "'seed'");
    expectError(() => lr.manualSeed(1.5), TypeError, 'manualSeed', "'seed'");
    expectError(() => lr.manualSeed('1' as unknown as number), TypeError, 'manualSeed', "'seed'");
    expectError(() => lr.setRngState(null as unknown as lr.RngState), TypeError, 'setRngState', "'state'");
    expectError(() => lr.setRngState({ seed: -2, counter: 0 }), RangeError, 'setRngState', "'state.seed'");
    expectError(() => lr.setRngState({ seed: 1 } as lr.RngState), TypeError, 'setRngState', "'state.counter'");
    expectError(() => lr.setRngState({ seed: 1, counter: -1 }), RangeError, 'setRngState', "'state.counter'");
    expectError(() => lr.setRngState({ seed: 1, counter: 0.5 }), TypeError, 'setRngState', "'state.counter'");
    expectError(() => lr.rand([2], { low: 1, high: 0 }), RangeError, 'rand', "'high'");
    expectError(() => lr.rand([2], { low: NaN }), RangeError, 'rand', "'low'");
    expectError(() => lr.rand([2], { high: Infinity }), RangeError, 'rand', "'high'");
    expectError(() => lr.rand([2], { lo: 0 } as object), TypeError, 'rand', "'lo'");
    expectError(() => lr.rand('3' as unknown as number[]), TypeError, 'rand', "'shape'");
    expectError(() => lr.rand([2, -1]), RangeError, 'rand', "'shape'");
    expectError(() => lr.rand([2.5]), RangeError, 'rand', "'shape'");
    expectError(() => lr.randn([2], { std: -1 }), RangeError, 'randn', "'std'");
    expectError(() => lr.randn([2], { mean: '0' as unknown as number }), TypeError, 'randn', "'mean'");
    expectError(() => lr.randn(3 as unknown as number[]), TypeError, 'randn', "'shape'");
    expectError(() => lr.randint(5, 5, [2]), RangeError, 'randint', "'high'");
    expectError(() => lr.randint(0, 2 ** 31 + 1, [2]), RangeError, 'randint', "'high'");
    expectError(() => lr.randint(-(2 ** 31) - 1, 0, [2]), RangeError, 'randint', "'low'");
    expectError(() => lr.randint(0.5, 3, [2]), TypeError, 'randint', "'low'");
    expectError(() => lr.randint(0, 3, [-1]), RangeError, 'randint', "'shape'");
    expectError(() => lr.randperm(-1), RangeError, 'randperm', "'n'");
    expectError(() => lr.randperm(2 ** 31), RangeError, 'randperm', "'n'");
    expectError(() => lr.randperm(2.5), TypeError, 'randperm', "'n'");
  });
  it('the native kernels re-check their arguments', () => {
    const out = lr.zeros([4]);
    const r = (t: lr.Tensor) => [t._storage('test'), t._offset];
    expectError(() => kernels.random_uniform(...r(out), 5, 0, 0, 0, 1), RangeError, 'random_uniform');
    expectError(() => kernels.random_uniform(...r(out), 4, -1, 0, 0, 1), RangeError, 'random_uniform');
    expectError(() => kernels.random_uniform(...r(out), 4, 0, 2 ** 53, 0, 1), RangeError, 'random_uniform');
    expectError(() => kernels.random_uniform(...r(out), 4, 0, 0, 1, 0), RangeError, 'random_uniform');
    expectError(() => kernels.random_normal(...r(out), 4, 0, 0, 0, -1), RangeError, 'random_normal');
    expectError(() => kernels.random_int(...r(out), 4, 0, 0, 0, 2), TypeError, 'random_int');
    expectError(() => kernels.random_int(...r(lr.zeros([4], 'int32')), 4, 0, 0, 2, 2), RangeError, 'random_int');
    expectError(() => kernels.random_permutation(...r(lr.zeros([4], 'int32')), 5, 0, 0), RangeError, 'random_permutation');
  });
});
