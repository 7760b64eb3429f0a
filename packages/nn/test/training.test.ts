import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import {
  Adam, AdamW, BeganBalance, CenterLoss, Conv2d, CosineAnnealingLR, Linear, Module, MultiStepLR, ReLU, SGD, Sequential, StepLR, Trainer, WarmupLR,
  charbonnierLoss, clipGradNorm, clipGradValue, crossEntropy, heatmapMseLoss, hingeDiscriminatorLoss, hingeGeneratorLoss, l1Loss,
  loadCheckpoint, lsganDiscriminatorLoss, lsganGeneratorLoss, mseLoss, saveCheckpoint,
} from '../src/index.js';

const close = (a: number, b: number, tol = 1e-5) => expect(Math.abs(a - b)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b)));

describe('losses (hand-computed values)', () => {
  const p = lr.tensor([1, 2, 3, 4]);
  const t = lr.tensor([1.5, 2, 2, 6]);
  it('regression losses', () => {
    close(mseLoss(p, t).item(), (0.25 + 0 + 1 + 4) / 4);
    close(mseLoss(p, t, 'sum').item(), 5.25);
    close(l1Loss(p, t).item(), (0.5 + 0 + 1 + 2) / 4);
    close(charbonnierLoss(p, t, { eps: 0.1 }).item(), [0.5, 0, 1, 2].reduce((s, d) => s + Math.sqrt(d * d + 0.01), 0) / 4);
    expect(() => mseLoss(p, lr.zeros([3]))).toThrow(/'target'/);
  });
  it('cross-entropy on logits with class indices, with label smoothing', () => {
    const logits = lr.tensor([[2, 1, 0], [0, 0, 3]]);
    const y = lr.tensor(new Int32Array([0, 1]));
    const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
    const ref = ((lse([2, 1, 0]) - 2) + (lse([0, 0, 3]) - 0)) / 2;
    close(crossEntropy(logits, y).item(), ref);
    const smooth = crossEntropy(logits, y, { labelSmoothing: 0.3 }).item();
    const ls = (row: number[], c: number) => row.reduce((s, v, k) => s - (k === c ? 0.8 : 0.1) * (v - lse(row)), 0);
    close(smooth, (ls([2, 1, 0], 0) + ls([0, 0, 3], 1)) / 2);
    expect(() => crossEntropy(logits, lr.tensor([0, 1]))).toThrow(TypeError);
    expect(() => crossEntropy(logits, lr.tensor(new Int32Array([0, 3])))).toThrow(/\[0, 3\)/);
    const g = lr.tensor([[2, 1, 0], [0, 0, 3]]).requiresGrad_();
    crossEntropy(g, y).backward();
    const soft = [[2, 1, 0], [0, 0, 3]].map((r) => r.map((v) => Math.exp(v - lse(r))));
    const grad = g.grad!.data();
    close(grad[0], (soft[0][0] - 1) / 2);
    close(grad[4], (soft[1][1] - 1) / 2);
  });
  it('GAN losses', () => {
    const real = lr.tensor([0.5, 2]);
    const fake = lr.tensor([-0.5, 0.3]);
    close(hingeDiscriminatorLoss(real, fake).item(), (0.5 + 0) / 2 + (0.5 + 1.3) / 2);
    close(hingeGeneratorLoss(fake).item(), -(-0.5 + 0.3) / 2);
    close(lsganDiscriminatorLoss(real, fake).item(), 0.5 * ((0.25 + 1) / 2) + 0.5 * ((0.25 + 0.09) / 2));
    close(lsganGeneratorLoss(fake).item(), 0.5 * ((2.25 + 0.49) / 2));
    const began = new BeganBalance(0.5, 0.01);
    close(began.discriminatorLoss(lr.tensor(0.2), lr.tensor(0.3)).item(), 0.2);
    const m = began.update(0.2, 0.05);
    close(began.k, 0.01 * (0.5 * 0.2 - 0.05));
    close(m, 0.2 + Math.abs(0.1 - 0.05));
    close(heatmapMseLoss(lr.ones([1, 2, 2, 2]), lr.zeros([1, 2, 2, 2]), lr.tensor([[1, 0]])).item(), 0.5);
  });
  it('center loss and Wen et al.\'s center update', () => {
    const cl = new CenterLoss(2, 2, 0.5);
    const f = lr.tensor([[1, 0], [3, 0], [0, 2]]);
    const y = lr.tensor(new Int32Array([0, 0, 1]));
    close(cl.forward(f, y).item(), 0.5 * ((1 + 9 + 4) / 3));
    cl.updateCenters(f, y);
    // class 0: delta = (2*0 - (1+3)) / (1+2) = -4/3 -> c0 = 0 + 0.5*4/3; class 1: delta = -2/2 -> c1 = 0.5*1
    const c = cl.centers.data();
    close(c[0], 2 / 3);
    close(c[3], 0.5);
  });
});

