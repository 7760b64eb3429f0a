// Elementwise ops: binary with NumPy broadcasting, unary maps, and their gradients.
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, Tensor, typeError, uninitialized, type GradContext, type Shape } from './tensor-ref.js';
import { BINARY_CODES, UNARY_CODES } from './unary-codes.js';
import { sumToShape } from './reduce.js';
import { tensor, type DeviceSpec } from '../tensor.js';
import { setAutogradHelpers } from '../autograd.js';

const F32 = ['float32'] as const;

/** The broadcast shape of two shapes, NumPy rules. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw rangeError(op, 'b', `a shape broadcastable with ${formatShape(a)}`, formatShape(b), true);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function padShape(shape: Shape, rank: number): number[] {
  return [...new Array(rank - shape.length).fill(1), ...shape];
}

type BinaryName = keyof typeof BINARY_CODES;
const GREATER_EQUAL = 7;
const LESS_EQUAL = 8;

const binaryDecls = Object.fromEntries(
  (Object.keys(BINARY_CODES) as BinaryName[]).map((name) => [name, defineOp(name, { a: { dtypes: F32 }, b: { dtypes: F32 } })]),
) as Record<BinaryName, ReturnType<typeof defineOp<{ a: { dtypes: typeof F32 }; b: { dtypes: typeof F32 } }>>>;

// On `like`'s device, so a number operand never mixes devices.
function scalarLike(value: number, like: Tensor | number): Tensor {
  const device = typeof like === 'number' ? 'cpu' : like.deviceId;
  return tensor(new Float32Array([value]), [], 'float32', device as DeviceSpec);
}

function binary(name: BinaryName, a: Tensor | number, b: Tensor | number): Tensor {
  // Adding or subtracting a finite number is one affine pass with the same result bit for bit
  // (x * 1 + c, x * -1 + c): no 0-d operand to make, which on a device means a host upload.
  if ((name === 'add' || name === 'sub') && (typeof a === 'number') !== (typeof b === 'number')) {
    const [x, c] = typeof a === 'number' ? [b as Tensor, a] : [a, b as number];
    if (x instanceof Tensor && x.dtype === 'float32' && Number.isFinite(c))
      return name === 'add' ? affine(x, 1, c) : x === a ? affine(x, 1, -c) : affine(x, -1, c);
  }
  // Otherwise a number operand becomes a 0-d tensor that broadcasts.
  const ta = typeof a === 'number' ? scalarLike(a, b) : a;
  const tb = typeof b === 'number' ? scalarLike(b, a) : b;
  try {
    const { t } = binaryDecls[name].parse({ a: ta, b: tb });
    const shape = broadcastShapes(name, t.a.shape, t.b.shape);
    const out = uninitialized(shape, 'float32', t.a._deviceIndex);
    kernels.binary(BINARY_CODES[name], ...ref(out), ...ref(t.a), ...ref(t.b), shape, padShape(t.a.shape, shape.length), padShape(t.b.shape, shape.length));
    const saved: Record<string, Tensor> = {};
    if (name !== 'add' && name !== 'sub') Object.assign(saved, { a: t.a, b: t.b });
    if (name === 'pow' || name === 'div') saved.out = out;
    record(name, [t.a, t.b], out, saved);
    return out;
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}

/** a + b with broadcasting. */
export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary('add', a, b);
/** a - b with broadcasting. */
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary('sub', a, b);
/** a * b with broadcasting. */
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary('mul', a, b);
/** a / b with broadcasting. */
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary('div', a, b);
/** a ** b with broadcasting. */
export const pow = (a: Tensor | number, b: Tensor | number): Tensor => binary('pow', a, b);
/** Elementwise maximum (the gradient goes to `a` on ties). */
export const maximum = (a: Tensor | number, b: Tensor | number): Tensor => binary('maximum', a, b);
/** Elementwise minimum (the gradient goes to `a` on ties). */
export const minimum = (a: Tensor | number, b: Tensor | number): Tensor => binary('minimum', a, b);

function reduceTo(g: Tensor, shape: Shape): Tensor {
  return sumToShape(g, shape);
}

