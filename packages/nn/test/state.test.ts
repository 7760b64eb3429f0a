// Module state semantics PyTorch users rely on, and spectral normalisation's persistent u.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { BatchNorm2d, Conv2d, ConvTranspose2d, Linear, Module, ModuleDict, ModuleList, ReLU, Sequential, loadSafetensors, saveCheckpoint, saveSafetensors, spectralNorm, writeFileAtomic } from '../src/index.js';

const arr = (t: lr.Tensor) => Array.from(t.data());

class Block extends Module {
  declare scale: lr.Tensor;
  declare count: lr.Tensor;
  declare cache: lr.Tensor;
  declare bn: BatchNorm2d;
  declare fc: Linear;
  declare tied: Linear;
  constructor() {
    super();
    this.registerModule('bn', new BatchNorm2d(2));
    this.registerParameter('scale', lr.ones([2]));
    this.registerBuffer('count', lr.zeros([1]));
    this.registerBuffer('cache', lr.zeros([3]), { persistent: false });
    this.registerModule('fc', new Linear(2, 2));
    this.registerModule('tied', new Linear(2, 2));
    this.tied.weight = this.fc.weight; // weight tying, as in PyTorch: the same tensor under two names
  }
  forward(x: lr.Tensor): lr.Tensor {
    return x;
  }
}

describe('Module state', () => {
  it("orders the state dict as PyTorch (own parameters, own buffers, then children), skipping non-persistent buffers", () => {
    const b = new Block();
    expect([...b.stateDict().keys()]).toEqual([
      'scale', 'count',
      'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked',
      'fc.weight', 'fc.bias', 'tied.weight', 'tied.bias',
    ]);
    expect([...b.namedBuffers()].map(([k]) => k)).toContain('cache');
  });

  it('lists a shared parameter once for optimisers but under every name in the state dict', () => {
    const b = new Block();
    expect([...b.namedParameters()].map(([k]) => k)).toEqual(['scale', 'bn.weight', 'bn.bias', 'fc.weight', 'fc.bias', 'tied.bias']);
    expect(b.numParameters()).toBe(2 + 2 + 2 + 4 + 2 + 2);
    expect(b.stateDict().get('tied.weight')).toBe(b.stateDict().get('fc.weight'));
  });

  it('a failed load changes nothing; plain objects load too', () => {
    const a = new Linear(3, 2);
    const before = arr(a.weight);
    expect(() => a.loadStateDict({ weight: lr.ones([2, 3]), bias: lr.ones([3]) })).toThrow(/bias: expected \[2\], got \[3\]/);
    expect(arr(a.weight)).toEqual(before);
    a.loadStateDict({ weight: lr.ones([2, 3]), bias: lr.tensor([1, 2]) });
    expect(arr(a.weight)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('freeze() stops gradients; to() accepts the cpu device and names the argument of a bad one', () => {
    const m = new Sequential(new Linear(2, 2), new Linear(2, 1));
    (m.at(0) as Module).freeze();
    lr.sum(m.forward(lr.ones([1, 2]))).backward();
    expect((m.at(0) as Linear).weight.grad).toBeNull();
    expect((m.at(1) as Linear).weight.grad).not.toBeNull();
    expect(m.numParameters({ trainable: true })).toBe(3);
    expect(m.to('cpu')).toBe(m);
    expect(() => m.to('gpu' as never)).toThrow(/to: 'device' must be 'cpu', 'cuda' or 'cuda:<index>'/);
  });

  it('safetensors round trip of a whole model keeps every value bit for bit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-state-'));
    lr.manualSeed(9);
    const a = new Sequential(new Conv2d(3, 4, 3), new BatchNorm2d(4));
    a.forward(lr.randn([2, 3, 5, 5])); // moves the running statistics and the counter
    saveSafetensors(join(dir, 'm.safetensors'), a.stateDict());
    const b = new Sequential(new Conv2d(3, 4, 3), new BatchNorm2d(4));
    b.loadStateDict(loadSafetensors(join(dir, 'm.safetensors')));
    for (const [k, v] of a.stateDict()) expect(arr(b.stateDict().get(k)!), k).toEqual(arr(v));
    expect((b.at(1) as BatchNorm2d).num_batches_tracked!.dtype).toBe('int32');
  });
});

