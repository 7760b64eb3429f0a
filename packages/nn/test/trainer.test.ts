// The Trainer: exact resumption, progress output on a TTY and in logs, hooks and limits.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Adam, Dropout, Linear, ReLU, SGD, Sequential, StepLR, Trainer, loadCheckpoint, mseLoss } from '../src/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'lrface-trainer-'));

/** A writable that records what is written; optionally pretends to be a terminal. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } }) as Writable & { isTTY: boolean; columns: number; text: () => string };
  w.isTTY = isTTY;
  w.columns = 100;
  w.text = () => chunks.join('');
  return w;
}

const target = lr.tensor([[0.5], [-1], [2]]);
/** Batches generated lazily from the engine's generator, fresh on every pass (like an augmenting loader). */
const lazyData = {
  *[Symbol.iterator]() {
    for (let i = 0; i < 5; i++) {
      const x = lr.randn([4, 3]);
      yield { x, y: lr.matmul(x, target) };
    }
  },
};

function setup(initSeed: number, lrate: number) {
  lr.manualSeed(initSeed);
  const model = new Sequential(new Linear(3, 8), new ReLU(), new Dropout(0.25), new Linear(8, 1));
  const optimizer = new Adam(model.parameters(), { lr: lrate });
  const scheduler = new StepLR(optimizer, 1, 0.5);
  return { model, optimizer, scheduler };
}

