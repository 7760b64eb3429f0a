// PyTorch checkpoints in both layouts (fixtures from test/fixtures/make_fixtures.py, which
// reproduces torch.save's byte streams), whole pickled models, and hostile or damaged files.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { BatchNorm2d, Conv2d, Linear, Module, PickledObject, ReLU, Sequential, loadTorchCheckpoint, loadTorchStateDict } from '../src/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lrface-pth-'));
const MARKER = '/tmp/lrface-pwned';

/** The legacy layout's three header pickles (magic number, protocol 1001, empty system info). */
const LEGACY_HEADER = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e, 0x80, 0x02, 0x7d, 0x2e]);

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const values = (t: lr.Tensor) => Array.from(t.data());

class FixtureNet extends Module {
  declare conv: Conv2d;
  declare bn: BatchNorm2d;
  declare head: Sequential;
  constructor() {
    super();
    this.registerModule('conv', new Conv2d(1, 2, 3));
    this.registerModule('bn', new BatchNorm2d(2));
    this.registerModule('head', new Sequential(new ReLU(), new Linear(2, 3, { bias: false })));
  }
  forward(x: lr.Tensor): lr.Tensor {
    return this.head.forward(lr.flatten(this.bn.forward(this.conv.forward(x)), 1));
  }
}

