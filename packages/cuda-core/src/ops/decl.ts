// Op declarations: each op states its inputs (dtypes, rank) and attributes (types, ranges,
// defaults) once; parse() validates and normalises a call before its one kernel runs.
import type { DType } from '../dtype.js';
import { checkKeys, rangeError, stateError, typeError } from '../errors.js';
import { formatShape, Tensor, type NativeStorageRef } from './tensor-ref.js';

export interface TensorInputSpec {
  dtypes?: readonly DType[];
  /** Exact rank, or an inclusive [min, max] range. */
  rank?: number | readonly [number, number];
  optional?: boolean;
}

export interface AttrSpec<T> {
  readonly expected: string;
  parse(op: string, name: string, value: unknown): T;
}

export type AttrValues<A> = { [K in keyof A]: A[K] extends AttrSpec<infer T> ? T : never };
export type InputValues<I> = { [K in keyof I]: I[K] extends { optional: true } ? Tensor | undefined : Tensor };

export interface OpDecl<I extends Record<string, TensorInputSpec>, A extends Record<string, AttrSpec<unknown>>> {
  readonly name: string;
  readonly inputs: I;
  readonly attrs: A;
  /** Validates tensors and attributes; throws TypeError/RangeError naming the argument. */
  parse(inputs: { [K in keyof I]?: unknown }, attrs?: unknown): { t: InputValues<I>; a: AttrValues<A> };
}

/** Every declared op, by name: the engine's op list. */
export const opDeclarations = new Map<string, OpDecl<Record<string, TensorInputSpec>, Record<string, AttrSpec<unknown>>>>();

export function defineOp<I extends Record<string, TensorInputSpec>, A extends Record<string, AttrSpec<unknown>> = {}>(
  name: string,
  inputs: I,
  attrs: A = {} as A,
): OpDecl<I, A> {
  const decl: OpDecl<I, A> = {
    name,
    inputs,
    attrs,
    parse(given, attrValues) {
      const t: Record<string, Tensor | undefined> = {};
      for (const [key, spec] of Object.entries(inputs)) t[key] = checkTensor(name, key, given[key], spec);
      checkSameDevice(name, t);
      const opts = (attrValues === undefined ? {} : attrValues) as Record<string, unknown>;
      checkKeys(name, opts, attrs);
      const a: Record<string, unknown> = {};
      for (const [key, spec] of Object.entries(attrs)) a[key] = spec.parse(name, key, opts[key]);
      return { t: t as InputValues<I>, a: a as AttrValues<A> };
    },
  };
  if (opDeclarations.has(name)) throw new Error(`defineOp: '${name}' is declared twice`);
  opDeclarations.set(name, decl as never);
  return decl;
}

export function checkTensor(op: string, name: string, value: unknown, spec: TensorInputSpec = {}): Tensor | undefined {
  if (value === undefined || value === null) {
    if (spec.optional) return undefined;
    throw typeError(op, name, 'a Tensor', value);
  }
  if (!(value instanceof Tensor)) throw typeError(op, name, 'a Tensor', value);
  if (value.isDisposed) throw new Error(`${op}: '${name}' was disposed`);
  if (spec.dtypes && !spec.dtypes.includes(value.dtype))
    throw typeError(op, name, `of dtype ${spec.dtypes.join(' or ')}`, `${value.dtype} ${formatShape(value.shape)}`, true);
  if (spec.rank !== undefined) {
    const [lo, hi] = typeof spec.rank === 'number' ? [spec.rank, spec.rank] : spec.rank;
    if (value.rank < lo || value.rank > hi) {
      const want = lo === hi ? `rank ${lo}` : `rank ${lo} to ${hi}`;
      throw rangeError(op, name, want, `rank ${value.rank} ${formatShape(value.shape)}`, true);
    }
  }
  return value;
}

