// 2-D convolution and transposed convolution (PyTorch semantics). The native kernels pick
// implicit-im2col GEMM or direct loops by shape (native/cpu/conv.cpp).
import { attr, defineOp, ref } from './decl.js';
import { empty, formatShape, kernels, rangeError, record, registerGradient, Tensor, uninitialized } from './tensor-ref.js';
import { HOST } from '../tensor.js';
import { reshape } from './shape.js';
import { BINARY_CODES, UNARY_CODES } from './unary-codes.js';

const F32 = ['float32'] as const;

/** Stride, padding and dilation as conv2d takes them. */
export interface Conv2dOptions {
  /** One number, [sh, sw]. Default 1. */
  stride?: number | number[];
  /** One number, [ph, pw], or asymmetric [top, bottom, left, right]. Default 0. */
  padding?: number | number[];
  /** One number, [dh, dw]. Default 1. */
  dilation?: number | number[];
  /** Channel groups; groups = in channels = out channels is a depthwise convolution. Default 1. */
  groups?: number;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns added to one side of the output, < stride or < dilation. Default 0. */
  outputPadding?: number | number[];
}

/** Padding as one number, [ph, pw] or [top, bottom, left, right] -> [top, bottom, left, right]. */
const paddingAttr = {
  expected: 'an integer, [ph, pw] or [top, bottom, left, right], all >= 0',
  parse(op: string, name: string, value: unknown): number[] {
    const spec = attr.intList({ min: 0 });
    if (value === undefined) return [0, 0, 0, 0];
    if (typeof value === 'number') value = [value];
    const v = spec.parse(op, name, value)!;
    if (v.length === 1) return [v[0], v[0], v[0], v[0]];
    if (v.length === 2) return [v[0], v[0], v[1], v[1]];
    if (v.length === 4) return v;
    throw rangeError(op, name, this.expected, `[${v.join(',')}]`, true);
  },
};

const convAttrs = {
  stride: attr.ints(2, { min: 1, default: 1 }),
  padding: paddingAttr,
  dilation: attr.ints(2, { min: 1, default: 1 }),
  groups: attr.int({ min: 1, default: 1 }),
};
const conv2dDecl = defineOp('conv2d', { input: { dtypes: F32, rank: 4 }, weight: { dtypes: F32, rank: 4 }, bias: { dtypes: F32, rank: 1, optional: true } }, convAttrs);
const conv2dReluDecl = defineOp('conv2d_relu', { input: { dtypes: F32, rank: 4 }, weight: { dtypes: F32, rank: 4 }, bias: { dtypes: F32, rank: 1, optional: true } }, convAttrs);
const residualTensors = { input: { dtypes: F32, rank: 4 }, weight: { dtypes: F32, rank: 4 }, bias: { dtypes: F32, rank: 1, optional: true }, residual: { dtypes: F32, rank: 4 } } as const;
const conv2dAddDecl = defineOp('conv2d_add', residualTensors, convAttrs);
const conv2dAddReluDecl = defineOp('conv2d_add_relu', residualTensors, convAttrs);
const convT2dDecl = defineOp(
  'conv_transpose2d',
  { input: { dtypes: F32, rank: 4 }, weight: { dtypes: F32, rank: 4 }, bias: { dtypes: F32, rank: 1, optional: true } },
  { ...convAttrs, outputPadding: attr.ints(2, { min: 0, default: 0 }) },
);

/** The native kernels' geometry: [N, C, H, W, O, kh, kw, sh, sw, pt, pl, dh, dw, groups, outH, outW]. */
type Geometry = number[];

function outSize(op: string, inSize: number, k: number, s: number, p0: number, p1: number, d: number): number {
  const span = inSize + p0 + p1 - d * (k - 1) - 1;
  if (span < 0) throw rangeError(op, 'input', `spatial size large enough for the dilated kernel (${d * (k - 1) + 1}) after padding`, `${inSize} + padding ${p0 + p1}`, true);
  return Math.floor(span / s) + 1;
}

