// writeFileAtomic: the whole file or the previous one, never half; a failed write names the
// file the caller chose and what is wrong, leaves the previous file as it was and no temp file.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../src/atomic.js';

// Faults a real disk gives but a test cannot provoke (a full disk, an I/O error, a read-only
// mount): the named call fails as Node's fs reports it, once `after` calls to it have passed.
type Syscall = 'open' | 'write' | 'fsync' | 'close' | 'rename';
const fault = vi.hoisted(() => ({
  syscall: undefined as Syscall | undefined,
  code: '',
  description: '',
  after: 0,
  /** Bytes a write call takes at most (a short write), 0 for all it is given. */
  shortWrite: 0,
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const failing =
    <A extends unknown[], R>(syscall: Syscall, real: (...args: A) => R) =>
    (...args: A): R => {
      if (fault.syscall === syscall && fault.after-- <= 0) {
        fault.syscall = undefined;
        const where = typeof args[0] === 'string' ? ` '${args[0]}'` : '';
        throw Object.assign(new Error(`${fault.code}: ${fault.description}, ${syscall}${where}`), { code: fault.code, syscall });
      }
      return real(...args);
    };
  const writeSync = (fd: number, buffer: Uint8Array, offset: number, length: number) =>
    fs.writeSync(fd, buffer, offset, fault.shortWrite > 0 ? Math.min(length, fault.shortWrite) : length);
  return {
    ...fs,
    openSync: failing('open', fs.openSync),
    writeSync: failing('write', writeSync),
    fsyncSync: failing('fsync', fs.fsyncSync),
    closeSync: failing('close', fs.closeSync),
    renameSync: failing('rename', fs.renameSync),
  };
});

afterEach(() => {
  fault.syscall = undefined;
  fault.shortWrite = 0;
});

const freshDir = () => mkdtempSync(join(tmpdir(), 'lrface-atomic-'));

/** The error `run` throws (it must throw). */
function thrown(run: () => void): Error & { code?: string } {
  try {
    run();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('writeFileAtomic', () => {
  it('replaces the file whole, from a string or bytes, and leaves nothing else beside it', () => {
    const dir = freshDir();
    const path = join(dir, 'f.bin');
    writeFileAtomic(path, 'first, longer than the second');
    expect(readFileSync(path, 'utf8')).toBe('first, longer than the second');
    writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(path))).toEqual([1, 2, 3]);
    writeFileAtomic(path, new Uint8Array(0));
    expect(readFileSync(path).length).toBe(0);
    expect(readdirSync(dir)).toEqual(['f.bin']);
  });

  it('continues short writes until every byte is on disk', () => {
    const dir = freshDir();
    const path = join(dir, 'f.bin');
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
    fault.shortWrite = 3;
    writeFileAtomic(path, bytes);
    expect(Buffer.compare(readFileSync(path), Buffer.from(bytes))).toBe(0);
  });

  it('writes a name near the 255-byte limit (the temp name is shortened, not the target)', () => {
    const dir = freshDir();
    const name = 'n'.repeat(246) + '.png';
    writeFileAtomic(join(dir, name), 'long');
    expect(readdirSync(dir)).toEqual([name]);
    expect(readFileSync(join(dir, name), 'utf8')).toBe('long');
  });

  it('names the file and says that its folder does not exist', () => {
    const dir = freshDir();
    const path = join(dir, 'missing', 'f.bin');
    const err = thrown(() => writeFileAtomic(path, 'data'));
    expect(err.message).toBe(`writeFileAtomic: cannot write '${path}': its folder '${join(dir, 'missing')}' does not exist`);
    expect(err.code).toBe('ENOENT');
    expect((err.cause as { code?: string }).code).toBe('ENOENT');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('says when a part of the folder path is a file', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'plain'), 'x');
    const path = join(dir, 'plain', 'f.bin');
    const err = thrown(() => writeFileAtomic(path, 'data', 'saveThing'));
    expect(err.message).toBe(`saveThing: cannot write '${path}': its folder '${join(dir, 'plain')}' is not a folder (a part of it is a file)`);
    expect(err.code).toBe('ENOTDIR');
  });

  it('refuses a folder as the target: the folder and its contents stay, no temp file is left', () => {
    const dir = freshDir();
    const folder = join(dir, 'sub');
    mkdirSync(folder);
    writeFileSync(join(folder, 'keep'), 'x');
    const err = thrown(() => writeFileAtomic(folder, 'data', 'writeImage'));
    expect(err.message).toBe(`writeImage: cannot write '${folder}': it is a folder`);
    expect(err.code).toBe('EISDIR');
    expect(readdirSync(dir)).toEqual(['sub']);
    expect(readdirSync(folder)).toEqual(['keep']);
    expect(readFileSync(join(folder, 'keep'), 'utf8')).toBe('x');
  });

  // root writes into a folder whatever its mode says, so the check needs an ordinary user;
  // the simulated faults below cover the same clean-up as root.
  it.skipIf(process.getuid?.() === 0)('says permission denied for a read-only folder and keeps the file there', () => {
    const dir = freshDir();
    const path = join(dir, 'f.bin');
    writeFileSync(path, 'previous');
    chmodSync(dir, 0o500);
    try {
      const err = thrown(() => writeFileAtomic(path, 'new', 'saveCheckpoint'));
      expect(err.message).toBe(`saveCheckpoint: cannot write '${path}': permission denied`);
      expect(err.code).toBe('EACCES');
    } finally {
      chmodSync(dir, 0o700);
    }
    expect(readFileSync(path, 'utf8')).toBe('previous');
    expect(readdirSync(dir)).toEqual(['f.bin']);
  });

  it('leaves the previous file whole and no temp file when the disk fills up mid-write', () => {
    const dir = freshDir();
    const path = join(dir, 'weights.safetensors');
    writeFileSync(path, 'previous weights');
    // Some bytes reach the temp file before the disk is full.
    Object.assign(fault, { syscall: 'write', code: 'ENOSPC', description: 'no space left on device', after: 2, shortWrite: 4 });
    const err = thrown(() => writeFileAtomic(path, 'the new weights, more than twelve bytes', 'saveSafetensors'));
    expect(err.message).toBe(`saveSafetensors: cannot write '${path}': no space left on the device`);
    expect(err.code).toBe('ENOSPC');
    expect((err.cause as Error).message).toMatch(/^ENOSPC: no space left on device, write/);
    expect(readFileSync(path, 'utf8')).toBe('previous weights');
    expect(readdirSync(dir)).toEqual(['weights.safetensors']);
  });

  it('words each known failure for the caller and keeps the previous file', () => {
    const cases: { syscall: Syscall; code: string; description: string; reason: string }[] = [
      { syscall: 'open', code: 'EROFS', description: 'read-only file system', reason: 'the file system is read-only' },
      { syscall: 'open', code: 'EACCES', description: 'permission denied', reason: 'permission denied' },
      { syscall: 'rename', code: 'EPERM', description: 'operation not permitted', reason: 'permission denied' },
      { syscall: 'fsync', code: 'EDQUOT', description: 'disk quota exceeded', reason: 'the disk quota is used up' },
      // Codes without their own wording keep Node's, less the temp file's name.
      { syscall: 'fsync', code: 'EIO', description: 'i/o error', reason: 'EIO: i/o error, fsync' },
      { syscall: 'close', code: 'EIO', description: 'i/o error', reason: 'EIO: i/o error, close' },
      { syscall: 'open', code: 'EMFILE', description: 'too many open files', reason: 'EMFILE: too many open files, open' },
    ];
    for (const c of cases) {
      const dir = freshDir();
      const path = join(dir, 'out.png');
      writeFileSync(path, 'previous');
      Object.assign(fault, { syscall: c.syscall, code: c.code, description: c.description, after: 0 });
      const err = thrown(() => writeFileAtomic(path, 'new', 'writeImage'));
      expect(err.message, `${c.code} in ${c.syscall}`).toBe(`writeImage: cannot write '${path}': ${c.reason}`);
      expect(err.message).not.toContain('.tmp');
      expect(err.code).toBe(c.code);
      expect((err.cause as { code?: string }).code).toBe(c.code);
      expect(readFileSync(path, 'utf8')).toBe('previous');
      expect(readdirSync(dir), `${c.code} in ${c.syscall}`).toEqual(['out.png']);
    }
  });

  it('refuses a path that is not a non-empty string and data that is not bytes or text', () => {
    const dir = freshDir();
    for (const bad of ['', undefined, 3, new Uint8Array(2)])
      expect(() => writeFileAtomic(bad as string, 'data', 'writeImage')).toThrow(new RegExp(`^writeImage: 'path' must be a non-empty string, got `));
    expect(() => writeFileAtomic('', 'data')).toThrow(new TypeError(`writeFileAtomic: 'path' must be a non-empty string, got ""`));
    expect(() => writeFileAtomic(join(dir, 'a\0b'), 'data', 'saveCheckpoint')).toThrow(RangeError);
    expect(() => writeFileAtomic(join(dir, 'a\0b'), 'data', 'saveCheckpoint')).toThrow(/^saveCheckpoint: 'path' must be a path without NUL characters/);
    for (const bad of [undefined, 42, [1, 2], new Float32Array(2), { length: 1 }])
      expect(() => writeFileAtomic(join(dir, 'f.bin'), bad as unknown as string, 'saveThing')).toThrow(TypeError);
    expect(() => writeFileAtomic(join(dir, 'f.bin'), [1, 2] as unknown as string)).toThrow("writeFileAtomic: 'data' must be a Uint8Array or a string, got array of length 2");
    expect(readdirSync(dir)).toEqual([]);
  });
});