/** Every tensor of one op must be on one device: the error names the op and both arguments. */
export function checkSameDevice(op: string, tensors: Record<string, Tensor | undefined>): void {
  let firstKey = '';
  let first: Tensor | undefined;
  for (const [key, t] of Object.entries(tensors)) {
    if (!t) continue;
    if (!first) {
      first = t;
      firstKey = key;
    } else if (t._deviceIndex !== first._deviceIndex) {
      throw stateError(
        op,
        `'${key}' is on ${t.deviceId} but '${firstKey}' is on ${first.deviceId}; move them to one device with .to()`,
      );
    }
  }
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

export interface IntOptions {
  min?: number;
  max?: number;
  default?: number;
}

function rangeText(o: { min?: number; max?: number }): string {
  if (o.min !== undefined && o.max !== undefined) return ` in [${o.min}, ${o.max}]`;
  if (o.min !== undefined) return ` >= ${o.min}`;
  if (o.max !== undefined) return ` <= ${o.max}`;
  return '';
}

function checkIntValue(op: string, name: string, v: unknown, o: IntOptions, what: string): number {
  if (!isInt(v)) throw typeError(op, name, what, v);
  if ((o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max))
    throw rangeError(op, name, `an integer${rangeText(o)}`, v);
  return v;
}

export const attr = {
  int(o: IntOptions = {}): AttrSpec<number> {
    const expected = `an integer${rangeText(o)}`;
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined && o.default !== undefined) return o.default;
        return checkIntValue(op, name, value, o, expected);
      },
    };
  },
  /** An integer or a tuple of `length` integers (a scalar is repeated). */
  ints(length: number, o: IntOptions = {}): AttrSpec<number[]> {
    const expected = `an integer or ${length} integers${rangeText(o)}`;
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined && o.default !== undefined) return new Array(length).fill(o.default);
        if (isInt(value)) return new Array(length).fill(checkIntValue(op, name, value, o, expected));
        if (!Array.isArray(value)) throw typeError(op, name, expected, value);
        if (value.length !== length) throw rangeError(op, name, `${length} integers`, `[${value.join(',')}]`, true);
        return value.map((v) => checkIntValue(op, name, v, o, expected));
      },
    };
  },
  /** A list of integers of any length. */
  intList(o: IntOptions & { optional?: boolean } = {}): AttrSpec<number[] | undefined> {
    const expected = `an array of integers${rangeText(o)}`;
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined && o.optional) return undefined;
        if (!Array.isArray(value)) throw typeError(op, name, expected, value);
        return value.map((v) => checkIntValue(op, name, v, o, expected));
      },
    };
  },
  number(o: { min?: number; max?: number; default?: number; exclusiveMin?: boolean } = {}): AttrSpec<number> {
    const expected = `a finite number${o.exclusiveMin ? ` > ${o.min}` : rangeText(o)}`;
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined && o.default !== undefined) return o.default;
        if (typeof value !== 'number') throw typeError(op, name, expected, value);
        if (!Number.isFinite(value)) throw rangeError(op, name, expected, value);
        if (o.min !== undefined && (o.exclusiveMin ? value <= o.min : value < o.min)) throw rangeError(op, name, expected, value);
        if (o.max !== undefined && value > o.max) throw rangeError(op, name, expected, value);
        return value;
      },
    };
  },
  /** A number that may be left out (undefined stays undefined). */
  optionalNumber(): AttrSpec<number | undefined> {
    const expected = 'a number or undefined';
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined) return undefined;
        if (typeof value !== 'number' || Number.isNaN(value)) throw typeError(op, name, expected, value);
        return value;
      },
    };
  },
  bool(o: { default?: boolean } = {}): AttrSpec<boolean> {
    return {
      expected: 'a boolean',
      parse(op, name, value) {
        if (value === undefined && o.default !== undefined) return o.default;
        if (typeof value !== 'boolean') throw typeError(op, name, 'a boolean', value);
        return value;
      },
    };
  },
  oneOf<T extends string>(values: readonly T[], o: { default?: T } = {}): AttrSpec<T> {
    const expected = `one of ${values.map((v) => `'${v}'`).join(', ')}`;
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined && o.default !== undefined) return o.default;
        if (typeof value !== 'string') throw typeError(op, name, expected, value);
        if (!values.includes(value as T)) throw rangeError(op, name, expected, value);
        return value as T;
      },
    };
  },
  /** Axis (or list of axes) left unresolved: resolve with {@link normalizeAxes} once the rank is known. */
  axes(o: { optional?: boolean } = {}): AttrSpec<number[] | undefined> {
    const expected = 'an integer axis or an array of axes';
    return {
      expected,
      parse(op, name, value) {
        if (value === undefined && o.optional) return undefined;
        if (isInt(value)) return [value];
        if (Array.isArray(value) && value.every(isInt)) return value as number[];
        throw typeError(op, name, expected, value);
      },
    };
  },
};

/** Resolves negative axes against `rank` and rejects out-of-range or repeated ones. */
export function normalizeAxes(op: string, name: string, axes: readonly number[], rank: number): number[] {
  const seen = new Set<number>();
  const lo = rank === 0 ? -1 : -rank;
  const hi = rank === 0 ? 0 : rank - 1;
  return axes.map((axis) => {
    if (axis < lo || axis > hi) throw rangeError(op, name, `an axis in [${lo}, ${hi}]`, axis);
    const a = axis < 0 ? axis + Math.max(rank, 1) : axis;
    if (seen.has(a)) throw rangeError(op, name, 'distinct axes', `[${axes.join(',')}]`, true);
    seen.add(a);
    return a;
  });
}

export function normalizeAxis(op: string, name: string, axis: number, rank: number): number {
  return normalizeAxes(op, name, [axis], rank)[0];
}

/** (storage, offset) as the kernels take a tensor. */
export function ref(t: Tensor): [NativeStorageRef, number] {
  return [t._storage('kernel'), t._offset];
}