describe('legacy format (torch < 1.6)', () => {
  it('reads a state dict: shared storages with offsets, strided views, half/double/int64, 0-dim tensors', () => {
    const state = loadTorchStateDict(`${fixtures}legacy_state.pth`);
    // OrderedDict order kept; the state dict's _metadata attribute is not an entry.
    expect([...state.keys()]).toEqual(['fc.weight', 'fc.bias', 'proj.weight', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']);
    expect(state.get('fc.weight')!.toArray()).toEqual([[0.5, -1, 2], [3.25, 4, -5]]);
    expect(values(state.get('fc.bias')!)).toEqual([0.125, 7]);
    expect(state.get('proj.weight')!.toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(values(state.get('bn.running_mean')!)).toEqual([0.5, -0.25]);
    expect(values(state.get('bn.running_var')!)).toEqual([1.5, 2.5]);
    const tracked = state.get('bn.num_batches_tracked')!;
    expect([tracked.dtype, tracked.shape, tracked.item()]).toEqual(['int32', [], 12]);
  });

  it('loads a PyTorch state dict into our modules, 0-dim num_batches_tracked included, naming what is missing', () => {
    class M extends Module {
      constructor() {
        super();
        this.registerModule('fc', new Linear(3, 2));
        this.registerModule('proj', new Linear(2, 3, { bias: false }));
        this.registerModule('bn', new BatchNorm2d(2));
      }
      forward(x: lr.Tensor): lr.Tensor {
        return x;
      }
    }
    const state = loadTorchStateDict(`${fixtures}legacy_state.pth`);
    const m = new M();
    expect(() => m.loadStateDict(state)).toThrow(/missing keys: bn\.weight, bn\.bias/);
    expect(m.loadStateDict(state, { strict: false })).toEqual({ missingKeys: ['bn.weight', 'bn.bias'], unexpectedKeys: [] });
    const bn = m.bn as BatchNorm2d;
    expect(bn.num_batches_tracked!.item()).toBe(12);
    expect(values(bn.running_var!)).toEqual([1.5, 2.5]);
  });

  it('reaches the state of a pickled whole model through _modules/_parameters/_buffers', () => {
    const root = loadTorchCheckpoint(`${fixtures}legacy_model.pth`) as Map<string, unknown>;
    expect(root.get('epoch')).toBe(50);
    const model = root.get('model') as PickledObject;
    expect(model).toBeInstanceOf(PickledObject);
    expect(model.className).toBe('fixture_nets.Net');
    const state = loadTorchStateDict(`${fixtures}legacy_model.pth`);
    expect([...state.keys()]).toEqual(['conv.weight', 'conv.bias', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'head.1.weight']);
    // A checkpoint from before num_batches_tracked existed loads strictly, as in PyTorch.
    const net = new FixtureNet();
    expect(net.loadStateDict(state)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(values(net.conv.weight).map((v) => +v.toFixed(6))).toEqual(Array.from({ length: 18 }, (_, i) => +(i / 10).toFixed(6)));
    expect(net.head.at(1).parameters()[0].toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    // eval forward on a 3x3 input equals the hand computation through conv, bn, relu, linear
    net.eval();
    const x = lr.tensor(Float32Array.from({ length: 9 }, (_, i) => i - 4), [1, 1, 3, 3]);
    const conv = [0, 1].map((c) => (c === 0 ? 0.25 : -0.5) + Array.from({ length: 9 }, (_, k) => ((c * 9 + k) / 10) * (k - 4)).reduce((a, b) => a + b, 0));
    const bn = conv.map((v, c) => ([1.5, 0.75][c] * (v - [0.2, -0.3][c])) / Math.sqrt([0.9, 1.1][c] + 1e-5) + [0.1, -0.1][c]).map((v) => Math.max(v, 0));
    const expected = [[1, 2], [3, 4], [5, 6]].map(([a, b]) => a * bn[0] + b * bn[1]);
    const out = values(lr.reshape(net.forward(x), [3]));
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 4));
  });
});

describe('zip format (torch >= 1.6)', () => {
  it('reads a deflated archive holding a whole model and its extras', () => {
    const root = loadTorchCheckpoint(`${fixtures}zip_model.pth`) as Map<string, unknown>;
    expect(root.get('epoch')).toBe(7);
    const state = loadTorchStateDict(`${fixtures}zip_model.pth`, { key: 'model' });
    expect(state.get('bn.num_batches_tracked')!.item()).toBe(40);
    const net = new FixtureNet();
    net.loadStateDict(state);
    expect(net.bn.num_batches_tracked!.item()).toBe(40);
    expect(values(net.bn.weight!)).toEqual([1.5, 0.75]);
  });

  it('maps names with a hook and reports shape mismatches by key', () => {
    const state = loadTorchStateDict(`${fixtures}zip_model.pth`);
    const prefixed = new Map([...state].map(([k, v]) => [`module.${k}`, v]));
    const net = new FixtureNet();
    expect(() => net.loadStateDict(prefixed)).toThrow(/missing keys: conv\.weight.*unexpected keys: module\.conv\.weight/);
    net.loadStateDict(prefixed, { mapKey: (k) => k.replace(/^module\./, '') });
    // dropping keys through the hook: they become missing
    expect(() => net.loadStateDict(state, { mapKey: (k) => (k.startsWith('bn.') ? null : k) })).toThrow(/missing keys: bn\.weight, bn\.bias, bn\.running_mean, bn\.running_var/);
    class Wider extends FixtureNet {
      constructor() {
        super();
        this.registerModule('conv', new Conv2d(1, 2, 5));
      }
    }
    expect(() => new Wider().loadStateDict(state)).toThrow(/conv\.weight: expected \[2,1,5,5\], got \[2,1,3,3\]/);
  });
});

describe('hostile pickles are refused, never run', () => {
  const refuse = (path: string, pattern: RegExp) => {
    rmSync(MARKER, { force: true });
    let error: unknown;
    try {
      loadTorchCheckpoint(path);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).toContain(path);
    expect(existsSync(MARKER)).toBe(false);
  };

  it('GLOBAL os.system + REDUCE, in the legacy layout and inside a zip archive', () => {
    refuse(file('legacy-evil.pth', Buffer.concat([LEGACY_HEADER, readFileSync(`${fixtures}hostile.pkl`)])), /refusing to call (posix|os)\.system/);
    refuse(`${fixtures}hostile_zip.pth`, /refusing to call os\.system/);
  });

  it('other callables, opcodes that build objects by calling them, and REDUCE of non-globals', () => {
    const p0 = (body: string) => Buffer.concat([LEGACY_HEADER, Buffer.from(body, 'latin1')]);
    refuse(file('eval.pth', p0(`cbuiltins\neval\n(S'__import__("os").system("touch ${MARKER}")'\ntR.`)), /refusing to call builtins\.eval/);
    // protocol 4 STACK_GLOBAL of subprocess.Popen
    const stackGlobal = Buffer.concat([Buffer.from([0x80, 0x04, 0x8c, 10]), Buffer.from('subprocess'), Buffer.from([0x8c, 5]), Buffer.from('Popen'), Buffer.from([0x93, 0x8c, 5]), Buffer.from('touch'), Buffer.from([0x85, 0x52, 0x2e])]);
    refuse(file('popen.pth', Buffer.concat([LEGACY_HEADER, stackGlobal])), /refusing to call subprocess\.Popen/);
    refuse(file('inst.pth', p0(`(S'touch ${MARKER}'\nios\nsystem\n.`)), /unsupported opcode 0x69/);
    refuse(file('obj.pth', p0(`(cos\nsystem\nS'touch ${MARKER}'\no.`)), /unsupported opcode 0x6f/);
    refuse(file('ext.pth', p0('\x82\x01.')), /unsupported opcode 0x82/);
    refuse(file('long4.pth', Buffer.concat([LEGACY_HEADER, Buffer.from([0x80, 0x02, 0x8b, 0x00, 0x00, 0x00, 0x10])])), /LONG4 of 268435456 bytes/);
    refuse(file('notglobal.pth', p0(`S'os.system'\n(S'x'\ntR.`)), /REDUCE of something that is not a named global/);
    // a tensor-subclass rebuild wrapping a forbidden function is refused too
    refuse(file('fromtype.pth', p0(`ctorch._tensor\n_rebuild_from_type_v2\n(cos\nsystem\nN(S'x'\ntNtR.`)), /refusing to call os\.system/);
  });
});

describe('damaged or foreign files give errors naming the file and the problem', () => {
  const cases: [string, () => string, RegExp][] = [
    ['empty file', () => file('empty.pth', ''), /bad pickle at byte 0: truncated/],
    ['text file', () => file('text.pth', 'hello world\n'), /bad pickle at byte \d+/],
    ['wrong magic number', () => file('magic.pth', Buffer.concat([Buffer.from([0x80, 0x02, 0x4b, 0x07, 0x2e]), LEGACY_HEADER.subarray(15)])), /not a PyTorch checkpoint/],
    ['legacy cut inside the object pickle', () => { const b = readFileSync(`${fixtures}legacy_state.pth`); return file('cut1.pth', b.subarray(0, 300)); }, /bad pickle at byte \d+: truncated/],
    ['legacy cut inside the storage data', () => { const b = readFileSync(`${fixtures}legacy_state.pth`); return file('cut2.pth', b.subarray(0, b.length - 5)); }, /storage '4' is truncated/],
    ['legacy cut before a storage', () => { const b = readFileSync(`${fixtures}legacy_state.pth`); return file('cut3.pth', b.subarray(0, b.length - 12)); }, /truncated before storage '4'/],
    ['legacy storage size disagreeing with the pickle', () => { const b = Buffer.from(readFileSync(`${fixtures}legacy_state.pth`)); b.writeBigInt64LE(3n, b.length - 16); return file('numel.pth', b); }, /storage '4' records 3 elements, the pickle expects 1/],
    ['zip without its end record', () => { const b = readFileSync(`${fixtures}zip_model.pth`); return file('cutzip.pth', b.subarray(0, b.length - 30)); }, /zip end record not found/],
    ['zip with a damaged central directory', () => { const b = Buffer.from(readFileSync(`${fixtures}zip_model.pth`)); const cd = b.readUInt32LE(b.length - 22 + 16); b.writeUInt32LE(0xdeadbeef, cd); return file('cd.pth', b); }, /corrupt zip central directory/],
    ['unsupported storage dtype', () => `${fixtures}complex_storage.pth`, /unsupported storage type 'ComplexFloatStorage'/],
    ['a tensor larger than its storage', () => `${fixtures}overreach.pth`, /tensor 'w' reaches past its storage/],
  ];
  for (const [name, make, pattern] of cases)
    it(name, () => {
      const path = make();
      let error: unknown;
      try {
        loadTorchCheckpoint(path);
      } catch (err) {
        error = err;
      }
      expect(error, name).toBeInstanceOf(RangeError);
      expect((error as Error).message).toMatch(pattern);
      expect((error as Error).message).toContain(path);
    });

  it('a missing file is an Error naming the path; a file without a state dict says what it holds', () => {
    expect(() => loadTorchCheckpoint(join(dir, 'nope.pth'))).toThrow(/cannot read '.*nope\.pth'/);
    expect(() => loadTorchStateDict(`${fixtures}overreach.pth`)).toThrow(RangeError);
    const plain = file('plain.pth', Buffer.concat([LEGACY_HEADER, Buffer.from("}(S'lr'\nF0.5\nu.]."), Buffer.alloc(0)]));
    expect(() => loadTorchStateDict(plain)).toThrow(/no state dict found in '.*plain\.pth' \(keys: lr\)/);
  });
});