describe('optimisers (PyTorch update rules)', () => {
  const step = (opt: { step(): void; zeroGrad(): void }, p: lr.Tensor, g: number[]) => {
    p.grad = lr.tensor(g);
    opt.step();
    opt.zeroGrad();
  };
  it('SGD with momentum, Nesterov and weight decay', () => {
    const p = lr.tensor([1, -1]).requiresGrad_();
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    step(opt, p, [0.5, 0.5]);
    // d = g + wd p = [0.51, 0.49]; buf = d; p -= 0.1 d
    close(p.data()[0], 1 - 0.051);
    step(opt, p, [0.5, 0.5]);
    const d2 = 0.5 + 0.01 * (1 - 0.051);
    close(p.data()[0], 1 - 0.051 - 0.1 * (0.9 * 0.51 + d2));
    const q = lr.tensor([1]).requiresGrad_();
    const nes = new SGD([q], { lr: 0.1, momentum: 0.9, nesterov: true });
    step(nes, q, [1]);
    close(q.item(), 1 - 0.1 * (1 + 0.9 * 1));
    expect(() => new SGD([q], { lr: 0.1, nesterov: true })).toThrow(RangeError);
  });
  it('Adam and AdamW', () => {
    const p = lr.tensor([1]).requiresGrad_();
    const adam = new Adam([p], { lr: 0.1 });
    step(adam, p, [2]);
    close(p.item(), 1 - 0.1 * 1, 1e-4); // first step moves by lr * sign
    step(adam, p, [1]);
    const m = 0.9 * 0.2 + 0.1 * 1, v = 0.999 * 0.004 + 0.001 * 1;
    close(p.item(), 0.9 - 0.1 * (m / (1 - 0.81)) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8), 1e-4);
    const q = lr.tensor([1]).requiresGrad_();
    const adamw = new AdamW([q], { lr: 0.1, weightDecay: 0.1 });
    step(adamw, q, [2]);
    close(q.item(), 1 * (1 - 0.01) - 0.1, 1e-4);
  });
  it('gradient clipping by norm and by value', () => {
    const a = lr.tensor([0]).requiresGrad_();
    const b = lr.tensor([0, 0]).requiresGrad_();
    a.grad = lr.tensor([3]);
    b.grad = lr.tensor([0, 4]);
    close(clipGradNorm([a, b], 1), 5);
    close(a.grad.item(), 3 / 5, 1e-4);
    clipGradValue([b], 0.5);
    close(b.grad.data()[1], 0.5);
  });
  it('schedules: step, multi-step, cosine, warm-up', () => {
    const p = lr.tensor([1]).requiresGrad_();
    const lrs = (s: { step(): void; currentLrs(): number[] }, n: number) => Array.from({ length: n }, () => { const v = s.currentLrs()[0]; s.step(); return v; });
    expect(lrs(new StepLR(new SGD([p], { lr: 1 }), 2, 0.5), 5)).toEqual([1, 1, 0.5, 0.5, 0.25]);
    const ms = lrs(new MultiStepLR(new SGD([p], { lr: 1 }), [80, 160], 0.5), 161);
    expect([ms[79], ms[80], ms[159], ms[160]]).toEqual([1, 0.5, 0.5, 0.25]);
    const cos = lrs(new CosineAnnealingLR(new SGD([p], { lr: 1 }), 10, 0.1), 11);
    close(cos[5], 0.1 + 0.9 * 0.5);
    close(cos[10], 0.1);
    const warm = lrs(new WarmupLR(new SGD([p], { lr: 1 }), 4, 0.2), 6);
    expect(warm.map((v) => +v.toFixed(3))).toEqual([0.2, 0.4, 0.6, 0.8, 1, 1]);
  });
});

class Net extends Module {
  declare body: Sequential;
  constructor() {
    super();
    this.registerModule('body', new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new ReLU(), new Conv2d(4, 1, 3, { padding: 1 })));
  }
  forward(x: lr.Tensor): lr.Tensor {
    return this.body.forward(x);
  }
}

function batches(n: number, seed: number) {
  lr.manualSeed(seed);
  return Array.from({ length: n }, () => {
    const x = lr.keep(lr.randn([2, 1, 6, 6]));
    return { x, y: lr.keep(lr.mul(x, 0.5)) };
  });
}

