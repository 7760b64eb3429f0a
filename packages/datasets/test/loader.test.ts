import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArrayDataset, DataLoader, Rng, WiderFace, augmentFaceFrom, collate, heatmapTensor, type RawImage } from '../src/index.js';
import { data, expectArgError, have } from './helpers.js';

const items = Array.from({ length: 10 }, (_, i) => ({ id: i }));
const ds = new ArrayDataset(items, 'ten');
const image = (v: number, w = 4, h = 3): RawImage<Uint8Array> => ({ data: new Uint8Array(w * h * 3).fill(v), width: w, height: h, channels: 3 });

describe('DataLoader', () => {
  it('collates images to NCHW float32, arrays and numbers to stacked tensors', async () => {
    const loader = new DataLoader({
      dataset: ds,
      batchSize: 4,
      intFields: ['label'],
      transform: (s) => ({ image: image(s.id * 10), points: Float32Array.of(s.id, -s.id), label: s.id, mask: { data: Uint8Array.of(1, 0, s.id % 2), shape: [3] } }),
    });
    expect(loader.length).toBe(3);
    const batches = [];
    for await (const b of loader) batches.push(b);
    expect(batches.map((b) => b.image.shape)).toEqual([[4, 3, 3, 4], [4, 3, 3, 4], [2, 3, 3, 4]]);
    const b = batches[1];
    expect(Array.from(b.indices)).toEqual([4, 5, 6, 7]);
    expect(b.image.data()[36]).toBeCloseTo(50 / 255, 6); // second sample, first value
    expect(b.points.shape).toEqual([4, 2]);
    expect(Array.from(b.points.data()).slice(0, 2)).toEqual([4, -4]);
    expect([b.label.dtype, ...b.label.shape]).toEqual(['int32', 4]);
    expect(Array.from(b.label.data())).toEqual([4, 5, 6, 7]);
    expect([b.mask.dtype, ...b.mask.shape]).toEqual(['uint8', 4, 3]);
    for (const x of batches) for (const t of [x.image, x.points, x.label, x.mask]) t.dispose();
    const drop = new DataLoader({ dataset: ds, batchSize: 4, dropLast: true, transform: (s) => ({ v: s.id }) });
    let n = 0;
    for await (const x of drop) n += x.v.shape[0];
    expect([drop.length, n]).toEqual([2, 8]);
  });

  it('shuffles reproducibly per epoch and gives every sample a generator that depends only on (seed, epoch, index)', async () => {
    const run = async (seed: number, concurrency: number) => {
      const loader = new DataLoader({
        dataset: ds,
        batchSize: 3,
        shuffle: true,
        seed,
        concurrency,
        // Random delays make the completion order differ from the start order.
        transform: async (s, rng) => {
          const r = rng.next();
          await new Promise((res) => setTimeout(res, Math.floor(Math.random() * 4)));
          return { id: s.id, r };
        },
      });
      const epochs: { order: number[]; draws: Map<number, number> }[] = [];
      for (let e = 0; e < 2; e++) {
        const order: number[] = [];
        const draws = new Map<number, number>();
        for await (const b of loader) {
          const ids = Array.from(b.id.data());
          const rs = Array.from(b.r.data());
          ids.forEach((id, k) => draws.set(id, rs[k]));
          order.push(...ids);
          expect(Array.from(b.indices)).toEqual(ids);
        }
        epochs.push({ order, draws });
      }
      return epochs;
    };
    const a = await run(3, 1);
    const b = await run(3, 8);
    expect(a.map((e) => e.order)).toEqual(b.map((e) => e.order));
    expect([...a[0].draws.entries()].sort()).toEqual([...b[0].draws.entries()].sort());
    expect([...a[0].order].sort((x, y) => x - y)).toEqual(items.map((x) => x.id));
    expect(a[0].order).not.toEqual(a[1].order);
    expect(a[0].draws.get(0)).not.toBe(a[1].draws.get(0));
    const c = await run(4, 2);
    expect(c[0].order).not.toEqual(a[0].order);
  });

  it('keeps at most `concurrency` samples in flight and stays within the prefetch window', async () => {
    let active = 0;
    let peak = 0;
    let started = 0;
    const big = new ArrayDataset(Array.from({ length: 40 }, (_, i) => i));
    const loader = new DataLoader({
      dataset: big,
      batchSize: 4,
      concurrency: 3,
      prefetch: 1,
      transform: async (i) => {
        started++;
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 2));
        active--;
        return { i };
      },
    });
    let consumed = 0;
    for await (const b of loader) {
      consumed += b.i.shape[0];
      // Never more than the current batch plus one prefetched batch has been started.
      expect(started).toBeLessThanOrEqual(consumed + 4);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('names the failing sample and rejects bad options', async () => {
    const loader = new DataLoader({ dataset: ds, batchSize: 4, transform: (s) => { if (s.id === 5) throw new Error('broken file x.jpg'); return { v: s.id }; } });
    await expect((async () => { for await (const b of loader) b.v.dispose(); })()).rejects.toThrow('DataLoader: sample 5 of ten failed: broken file x.jpg');
    await expectArgError(() => new DataLoader({ dataset: ds, batchSize: 0, transform: () => ({}) }), RangeError, 'DataLoader', 'batchSize');
    await expectArgError(() => new DataLoader({ dataset: [] as never, batchSize: 1, transform: () => ({}) }), TypeError, 'DataLoader', 'dataset');
    await expectArgError(() => new DataLoader({ dataset: ds, batchSize: 1 } as never), TypeError, 'DataLoader', 'transform');
    await expectArgError(() => new DataLoader({ dataset: ds, batchSize: 1, transform: () => ({}), shuffled: true } as never), TypeError, 'DataLoader', 'shuffled');
    await expectArgError(() => collate([{ a: image(1) }, { a: image(1, 5) }]), RangeError, 'collate', 'a');
    await expectArgError(() => collate([{ a: 1 }, { b: 2 } as never]), RangeError, 'collate', 'examples[1]');
    await expectArgError(() => collate([{ a: 'x' } as never]), TypeError, 'collate', 'a');
  });

  it.skipIf(!have('widerface/wider_face_split/wider_face_val.mat', 'widerface/WIDER_val/images/19--Couple'))('runs the real pipeline: WIDER faces -> decode + augment -> [B, 3, 128, 128] with heatmaps', async () => {
    const wider = (await WiderFace.open({ root: join(data, 'widerface'), split: 'val' })).filterFaces({ minSize: 64 }).filter((s) => existsSync(s.image.source));
    const faces = wider.toArray().flatMap((s) => s.boxes.map((_, k) => ({ s, k })));
    expect(faces.length).toBeGreaterThan(40);
    const loader = new DataLoader({
      dataset: new ArrayDataset(faces.slice(0, 24)),
      batchSize: 8,
      shuffle: true,
      seed: 2,
      transform: async ({ s, k }, rng: Rng) => {
        // The face box's corners stand in for landmarks here (WIDER has none).
        const b = s.boxes[k];
        const corners = Float32Array.of(b.x, b.y, b.x + b.width, b.y, b.x + b.width / 2, b.y + b.height / 2, b.x, b.y + b.height, b.x + b.width, b.y + b.height);
        const out = await augmentFaceFrom(s.image, { boxes: s.boxes, landmarks: [corners] }, rng, { size: [128, 128], face: k, flip: 0 });
        return { image: out.image, points: out.landmarks![0] };
      },
    });
    let count = 0;
    for await (const batch of loader) {
      expect(batch.image.shape).toEqual([8, 3, 128, 128]);
      const v = batch.image.data();
      expect(v.every((x) => x >= 0 && x <= 1)).toBe(true);
      const hm = heatmapTensor(Array.from({ length: 8 }, (_, i) => batch.points.data().subarray(i * 10, i * 10 + 10)), { size: [32, 32], imageSize: [128, 128] });
      expect(hm.shape).toEqual([8, 6, 32, 32]);
      count += 8;
      batch.image.dispose();
      batch.points.dispose();
      hm.dispose();
    }
    expect(count).toBe(24);
  });
});
