// A reader for MATLAB Level 5 MAT-files (what `save` writes by default, '-v6' and '-v7'):
// numeric, logical, char, cell and struct arrays, zlib-compressed variables, either byte order.
// That is every construct the WIDER FACE, TinyFace and AFLW split files use. Sparse arrays,
// function handles, opaque objects and v7.3 (HDF5) files are rejected with a named error.
import { inflateSync } from 'node:zlib';
import { DatasetFileError } from './errors.js';
import { readBytes } from './files.js';

export type MatNumericClass = 'double' | 'single' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64';

/** A numeric or logical array; elements in column-major order (as MATLAB stores them). */
export interface MatNumeric {
  type: 'numeric';
  class: MatNumericClass;
  logical: boolean;
  dims: number[];
  real: Float64Array;
  imag?: Float64Array;
}

/** A char array: one string per row (a 1xN char array is one string). */
export interface MatChar {
  type: 'char';
  dims: number[];
  rows: string[];
}

/** A cell array; cells in column-major order. */
export interface MatCell {
  type: 'cell';
  dims: number[];
  cells: MatValue[];
}

/** A struct (or object) array; elements in column-major order, each a field -> value map. */
export interface MatStruct {
  type: 'struct';
  dims: number[];
  fields: string[];
  elements: Record<string, MatValue>[];
  className?: string;
}

export type MatValue = MatNumeric | MatChar | MatCell | MatStruct;

/** The variables of a MAT-file, by name, in file order. */
export interface MatFile {
  file: string;
  header: string;
  variables: Map<string, MatValue>;
}

const NUMERIC_CLASSES: Record<number, MatNumericClass> = {
  6: 'double', 7: 'single', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32', 14: 'int64', 15: 'uint64',
};
const CLASS_NAMES: Record<number, string> = { 1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse', 16: 'function handle', 17: 'opaque' };

const mi = {
  INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13,
  MATRIX: 14, COMPRESSED: 15, UTF8: 16, UTF16: 17, UTF32: 18,
} as const;
const ELEMENT_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4 };

interface Element {
  type: number;
  /** Start of the data (after the tag). */
  start: number;
  size: number;
  /** Offset just past the element, padding included. */
  next: number;
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly little: boolean,
    readonly file: string,
    /** Where this buffer sits in the file, for messages (compressed blocks report their own start). */
    readonly origin: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(at: number, where: string, message: string): never {
    throw new DatasetFileError(this.file, { record: `${where ? `variable ${where}, ` : ''}${this.origin} byte ${at}` }, message);
  }

  /** Reads the tag at `pos` (either the 8-byte form or the small 4-byte form). */
  element(pos: number, where: string): Element {
    if (pos + 8 > this.bytes.length) this.fail(pos, where, `truncated data element (needs 8 bytes for a tag, ${this.bytes.length - pos} left)`);
    const first = this.view.getUint32(pos, this.little);
    const small = first >>> 16;
    if (small !== 0) {
      const type = first & 0xffff;
      if (small > 4) this.fail(pos, where, `small data element claims ${small} bytes (at most 4)`);
      return { type, start: pos + 4, size: small, next: pos + 8 };
    }
    const size = this.view.getUint32(pos + 4, this.little);
    const start = pos + 8;
    if (start + size > this.bytes.length) this.fail(pos, where, `data element of ${size} bytes runs past the end (${this.bytes.length - start} left)`);
    // Compressed elements are not padded; everything else is padded to 8 bytes.
    const padded = first === mi.COMPRESSED ? size : Math.ceil(size / 8) * 8;
    return { type: first, start, size, next: Math.min(start + padded, this.bytes.length) };
  }