describe('checkpoints', () => {
  it('a resumed run matches the uninterrupted one bit for bit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-ckpt-'));
    const data = batches(8, 11);
    const run = (model: Net, opt: Adam, sched: StepLR, from: number, to: number) => {
      for (let s = from; s < to; s++) {
        opt.zeroGrad();
        lr.scope(() => {
          // dropout draws from the global generator: the RNG state must be restored too
          const out = lr.dropout(model.forward(data[s].x), { p: 0.1 });
          mseLoss(out, data[s].y).backward();
        });
        opt.step();
        sched.step();
      }
    };
    lr.manualSeed(1);
    const a = new Net();
    const optA = new Adam(a.parameters(), { lr: 0.01 });
    const schA = new StepLR(optA, 3, 0.5);
    const init = new Map([...a.stateDict()].map(([k, v]) => [k, lr.keep(lr.clone(v))]));
    lr.manualSeed(99);
    run(a, optA, schA, 0, 8);

    const b = new Net();
    b.loadStateDict(init);
    const optB = new Adam(b.parameters(), { lr: 0.01 });
    const schB = new StepLR(optB, 3, 0.5);
    lr.manualSeed(99);
    run(b, optB, schB, 0, 4);
    const path = join(dir, 'ckpt.safetensors');
    saveCheckpoint(path, { model: b, optimizer: optB, scheduler: schB, step: 4, extra: { epoch: 0 } });
    lr.manualSeed(12345); // disturb the generator; the checkpoint must restore it

    const c = new Net();
    const optC = new Adam(c.parameters(), { lr: 0.5 });
    const schC = new StepLR(optC, 3, 0.5);
    const { step, extra } = loadCheckpoint(path, { model: c, optimizer: optC, scheduler: schC });
    expect(step).toBe(4);
    expect(extra).toEqual({ epoch: 0 });
    run(c, optC, schC, 4, 8);
    for (const [k, v] of a.stateDict()) expect(Array.from(c.stateDict().get(k)!.data()), k).toEqual(Array.from(v.data()));
  });

  it('writes atomically and rejects damaged files by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-ckpt-'));
    const path = join(dir, 'c.safetensors');
    const m = new Net();
    saveCheckpoint(path, { model: m, step: 1 });
    const good = readFileSync(path);
    writeFileSync(path, good.subarray(0, good.length - 10));
    expect(() => loadCheckpoint(path, { model: new Net() })).toThrow(new RegExp(`${path.replace(/[.]/g, '\\.')}.*truncated`));
    saveCheckpoint(path, { model: m, step: 2 });
    expect(loadCheckpoint(path, { model: new Net() }).step).toBe(2);
    expect(() => loadCheckpoint(join(dir, 'missing'), { model: m })).toThrow(/cannot read/);
  });
});

describe('Trainer', () => {
  it('trains (loss falls), logs JSONL, validates and checkpoints', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-train-'));
    lr.manualSeed(5);
    const model = new Sequential(new Linear(4, 16), new ReLU(), new Linear(16, 1));
    const w = lr.tensor([[1, -2, 0.5, 3]]);
    const data = Array.from({ length: 20 }, () => {
      const x = lr.keep(lr.randn([8, 4]));
      return { x, y: lr.keep(lr.matmul(x, lr.transpose(w))) };
    });
    const lines: string[] = [];
    const output = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const opt = new Adam(model.parameters(), { lr: 0.01 });
    const losses: number[] = [];
    const trainer = new Trainer({
      model, optimizer: opt, data, epochs: 5, logEvery: 10, batchSize: 8, output,
      loss: (b) => { const l = mseLoss(model.forward(b.x), b.y); losses.push(l.item()); return l; },
      validate: () => ({ mse: lr.noGrad(() => lr.scope(() => mseLoss(model.forward(data[0].x), data[0].y).item())) }),
      validateEvery: 50, metricsPath: join(dir, 'metrics.jsonl'), checkpointPath: join(dir, 'last.safetensors'),
    });
    const result = await trainer.fit();
    expect(result.steps).toBe(100);
    expect(losses[losses.length - 1]).toBeLessThan(0.2 * losses[0]);
    const records = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => 'loss' in r).length).toBe(10);
    expect(records.some((r) => r.validation)).toBe(true);
    expect(lines.some((l) => /step 10 loss .* samples\/s/.test(l))).toBe(true);
    expect(loadCheckpoint(join(dir, 'last.safetensors'), { model }).step).toBe(100);
  });

  it('saves a checkpoint and stops cleanly on Ctrl-C (SIGINT)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-sigint-'));
    const model = new Sequential(new Linear(2, 1));
    const lines: string[] = [];
    const trainer = new Trainer({
      model, optimizer: new SGD(model.parameters(), { lr: 0.1 }), data: [1, 2, 3, 4, 5, 6], checkpointPath: join(dir, 'ckpt.safetensors'),
      output: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }),
      loss: (b) => {
        if (b === 3) process.kill(process.pid, 'SIGINT');
        return lr.sum(model.forward(lr.ones([1, 2])));
      },
    });
    const result = await trainer.fit();
    expect(result.steps).toBe(3);
    expect(lines.join('')).toMatch(/interrupted at step 3; checkpoint saved/);
    expect(loadCheckpoint(join(dir, 'ckpt.safetensors'), { model }).step).toBe(3);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('stops on a non-finite loss, naming the step', async () => {
    const model = new Sequential(new Linear(2, 1));
    const trainer = new Trainer({
      model, optimizer: new SGD(model.parameters(), { lr: 0.1 }), data: [1, 2, 3], output: new Writable({ write(_c, _e, cb) { cb(); } }),
      loss: (b) => (b === 2 ? lr.mul(lr.sum(model.forward(lr.ones([1, 2]))), Number.NaN) : lr.sum(model.forward(lr.ones([1, 2])))),
    });
    await expect(trainer.fit()).rejects.toThrow(/NaN at step 2/);
  });
});
