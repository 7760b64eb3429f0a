// One helper for every validation message: `op: 'arg' must be <expected>, got <actual>`.

/** Describes a value for an error message, briefly. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  if (Array.isArray(value)) return `array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of length ${(value as unknown as ArrayLike<number>).length}`;
  if (typeof value === 'object') {
    const shape = (value as { shape?: unknown }).shape;
    const dtype = (value as { dtype?: unknown }).dtype;
    if (Array.isArray(shape) && typeof dtype === 'string') return `${dtype} tensor [${shape.join(',')}]`;
    return value.constructor?.name ?? 'object';
  }
  return typeof value;
}

export function typeError(op: string, arg: string, expected: string, actual: unknown, raw = false): TypeError {
  return new TypeError(`${op}: '${arg}' must be ${expected}, got ${raw ? String(actual) : describe(actual)}`);
}

export function rangeError(op: string, arg: string, expected: string, actual: unknown, raw = false): RangeError {
  return new RangeError(`${op}: '${arg}' must be ${expected}, got ${raw ? String(actual) : describe(actual)}`);
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Rejects the keys of an options or config object that a function does not know, so that a
 * misspelt key fails instead of being silently ignored. `known` lists the keys, or is an object
 * whose keys they are: a `Record<keyof SomeConfig, true>` keeps the list in step with the
 * interface at compile time. `arg` names the object in the message ('options' or 'config').
 */
export function checkKeys(fn: string, options: unknown, known: readonly string[] | Readonly<Record<string, unknown>>, arg = 'options'): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError(fn, arg, 'an object', options);
  // Per-op calls run this thousands of times a step: nothing is allocated unless a key is unknown.
  const list = Array.isArray(known) ? (known as readonly string[]) : null;
  for (const key in options) {
    if (!hasOwn.call(options, key) || (list ? list.includes(key) : hasOwn.call(known, key))) continue;
    const names = list ?? Object.keys(known);
    const what = arg === 'options' ? 'option' : `${arg} field`;
    throw typeError(fn, key, `one of the known ${what}s (${names.join(', ') || 'none'})`, `an unknown ${what}`, true);
  }
}

export function stateError(op: string, message: string): Error {
  return new Error(`${op}: ${message}`);
}
