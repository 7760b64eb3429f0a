// Reading annotation files: whole-file reads (annotation files are small next to the images),
// transparent gzip, lines numbered from 1 for error messages.
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { DatasetFileError } from './errors.js';

/** Reads a file, gunzipping it when it starts with the gzip magic bytes; a missing file names itself. */
export async function readBytes(file: string, what = 'file'): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? `${what} not found` : code === 'EISDIR' ? `${what} is a directory` : `cannot read ${what} (${code ?? String(err)})`;
    throw new DatasetFileError(file, {}, reason, { cause: err });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes);
    } catch (err) {
      throw new DatasetFileError(file, {}, `corrupt gzip data (${(err as Error).message})`, { cause: err });
    }
  }
  return bytes;
}

/** One line of a text file with its 1-based number. */
export interface Line {
  text: string;
  line: number;
}

/** Splits text into lines (LF or CRLF), keeping line numbers; trailing whitespace removed. */
export function splitLines(text: string): Line[] {
  const out: Line[] = [];
  const parts = text.split('\n');
  // A final newline does not start another line.
  const n = parts.length > 0 && parts[parts.length - 1] === '' ? parts.length - 1 : parts.length;
  for (let i = 0; i < n; i++) out.push({ text: parts[i].replace(/\s+$/, ''), line: i + 1 });
  return out;
}

/** Reads a text file (UTF-8, BOM dropped; gzip allowed) into numbered lines. */
export async function readLines(file: string, what = 'file'): Promise<Line[]> {
  const text = (await readBytes(file, what)).toString('utf8').replace(/^\uFEFF/, '');
  return splitLines(text);
}

/** Parses a finite number from a field, or throws naming the file, line and field. */
export function parseNumber(file: string, line: number, field: string, what: string): number {
  const v = field.trim() === '' ? NaN : Number(field);
  if (!Number.isFinite(v)) throw new DatasetFileError(file, { line }, `${what} must be a number, got ${JSON.stringify(field)}`);
  return v;
}

/** Parses an integer from a field, or throws naming the file, line and field. */
export function parseInteger(file: string, line: number, field: string, what: string): number {
  const v = parseNumber(file, line, field, what);
  if (!Number.isInteger(v)) throw new DatasetFileError(file, { line }, `${what} must be an integer, got ${JSON.stringify(field)}`);
  return v;
}

/** Whether a path exists (file or directory). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Checks that a dataset's root folder exists, with a message naming the dataset. */
export async function checkDir(dir: string, what: string): Promise<void> {
  let ok = false;
  try {
    ok = (await stat(dir)).isDirectory();
  } catch (err) {
    throw new DatasetFileError(dir, {}, `${what} not found`, { cause: err });
  }
  if (!ok) throw new DatasetFileError(dir, {}, `${what} is not a directory`);
}