describe('ModuleList and ModuleDict', () => {
  it('register their members by index or name, for a forward written by the owner', () => {
    class UNetish extends Module {
      declare down: ModuleList;
      declare heads: ModuleDict;
      constructor() {
        super();
        this.registerModule('down', new ModuleList([new Linear(2, 3), new ReLU()]));
        this.down.append(new Linear(3, 2));
        this.registerModule('heads', new ModuleDict({ a: new Linear(2, 1), b: new Linear(2, 4) }));
      }
      forward(x: lr.Tensor): lr.Tensor {
        let h = x;
        for (const m of this.down) h = m.forward(h) as lr.Tensor;
        return this.heads.get('b').forward(h) as lr.Tensor;
      }
    }
    const m = new UNetish();
    expect([...m.stateDict().keys()]).toEqual(['down.0.weight', 'down.0.bias', 'down.2.weight', 'down.2.bias', 'heads.a.weight', 'heads.a.bias', 'heads.b.weight', 'heads.b.bias']);
    expect(m.forward(lr.ones([1, 2])).shape).toEqual([1, 4]);
    expect(m.down.length).toBe(3);
    expect(m.down.at(-1)).toBe(m.down.at(2));
    expect(m.heads.keys()).toEqual(['a', 'b']);
    expect(() => m.down.at(3)).toThrow(/ModuleList\.at: 'index'/);
    expect(() => m.heads.get('c')).toThrow(/no module 'c' \(has: a, b\)/);
    expect(() => m.heads.set('x.y', new ReLU())).toThrow(/ModuleDict: 'name'/);
    expect(() => m.down.forward()).toThrow(/has no forward/);
  });
});

describe('atomic writes', () => {
  it('replace the file whole and leave no temp files, also when the write fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-atomic-'));
    const path = join(dir, 'f.bin');
    writeFileAtomic(path, 'first');
    writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(path))).toEqual([1, 2, 3]);
    // the target is a folder: the rename fails, the temp file is removed
    const folder = join(dir, 'sub');
    mkdirSync(folder);
    writeFileSync(join(folder, 'keep'), 'x');
    expect(() => writeFileAtomic(folder, 'data')).toThrow(`writeFileAtomic: cannot write '${folder}': it is a folder`);
    expect(readdirSync(dir).sort()).toEqual(['f.bin', 'sub']);
    const inMissing = join(dir, 'missing', 'f.bin');
    expect(() => writeFileAtomic(inMissing, 'data')).toThrow(expect.objectContaining({ code: 'ENOENT', message: `writeFileAtomic: cannot write '${inMissing}': its folder '${join(dir, 'missing')}' does not exist` }));
    // The savers name themselves.
    const t = lr.tensor([1, 2]);
    expect(() => saveSafetensors(inMissing, { t })).toThrow(`saveSafetensors: cannot write '${inMissing}': its folder '${join(dir, 'missing')}' does not exist`);
    t.dispose();
    expect(() => saveCheckpoint(folder, { model: new Linear(2, 2), step: 0 })).toThrow(expect.objectContaining({ code: 'EISDIR', message: `saveCheckpoint: cannot write '${folder}': it is a folder` }));
    expect(readdirSync(dir).sort()).toEqual(['f.bin', 'sub']);
  });
});