/**
 * 2-D convolution. input [N, C, H, W], weight [O, C / groups, kh, kw], bias [O].
 * Output [N, O, outH, outW] with outH = floor((H + top + bottom - dilation*(kh-1) - 1) / stride) + 1.
 */
export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor, options?: Conv2dOptions): Tensor {
  return convForward(conv2dDecl, input, weight, bias, options, false);
}

/**
 * relu(conv2d(input, weight, bias, options)) in one op: the ReLU is applied to each image's
 * output right after its product (no second tensor, no second pass over memory), and the
 * tape keeps one entry. Same arguments, shapes and errors as {@link conv2d}; the result equals
 * relu(conv2d(...)) exactly, gradients included.
 */
export function conv2dRelu(input: Tensor, weight: Tensor, bias?: Tensor, options?: Conv2dOptions): Tensor {
  return convForward(conv2dReluDecl, input, weight, bias, options, true);
}

/**
 * conv2d(input, weight, bias, options) + residual in one op: a residual connection (ResNet's
 * x + F(x)) added where the convolution writes its output (Winograd, as it writes each row) or
 * in one pass after it, instead of an add op with its own output. residual has the output's
 * shape [N, O, outH, outW]. Equal to add(conv2d(...), residual) exactly, gradients included.
 */
export function conv2dAdd(input: Tensor, weight: Tensor, bias: Tensor | undefined, residual: Tensor, options?: Conv2dOptions): Tensor {
  return convForward(conv2dAddDecl, input, weight, bias, options, false, residual);
}

/** relu(conv2d(input, weight, bias, options) + residual) in one op (see {@link conv2dAdd}). */
export function conv2dAddRelu(input: Tensor, weight: Tensor, bias: Tensor | undefined, residual: Tensor, options?: Conv2dOptions): Tensor {
  return convForward(conv2dAddReluDecl, input, weight, bias, options, true, residual);
}

function convForward(
  decl: typeof conv2dDecl | typeof conv2dAddDecl,
  input: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  options: Conv2dOptions | undefined,
  relu: boolean,
  residual?: Tensor,
): Tensor {
  const op = decl.name;
  const { t, a } = (decl as typeof conv2dAddDecl).parse({ input, weight, bias, residual: residual as Tensor }, options);
  const [n, c, h, w] = t.input.shape;
  const [o, cg, kh, kw] = t.weight.shape;
  const [pt, pb, pl, pr] = a.padding;
  if (c % a.groups !== 0) throw rangeError(op, 'groups', `a divisor of the input channels (${c})`, a.groups);
  if (o % a.groups !== 0) throw rangeError(op, 'groups', `a divisor of the output channels (${o})`, a.groups);
  if (cg * a.groups !== c)
    throw rangeError(op, 'weight', `[O, ${c / a.groups}, kh, kw] for ${c} input channels in ${a.groups} group(s)`, `shape ${formatShape(t.weight.shape)}`, true);
  if (o === 0 || kh === 0 || kw === 0) throw rangeError(op, 'weight', 'non-empty', `shape ${formatShape(t.weight.shape)}`, true);
  if (t.bias && t.bias.shape[0] !== o) throw rangeError(op, 'bias', `shape [${o}]`, `shape ${formatShape(t.bias.shape)}`, true);
  if (c === 0 || h === 0 || w === 0) throw rangeError(op, 'input', 'at least one channel and a non-empty spatial size', `shape ${formatShape(t.input.shape)}`, true);
  const outH = outSize(op, h, kh, a.stride[0], pt, pb, a.dilation[0]);
  const outW = outSize(op, w, kw, a.stride[1], pl, pr, a.dilation[1]);
  const geom: Geometry = [n, c, h, w, o, kh, kw, a.stride[0], a.stride[1], pt, pl, a.dilation[0], a.dilation[1], a.groups, outH, outW];
  const res = (t as { residual?: Tensor }).residual;
  if (res && (res.shape[0] !== n || res.shape[1] !== o || res.shape[2] !== outH || res.shape[3] !== outW))
    throw rangeError(op, 'residual', `the output's shape [${n}, ${o}, ${outH}, ${outW}]`, `shape ${formatShape(res.shape)}`, true);
  const out = uninitialized([n, o, outH, outW], 'float32', t.input._deviceIndex);  // every path writes each output element
  const biasRef = t.bias ? ref(t.bias) : [null, 0];
  if (n > 0 && res && t.input._deviceIndex !== HOST) {
    // On a device: the convolution, then the residual and the ReLU in place with their own kernels.
    kernels.conv2d_forward(...ref(out), ...ref(t.input), ...ref(t.weight), ...biasRef, geom, false);
    const shape = [...out.shape];
    kernels.binary(BINARY_CODES.add, ...ref(out), ...ref(out), ...ref(res), shape, shape, shape);
    if (relu) kernels.unary(UNARY_CODES.relu, ...ref(out), ...ref(out), out.size, 0, 0);
  } else if (n > 0) kernels.conv2d_forward(...ref(out), ...ref(t.input), ...ref(t.weight), ...biasRef, geom, relu, ...(res ? ref(res) : [null, 0]));
  // The fused ReLU's gradient masks by the output (out > 0 exactly where the pre-activation was).
  record(op, res ? [t.input, t.weight, t.bias, res] : [t.input, t.weight, t.bias], out, relu ? { input: t.input, weight: t.weight, out } : { input: t.input, weight: t.weight }, { geom });
  return out;
}

