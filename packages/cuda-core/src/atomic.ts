// Atomic file replacement (for weights, checkpoints, images: every package that writes files
// sits on the engine): write a temp file beside the target, fsync it, rename over the
// target, fsync the folder. A crash leaves either the old file or the new one, never half.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { rangeError, typeError } from './errors.js';

// Characters of the target's name kept in the temp file's name, which adds about 26 bytes: a
// target whose name is near the file system's limit (255 bytes) must still be writable.
// 64 UTF-16 units are at most 192 bytes of UTF-8.
const TEMP_NAME_KEEP = 64;

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** What went wrong, in the caller's terms: the temp file's name in Node's message means nothing to them. */
function failureReason(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return `its folder '${dirname(path)}' does not exist`;
    case 'ENOTDIR':
      return `its folder '${dirname(path)}' is not a folder (a part of it is a file)`;
    case 'EISDIR':
      return 'it is a folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'the disk quota is used up';
    case 'EROFS':
      return 'the file system is read-only';
  }
  const message = err instanceof Error ? err.message : String(err);
  // Node words it "EIO: i/o error, write" or "..., open '<temp>'": keep the code, text and call, drop the temp name.
  const text = message.replace(/(, \w+) '.*'$/s, '$1');
  return typeof code === 'string' && !text.startsWith(code) ? `${code}: ${text}` : text;
}

/**
 * Replaces `path` with `data` atomically; on any failure the previous file is untouched and no
 * temp file is left. `fn` names the public function that writes, for the error: `<fn>: cannot
 * write '<path>': <reason>`, with Node's error as `cause` and its `code` kept.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, fn = 'writeFileAtomic'): void {
  if (typeof path !== 'string' || path === '') throw typeError(fn, 'path', 'a non-empty string', path);
  if (path.includes('\0')) throw rangeError(fn, 'path', 'a path without NUL characters', path);
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw typeError(fn, 'data', 'a Uint8Array or a string', data);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  // 'wx' plus a random name: never writes into another writer's temp file.
  const temp = join(dirname(path), `.${basename(path).slice(0, TEMP_NAME_KEEP)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(temp, 'wx');
    created = true;
    let written = 0;
    while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
    fsyncSync(fd);
    const open = fd;
    fd = undefined;
    // close can report a delayed write error (NFS): it counts as a failed write.
    closeSync(open);
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // the write already failed; that error is the one to report
      }
    }
    if (created) removeQuietly(temp);
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    throw Object.assign(new Error(`${fn}: cannot write '${path}': ${failureReason(path, err)}`, { cause: err }), code === undefined ? {} : { code });
  }
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Some filesystems do not allow fsync on a folder; the rename is still atomic.
  }
}
