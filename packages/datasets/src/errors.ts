// Errors: bad arguments name the function and the argument (as the engine does); bad files
// name the file and the line or record, so a user can open the file at the fault.

// The engine's one validation-message helper, so every package words bad arguments alike.
import { typeError, rangeError } from '@lrface/cuda-core';
export { describeValue as describe, typeError, rangeError, checkKeys } from '@lrface/cuda-core';

/** Where in a file a problem is: a 1-based line, or a record (row, variable, element) name. */
export interface FileLocation {
  line?: number;
  record?: string;
}

/**
 * A dataset file that is missing, unreadable or not in the expected format. The message
 * starts with `file:line:` (or `file: record ...:`) as compilers write it.
 */
export class DatasetFileError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly record: string | undefined;
  constructor(file: string, where: FileLocation, message: string, options?: { cause?: unknown }) {
    const at = where.line !== undefined ? `${file}:${where.line}` : where.record !== undefined ? `${file}: ${where.record}` : file;
    super(`${at}: ${message}`, options);
    this.name = 'DatasetFileError';
    this.file = file;
    this.line = where.line;
    this.record = where.record;
  }
}

/** Checks an integer option within [min, max]. */
export function checkInt(fn: string, arg: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw typeError(fn, arg, 'an integer', value);
  if (value < min || value > max) throw rangeError(fn, arg, max === Infinity ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, value);
  return value;
}

/** Checks a finite number within [min, max]. */
export function checkNumber(fn: string, arg: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw typeError(fn, arg, 'a number', value);
  if (!Number.isFinite(value) || value < min || value > max)
    throw rangeError(fn, arg, `a finite number${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? `${min > -Infinity ? ' and' : ''} <= ${max}` : ''}`, value);
  return value;
}

/** Checks a [lo, hi] pair of numbers with lo <= hi. */
export function checkRange(fn: string, arg: string, value: unknown, min = -Infinity, max = Infinity): [number, number] {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'number'))
    throw typeError(fn, arg, 'a [low, high] pair of numbers', value);
  const [lo, hi] = value as number[];
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi && lo >= min && hi <= max))
    throw rangeError(fn, arg, `a [low, high] pair with ${min} <= low <= high <= ${max}`, `[${lo}, ${hi}]`, true);
  return [lo, hi];
}

/** Checks one of a fixed set of strings. */
export function checkOneOf<T extends string>(fn: string, arg: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string') throw typeError(fn, arg, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  if (!choices.includes(value as T)) throw rangeError(fn, arg, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  return value as T;
}

/** Checks a non-empty string. */
export function checkString(fn: string, arg: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw typeError(fn, arg, 'a non-empty string', value);
  return value;
}