registerGradient('conv2d', (ctx, g) => convGradient(ctx.saved.input, ctx.saved.weight, ctx.attrs.geom as Geometry, ctx.needsGrad, g));

/** The gradient reaching the convolution of a fused ReLU: relu's backward kernel with the output for its input (out > 0 exactly where the input was). */
function reluGradient(out: Tensor, g: Tensor): Tensor {
  const gy = empty(g.shape, 'float32', g._deviceIndex);
  kernels.unary_backward(UNARY_CODES.relu, ...ref(gy), ...ref(g), ...ref(out), ...ref(out), g.size, 0, 0);
  return gy;
}

registerGradient('conv2d_relu', (ctx, g) => {
  const gy = reluGradient(ctx.saved.out, g);
  try {
    return convGradient(ctx.saved.input, ctx.saved.weight, ctx.attrs.geom as Geometry, ctx.needsGrad, gy);
  } finally {
    gy.dispose();
  }
});

// The residual's gradient is the output's (a view of it, as add's is).
registerGradient('conv2d_add', (ctx, g) => [
  ...convGradient(ctx.saved.input, ctx.saved.weight, ctx.attrs.geom as Geometry, ctx.needsGrad, g),
  ctx.needsGrad[3] ? reshape(g, g.shape) : null,
]);

registerGradient('conv2d_add_relu', (ctx, g) => {
  const gy = reluGradient(ctx.saved.out, g);
  const grads = convGradient(ctx.saved.input, ctx.saved.weight, ctx.attrs.geom as Geometry, ctx.needsGrad, gy);
  if (ctx.needsGrad[3]) return [...grads, gy];
  gy.dispose();
  return [...grads, null];
});

/** The bias gradient of a convolution: g [N, C, H, W] summed per channel, in one pass. */
function biasGradient(g: Tensor): Tensor {
  const [n, c, h, w] = g.shape;
  const gb = empty([c], 'float32', g._deviceIndex);
  kernels.channel_sum(...ref(gb), ...ref(g), n, c, h * w);
  return gb;
}

/** Gradients of conv2d with respect to input, weight and bias (null where not needed). */
function convGradient(input: Tensor, weight: Tensor, geom: Geometry, needsGrad: readonly boolean[], g: Tensor): (Tensor | null)[] {
  let gx: Tensor | null = null;
  let gw: Tensor | null = null;
  if (needsGrad[0]) {
    gx = empty(input.shape, 'float32', g._deviceIndex);
    kernels.conv2d_backward_data(...ref(gx), ...ref(g), ...ref(weight), null, 0, geom);
  }
  if (needsGrad[1]) {
    gw = empty(weight.shape, 'float32', g._deviceIndex);
    kernels.conv2d_backward_filter(...ref(gw), ...ref(input), ...ref(g), geom);
  }
  return [gx, gw, needsGrad[2] ? biasGradient(g) : null];
}