registerGradient('add', (ctx, g) => [
  ctx.needsGrad[0] ? reduceTo(g, ctx.inputShapes[0]) : null,
  ctx.needsGrad[1] ? reduceTo(g, ctx.inputShapes[1]) : null,
]);
registerGradient('sub', (ctx, g) => [
  ctx.needsGrad[0] ? reduceTo(g, ctx.inputShapes[0]) : null,
  ctx.needsGrad[1] ? reduceAndDispose(neg(g), ctx.inputShapes[1]) : null,
]);

function reduceAndDispose(t: Tensor, shape: Shape): Tensor {
  const r = sumToShape(t, shape);
  t.dispose();
  return r;
}

registerGradient('mul', (ctx, g) => {
  const { a, b } = ctx.saved;
  return [
    ctx.needsGrad[0] ? reduceAndDispose(mul(g, b), ctx.inputShapes[0]) : null,
    ctx.needsGrad[1] ? reduceAndDispose(mul(g, a), ctx.inputShapes[1]) : null,
  ];
});
registerGradient('div', (ctx, g) => {
  const { b, out } = ctx.saved;
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (ctx.needsGrad[0]) ga = reduceAndDispose(div(g, b), ctx.inputShapes[0]);
  if (ctx.needsGrad[1]) {
    // d(a/b)/db = -out / b
    const q = div(out, b);
    const t = mul(g, q);
    q.dispose();
    gb = reduceAndDispose(neg(t), ctx.inputShapes[1]);
    t.dispose();
  }
  return [ga, gb];
});
registerGradient('pow', (ctx, g) => {
  const { a, b, out } = ctx.saved;
  let ga: Tensor | null = null;
  let gb: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    // b * a^(b-1) = b * out / a, computed directly to stay finite at a = 0
    const bm1 = sub(b, 1);
    const p = pow(a, bm1);
    const d = mul(p, b);
    const t = mul(g, d);
    [bm1, p, d].forEach((x) => x.dispose());
    ga = reduceAndDispose(t, ctx.inputShapes[0]);
  }
  if (ctx.needsGrad[1]) {
    const la = log(a);
    const d = mul(out, la);
    const t = mul(g, d);
    [la, d].forEach((x) => x.dispose());
    gb = reduceAndDispose(t, ctx.inputShapes[1]);
  }
  return [ga, gb];
});

// The gradient goes to `a` where mask(a, b) holds, to `b` elsewhere.
function selectGradient(ctx: GradContext, g: Tensor, maskCode: number): (Tensor | null)[] {
  const { a, b } = ctx.saved;
  const shape = [...ctx.outputShape];
  const maskA = empty(shape, 'float32', a._deviceIndex);
  kernels.binary(maskCode, ...ref(maskA), ...ref(a), ...ref(b), shape, padShape(a.shape, shape.length), padShape(b.shape, shape.length));
  const maskB = sub(1, maskA);
  const out = [
    ctx.needsGrad[0] ? reduceAndDispose(mul(g, maskA), ctx.inputShapes[0]) : null,
    ctx.needsGrad[1] ? reduceAndDispose(mul(g, maskB), ctx.inputShapes[1]) : null,
  ];
  maskA.dispose();
  maskB.dispose();
  return out;
}
registerGradient('maximum', (ctx, g) => selectGradient(ctx, g, GREATER_EQUAL));
registerGradient('minimum', (ctx, g) => selectGradient(ctx, g, LESS_EQUAL));

// ---- unary ---------------------------------------------------------------------

type UnaryName = keyof typeof UNARY_CODES;

const unaryDecls = {
  neg: defineOp('neg', { x: { dtypes: F32 } }),
  exp: defineOp('exp', { x: { dtypes: F32 } }),
  log: defineOp('log', { x: { dtypes: F32 } }),
  sqrt: defineOp('sqrt', { x: { dtypes: F32 } }),
  abs: defineOp('abs', { x: { dtypes: F32 } }),
  relu: defineOp('relu', { x: { dtypes: F32 } }),
  sigmoid: defineOp('sigmoid', { x: { dtypes: F32 } }),
  tanh: defineOp('tanh', { x: { dtypes: F32 } }),
  square: defineOp('square', { x: { dtypes: F32 } }),
  leaky_relu: defineOp('leaky_relu', { x: { dtypes: F32 } }, { negativeSlope: attr.number({ default: 0.01 }) }),
  clamp: defineOp('clamp', { x: { dtypes: F32 } }, { min: attr.optionalNumber(), max: attr.optionalNumber() }),
  affine: defineOp('affine', { x: { dtypes: F32 } }, { scale: attr.number({ default: 1 }), shift: attr.number({ default: 0 }) }),
  pow_scalar: defineOp('pow_scalar', { x: { dtypes: F32 } }, { exponent: attr.number() }),
};

