import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { matCells, matNumbers, matRows, matString, matVariable, parseMat, readMat, type MatValue } from '../src/index.js';
import { data, expectFileError, fixtures, have } from './helpers.js';

const mat = (name: string) => join(fixtures, 'mat', name);

describe('MAT v5 reader', () => {
  for (const name of ['v5-types.mat', 'v5-types-compressed.mat']) {
    it(`reads every array kind scipy writes (${name})`, async () => {
      const m = await readMat(mat(name));
      const f = m.file;
      expect(m.header.startsWith('MATLAB 5.0 MAT-file')).toBe(true);
      expect(matRows(f, 'dbl', matVariable(m, 'dbl'))).toEqual([[1.5, -2, 3.25], [4, 5, -6.5]]);
      const sgl = matVariable(m, 'sgl');
      expect(sgl.type === 'numeric' && sgl.class).toBe('single');
      expect(Array.from(matNumbers(f, 'sgl', sgl))).toEqual([0.5, 1.5]);
      expect(Array.from(matNumbers(f, 'i8', matVariable(m, 'i8')))).toEqual([-128, 0, 127]);
      expect(Array.from(matNumbers(f, 'u16', matVariable(m, 'u16')))).toEqual([0, 65535]);
      expect(matRows(f, 'i32', matVariable(m, 'i32'))).toEqual([[-2147483648], [2147483647]]);
      const i64 = matVariable(m, 'i64');
      expect(i64.type === 'numeric' && i64.class).toBe('int64');
      expect(Array.from(matNumbers(f, 'i64', i64))).toEqual([-(2 ** 40), 2 ** 40]);
      expect(Array.from(matNumbers(f, 'u64', matVariable(m, 'u64')))).toEqual([2 ** 50]);
      const flag = matVariable(m, 'flag');
      expect(flag.type === 'numeric' && flag.logical).toBe(true);
      expect(Array.from(matNumbers(f, 'flag', flag))).toEqual([1, 0, 1]);
      const cplx = matVariable(m, 'cplx');
      expect(cplx.type === 'numeric' && Array.from(cplx.real)).toEqual([1, -3]);
      expect(cplx.type === 'numeric' && Array.from(cplx.imag!)).toEqual([2, -4]);
      expect(matString(f, 'txt', matVariable(m, 'txt'))).toBe('hello, MAT');
      const chars = matVariable(m, 'chars');
      expect(chars.type === 'char' && chars.rows).toEqual(['abc', 'xyz']);
      // nested = {{'a','bc'}, [1 2]; 'z', []} stored column-major: (1,1), (2,1), (1,2), (2,2)
      const nested = matVariable(m, 'nested');
      expect(nested.dims).toEqual([2, 2]);
      const cells = matCells(f, 'nested', nested);
      expect(matCells(f, 'nested{1}', cells[0]).map((c) => matString(f, 'x', c))).toEqual(['a', 'bc']);
      expect(matString(f, 'nested{2}', cells[1])).toBe('z');
      expect(Array.from(matNumbers(f, 'nested{3}', cells[2]))).toEqual([1, 2]);
      expect(cells[3].dims).toEqual([0, 0]);
      const s = matVariable(m, 's');
      expect(s.type).toBe('struct');
      if (s.type === 'struct') {
        expect(s.fields).toEqual(['name', 'value']);
        expect(s.elements.map((e) => matString(f, 'name', e.name))).toEqual(['first', 'second']);
        expect(Array.from(matNumbers(f, 'value', s.elements[1].value))).toEqual([2, 3]);
      }
      expect(matVariable(m, 'empty').dims).toEqual([0, 3]);
    });
  }

  it('reads big-endian (MI) files', async () => {
    const m = await readMat(mat('big-endian.mat'));
    expect(matRows(m.file, 'x', matVariable(m, 'x'))).toEqual([[1, 2], [3, 4]]);
    expect(matString(m.file, 'ok', matVariable(m, 'ok'))).toBe('ok');
  });

  it('names the file and what is wrong for unsupported or broken files', async () => {
    await expectFileError(() => readMat(mat('sparse.mat')), mat('sparse.mat'), { record: 'variable sp' }, 'sparse arrays are not supported');
    await expectFileError(() => readMat(mat('v73-header.mat')), mat('v73-header.mat'), {}, 'v7.3 (HDF5)', "save(file, '-v7')");
    await expectFileError(() => readMat(mat('missing.mat')), mat('missing.mat'), {}, 'MAT-file not found');
    const bytes = readFileSync(mat('v5-types.mat'));
    expect(() => parseMat(bytes.subarray(0, 100), 'short.mat')).toThrow(/^short\.mat: not a MATLAB v5 MAT-file/);
    const garbage = Buffer.alloc(200, 65);
    expect(() => parseMat(garbage, 'garbage.mat')).toThrow(/^garbage\.mat: not a MATLAB v5 MAT-file/);
    // Cut inside the first variable: the error gives the byte where the element starts.
    expect(() => parseMat(bytes.subarray(0, 180), 'cut.mat')).toThrow(/^cut\.mat: file byte 128: data element of \d+ bytes runs past the end/);
    // Corrupt the zlib stream of the compressed file.
    const comp = Buffer.from(readFileSync(mat('v5-types-compressed.mat')));
    comp.fill(0, 140, 160);
    expect(() => parseMat(comp, 'zlib.mat')).toThrow(/^zlib\.mat: compressed element at byte 128: corrupt zlib data/);
    const m = await readMat(mat('big-endian.mat'));
    await expectFileError(() => matVariable(m, 'nope'), m.file, { record: "variable 'nope'" }, 'the file holds x, ok');
    await expectFileError(() => matCells(m.file, 'x', matVariable(m, 'x')), m.file, { record: 'variable x' }, 'expected a cell array, got 2x2 double');
  });

  it.skipIf(!have('widerface/wider_face_split/wider_face_val.mat'))('reads the real WIDER FACE val .mat (MATLAB-written, compressed)', async () => {
    const m = await readMat(join(data, 'widerface/wider_face_split/wider_face_val.mat'));
    expect([...m.variables.keys()].sort()).toEqual(['blur_label_list', 'event_list', 'expression_label_list', 'face_bbx_list', 'file_list', 'illumination_label_list', 'invalid_label_list', 'occlusion_label_list', 'pose_label_list']);
    const events = matCells(m.file, 'event_list', matVariable(m, 'event_list'));
    expect(events.length).toBe(61);
    expect(matString(m.file, 'e', events[0])).toBe('0--Parade');
    const boxes = matCells(m.file, 'face_bbx_list', matVariable(m, 'face_bbx_list'));
    const first = matCells(m.file, 'b', boxes[0])[0] as MatValue;
    expect(first.type === 'numeric' && first.class).toBe('int32');
    // The first faces of 0_Parade_marchingband_1_465 as the text file lists them.
    expect(matRows(m.file, 'b', first).slice(0, 3)).toEqual([[345, 211, 4, 4], [331, 126, 3, 3], [250, 126, 3, 4]]);
    const blur = matCells(m.file, 'blur', matVariable(m, 'blur_label_list'));
    const b0 = matCells(m.file, 'b', blur[0])[0];
    expect(b0.type === 'numeric' && b0.class).toBe('uint8');
    expect(Array.from(matNumbers(m.file, 'b', b0)).slice(0, 3)).toEqual([2, 0, 2]);
  });
});