/**
 * Transposed 2-D convolution (the gradient of conv2d with respect to its input), as PyTorch's
 * conv_transpose2d. input [N, Cin, H, W], weight [Cin, Cout / groups, kh, kw], bias [Cout].
 * outH = (H - 1)*stride - top - bottom + dilation*(kh - 1) + outputPadding + 1.
 */
export function convTranspose2d(input: Tensor, weight: Tensor, bias?: Tensor, options?: ConvTranspose2dOptions): Tensor {
  const op = 'conv_transpose2d';
  const { t, a } = convT2dDecl.parse({ input, weight, bias }, options);
  const [n, cin, h, w] = t.input.shape;
  const [wcin, coutg, kh, kw] = t.weight.shape;
  const [pt, pb, pl, pr] = a.padding;
  if (wcin !== cin) throw rangeError(op, 'weight', `${cin} input channels in dimension 0`, `shape ${formatShape(t.weight.shape)}`, true);
  if (cin % a.groups !== 0) throw rangeError(op, 'groups', `a divisor of the input channels (${cin})`, a.groups);
  if (coutg === 0 || kh === 0 || kw === 0) throw rangeError(op, 'weight', 'non-empty', `shape ${formatShape(t.weight.shape)}`, true);
  const cout = coutg * a.groups;
  if (t.bias && t.bias.shape[0] !== cout) throw rangeError(op, 'bias', `shape [${cout}]`, `shape ${formatShape(t.bias.shape)}`, true);
  for (let i = 0; i < 2; i++)
    if (a.outputPadding[i] >= Math.max(a.stride[i], a.dilation[i]))
      throw rangeError(op, 'outputPadding', 'smaller than stride or dilation', `[${a.outputPadding.join(',')}]`, true);
  if (cin === 0 || h === 0 || w === 0) throw rangeError(op, 'input', 'at least one channel and a non-empty spatial size', `shape ${formatShape(t.input.shape)}`, true);
  const outH = (h - 1) * a.stride[0] - pt - pb + a.dilation[0] * (kh - 1) + a.outputPadding[0] + 1;
  const outW = (w - 1) * a.stride[1] - pl - pr + a.dilation[1] * (kw - 1) + a.outputPadding[1] + 1;
  if (outH < 1 || outW < 1) throw rangeError(op, 'padding', 'small enough for a non-empty output', `output ${outH}x${outW}`, true);
  // As a convolution from the output (C = cout) to the input (O = cin).
  const geom: Geometry = [n, cout, outH, outW, cin, kh, kw, a.stride[0], a.stride[1], pt, pl, a.dilation[0], a.dilation[1], a.groups, h, w];
  const out = empty([n, cout, outH, outW], 'float32', t.input._deviceIndex);
  if (n > 0) kernels.conv2d_backward_data(...ref(out), ...ref(t.input), ...ref(t.weight), ...(t.bias ? ref(t.bias) : [null, 0]), geom);
  record('conv_transpose2d', [t.input, t.weight, t.bias], out, { input: t.input, weight: t.weight }, { geom });
  return out;
}

registerGradient('conv_transpose2d', (ctx, g) => {
  const geom = ctx.attrs.geom as Geometry;
  const { input, weight } = ctx.saved;
  let gx: Tensor | null = null;
  let gw: Tensor | null = null;
  if (ctx.needsGrad[0]) {
    gx = empty(input.shape, 'float32', g._deviceIndex);
    kernels.conv2d_forward(...ref(gx), ...ref(g), ...ref(weight), null, 0, geom);
  }
  if (ctx.needsGrad[1]) {
    gw = empty(weight.shape, 'float32', g._deviceIndex);
    // Roles swap: the transposed conv's output gradient is the conv's input.
    kernels.conv2d_backward_filter(...ref(gw), ...ref(g), ...ref(input), geom);
  }
  const gb = ctx.needsGrad[2] ? biasGradient(g) : null;
  return [gx, gw, gb];
});
