// Shared test helpers: where the fixtures and the real data are, temporary files, and an
// assertion for the file-naming errors every reader raises.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { expect } from 'vitest';
import { DatasetFileError } from '../src/index.js';

export const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const data = sharedDataDir;
/** Whether the real data the test needs is there (tests skip visibly, by name, when not). */
export const have = (...paths: string[]): boolean => haveSharedData(...paths);

/** A fresh temporary folder. */
export function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'lrface-datasets-'));
}

/** Writes files (path -> content) under a folder, creating parents. */
export function writeTree(root: string, files: Record<string, string | Uint8Array>): string {
  for (const [rel, content] of Object.entries(files)) {
    const file = join(root, rel);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  return root;
}

/** Expects a DatasetFileError naming the file, and the line (or a record text) and message parts. */
export async function expectFileError(run: () => unknown, file: string, where: { line?: number; record?: string } = {}, ...parts: string[]): Promise<DatasetFileError> {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a DatasetFileError').toBeInstanceOf(DatasetFileError);
  const e = caught as DatasetFileError;
  expect(e.file).toBe(file);
  expect(e.message.startsWith(file)).toBe(true);
  if (where.line !== undefined) {
    expect(e.line).toBe(where.line);
    expect(e.message).toContain(`${file}:${where.line}:`);
  }
  if (where.record !== undefined) expect(e.record ?? '').toContain(where.record);
  for (const p of parts) expect(e.message).toContain(p);
  return e;
}

/** Expects an argument error of a class naming the function and the argument. */
export async function expectArgError(run: () => unknown, cls: typeof TypeError | typeof RangeError, fn: string, arg: string): Promise<void> {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(cls);
  expect((caught as Error).message).toContain(`${fn}:`);
  expect((caught as Error).message).toContain(`'${arg}'`);
}