  /** The values of a numeric data element as float64. */
  numbers(el: Element, where: string): Float64Array {
    const width = ELEMENT_BYTES[el.type];
    if (width === undefined || el.type === mi.UTF8 || el.type === mi.UTF16 || el.type === mi.UTF32)
      this.fail(el.start - 8, where, `expected numeric data, got data type ${el.type}`);
    if (el.size % width !== 0) this.fail(el.start - 8, where, `${el.size} bytes is not a whole number of ${width}-byte values`);
    const n = el.size / width;
    const out = new Float64Array(n);
    const v = this.view;
    const le = this.little;
    let p = el.start;
    switch (el.type) {
      case mi.INT8: for (let i = 0; i < n; i++, p += 1) out[i] = v.getInt8(p); break;
      case mi.UINT8: for (let i = 0; i < n; i++, p += 1) out[i] = v.getUint8(p); break;
      case mi.INT16: for (let i = 0; i < n; i++, p += 2) out[i] = v.getInt16(p, le); break;
      case mi.UINT16: for (let i = 0; i < n; i++, p += 2) out[i] = v.getUint16(p, le); break;
      case mi.INT32: for (let i = 0; i < n; i++, p += 4) out[i] = v.getInt32(p, le); break;
      case mi.UINT32: for (let i = 0; i < n; i++, p += 4) out[i] = v.getUint32(p, le); break;
      case mi.SINGLE: for (let i = 0; i < n; i++, p += 4) out[i] = v.getFloat32(p, le); break;
      case mi.DOUBLE: for (let i = 0; i < n; i++, p += 8) out[i] = v.getFloat64(p, le); break;
      case mi.INT64: for (let i = 0; i < n; i++, p += 8) out[i] = Number(v.getBigInt64(p, le)); break;
      case mi.UINT64: for (let i = 0; i < n; i++, p += 8) out[i] = Number(v.getBigUint64(p, le)); break;
    }
    return out;
  }

  /** Character codes of a char array's data element (UTF-8/16/32 or plain integers). */
  charCodes(el: Element, where: string): number[] {
    if (el.type === mi.UTF8) return Array.from(new TextDecoder('utf-8').decode(this.bytes.subarray(el.start, el.start + el.size)), (ch) => ch.codePointAt(0)!);
    if (el.type === mi.UTF16 || el.type === mi.UTF32) return Array.from(this.numbers({ ...el, type: el.type === mi.UTF16 ? mi.UINT16 : mi.UINT32 }, where));
    return Array.from(this.numbers(el, where));
  }