// Which forward values each unary gradient reads.
const NEEDS_INPUT = new Set<UnaryName>(['log', 'abs', 'relu', 'leaky_relu', 'clamp', 'pow_scalar', 'square']);
const NEEDS_OUTPUT = new Set<UnaryName>(['exp', 'sqrt', 'sigmoid', 'tanh']);

function unary(name: UnaryName, x: Tensor, p0 = 0, p1 = 0, attrs: Record<string, unknown> = {}): Tensor {
  const out = uninitialized(x.shape, 'float32', x._deviceIndex);
  kernels.unary(UNARY_CODES[name], ...ref(out), ...ref(x), x.size, p0, p1);
  const saved: Record<string, Tensor> = {};
  if (NEEDS_INPUT.has(name)) saved.x = x;
  if (NEEDS_OUTPUT.has(name)) saved.y = out;
  record(name, [x], out, saved, { p0, p1, ...attrs });
  return out;
}

for (const name of Object.keys(UNARY_CODES) as UnaryName[]) {
  registerGradient(name, (ctx, g) => {
    const x = ctx.saved.x ?? g;
    const y = ctx.saved.y ?? g;
    const gx = empty(g.shape, 'float32', g._deviceIndex);
    kernels.unary_backward(UNARY_CODES[name], ...ref(gx), ...ref(g), ...ref(x), ...ref(y), g.size, ctx.attrs.p0 as number, ctx.attrs.p1 as number);
    return [gx];
  });
}

const simple = (name: Exclude<UnaryName, 'leaky_relu' | 'clamp' | 'affine' | 'pow_scalar'>) => (x: Tensor): Tensor => {
  const { t } = unaryDecls[name].parse({ x });
  return unary(name, t.x);
};

/** -x */
export const neg = simple('neg');
/** e^x */
export const exp = simple('exp');
/** Natural logarithm. */
export const log = simple('log');
export const sqrt = simple('sqrt');
export const abs = simple('abs');
export const relu = simple('relu');
/** 1 / (1 + e^-x), computed without overflow. */
export const sigmoid = simple('sigmoid');
export const tanh = simple('tanh');
/** x * x */
export const square = simple('square');

/** x for x > 0, negativeSlope * x otherwise (PyTorch's default slope 0.01). */
export function leakyRelu(x: Tensor, negativeSlope?: number): Tensor {
  const { t, a } = unaryDecls.leaky_relu.parse({ x }, { negativeSlope });
  return unary('leaky_relu', t.x, a.negativeSlope);
}

/** Limits x to [min, max]; either bound may be left out. The gradient passes where min <= x <= max. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  const { t, a } = unaryDecls.clamp.parse({ x }, { min, max });
  const lo = a.min ?? -Infinity;
  const hi = a.max ?? Infinity;
  if (lo > hi) throw rangeError('clamp', 'max', `>= min (${lo})`, hi);
  return unary('clamp', t.x, lo, hi);
}

/** x * scale + shift, one pass. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  const { t, a } = unaryDecls.affine.parse({ x }, { scale, shift });
  return unary('affine', t.x, a.scale, a.shift);
}

/** x ** exponent for a number exponent. */
export function powScalar(x: Tensor, exponent: number): Tensor {
  const { t, a } = unaryDecls.pow_scalar.parse({ x }, { exponent });
  return unary('pow_scalar', t.x, a.exponent);
}

/** @internal acc += g in place (same shape), for gradient accumulation. */
function addInto(acc: Tensor, g: Tensor): void {
  if (acc.shape.join(',') !== g.shape.join(',')) throw typeError('addInto', 'g', `shape ${formatShape(acc.shape)}`, g);
  kernels.binary(BINARY_CODES.add, ...ref(acc), ...ref(acc), ...ref(g), [...acc.shape], [...acc.shape], [...g.shape]);
}

function onesLike(t: Tensor): Tensor {
  return tensor(new Float32Array(t.size).fill(1), t.shape, 'float32', t.deviceId as DeviceSpec);
}

setAutogradHelpers({ addInto, add: (a, b) => add(a, b), onesLike });
