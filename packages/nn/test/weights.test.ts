import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as lr from '@lrface/cuda-core';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, loadTorchCheckpoint, loadTorchStateDict, saveSafetensors } from '../src/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

describe('safetensors', () => {
  it('round-trips float32, int32 and uint8 tensors with metadata', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-st-'));
    const path = join(dir, 'w.safetensors');
    const a = lr.tensor([[1.5, -2], [3, 4]]);
    const b = lr.tensor(new Int32Array([7, -8, 9]));
    const c = lr.tensor(new Uint8Array([0, 255]));
    saveSafetensors(path, { a, b, c }, { note: 'x' });
    const back = loadSafetensors(path);
    expect(back.get('a')!.toArray()).toEqual([[1.5, -2], [3, 4]]);
    expect(back.get('b')!.dtype).toBe('int32');
    expect(Array.from(back.get('c')!.data())).toEqual([0, 255]);
    const raw = readFileSync(path);
    const headerLen = Number(raw.readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
    expect(JSON.parse(raw.toString('utf8', 8, 8 + headerLen)).a).toEqual({ dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] });
    expect(decodeSafetensors(raw).metadata).toEqual({ note: 'x' });
  });
  it('reads f16, bf16, f64 and i64 as float32 / int32', () => {
    const header = JSON.stringify({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] }, d: { dtype: 'F64', shape: [1], data_offsets: [6, 14] }, l: { dtype: 'I64', shape: [1], data_offsets: [14, 22] } });
    const data = Buffer.alloc(22);
    data.writeUInt16LE(0x3c00, 0); // 1.0
    data.writeUInt16LE(0xc000, 2); // -2.0
    data.writeUInt16LE(0x3fc0, 4); // bf16 1.5
    data.writeDoubleLE(0.25, 6);
    data.writeBigInt64LE(-5n, 14);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const { tensors } = decodeSafetensors(Buffer.concat([len, Buffer.from(header), data]));
    expect(Array.from(tensors.get('h')!.data())).toEqual([1, -2]);
    expect(tensors.get('b')!.item()).toBe(1.5);
    expect(tensors.get('d')!.item()).toBe(0.25);
    expect(tensors.get('l')!.dtype).toBe('int32');
    expect(tensors.get('l')!.item()).toBe(-5);
  });
  it('names the file and the problem for damaged files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-st-'));
    const good = encodeSafetensors({ w: lr.tensor([1, 2, 3]) });
    const cases: [string, Buffer, RegExp][] = [
      ['short', good.subarray(0, 5), /shorter than the 8-byte header/],
      ['truncated', good.subarray(0, good.length - 4), /outside the 12 data bytes|outside the 8 data bytes|truncated/],
      ['badjson', Buffer.concat([good.subarray(0, 8), Buffer.from('{not json'.padEnd(Number(good.readBigUInt64LE(0)), ' '))]), /not JSON/],
      ['hugeheader', (() => { const b = Buffer.from(good); b.writeBigUInt64LE(1n << 40n); return b; })(), /exceeds the file/],
      ['baddtype', Buffer.from(good.toString('latin1').replace('"F32"', '"X32"'), 'latin1'), /unsupported dtype 'X32'/],
      // a dtype whose element size does not fit the recorded byte range
      ['wrongdtype', Buffer.from(good.toString('latin1').replace('"F32"', '"F64"'), 'latin1'), /tensor 'w': 12 bytes do not hold 3 values of F64/],
      ['badshape', Buffer.from(good.toString('latin1').replace('[3]', '[-3]'), 'latin1'), /entry 'w' has a bad shape/],
      ['badmeta', encodeSafetensors({ w: lr.tensor([1]) }, { n: 1 as unknown as string }), /__metadata__ must map names to strings/],
      ['notobject', (() => { const h = Buffer.from('[1,2,3] '); const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(h.length)); return Buffer.concat([l, h]); })(), /header is not a JSON object/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = join(dir, `${name}.safetensors`);
      writeFileSync(path, bytes);
      expect(() => loadSafetensors(path), name).toThrow(pattern);
      expect(() => loadSafetensors(path), name).toThrow(path);
    }
  });
});

describe('PyTorch checkpoints', () => {
  it('reads the zip format, including non-contiguous views and int64 storages', () => {
    const state = loadTorchStateDict(`${fixtures}tiny_zip.pth`);
    expect(state.get('conv.weight')!.toArray()).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect(state.get('conv.weight_t')!.toArray()).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(state.get('steps')!.dtype).toBe('int32');
    expect(Array.from(state.get('steps')!.data())).toEqual([7, -8]);
    const whole = loadTorchCheckpoint(`${fixtures}tiny_zip.pth`) as Map<string, unknown>;
    expect(whole.get('epoch')).toBe(3);
  });
  it('refuses a hostile pickle without running it, naming the callable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-pth-'));
    const path = join(dir, 'evil.pth');
    // The legacy layout around a pickle that calls os.system on load.
    const header = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e, 0x80, 0x02, 0x7d, 0x2e]);
    writeFileSync(path, Buffer.concat([header, readFileSync(`${fixtures}hostile.pkl`)]));
    expect(() => loadTorchCheckpoint(path)).toThrow(/refusing to call (posix|os)\.system/);
    expect(() => loadTorchCheckpoint(path)).toThrow(path);
  });
  it('names the file for truncated or foreign files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lrface-pth-'));
    const zip = readFileSync(`${fixtures}tiny_zip.pth`);
    const cut = join(dir, 'cut.pth');
    writeFileSync(cut, zip.subarray(0, zip.length - 30));
    expect(() => loadTorchCheckpoint(cut)).toThrow(/cut\.pth.*zip end record/);
    const foreign = join(dir, 'text.pth');
    writeFileSync(foreign, 'hello world');
    expect(() => loadTorchCheckpoint(foreign)).toThrow(/text\.pth/);
    expect(() => loadTorchStateDict(`${fixtures}tiny_zip.pth`, { key: 'nope' })).toThrow(/no state dict under key 'nope'/);
  });
});