  text(el: Element): string {
    let s = '';
    for (let i = el.start; i < el.start + el.size; i++) {
      const c = this.bytes[i];
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** Parses a miMATRIX element's body. `where` is the MATLAB-style path of the value. */
  matrix(el: Element, where: string): { name: string; value: MatValue } {
    // An empty cell element is written as a miMATRIX with no body.
    if (el.size === 0) return { name: '', value: { type: 'numeric', class: 'double', logical: false, dims: [0, 0], real: new Float64Array(0) } };
    const end = el.start + el.size;
    let pos = el.start;
    const flagsEl = this.element(pos, where);
    if ((flagsEl.type !== mi.UINT32 && flagsEl.type !== mi.INT32) || flagsEl.size < 4) this.fail(pos, where, 'array flags subelement missing');
    const flagWord = this.view.getUint32(flagsEl.start, this.little);
    const classCode = flagWord & 0xff;
    const complex = (flagWord & 0x800) !== 0;
    const logical = (flagWord & 0x200) !== 0;
    pos = flagsEl.next;
    const dimsEl = this.element(pos, where);
    if (dimsEl.type !== mi.INT32) this.fail(pos, where, `dimensions subelement must be miINT32, got data type ${dimsEl.type}`);
    const dims = Array.from(this.numbers(dimsEl, where));
    if (dims.length < 2 || dims.some((d) => d < 0)) this.fail(pos, where, `bad dimensions [${dims.join(',')}]`);
    pos = dimsEl.next;
    const nameEl = this.element(pos, where);
    if (nameEl.type !== mi.INT8 && nameEl.type !== mi.UINT8) this.fail(pos, where, 'array name subelement missing');
    const name = this.text(nameEl);
    pos = nameEl.next;
    const path = where || name;
    const count = dims.reduce((a, b) => a * b, 1);

    const numeric = NUMERIC_CLASSES[classCode];
    if (numeric || classCode === 4) {
      const realEl = this.element(pos, path);
      if (realEl.next > end + 7) this.fail(pos, path, 'real part runs past its array');
      if (classCode === 4) {
        const codes = this.charCodes(realEl, path);
        if (codes.length !== count) this.fail(pos, path, `char array ${dims.join('x')} holds ${codes.length} characters`);
        const rows = dims[0];
        const cols = count / Math.max(rows, 1);
        const out: string[] = [];
        for (let r = 0; r < rows; r++) {
          let s = '';
          for (let c = 0; c < cols; c++) s += String.fromCodePoint(codes[r + c * rows]);
          out.push(s);
        }
        return { name, value: { type: 'char', dims, rows: out } };
      }
      const real = this.numbers(realEl, path);
      if (real.length !== count) this.fail(pos, path, `numeric array ${dims.join('x')} holds ${real.length} values`);
      const value: MatNumeric = { type: 'numeric', class: numeric, logical, dims, real };
      if (complex) {
        const imagEl = this.element(realEl.next, path);
        value.imag = this.numbers(imagEl, path);
        if (value.imag.length !== count) this.fail(realEl.next, path, `imaginary part holds ${value.imag.length} values, expected ${count}`);
      }
      return { name, value };
    }
    if (classCode === 1) {
      const cells: MatValue[] = [];
      for (let i = 0; i < count; i++) {
        const cellWhere = `${path}{${i + 1}}`;
        const cellEl = this.element(pos, cellWhere);
        if (cellEl.type !== mi.MATRIX) this.fail(pos, cellWhere, `cell element must be miMATRIX, got data type ${cellEl.type}`);
        cells.push(this.matrix(cellEl, cellWhere).value);
        pos = cellEl.next;
      }
      return { name, value: { type: 'cell', dims, cells } };
    }
    if (classCode === 2 || classCode === 3) {
      let className: string | undefined;
      if (classCode === 3) {
        const classEl = this.element(pos, path);
        className = this.text(classEl);
        pos = classEl.next;
      }
      const lenEl = this.element(pos, path);
      const fieldLength = this.numbers(lenEl, path)[0];
      pos = lenEl.next;
      const namesEl = this.element(pos, path);
      pos = namesEl.next;
      if (!(fieldLength > 0) && namesEl.size > 0) this.fail(pos, path, `bad field name length ${fieldLength}`);
      const fields: string[] = [];
      for (let off = 0; fieldLength > 0 && off + fieldLength <= namesEl.size; off += fieldLength)
        fields.push(this.text({ ...namesEl, start: namesEl.start + off, size: fieldLength }));
      const elements: Record<string, MatValue>[] = [];
      for (let i = 0; i < count; i++) {
        const rec: Record<string, MatValue> = {};
        for (const f of fields) {
          const fWhere = `${path}(${i + 1}).${f}`;
          const fEl = this.element(pos, fWhere);
          if (fEl.type !== mi.MATRIX) this.fail(pos, fWhere, `struct field must be miMATRIX, got data type ${fEl.type}`);
          rec[f] = this.matrix(fEl, fWhere).value;
          pos = fEl.next;
        }
        elements.push(rec);
      }
      return { name, value: { type: 'struct', dims, fields, elements, className } };
    }
    const kind = CLASS_NAMES[classCode] ?? `class ${classCode}`;
    this.fail(el.start - 8, path, `${kind} arrays are not supported`);
  }
}

/** Parses MAT-file bytes (Level 5). `file` names the source in errors. */
export function parseMat(bytes: Uint8Array, file = '<buffer>'): MatFile {
  if (bytes.length < 128) throw new DatasetFileError(file, {}, `not a MATLAB v5 MAT-file (only ${bytes.length} bytes; the header alone is 128)`);
  const header = new TextDecoder('latin1').decode(bytes.subarray(0, 116)).replace(/[\s\0]+$/, '');
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (header.startsWith('MATLAB 7.3') || (bytes.length > 520 && String.fromCharCode(...bytes.subarray(513, 516)) === 'HDF'))
    throw new DatasetFileError(file, {}, "MATLAB v7.3 (HDF5) MAT-files are not supported; re-save the variables with save(file, '-v7')");
  if (!header.startsWith('MATLAB') || (endian !== 'IM' && endian !== 'MI'))
    throw new DatasetFileError(file, {}, 'not a MATLAB v5 MAT-file (no "MATLAB" header text and IM/MI byte-order mark)');
  const little = endian === 'IM';
  const top = new Reader(bytes, little, file, 'file');
  const variables = new Map<string, MatValue>();
  let pos = 128;
  while (pos + 8 <= bytes.length) {
    const el = top.element(pos, '');
    let reader = top;
    let inner = el;
    if (el.type === mi.COMPRESSED) {
      let plain: Buffer;
      try {
        plain = inflateSync(bytes.subarray(el.start, el.start + el.size));
      } catch (err) {
        throw new DatasetFileError(file, { record: `compressed element at byte ${pos}` }, `corrupt zlib data (${(err as Error).message})`, { cause: err });
      }
      reader = new Reader(plain, little, file, `compressed element at file byte ${pos}, inflated`);
      inner = reader.element(0, '');
    }
    if (inner.type === mi.MATRIX) {
      const { name, value } = reader.matrix(inner, '');
      variables.set(name, value);
    }
    // Other top-level element types (none in practice) are skipped.
    pos = el.next;
  }
  return { file, header, variables };
}

/** Reads and parses a MAT-file. */
export async function readMat(file: string): Promise<MatFile> {
  return parseMat(await readBytes(file, 'MAT-file'), file);
}

/** A variable of a MAT-file, or an error naming the file and the variable. */
export function matVariable(mat: MatFile, name: string): MatValue {
  const v = mat.variables.get(name);
  if (!v) throw new DatasetFileError(mat.file, { record: `variable '${name}'` }, `variable missing (the file holds ${[...mat.variables.keys()].join(', ') || 'no variables'})`);
  return v;
}

function describeValue(v: MatValue): string {
  return `${v.dims.join('x')} ${v.type === 'numeric' ? v.class : v.type}`;
}

/** Checks a value's kind, naming the file and path when it is something else. */
export function expectMat<K extends MatValue['type']>(file: string, path: string, v: MatValue, kind: K): Extract<MatValue, { type: K }> {
  if (v.type !== kind) throw new DatasetFileError(file, { record: `variable ${path}` }, `expected a ${kind} array, got ${describeValue(v)}`);
  return v as Extract<MatValue, { type: K }>;
}

/** The string of a char array (rows joined by newlines; a 1xN array is its one row). */
export function matString(file: string, path: string, v: MatValue): string {
  return expectMat(file, path, v, 'char').rows.join('\n');
}

/** The cells of a cell array, in column-major order. */
export function matCells(file: string, path: string, v: MatValue): MatValue[] {
  return expectMat(file, path, v, 'cell').cells;
}

/** A 2-D numeric array as rows of numbers (MATLAB stores columns first). */
export function matRows(file: string, path: string, v: MatValue): number[][] {
  const a = expectMat(file, path, v, 'numeric');
  if (a.dims.length !== 2) throw new DatasetFileError(file, { record: `variable ${path}` }, `expected a 2-D array, got ${describeValue(a)}`);
  const [rows, cols] = a.dims;
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: number[] = new Array(cols);
    for (let c = 0; c < cols; c++) row[c] = a.real[r + c * rows];
    out.push(row);
  }
  return out;
}

/** All values of a numeric array (a vector, or any array read column by column). */
export function matNumbers(file: string, path: string, v: MatValue): Float64Array {
  return expectMat(file, path, v, 'numeric').real;
}
