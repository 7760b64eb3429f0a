import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectError } from './helpers/check.js';

describe('random generator', () => {
  it('same seed, same numbers; different seed, different numbers', () => {
    lr.manualSeed(123);
    const a = lr.randn([1000]).data();
    lr.manualSeed(123);
    const b = lr.randn([1000]).data();
    lr.manualSeed(124);
    const c = lr.randn([1000]).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });
  it('does not depend on the thread count, and state round-trips', () => {
    const threads = lr.numThreads();
    lr.manualSeed(5);
    lr.setNumThreads(1);
    const a = lr.rand([50000]).data();
    lr.manualSeed(5);
    lr.setNumThreads(2);
    const b = lr.rand([50000]).data();
    lr.setNumThreads(threads);
    expect(Array.from(a)).toEqual(Array.from(b));
    const state = lr.getRngState();
    const next = lr.randn([10]).data();
    lr.setRngState(state);
    expect(Array.from(lr.randn([10]).data())).toEqual(Array.from(next));
  });
  it('has the right moments and ranges', () => {
    lr.manualSeed(1);
    const n = 200000;
    const z = lr.randn([n], { mean: 2, std: 3 }).data();
    const mean = z.reduce((s, v) => s + v, 0) / n;
    const variance = z.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    // 5 standard errors
    expect(Math.abs(mean - 2)).toBeLessThan((5 * 3) / Math.sqrt(n));
    expect(Math.abs(Math.sqrt(variance) - 3)).toBeLessThan(0.05);
    const u = lr.rand([n], { low: -1, high: 1 }).data();
    expect(u.reduce((m, v) => Math.min(m, v), Infinity)).toBeGreaterThanOrEqual(-1);
    expect(u.reduce((m, v) => Math.max(m, v), -Infinity)).toBeLessThan(1);
    expect(Math.abs(u.reduce((s, v) => s + v, 0) / n)).toBeLessThan(0.01);
    const k = lr.randint(3, 7, [10000]);
    expect(k.dtype).toBe('int32');
    const kd = Array.from(k.data());
    expect(new Set(kd)).toEqual(new Set([3, 4, 5, 6]));
    const p = Array.from(lr.randperm(100).data()).sort((x, y) => x - y);
    expect(p).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
  it('rejects bad arguments', () => {
    expectError(() => lr.manualSeed(-1), RangeError, 'manualSeed', "'seed'");
    expectError(() => lr.manualSeed(1.5), TypeError, "'seed'");
    expectError(() => lr.rand([2], { low: 1, high: 0 }), RangeError, 'rand', "'high'");
    expectError(() => lr.randn([2], { std: -1 }), RangeError, 'randn', "'std'");
    expectError(() => lr.randint(5, 5, [2]), RangeError, 'randint', "'high'");
    expectError(() => lr.randn('3' as unknown as number[]), TypeError, "'shape'");
  });
});