describe('spectral normalisation (Miyato et al.; torch.nn.utils.spectral_norm)', () => {
  /** sigma = u^T W v for the stored u, v; W as [height, width]. */
  const sigmaOf = (w: number[], u: number[], v: number[]) => u.reduce((s, ui, r) => s + ui * v.reduce((t, vj, c) => t + w[r * v.length + c] * vj, 0), 0);
  const normalize = (x: number[]) => {
    const n = Math.hypot(...x);
    return x.map((v) => v / Math.max(n, 1e-12));
  };

  it('one training forward does v = normalize(W^T u), u = normalize(W v) and divides W by u^T W v', () => {
    lr.manualSeed(13);
    const lin = spectralNorm(new Linear(5, 3));
    const w = arr(lin.weight_orig);
    const u0 = arr(lin.weight_u);
    const v = normalize([0, 1, 2, 3, 4].map((c) => [0, 1, 2].reduce((s, r) => s + w[r * 5 + c] * u0[r], 0)));
    const u = normalize([0, 1, 2].map((r) => v.reduce((s, vc, c) => s + w[r * 5 + c] * vc, 0)));
    const x = lr.tensor([[1, -1, 0.5, 2, 0]]);
    const y = arr(lin.forward(x));
    expect(arr(lin.weight_v).map((t) => +t.toFixed(5))).toEqual(v.map((t) => +t.toFixed(5)));
    expect(arr(lin.weight_u).map((t) => +t.toFixed(5))).toEqual(u.map((t) => +t.toFixed(5)));
    const sigma = sigmaOf(w, u, v);
    const b = arr(lin.bias!);
    const ref = [0, 1, 2].map((r) => b[r] + [1, -1, 0.5, 2, 0].reduce((s, xi, c) => s + (w[r * 5 + c] / sigma) * xi, 0));
    y.forEach((t, i) => expect(t).toBeCloseTo(ref[i], 5));
  });

  it('eval leaves u and v alone; u and v travel in the state dict, so a copy computes the same weight', () => {
    lr.manualSeed(14);
    const a = spectralNorm(new Conv2d(2, 3, 3, { padding: 1 }));
    const x = lr.randn([1, 2, 4, 4]);
    for (let i = 0; i < 3; i++) a.forward(x);
    a.eval();
    const u = arr(a.weight_u);
    const ya = arr(a.forward(x));
    expect(arr(a.weight_u)).toEqual(u);
    expect([...a.stateDict().keys()]).toEqual(['bias', 'weight_orig', 'weight_u', 'weight_v']);
    lr.manualSeed(99);
    const b = spectralNorm(new Conv2d(2, 3, 3, { padding: 1 }));
    b.loadStateDict(a.stateDict());
    b.eval();
    expect(arr(b.forward(x))).toEqual(ya);
  });

  it('transposed convolutions normalise over their output axis (dim 1) by default', () => {
    lr.manualSeed(15);
    const up = spectralNorm(new ConvTranspose2d(4, 2, 3));
    expect(up.weight_u.shape).toEqual([2]);
    expect(up.weight_v.shape).toEqual([4 * 9]);
    expect(spectralNorm(new ConvTranspose2d(4, 2, 3), { dim: 0 }).weight_u.shape).toEqual([4]);
    expect(() => spectralNorm(new Linear(2, 2), { dim: 2 })).toThrow(/spectralNorm: 'dim'/);
    expect(() => spectralNorm(spectralNorm(new Linear(2, 2)))).toThrow(/spectralNorm: 'module' has no parameter 'weight'/);
  });

  it('the gradient reaches weight_orig through both W and sigma (float64 finite differences, u and v fixed)', () => {
    lr.manualSeed(16);
    const lin = spectralNorm(new Linear(3, 2));
    lin.eval();
    const xv = [0.3, -1, 2];
    const rv = [1.5, -0.5];
    lr.sum(lr.mul(lin.forward(lr.tensor([xv])), lr.tensor([rv]))).backward();
    const g = arr(lin.weight_orig.grad!);
    const w = arr(lin.weight_orig), u = arr(lin.weight_u), v = arr(lin.weight_v), b = arr(lin.bias!);
    // L(W) = sum_r r_r (sum_c W_rc x_c / (u^T W v) + b_r)
    const loss = (p: number[]) => {
      const sigma = sigmaOf(p, u, v);
      return rv.reduce((s, rr, r) => s + rr * (xv.reduce((t, xc, c) => t + (p[r * 3 + c] * xc) / sigma, 0) + b[r]), 0);
    };
    const h = 1e-6;
    for (let i = 0; i < 6; i++) {
      const plus = [...w], minus = [...w];
      plus[i] += h;
      minus[i] -= h;
      const fd = (loss(plus) - loss(minus)) / (2 * h);
      expect(Math.abs(g[i] - fd), `element ${i}: ${g[i]} vs ${fd}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(fd)));
    }
  });
});
