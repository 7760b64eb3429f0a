// Argument checks the package's constructors and functions share.
import { rangeError, typeError } from '@lrface/cuda-core';

/** `v` must be an integer >= min: TypeError for a non-integer, RangeError below min. */
export function checkInt(fn: string, arg: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(fn, arg, 'an integer', v);
  if (v < min) throw rangeError(fn, arg, `>= ${min}`, v);
  return v;
}