describe('Trainer', () => {
  it('a run stopped mid-epoch and resumed from its checkpoint ends bit for bit where the uninterrupted run does', async () => {
    const dir = tmp();
    const epochs = 3;
    const a = setup(1, 0.02);
    lr.manualSeed(2);
    await new Trainer({ ...a, data: lazyData, epochs, output: sink(false), loss: (b) => mseLoss(a.model.forward(b.x), b.y) }).fit();

    const path = join(dir, 'run.safetensors');
    const b = setup(1, 0.02);
    lr.manualSeed(2);
    const first: Trainer<{ x: lr.Tensor; y: lr.Tensor }> = new Trainer({
      ...b, data: lazyData, epochs, checkpointPath: path, resume: true, output: sink(false),
      loss: (batch, step) => {
        if (step === 6) first.requestStop(); // the 7th step, second batch of epoch 2
        return mseLoss(b.model.forward(batch.x), batch.y);
      },
    });
    expect((await first.fit()).steps).toBe(7);
    expect(loadCheckpoint(path, { model: setup(0, 1).model }).extra).toEqual({ epoch: 1, epochStep: 2 });

    // fresh objects, other initial weights, learning rate and generator state: all restored from the file
    const c = setup(77, 0.5);
    lr.manualSeed(12345);
    const log = sink(false);
    const second = new Trainer({ ...c, data: lazyData, epochs, checkpointPath: path, resume: true, output: log, loss: (batch) => mseLoss(c.model.forward(batch.x), batch.y) });
    expect((await second.fit()).steps).toBe(15);
    expect(log.text()).toMatch(/resumed from .*run\.safetensors at step 7 \(epoch 2, batch 2\)/);
    for (const [k, v] of a.model.stateDict()) expect(Array.from(c.model.stateDict().get(k)!.data()), k).toEqual(Array.from(v.data()));
    expect(c.optimizer.paramGroups[0].lr).toBe(a.optimizer.paramGroups[0].lr);
  });

  it('draws a progress bar on a terminal and writes plain lines otherwise', async () => {
    const run = async (out: ReturnType<typeof sink>) => {
      lr.manualSeed(4);
      const model = new Sequential(new Linear(2, 1));
      const data = Array.from({ length: 4 }, () => ({ x: lr.randn([3, 2]) }));
      await new Trainer({ model, optimizer: new SGD(model.parameters(), { lr: 0.01 }), data, epochs: 2, logEvery: 2, batchSize: 3, output: out, loss: (b) => lr.mean(lr.square(model.forward(b.x))) }).fit();
      return out.text();
    };
    const tty = await run(sink(true));
    expect(tty).toMatch(/\r\x1b\[K\[(#+)(-+)\] 50% epoch 1\/2 step 4 loss \d\.\d{4}e[-+]\d+ [\d.]+ samples\/s/);
    const [, done, left] = /\[(#+)(-+)\] 50%/.exec(tty)!;
    expect(done.length).toBe(left.length);
    expect(tty).toMatch(/\[#+\] 100% epoch 2\/2 step 8/);
    const plain = await run(sink(false));
    expect(plain).not.toMatch(/[\r\x1b]/);
    expect(plain.trim().split('\n')).toHaveLength(4);
    expect(plain).toMatch(/^epoch 1\/2 step 2 loss .* samples\/s$/m);
  });

  it('validates in eval mode, steps the schedule per step when asked, honours maxSteps, logs JSONL', async () => {
    const dir = tmp();
    lr.manualSeed(6);
    const model = new Sequential(new Linear(2, 2), new Dropout(0.5));
    const optimizer = new SGD(model.parameters(), { lr: 1 });
    const scheduler = new StepLR(optimizer, 2, 0.1);
    const modes: boolean[] = [];
    const data = Array.from({ length: 3 }, () => ({ x: lr.randn([2, 2]) }));
    const trainer = new Trainer({
      model, optimizer, scheduler, scheduleEvery: 'step', data, epochs: 10, maxSteps: 5, validateEvery: 2, logEvery: 1,
      metricsPath: join(dir, 'm.jsonl'), checkpointPath: join(dir, 'c.safetensors'), output: sink(false),
      loss: (b) => lr.mean(lr.square(model.forward(b.x))),
      validate: (step) => {
        modes.push(model.training);
        return { step };
      },
    });
    expect((await trainer.fit()).steps).toBe(5);
    expect(model.training).toBe(true);
    expect(modes).toEqual([false, false, false]); // steps 2, 4 and the end
    expect(optimizer.paramGroups[0].lr).toBeCloseTo(0.01, 12); // 5 schedule steps, x0.1 every 2
    const records = readFileSync(join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => 'loss' in r).map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect(records.filter((r) => r.validation).map((r) => r.validation.step)).toEqual([2, 4, 5]);
    expect(loadCheckpoint(join(dir, 'c.safetensors'), { model }).step).toBe(5);
  });

  it('stops on an infinite loss before updating, naming the step and the value', async () => {
    const dir = tmp();
    const model = new Sequential(new Linear(2, 1));
    const before = Array.from(model.parameters()[0].data());
    const out = sink(false);
    const trainer = new Trainer({
      model, optimizer: new SGD(model.parameters(), { lr: 0.1 }), data: [1, 2, 3, 4], output: out, metricsPath: join(dir, 'm.jsonl'),
      loss: (b) => {
        const l = lr.sum(model.forward(lr.ones([1, 2])));
        return b === 3 ? lr.div(l, 0) : lr.mul(l, 0);
      },
    });
    await expect(trainer.fit()).rejects.toThrow(/the loss became (-)?Infinity at step 3 \(epoch 1\)/);
    expect(out.text()).toMatch(/stopped at step 3: the loss is -?Infinity/);
    expect(Array.from(model.parameters()[0].data())).toEqual(before); // the zero-loss steps changed nothing, the bad one did not run
    expect(readFileSync(join(dir, 'm.jsonl'), 'utf8')).toMatch(/"stopped":"non-finite loss"/);
  });

  it('checks its options by name', () => {
    const model = new Sequential(new Linear(1, 1));
    const base = { model, optimizer: new SGD(model.parameters(), { lr: 1 }), data: [], loss: () => lr.zeros([]) };
    expect(() => new Trainer({ ...base, epochs: -1 })).toThrow(/Trainer: 'epochs'/);
    expect(() => new Trainer({ ...base, logEvery: 0 })).toThrow(/Trainer: 'logEvery'/);
    expect(() => new Trainer({ ...base, resume: true })).toThrow(/Trainer: 'resume' needs 'checkpointPath'/);
  });
});
