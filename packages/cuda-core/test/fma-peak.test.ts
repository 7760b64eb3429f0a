import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { expectError } from './helpers/check.js';

const threadsAtStart = lr.numThreads();
afterEach(() => lr.setNumThreads(threadsAtStart));
const isas = ['avx512', 'avx2', 'scalar'].filter((isa) => kernels.gemm_use_isa(isa) as boolean);
kernels.gemm_use_isa('auto');
afterAll(() => kernels.gemm_use_isa('auto'));

// No x86 core issues more than two FMA instructions a cycle or runs above 6.5 GHz.
const ceilingPerThread = (lanes: number) => 6.5e9 * 2 * lanes * 2;

describe('measureFmaPeak', () => {
  for (const isa of isas)
    it(`${isa}: a positive, physically possible rate per thread, at the kernels' instruction set`, () => {
      kernels.gemm_use_isa(isa);
      try {
        lr.setNumThreads(1);
        const p = lr.measureFmaPeak({ threads: 1, ms: 30 });
        expect(p.isa).toBe(isa);
        expect(p.lanes).toBe({ avx512: 16, avx2: 8, scalar: 4 }[isa]);
        expect(p.threads).toBe(1);
        expect(p.flopsPerThread).toHaveLength(1);
        expect(Number.isFinite(p.flopsPerSecond)).toBe(true);
        // At least 1 GFLOP/s even for SSE on a slow or busy core; never above two FMA units at 6.5 GHz.
        expect(p.flopsPerSecond).toBeGreaterThan(1e9);
        expect(p.flopsPerSecond).toBeLessThan(ceilingPerThread(p.lanes));
        expect(p.flopsPerSecond).toBeCloseTo(p.flopsPerThread[0], 0);
      } finally {
        kernels.gemm_use_isa('auto');
      }
    });

  it('runs one measuring loop per thread: two threads report two rates, each physically possible', () => {
    // Rates depend on what else the machine runs (tests run in parallel workers), so only
    // physical bounds are checked here; the bench reports the measured figures.
    lr.setNumThreads(2);
    const two = lr.measureFmaPeak({ threads: 2, ms: 30 });
    expect(two.threads).toBe(2);
    expect(two.flopsPerThread).toHaveLength(2);
    expect(two.flopsPerSecond).toBeCloseTo(two.flopsPerThread[0] + two.flopsPerThread[1], -3);
    for (const f of two.flopsPerThread) {
      expect(f).toBeGreaterThan(0);
      expect(f).toBeLessThan(ceilingPerThread(two.lanes));
    }
  });

  it('defaults to every pool thread', () => {
    lr.setNumThreads(2);
    expect(lr.measureFmaPeak({ ms: 5 }).threads).toBe(2);
    expect(lr.measureFmaPeak().flopsPerThread).toHaveLength(2);
  });

  it('rejects bad arguments', () => {
    lr.setNumThreads(2);
    expectError(() => lr.measureFmaPeak(null as never), TypeError, 'measureFmaPeak', "'options'");
    expectError(() => lr.measureFmaPeak([] as never), TypeError, 'measureFmaPeak', "'options'");
    expectError(() => lr.measureFmaPeak({ threads: 1.5 }), TypeError, 'measureFmaPeak', "'threads'");
    expectError(() => lr.measureFmaPeak({ threads: '2' as never }), TypeError, 'measureFmaPeak', "'threads'");
    expectError(() => lr.measureFmaPeak({ threads: 0 }), RangeError, 'measureFmaPeak', "'threads'", '[1, 2]');
    expectError(() => lr.measureFmaPeak({ threads: 3 }), RangeError, 'measureFmaPeak', "'threads'", 'numThreads()');
    expectError(() => lr.measureFmaPeak({ ms: '10' as never }), TypeError, 'measureFmaPeak', "'ms'");
    expectError(() => lr.measureFmaPeak({ ms: Number.NaN }), TypeError, 'measureFmaPeak', "'ms'");
    expectError(() => lr.measureFmaPeak({ ms: 0 }), RangeError, 'measureFmaPeak', "'ms'");
    expectError(() => lr.measureFmaPeak({ ms: Infinity }), RangeError, 'measureFmaPeak', "'ms'");
    expectError(() => lr.measureFmaPeak({ ms: 1e6 }), RangeError, 'measureFmaPeak', "'ms'");
  });

  it('native binding checks its own range (threads beyond the pool, bad duration)', () => {
    lr.setNumThreads(1);
    expectError(() => kernels.fma_peak(2, 0.01), RangeError, 'measureFmaPeak', 'pool');
    expectError(() => kernels.fma_peak(1, 0), RangeError, 'measureFmaPeak', 'duration');
  });
});
