import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { expectError } from './helpers/check.js';

const live = () => {
  const { tensors, buffers, bytes } = lr.memory();
  return { tensors, buffers, bytes };
};

describe('tensor creation and data', () => {
  it('builds from nested arrays, TypedArrays and numbers', () => {
    const a = lr.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(a.shape).toEqual([2, 3]);
    expect(a.dtype).toBe('float32');
    expect(a.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
    const b = lr.tensor(new Int32Array([1, 2, 3, 4]), [2, 2]);
    expect(b.dtype).toBe('int32');
    expect(Array.from(b.data())).toEqual([1, 2, 3, 4]);
    const c = lr.tensor(new Uint8Array([0, 255]));
    expect(c.dtype).toBe('uint8');
    expect(lr.tensor(3.5).shape).toEqual([]);
    expect(lr.tensor(3.5).item()).toBe(3.5);
    expect(lr.tensor([1, 2], [2], 'int32').dtype).toBe('int32');
    expect(lr.zeros([0, 3]).size).toBe(0);
    expect(Array.from(lr.full([3], 2.5).data())).toEqual([2.5, 2.5, 2.5]);
    expect(Array.from(lr.ones([2]).data())).toEqual([1, 1]);
    expect(a.device).toBe('cpu');
  });

  it('keeps its own copy of the input data', () => {
    const src = new Float32Array([1, 2]);
    const t = lr.tensor(src);
    src[0] = 100;
    expect(t.data()[0]).toBe(1);
  });

  it('rejects bad input naming the argument', () => {
    expectError(() => lr.tensor([[1, 2], [3]]), RangeError, 'tensor', "'data'");
    expectError(() => lr.tensor('abc' as unknown as number[]), TypeError, "'data'");
    expectError(() => lr.tensor([1, 2, 3], [2, 2]), RangeError, "'shape'");
    expectError(() => lr.tensor([1, 2], [2], 'float64' as lr.DType), TypeError, "'dtype'");
    expectError(() => lr.tensor(new Float64Array(2) as unknown as Float32Array), TypeError, "'data'");
    expectError(() => lr.zeros([2, -1]), RangeError, "'shape'");
    expectError(() => lr.tensor([1, 2]).item(), RangeError, 'item');
  });

  it('casts between dtypes (float to uint8 rounds and saturates)', () => {
    const x = lr.tensor([-3.2, 0.4, 0.5, 254.6, 300]);
    expect(Array.from(lr.cast(x, 'uint8').data())).toEqual([0, 0, 1, 255, 255]);
    expect(Array.from(lr.cast(x, 'int32').data())).toEqual([-3, 0, 0, 254, 300]);
    expect(Array.from(lr.cast(lr.tensor(new Uint8Array([7, 200])), 'float32').data())).toEqual([7, 200]);
  });
});

describe('views and shape ops', () => {
  it('reshape shares memory and checks sizes', () => {
    const x = lr.tensor([1, 2, 3, 4, 5, 6]);
    const y = lr.reshape(x, [2, -1]);
    expect(y.shape).toEqual([2, 3]);
    expect(lr.flatten(lr.zeros([2, 3, 4])).shape).toEqual([2, 12]);
    expect(lr.flatten(lr.zeros([2, 3, 4]), 0).shape).toEqual([24]);
    expectError(() => lr.reshape(x, [4, -1]), RangeError, 'reshape', "'shape'");
    expectError(() => lr.reshape(x, [-1, -1]), RangeError, "'shape'");
    // Disposing the source leaves the view's memory alive.
    x.dispose();
    expect(y.toArray()).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it('permute and transpose match a naive reference', () => {
    const shape = [2, 3, 4];
    const data = Float32Array.from({ length: 24 }, (_, i) => i);
    const y = lr.permute(lr.tensor(data, shape), [2, 0, 1]);
    expect(y.shape).toEqual([4, 2, 3]);
    const out = y.data();
    for (let a = 0; a < 4; a++)
      for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) expect(out[a * 6 + b * 3 + c]).toBe(data[b * 12 + c * 4 + a]);
    expect(lr.transpose(lr.tensor([[1, 2], [3, 4], [5, 6]])).toArray()).toEqual([[1, 3, 5], [2, 4, 6]]);
    expectError(() => lr.permute(lr.zeros([2, 3]), [0, 0]), RangeError, "'perm'");
    expectError(() => lr.permute(lr.zeros([2, 3]), [0]), RangeError, "'perm'");
  });
});

describe('memory', () => {
  it('counts live tensors and native bytes, and frees on dispose', () => {
    const before = live();
    const t = lr.zeros([1000]);
    expect(lr.memory().tensors).toBe(before.tensors + 1);
    expect(lr.memory().bytes).toBe(before.bytes + 4000);
    t.dispose();
    t.dispose(); // twice is harmless
    expect(live()).toEqual(before);
    // The freed block is cached for reuse until emptyCache().
    expect(lr.memory().cached).toBeGreaterThanOrEqual(4000);
    lr.emptyCache();
    expect(lr.memory().cached).toBe(0);
  });

  it('a full block cache makes room for a freed block by dropping the blocks cached longest ago', () => {
    // In a process of its own with an 8 MiB cache: six blocks of one size fill most of it;
    // a block of another size freed then replaces the oldest of them (instead of going back
    // to the OS while the stale ones stay), and the next request of that size reuses it.
    const path = /\((.*)\)$/.exec(lr.nativeAddonOrigin())?.[1];
    const script = `
      const addon = require(${JSON.stringify(path)});
      const block = (mib) => new addon.Storage(0, mib * 262144, -1, false);
      const cached = () => addon.liveStorage().cached;
      const sizeOf = (mib) => { addon.emptyCache(); block(mib).free(); const n = cached(); addon.emptyCache(); return n; };
      const small = sizeOf(1), large = sizeOf(3);
      const smalls = Array.from({ length: 6 }, () => block(1));
      smalls.forEach((b) => b.free());
      const full = cached();
      block(3).free();
      const afterLarge = cached();
      const again = block(3);
      const afterReuse = cached();
      process.stdout.write(JSON.stringify({ small, large, full, afterLarge, afterReuse }));`;
    const got = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, LRFACE_HOST_CACHE_MB: '8' }, encoding: 'utf8' }));
    const cap = 8 << 20;
    expect(got.full).toBe(6 * got.small);
    expect(got.full + got.large).toBeGreaterThan(cap);
    const evicted = Math.ceil((got.full + got.large - cap) / got.small);
    expect(got.afterLarge).toBe(got.full - evicted * got.small + got.large);
    expect(got.afterReuse).toBe(got.afterLarge - got.large);
  });

  it('large blocks (huge-page mapped on Linux) hold their values and go back to the system whole', () => {
    // Without a cache every free returns its block. Sizes not a multiple of a page or of 2 MiB:
    // an unmap too long would take a neighbour's pages (a fault, or wrong values), and blocks
    // left mapped would grow the address space by far more than the V8 heap's own steps
    // (up to ~130 MiB here).
    const path = /\((.*)\)$/.exec(lr.nativeAddonOrigin())?.[1];
    const script = `
      const addon = require(${JSON.stringify(path)});
      const vm = () => Number(/VmSize:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
      const sizes = [524288, 524289, 1048575, 3 << 20, 5000001];
      const round = (k) => {
        const kept = sizes.map((n, i) => {
          const s = new addon.Storage(0, n, -1, false);
          s.write(new Float32Array([i + k]), 0);
          s.write(new Float32Array([i + k]), n - 1);
          return s;
        });
        const ends = kept.map((s, i) => [...s.read(0, 1), ...s.read(sizes[i] - 1, 1)]);
        kept.forEach((s) => s.free());
        return ends.every(([first, last], i) => first === i + k && last === i + k);
      };
      let ok = true;
      for (let k = 1; k <= 20; ++k) ok = round(k) && ok;
      const before = vm();
      for (let k = 21; k <= 100; ++k) ok = round(k) && ok;
      process.stdout.write(JSON.stringify({ ok, grewKiB: vm() - before }));`;
    const got = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, LRFACE_HOST_CACHE_MB: '0' }, encoding: 'utf8' }));
    expect(got.ok).toBe(true);
    // 80 rounds of 5 blocks of 2-20 MiB: 400 leaked blocks would be over 2.5 GiB.
    if (process.platform === 'linux') expect(got.grewKiB).toBeLessThan(256 << 10);
  });

  it('throws a clear Error when a disposed tensor is used', () => {
    const t = lr.tensor([1, 2]);
    t.dispose();
    expectError(() => t.data(), Error, 'disposed');
    expectError(() => lr.add(t, t), Error, 'add', "'a'", 'disposed');
  });

  it('scope disposes intermediates and keeps results', () => {
    const before = live();
    const kept = lr.scope(() => {
      const a = lr.tensor([1, 2, 3]);
      const b = lr.mul(a, a);
      const c = lr.add(b, 1);
      return { c, list: [lr.sum(c)] };
    });
    expect(lr.memory().tensors).toBe(before.tensors + 2);
    expect(kept.c.toArray()).toEqual([2, 5, 10]);
    kept.c.dispose();
    kept.list[0].dispose();
    expect(live()).toEqual(before);
    expectError(() => lr.scope(() => Promise.resolve(1)), TypeError, 'scope');
  });

  it('scope disposes on throw, and keep() lets a tensor escape', () => {
    const before = live();
    let escaped: lr.Tensor | undefined;
    expect(() =>
      lr.scope(() => {
        lr.tensor([1]);
        escaped = lr.keep(lr.tensor([2]));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(lr.memory().tensors).toBe(before.tensors + 1);
    escaped!.dispose();
    expect(live()).toEqual(before);
  });
});

describe('runtime', () => {
  it('reports and sets the thread count', () => {
    const n = lr.numThreads();
    expect(n).toBeGreaterThanOrEqual(1);
    lr.setNumThreads(1);
    expect(lr.numThreads()).toBe(1);
    lr.setNumThreads(n);
    expectError(() => lr.setNumThreads(0), RangeError, "'n'");
    expectError(() => lr.setNumThreads(1.5), TypeError, "'n'");
  });

  it('lists the CPU and explains why CUDA is unavailable', () => {
    const devs = lr.devices();
    expect(devs[0].id).toBe('cpu');
    const info = lr.buildInfo();
    if (!info.cudaAvailable) expect(info.cudaReason.length).toBeGreaterThan(0);
    else expect(devs.some((d) => d.type === 'cuda')).toBe(true);
  });

  it('declares every op once', () => {
    expect(lr.opDeclarations.size).toBeGreaterThan(20);
    for (const [name, decl] of lr.opDeclarations) expect(decl.name).toBe(name);
  });
});

describe('assign', () => {
  it('overwrites in place from a tensor or a TypedArray', () => {
    const t = lr.zeros([2, 2]);
    t.assign(lr.tensor([[1, 2], [3, 4]]));
    expect(t.toArray()).toEqual([[1, 2], [3, 4]]);
    t.assign(new Float32Array([5, 6, 7, 8]));
    expect(Array.from(t.data())).toEqual([5, 6, 7, 8]);
    t.assign(new Int32Array([1, 1, 1, 1]));
    expect(Array.from(t.data())).toEqual([1, 1, 1, 1]);
    expectError(() => t.assign(lr.zeros([4])), RangeError, 'assign', "'source'");
    expectError(() => t.assign(new Float32Array(3)), RangeError, "'source'");
    expectError(() => t.assign([1, 2, 3, 4] as unknown as Float32Array), TypeError, "'source'");
  });
});
