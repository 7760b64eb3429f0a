// The shared validation helpers every package words its argument errors with.
import { describe, expect, it } from 'vitest';
import { argmax, checkKeys, describeValue, measureFmaPeak, pad, randint, randn, randperm, rangeError, sum, tensor, typeError, type Tensor } from '../src/index.js';

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

describe('checkKeys, own keys only', () => {
  it('looks at the object\'s own keys, and the record\'s own keys', () => {
    // An inherited key is not given by the caller; a record's inherited names (toString) are not known ones.
    expect(() => checkKeys('op', Object.assign(Object.create({ inherited: 1 }), { a: 1 }), { a: true })).not.toThrow();
    expect(() => checkKeys('op', { toString: 1 }, { a: true })).toThrow("op: 'toString' must be one of the known options (a), got an unknown option");
    expect(() => checkKeys('op', { constructor: 1 }, ['a'])).toThrow(TypeError);
  });
});

describe('options of the engine functions outside the op declarations', () => {
  const grad = (): Tensor => {
    const p = randn([3]);
    p.requiresGrad = true;
    return sum(p);
  };
  // [function, call with the given options, every documented option]
  const cases: [string, (options: object) => unknown, object][] = [
    ['backward', (o) => grad().backward(undefined, o), { retainGraph: false }],
    ['measureFmaPeak', (o) => measureFmaPeak({ threads: 1, ms: 1, ...o }), { threads: 1, ms: 1 }],
    ['randint', (o) => randint(0, 4, [2], o), { device: 'cpu' }],
    ['randperm', (o) => randperm(4, o), { device: 'cpu' }],
    ['argmax', (o) => argmax(tensor([[1, 2, 3], [4, 0, 0]]), 0, o), { keepDims: true }],
    ['pad', (o) => pad(tensor([1, 2]), [1, 1], o), { mode: 'constant', value: 7 }],
  ];
  it.each(cases)('%s refuses a misspelt option, naming itself and the key', (fn, call) => {
    expect(() => call({ retainGraf: true })).toThrow(TypeError);
    expect(() => call({ retainGraf: true })).toThrow(new RegExp(`^${fn}: 'retainGraf' must be one of the known options \\(`));
  });
  it.each(cases)('%s still takes each documented option', (_fn, call, documented) => {
    expect(() => call(documented)).not.toThrow();
  });
  it('refuses an argument given again as an option instead of letting it win', () => {
    // Spread over the argument, { axis } and { pad } used to replace it without a word.
    expect(() => argmax(tensor([[1, 2, 3], [4, 0, 0]]), 0, { axis: 1 } as object)).toThrow("argmax: 'axis' must be one of the known options (keepDims), got an unknown option");
    expect(() => pad(tensor([1, 2]), [1, 1], { pad: [2, 2] } as object)).toThrow("pad: 'pad' must be one of the known options (mode, value), got an unknown option");
    expect(argmax(tensor([[1, 2, 3], [4, 0, 0]]), 0, { keepDims: true }).shape).toEqual([1, 3]);
    expect(Array.from(pad(tensor([1, 2]), [1, 1], { value: 7 }).data())).toEqual([7, 1, 2, 7]);
  });
});

describe('argument error messages', () => {
  it('say the op, the argument, what was expected and what came', () => {
    expect(typeError('conv2d', 'weight', 'a Tensor', 3)).toEqual(new TypeError("conv2d: 'weight' must be a Tensor, got 3"));
    expect(rangeError('pad', 'mode', "one of 'constant'", 'x')).toBeInstanceOf(RangeError);
    expect(describeValue(new Float32Array(4))).toBe('Float32Array of length 4');
  });
});

describe('op options', () => {
  it('an op refuses an option it does not declare, listing those it does, or none', async () => {
    const lr = await import('../src/index.js');
    const x = lr.ones([1, 1, 4, 4]);
    const w = lr.ones([1, 1, 3, 3]);
    expect(() => lr.conv2d(x, w, undefined, { paddin: 1 } as never)).toThrow(TypeError);
    expect(() => lr.conv2d(x, w, undefined, { paddin: 1 } as never)).toThrow(/conv2d: 'paddin' must be one of the known options \(.*padding.*\), got an unknown option/);
    expect(() => lr.conv2d(x, w, undefined, null as never)).toThrow("conv2d: 'options' must be an object, got null");
    expect(() => checkKeys('relu', { inplace: true }, {})).toThrow("relu: 'inplace' must be one of the known options (none), got an unknown option");
  });
});
