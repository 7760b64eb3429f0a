// runAsync: kernels queued by a forward pass run on a worker thread; the event loop stays free.
import { describe, expect, it } from 'vitest';
import * as lr from '../src/index.js';
import { kernels } from '../src/native.js';
import { uniform } from './helpers/random.js';

/** A VDSR-like stack: `layers` 3x3 convolutions 16->16 with ReLU, and a residual add. */
function makeNet(layers: number, channels: number) {
  const weights = Array.from({ length: layers }, (_, i) => lr.tensor(uniform(channels * channels * 9, 10 + i, -0.12, 0.12), [channels, channels, 3, 3]));
  const biases = Array.from({ length: layers }, (_, i) => lr.tensor(uniform(channels, 50 + i, -0.05, 0.05), [channels]));
  const forward = (x: lr.Tensor) =>
    lr.scope(() => {
      let h = x;
      for (let i = 0; i < layers; i++) h = lr.conv2dRelu(h, weights[i], biases[i], { padding: 1 });
      return lr.add(h, x);
    });
  return { forward, dispose: () => [...weights, ...biases].forEach((t) => t.dispose()) };
}

/** Largest gap between ticks of a 2 ms interval while `work` runs. */
async function maxEventLoopGap(work: () => Promise<unknown> | unknown): Promise<{ gap: number; ms: number }> {
  let last = performance.now();
  let gap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 2);
  await new Promise((r) => setTimeout(r, 20));
  last = performance.now();
  gap = 0;
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 10));
  clearInterval(timer);
  return { gap, ms };
}

describe('runAsync', () => {
  it('gives the same values as the synchronous forward pass', async () => {
    const net = makeNet(4, 16);
    const x = lr.tensor(uniform(2 * 16 * 24 * 20, 1), [2, 16, 24, 20]);
    const expected = lr.noGrad(() => net.forward(x));
    const y = await lr.runAsync(() => net.forward(x));
    expect(y.shape).toEqual([2, 16, 24, 20]);
    expect(Array.from(y.data())).toEqual(Array.from(expected.data()));
    [x, y, expected].forEach((t) => t.dispose());
    net.dispose();
  });

  it('keeps the event loop responsive while a long inference runs (a synchronous run blocks it)', async () => {
    const net = makeNet(12, 32);
    const x = lr.tensor(uniform(32 * 192 * 192, 2), [1, 32, 192, 192]);
    let syncOut: lr.Tensor | undefined;
    const blocking = await maxEventLoopGap(() => {
      syncOut = lr.noGrad(() => net.forward(x));
    });
    let asyncOut: lr.Tensor | undefined;
    const free = await maxEventLoopGap(async () => {
      asyncOut = await lr.runAsync(() => net.forward(x));
    });
    // The synchronous run holds the loop for its whole duration; the asynchronous one only
    // for the recording, a small fraction of it.
    console.info(`event-loop gap: synchronous ${blocking.gap.toFixed(0)} ms of ${blocking.ms.toFixed(0)} ms; runAsync ${free.gap.toFixed(1)} ms of ${free.ms.toFixed(0)} ms`);
    expect(blocking.gap).toBeGreaterThan(0.8 * blocking.ms);
    expect(free.gap).toBeLessThan(Math.max(50, 0.25 * blocking.ms));
    expect(Array.from(asyncOut!.data())).toEqual(Array.from(syncOut!.data()));
    [x, syncOut!, asyncOut!].forEach((t) => t.dispose());
    net.dispose();
  });

  it('runs several pending runs in order, each seeing the results of the ones before', async () => {
    const a = lr.tensor([1, 2, 3, 4], [4]);
    const p1 = lr.runAsync(() => lr.mul(a, a));
    const b = await p1;
    const [c, d] = await Promise.all([lr.runAsync(() => lr.add(a, a)), lr.runAsync(() => lr.add(b, b))]);
    expect(Array.from(c.data())).toEqual([2, 4, 6, 8]);
    expect(Array.from(d.data())).toEqual([2, 8, 18, 32]);
    const e = lr.runAsync(() => lr.add(a, a));
    const f = lr.runAsync(() => lr.mul(c, c));
    const [e1, f1] = await Promise.all([e, f]);
    expect(Array.from(e1.data())).toEqual([2, 4, 6, 8]);
    expect(Array.from(f1.data())).toEqual([4, 16, 36, 64]);
    [a, b, c, d, e1, f1].forEach((t) => t.dispose());
  });

  it('refuses to read a tensor inside the run and drops the run', async () => {
    const a = lr.tensor([1, 2, 3], [3]);
    await expect(lr.runAsync(() => lr.add(a, a).data())).rejects.toThrow(/asynchronous run that has not finished/);
    // Nothing stays pinned: the input is usable synchronously again.
    expect(Array.from(lr.add(a, a).data())).toEqual([2, 4, 6]);
    a.dispose();
  });

  it('refuses synchronous use of a tensor of an unfinished run, and allows it after', async () => {
    const a = lr.tensor([1, 2, 3], [3]);
    let out: lr.Tensor | undefined;
    const pending = lr.runAsync(() => (out = lr.add(a, a)));
    expect(() => out!.data()).toThrow(/await it first/);
    expect(() => lr.mul(a, a)).toThrow(/add|mul.*asynchronous run that has not finished|await it first/);
    await pending;
    expect(Array.from(out!.data())).toEqual([2, 4, 6]);
    expect(Array.from(lr.mul(a, a).data())).toEqual([1, 4, 9]);
    a.dispose();
    out!.dispose();
  });

  it('frees the tensors the run disposes once it has finished', async () => {
    const net = makeNet(3, 8);
    const x = lr.tensor(uniform(8 * 16 * 16, 3), [1, 8, 16, 16]);
    const y0 = lr.noGrad(() => net.forward(x));
    y0.dispose();
    const before = lr.memory().buffers;
    const y = await lr.runAsync(() => net.forward(x));
    expect(lr.memory().buffers).toBe(before + 1);
    y.dispose();
    expect(lr.memory().buffers).toBe(before);
    x.dispose();
    net.dispose();
  });

  it('rejects with the kernel error class when a queued kernel fails', async () => {
    const out = lr.zeros([4]);
    // A raw kernel call with a view past the end of its storage: found when the queue runs.
    const s = out._storage('test');
    const run = lr.runAsync(() => kernels.binary(0, s, 2, s, 0, s, 0, [4], [4], [4]));
    await expect(run).rejects.toThrow(RangeError);
    expect(Array.from(lr.add(out, out).data())).toEqual([0, 0, 0, 0]);
    out.dispose();
  });

  it('validates its argument and refuses nesting and async functions', async () => {
    await expect(lr.runAsync(42 as never)).rejects.toThrow(TypeError);
    await expect(lr.runAsync(42 as never)).rejects.toThrow(/runAsync.*fn/);
    await expect(lr.runAsync(async () => 1)).rejects.toThrow(/synchronous function/);
    let inner: Promise<unknown> | undefined;
    await lr.runAsync(() => {
      inner = lr.runAsync(() => 1).catch((err: Error) => err);
      return 0;
    });
    expect(String(await inner)).toMatch(/cannot nest/);
    expect(Array.from(lr.add(lr.tensor([1]), lr.tensor([2])).data())).toEqual([3]);
  });
});
