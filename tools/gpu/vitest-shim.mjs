// The part of vitest's API that packages/cuda-core/test/cuda.test.ts and its helpers use,
// on Node's built-in test runner: the GPU machine has Node but no node_modules, so the
// suite is bundled with this module standing in for 'vitest' (see pack.mjs). Skipped
// tests stay skipped in the report.
import assert from 'node:assert/strict';
import { describe as nodeDescribe, it as nodeIt } from 'node:test';
import { isDeepStrictEqual, inspect } from 'node:util';

function withSkip(fn) {
  const wrapped = (name, body) => fn(name, body);
  wrapped.skipIf = (condition) => (name, body) => fn(name, { skip: Boolean(condition) }, body);
  return wrapped;
}

export const describe = withSkip((name, options, body) => (body === undefined ? nodeDescribe(name, options) : nodeDescribe(name, options, body)));
export const it = withSkip((name, options, body) => (body === undefined ? nodeIt(name, options) : nodeIt(name, options, body)));
export const test = it;

const show = (v) => inspect(v, { depth: 4, maxArrayLength: 8 });

// vitest's toEqual: TypedArrays and arrays element by element, objects by own enumerable keys.
function looselyEqual(a, b) {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    if (a.constructor !== b.constructor || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i]) && a[i] !== b[i]) return false;
    return true;
  }
  return isDeepStrictEqual(a, b);
}

function matchers(actual, negate, label) {
  const check = (pass, message) => {
    if (pass === negate) assert.fail(`${label ? `${label}: ` : ''}${negate ? 'not ' : ''}${message}`);
  };
  return {
    toBe: (expected) => check(Object.is(actual, expected), `expected ${show(actual)} to be ${show(expected)}`),
    toEqual: (expected) => check(looselyEqual(actual, expected), `expected ${show(actual)} to equal ${show(expected)}`),
    toBeNull: () => check(actual === null, `expected ${show(actual)} to be null`),
    toBeGreaterThan: (n) => check(actual > n, `expected ${show(actual)} > ${n}`),
    toBeGreaterThanOrEqual: (n) => check(actual >= n, `expected ${show(actual)} >= ${n}`),
    toBeLessThan: (n) => check(actual < n, `expected ${show(actual)} < ${n}`),
    // vitest's rule: |actual - expected| < 10^-digits / 2.
    toBeCloseTo: (expected, digits = 2) =>
      check(Math.abs(actual - expected) < 10 ** -digits / 2, `expected ${show(actual)} to be close to ${show(expected)} (${digits} digits)`),
    toBeLessThanOrEqual: (n) => check(actual <= n, `expected ${show(actual)} <= ${n}`),
    toMatch: (re) => check(typeof re === 'string' ? String(actual).includes(re) : re.test(String(actual)), `expected ${show(actual)} to match ${re}`),
    toContain: (part) => check(actual != null && actual.includes(part), `expected ${show(actual)} to contain ${show(part)}`),
    toBeInstanceOf: (cls) => check(actual instanceof cls, `expected ${show(actual)} to be an instance of ${cls.name}`),
    toThrow: (pattern) => {
      let thrown;
      try {
        actual();
      } catch (err) {
        thrown = err;
      }
      // As vitest: nothing (any error), an error class, or a string / RegExp for the message.
      const matches =
        thrown !== undefined &&
        (pattern === undefined ||
          (typeof pattern === 'function' ? thrown instanceof pattern : String(thrown.message).match(pattern) !== null));
      check(matches, `expected the function to throw${pattern ? ` matching ${pattern}` : ''}, got ${show(thrown)}`);
    },
  };
}

export function expect(actual, label) {
  const m = matchers(actual, false, label);
  m.not = matchers(actual, true, label);
  return m;
}
