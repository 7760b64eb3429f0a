// The Trainer: exact resumption, progress output on a TTY and in logs, hooks and limits.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { Adam, BeganBalance, Dropout, Linear, ReLU, SGD, Sequential, StepLR, Trainer, beganEnergy, loadCheckpoint, mseLoss, readCheckpointInfo, saveCheckpoint, saveSafetensors } from '../src/index.js';

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
    expect([done.length, left.length]).toEqual([15, 15]); // 100 columns: a 30-character bar
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

  it('runs a caller-defined step (BEGAN: discriminator and generator updates, k_t), and resumes it bit for bit', async () => {
    const dir = tmp();
    const build = (seed: number) => {
      lr.manualSeed(seed);
      const G = new Sequential(new Linear(2, 4), new ReLU(), new Linear(4, 3));
      const D = new Sequential(new Linear(3, 2), new ReLU(), new Linear(2, 3)); // an autoencoder, as BEGAN's D
      const optG = new Adam(G.parameters(), { lr: 1e-2 });
      const optD = new Adam(D.parameters(), { lr: 1e-2 });
      const balance = new BeganBalance(0.5, 0.1);
      return { G, D, optG, optD, balance };
    };
    const data = { *[Symbol.iterator]() { for (let i = 0; i < 4; i++) yield lr.randn([5, 3]); } };
    const trainer = (p: ReturnType<typeof build>, path?: string, stopAt?: number) => {
      const t: Trainer<lr.Tensor> = new Trainer({
        model: p.G, optimizer: p.optG, models: { D: p.D }, optimizers: { D: p.optD }, data, epochs: 2, logEvery: 1, output: sink(false),
        checkpointPath: path, resume: !!path,
        extraState: { save: () => ({ k: p.balance.k }), load: (s) => { p.balance.k = s.k as number; } },
        trainStep: (real, step) => {
          if (step === stopAt) t.requestStop();
          const z = lr.randn([5, 2]);
          p.optD.zeroGrad();
          const [lReal, lFake] = lr.scope(() => {
            const eReal = beganEnergy(real, p.D.forward(real));
            const eFake = beganEnergy(lr.noGrad(() => p.G.forward(z)), p.D.forward(lr.noGrad(() => p.G.forward(z))));
            p.balance.discriminatorLoss(eReal, eFake).backward();
            return [eReal.item(), eFake.item()];
          });
          p.optD.step();
          p.optG.zeroGrad();
          lr.scope(() => {
            const fake = p.G.forward(z);
            p.balance.generatorLoss(beganEnergy(fake, p.D.forward(fake))).backward();
          });
          p.optG.step();
          const convergence = p.balance.update(lReal, lFake);
          return { loss: lReal, convergence, k: p.balance.k, samples: 5 };
        },
      });
      return t;
    };
    const a = build(1);
    lr.manualSeed(2);
    const metrics = join(dir, 'm.jsonl');
    await new Trainer({ ...trainer(a).options, metricsPath: metrics }).fit();
    const rec = readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rec[0]).toMatchObject({ step: 1, k: expect.any(Number), convergence: expect.any(Number) });

    const path = join(dir, 'gan.safetensors');
    const b = build(1);
    lr.manualSeed(2);
    expect((await trainer(b, path, 5).fit()).steps).toBe(6);
    const c = build(50);
    c.balance.k = 0.9;
    lr.manualSeed(3);
    expect((await trainer(c, path).fit()).steps).toBe(8);
    for (const [name, x, y] of [['G', a.G, c.G], ['D', a.D, c.D]] as const)
      for (const [k, v] of x.stateDict()) expect(Array.from(y.stateDict().get(k)!.data()), `${name}.${k}`).toEqual(Array.from(v.data()));
    expect(c.balance.k).toBe(a.balance.k);
    expect(c.balance.k).toBeGreaterThan(0);
  });

  it('checkpoints name the part that is missing instead of loading half', () => {
    const dir = tmp();
    const path = join(dir, 'c.safetensors');
    const G = new Linear(2, 2);
    const D = new Linear(2, 1);
    saveCheckpoint(path, { model: G, models: { D }, optimizers: { D: new SGD(D.parameters(), { lr: 0.1, momentum: 0.9 }) }, step: 3 });
    const G2 = new Linear(2, 2);
    const before = Array.from(G2.weight.data());
    expect(() => loadCheckpoint(path, { model: G2, models: { E: new Linear(2, 1) } })).toThrow(/holds no model 'E' \(it has: D\)/);
    expect(() => loadCheckpoint(path, { model: G2, optimizers: { G: new SGD(G2.parameters(), { lr: 1 }) } })).toThrow(/holds no optimiser 'G'/);
    expect(() => loadCheckpoint(path, { model: G2, optimizer: new SGD(G2.parameters(), { lr: 1 }) })).toThrow(/holds no optimiser state/);
    expect(Array.from(G2.weight.data())).toEqual(before);
    const D2 = new Linear(2, 1);
    expect(loadCheckpoint(path, { model: G2, models: { D: D2 } }).step).toBe(3);
    expect(Array.from(D2.weight.data())).toEqual(Array.from(D.weight.data()));
    expect(() => saveCheckpoint(path, { model: G, models: { 'a.b': D }, step: 1 })).toThrow(/'models' names/);
  });

  it('readCheckpointInfo gives the step and extras from the header alone, null for anything else', () => {
    const dir = tmp();
    const path = join(dir, 'c.safetensors');
    saveCheckpoint(path, { model: new Linear(2, 2), step: 7, extra: { arch: 'vdsr', config: { layers: 4 } } });
    expect(readCheckpointInfo(path)).toEqual({ step: 7, extra: { arch: 'vdsr', config: { layers: 4 } }, optimizerBuffers: null, baseLr: null });
    // The optimiser's kind shows in its buffers; the base rate is the schedule's, not the decayed one.
    const net = new Linear(2, 2);
    const adam = new Adam(net.parameters(), { lr: 0.01 });
    const schedule = new StepLR(adam, 1, 0.5);
    lr.scope(() => lr.sum(net.forward(lr.ones([1, 2]))).backward());
    adam.step();
    schedule.step();
    saveCheckpoint(path, { model: net, optimizer: adam, scheduler: schedule, step: 1 });
    expect(readCheckpointInfo(path)).toMatchObject({ step: 1, optimizerBuffers: ['exp_avg', 'exp_avg_sq'], baseLr: 0.01 });
    const sgd = new SGD(net.parameters(), { lr: 0.2, momentum: 0.9 });
    sgd.step();
    saveCheckpoint(path, { model: net, optimizer: sgd, step: 2 });
    expect(readCheckpointInfo(path)).toMatchObject({ optimizerBuffers: ['momentum'], baseLr: 0.2 });
    // Weights without checkpoint metadata, a truncated file, text, a missing file.
    const weights = join(dir, 'w.safetensors');
    saveSafetensors(weights, new Linear(2, 2).stateDict());
    expect(readCheckpointInfo(weights)).toBeNull();
    const bytes = readFileSync(path);
    writeFileSync(join(dir, 'cut.safetensors'), bytes.subarray(0, 20));
    expect(readCheckpointInfo(join(dir, 'cut.safetensors'))).toBeNull();
    writeFileSync(join(dir, 'text.safetensors'), 'not a checkpoint at all');
    expect(readCheckpointInfo(join(dir, 'text.safetensors'))).toBeNull();
    expect(readCheckpointInfo(join(dir, 'missing.safetensors'))).toBeNull();
  });

  it('keeps a flat memory curve over a long run (no tensor or buffer left behind per step)', async () => {
    lr.manualSeed(8);
    const model = new Sequential(new Linear(6, 16), new ReLU(), new Dropout(0.1), new Linear(16, 2));
    const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
    const data = Array.from({ length: 10 }, () => ({ x: lr.randn([8, 6]), y: lr.randn([8, 2]) }));
    const run = (epochs: number) => new Trainer({ model, optimizer, data, epochs, output: sink(false), loss: (b) => mseLoss(model.forward(b.x), b.y) }).fit();
    await run(2); // optimiser state and gradients now exist
    const before = lr.memory();
    await run(10);
    const after = lr.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
  });

  it('checks its options by name', () => {
    const model = new Sequential(new Linear(1, 1));
    const base = { model, optimizer: new SGD(model.parameters(), { lr: 1 }), data: [], loss: () => lr.zeros([]) };
    expect(() => new Trainer({ ...base, epochs: -1 })).toThrow(/Trainer: 'epochs'/);
    expect(() => new Trainer({ ...base, logEvery: 0 })).toThrow(/Trainer: 'logEvery'/);
    expect(() => new Trainer({ ...base, resume: true })).toThrow(/Trainer: 'resume' needs 'checkpointPath'/);
    expect(() => new Trainer({ ...base, trainStep: () => ({ loss: 0 }) })).toThrow(/exactly one of 'loss' and 'trainStep'/);
    expect(() => new Trainer({ ...base, loss: undefined })).toThrow(/exactly one of 'loss' and 'trainStep'/);
  });
});
