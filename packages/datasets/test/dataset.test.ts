import { describe, expect, it } from 'vitest';
import { ArrayDataset, Rng, rngFrom } from '../src/index.js';
import { expectArgError } from './helpers.js';

describe('Dataset and Rng', () => {
  it('indexes, iterates, subsets, filters and maps', async () => {
    const ds = new ArrayDataset(['a', 'b', 'c', 'd'], 'letters');
    expect([ds.length, ds.get(0), ds.get(-1)]).toEqual([4, 'a', 'd']);
    expect([...ds]).toEqual(['a', 'b', 'c', 'd']);
    const seen: string[] = [];
    for await (const x of ds) seen.push(x);
    expect(seen).toEqual([...ds]);
    expect(ds.subset([3, 1]).toArray()).toEqual(['d', 'b']);
    expect(ds.filter((x, i) => i % 2 === 0).toArray()).toEqual(['a', 'c']);
    const upper = ds.map((x, i) => `${x.toUpperCase()}${i}`);
    expect([upper.length, upper.get(2), upper.name]).toEqual([4, 'C2', 'letters']);
    await expectArgError(() => ds.get(4), RangeError, 'letters.get', 'index');
    await expectArgError(() => ds.get(-5), RangeError, 'letters.get', 'index');
    await expectArgError(() => ds.get(1.5), TypeError, 'letters.get', 'index');
    await expectArgError(() => ds.subset([0, 9]), RangeError, 'letters.subset', 'indices');
  });

  it('draws reproducible uniform and normal streams', () => {
    const a = new Rng(123);
    const b = new Rng(123);
    const xs = Array.from({ length: 20000 }, () => a.next());
    expect(xs.slice(0, 50)).toEqual(Array.from({ length: 50 }, () => b.next()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeCloseTo(0.5, 1);
    // Each tenth of [0, 1) gets about a tenth of the draws.
    const bins = new Array(10).fill(0);
    for (const x of xs) bins[Math.floor(x * 10)]++;
    for (const n of bins) expect(Math.abs(n - 2000)).toBeLessThan(200);
    const r = new Rng(9);
    const ns = Array.from({ length: 20000 }, () => r.normal());
    const m = ns.reduce((s, x) => s + x, 0) / ns.length;
    const v = ns.reduce((s, x) => s + (x - m) ** 2, 0) / ns.length;
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
    expect(Array.from(new Rng(4).permutation(6)).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Rng(1).next()).not.toBe(new Rng(2).next());
    expect(new Rng(2 ** 40).next()).not.toBe(new Rng(2 ** 40 + 1).next());
    expect(rngFrom(a)).toBe(a);
    expect(() => new Rng(-1)).toThrow(RangeError);
  });
});
