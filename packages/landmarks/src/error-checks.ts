// The check of per-image error arrays, shared by metrics.ts and ced-plot.ts (whose curves carry
// such arrays); not exported from the package.
import { rangeError, typeError } from '@lrface/cuda-core';

/** `errors` as per-image NMEs: a non-empty array of numbers >= 0 (Infinity for a failure). `arg` names it in messages. */
export function checkErrors(fn: string, errors: unknown, arg = 'errors'): ArrayLike<number> {
  if (!(errors instanceof Float64Array || errors instanceof Float32Array || Array.isArray(errors)))
    throw typeError(fn, arg, 'an array of per-image NMEs', errors);
  const e = errors as ArrayLike<number>;
  if (e.length === 0) throw rangeError(fn, arg, 'a non-empty array', 'an empty array', true);
  for (let i = 0; i < e.length; i++)
    if (typeof e[i] !== 'number' || Number.isNaN(e[i]) || e[i] < 0) throw rangeError(fn, arg, 'non-negative numbers (Infinity for a failure)', `${arg}[${i}] = ${e[i]}`, true);
  return e;
}
