// The shared validation helpers every package words its argument errors with.
import { describe, expect, it } from 'vitest';
import { checkKeys, describeValue, rangeError, typeError } from '../src/index.js';

describe('checkKeys', () => {
  it('accepts known keys, given as a list or as the keys of a record', () => {
    expect(() => checkKeys('op', { a: 1, b: undefined }, ['a', 'b', 'c'])).not.toThrow();
    expect(() => checkKeys('op', {}, { a: true })).not.toThrow();
    expect(() => checkKeys('Net', { depth: 3 }, { depth: true, width: true }, 'config')).not.toThrow();
  });
  it('names the function, the unknown key and the known ones', () => {
    expect(() => checkKeys('resize', { sise: 3 }, ['size', 'scale'])).toThrow(new TypeError("resize: 'sise' must be one of the known options (size, scale), got an unknown option"));
    expect(() => checkKeys('Net', { dept: 3 }, { depth: true }, 'config')).toThrow(new TypeError("Net: 'dept' must be one of the known config fields (depth), got an unknown config field"));
  });
  it('refuses what is not a plain object', () => {
    for (const bad of [null, 3, 'depth', [1]]) expect(() => checkKeys('Net', bad, ['depth'], 'config')).toThrow(TypeError);
    expect(() => checkKeys('Net', null, ['depth'], 'config')).toThrow("Net: 'config' must be an object, got null");
  });
});

describe('argument error messages', () => {
  it('say the op, the argument, what was expected and what came', () => {
    expect(typeError('conv2d', 'weight', 'a Tensor', 3)).toEqual(new TypeError("conv2d: 'weight' must be a Tensor, got 3"));
    expect(rangeError('pad', 'mode', "one of 'constant'", 'x')).toBeInstanceOf(RangeError);
    expect(describeValue(new Float32Array(4))).toBe('Float32Array of length 4');
  });
});
