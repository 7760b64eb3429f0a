// One network description, two engines: a workload's forward(f, inputs) is written once
// against the small op set below and run either eagerly on lrface tensors or symbolically
// to emit an ONNX graph. Both read their weights from the same Params, so the two engines
// compute the same function on the same numbers.
import * as lr from '@lrface/cuda-core';
import { DataType, GraphBuilder } from './onnx.mjs';

/** Deterministic PRNG (mulberry32) with normal samples by Box-Muller. */
export function makeRng(seed) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = 1 - uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
  return { uniform, normal };
}

/** Float32Array of n samples from N(0, std^2) plus `mean`. */
export function randomNormal(n, seed, std = 1, mean = 0) {
  const r = makeRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * r.normal();
  return out;
}

const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** Named weights, created on first request from a seed derived from the name. */
export class Params {
  constructor(seed = 1) {
    this.seed = seed;
    /** @type {Map<string, { shape: number[], data: Float32Array }>} */
    this.map = new Map();
  }

  /**
   * @param {string} name @param {number[]} shape
   * @param {{ std?: number, mean?: number }} init
   */
  get(name, shape, init) {
    const have = this.map.get(name);
    if (have) {
      if (have.shape.join(',') !== shape.join(',')) throw new Error(`param '${name}' requested as [${shape}] but exists as [${have.shape}]`);
      return have;
    }
    let h = this.seed;
    for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    const p = { shape, data: randomNormal(size(shape), h, init.std ?? 1, init.mean ?? 0) };
    this.map.set(name, p);
    return p;
  }

  /** Conv weight [o, c, kh, kw] with He (fan-in) scaling, so deep ReLU stacks stay O(1). */
  convWeight(name, o, c, kh, kw) {
    return this.get(`${name}.weight`, [o, c, kh, kw], { std: Math.sqrt(2 / (c * kh * kw)) });
  }

  bias(name, n) {
    return this.get(`${name}.bias`, [n], { std: 0.1 });
  }

  /** PReLU slopes around Caffe's default 0.25. */
  slope(name, n) {
    return this.get(`${name}.slope`, [n], { std: 0.05, mean: 0.25 });
  }

  linearWeight(name, out, inF) {
    return this.get(`${name}.weight`, [out, inF], { std: Math.sqrt(1 / inF) });
  }

  count() {
    let n = 0;
    for (const p of this.map.values()) n += p.data.length;
    return n;
  }
}

const pair = (v) => (Array.isArray(v) ? v : [v, v]);

/** Conv geometry from the shared options: padding [top, bottom, left, right]. */
function convGeometry(opts) {
  const k = pair(opts.kernel);
  const stride = pair(opts.stride ?? 1);
  const dilation = pair(opts.dilation ?? 1);
  const p = opts.padding ?? 0;
  const padding = Array.isArray(p) ? (p.length === 4 ? p : [p[0], p[0], p[1], p[1]]) : [p, p, p, p];
  return { k, stride, dilation, padding, groups: opts.groups ?? 1 };
}

/**
 * The ops a workload may use. `name` identifies a layer's parameters.
 * conv(x, name, {in, out, kernel, padding?, stride?, dilation?, groups?, bias?}),
 * convRelu (relu of conv, same arguments), convAddRelu(x, name, o, residual) (relu of conv + residual), relu, add, maxPool(x, {kernel, stride?, padding?}), matmul, concat(xs, axis),
 * upsample2x (nearest), prelu(x, name, channels), flatten (to [N, rest]),
 * linear(x, name, {in, out}) (y = x W^T + b); and two for memory: block(fn) (a scope) and
 * chain(x, stages) (each intermediate freed once consumed).
 */

/** Runs a forward on lrface tensors. Parameters become engine tensors on first use. */
export class LrfaceBackend {
  /** @param {Params} params */
  constructor(params) {
    this.params = params;
    this.tensors = new Map();
  }

  tensor(p, name) {
    let t = this.tensors.get(name);
    if (!t) {
      t = lr.keep(lr.tensor(p.data, p.shape));
      this.tensors.set(name, t);
    }
    return t;
  }

  conv(x, name, o) {
    const g = convGeometry(o);
    const w = this.tensor(this.params.convWeight(name, o.out, o.in / g.groups, g.k[0], g.k[1]), `${name}.weight`);
    const b = o.bias === false ? undefined : this.tensor(this.params.bias(name, o.out), `${name}.bias`);
    return lr.conv2d(x, w, b, { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups });
  }

  /** relu(conv(...)) as the fused op. */
  convRelu(x, name, o) {
    const g = convGeometry(o);
    const w = this.tensor(this.params.convWeight(name, o.out, o.in / g.groups, g.k[0], g.k[1]), `${name}.weight`);
    const b = o.bias === false ? undefined : this.tensor(this.params.bias(name, o.out), `${name}.bias`);
    return lr.conv2dRelu(x, w, b, { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups });
  }

  /** relu(conv(...) + residual) as the fused op (a residual unit's end). */
  convAddRelu(x, name, o, residual) {
    const g = convGeometry(o);
    const w = this.tensor(this.params.convWeight(name, o.out, o.in / g.groups, g.k[0], g.k[1]), `${name}.weight`);
    const b = o.bias === false ? undefined : this.tensor(this.params.bias(name, o.out), `${name}.bias`);
    return lr.conv2dAddRelu(x, w, b, residual, { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups });
  }

  /** One block of a network (a residual block, an inception module): its intermediates are
   * disposed when it returns, as nn's blocks do, instead of living until the forward ends. */
  block(fn) {
    return lr.scope(fn);
  }

  /** Applies `stages` in order from `x`, disposing each intermediate once the next stage has
   * consumed it, as @lrface/nn's `chain` (its Sequential, VDSR and SRINC) does: a chain of
   * layers then holds two activations at a time and reuses freed buffers. */
  chain(x, stages) {
    let h = x;
    for (const stage of stages) {
      const next = stage(h);
      if (h !== x && next !== h) h.dispose();
      h = next;
    }
    return h;
  }

  relu(x) {
    return lr.relu(x);
  }

  add(a, b) {
    return lr.add(a, b);
  }

  maxPool(x, o) {
    return lr.maxPool2d(x, { kernelSize: o.kernel, stride: o.stride ?? o.kernel, padding: o.padding ?? 0 });
  }

  matmul(a, b) {
    return lr.matmul(a, b);
  }

  concat(xs, axis) {
    return lr.concat(xs, axis);
  }

  upsample2x(x) {
    return lr.upsample(x, { scaleFactor: 2, mode: 'nearest' });
  }

  prelu(x, name, c) {
    return lr.prelu(x, this.tensor(this.params.slope(name, c), `${name}.slope`));
  }

  flatten(x) {
    return lr.reshape(x, [x.shape[0], -1]);
  }

  linear(x, name, o) {
    const w = this.tensor(this.params.linearWeight(name, o.out, o.in), `${name}.weight`);
    const b = o.bias === false ? undefined : this.tensor(this.params.bias(name, o.out), `${name}.bias`);
    return lr.linear(x, w, b);
  }

  dispose() {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

/**
 * Emits ONNX nodes for a forward. Values are { name, shape }; shapes are inferred here so
 * the graph's output is fully typed and the multiply-add count of conv/matmul/linear layers
 * is summed in `flops` (2 per multiply-add, the usual convention).
 */
export class OnnxBackend {
  /** @param {Params} params */
  constructor(params, graphName = 'bench') {
    this.params = params;
    this.g = new GraphBuilder(graphName);
    this.flops = 0;
    this.initialized = new Map();
  }

  input(name, shape) {
    return { name: this.g.input(name, shape), shape };
  }

  /** Blocks are only a memory boundary for lrface; the graph is the same. */
  block(fn) {
    return fn();
  }

  /** Chains too: the graph is the stages one after another. */
  chain(x, stages) {
    return stages.reduce((h, stage) => stage(h), x);
  }

  output(v) {
    this.g.output(v.name, v.shape);
    return v;
  }

  init(name, p) {
    let n = this.initialized.get(name);
    if (!n) {
      n = this.g.initializer(name, p.shape, p.data);
      this.initialized.set(name, n);
    }
    return n;
  }

  conv(x, name, o) {
    const g = convGeometry(o);
    const [n, c, h, w] = x.shape;
    if (c !== o.in) throw new Error(`conv ${name}: input has ${c} channels, layer expects ${o.in}`);
    const wName = this.init(`${name}.weight`, this.params.convWeight(name, o.out, o.in / g.groups, g.k[0], g.k[1]));
    const inputs = [x.name, wName];
    if (o.bias !== false) inputs.push(this.init(`${name}.bias`, this.params.bias(name, o.out)));
    const [pt, pb, pl, pr] = g.padding;
    const oh = Math.floor((h + pt + pb - g.dilation[0] * (g.k[0] - 1) - 1) / g.stride[0]) + 1;
    const ow = Math.floor((w + pl + pr - g.dilation[1] * (g.k[1] - 1) - 1) / g.stride[1]) + 1;
    this.flops += 2 * n * o.out * oh * ow * (o.in / g.groups) * g.k[0] * g.k[1];
    const y = this.g.node('Conv', inputs, {
      kernel_shape: g.k,
      strides: g.stride,
      dilations: g.dilation,
      pads: [pt, pl, pb, pr], // ONNX order: all begins, then all ends
      group: g.groups,
    });
    return { name: y, shape: [n, o.out, oh, ow] };
  }

  /** Conv then Relu nodes: onnxruntime fuses the pair itself. */
  convRelu(x, name, o) {
    return this.relu(this.conv(x, name, o));
  }

  /** Conv, Add and Relu nodes: onnxruntime fuses them itself (its Conv with a Z input). */
  convAddRelu(x, name, o, residual) {
    return this.relu(this.add(this.conv(x, name, o), residual));
  }

  relu(x) {
    return { name: this.g.node('Relu', [x.name]), shape: x.shape };
  }

  add(a, b) {
    if (a.shape.join(',') !== b.shape.join(',')) throw new Error(`add: shapes [${a.shape}] and [${b.shape}] differ`);
    return { name: this.g.node('Add', [a.name, b.name]), shape: a.shape };
  }

  maxPool(x, o) {
    const k = pair(o.kernel);
    const s = pair(o.stride ?? o.kernel);
    const p = pair(o.padding ?? 0);
    const [n, c, h, w] = x.shape;
    const oh = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1;
    const ow = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
    const y = this.g.node('MaxPool', [x.name], { kernel_shape: k, strides: s, pads: [p[0], p[1], p[0], p[1]] });
    return { name: y, shape: [n, c, oh, ow] };
  }

  matmul(a, b) {
    const [m, k] = a.shape.slice(-2);
    const [k2, nn] = b.shape.slice(-2);
    if (k !== k2) throw new Error(`matmul: inner dimensions ${k} and ${k2} differ`);
    const batch = size(a.shape.slice(0, -2));
    this.flops += 2 * batch * m * nn * k;
    return { name: this.g.node('MatMul', [a.name, b.name]), shape: [...a.shape.slice(0, -2), m, nn] };
  }

  concat(xs, axis) {
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
    return { name: this.g.node('Concat', xs.map((x) => x.name), { axis }), shape };
  }

  upsample2x(x) {
    const scales = this.init('upsample2x.scales', { shape: [4], data: Float32Array.from([1, 1, 2, 2]) });
    // asymmetric + floor is PyTorch's (and lrface's) 'nearest': output i reads input floor(i / 2).
    const y = this.g.node('Resize', [x.name, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    const [n, c, h, w] = x.shape;
    return { name: y, shape: [n, c, 2 * h, 2 * w] };
  }

  prelu(x, name, c) {
    const p = this.params.slope(name, c);
    // The slope broadcasts as [C, 1, 1] against [N, C, H, W].
    const slope = this.init(`${name}.slope`, { shape: [c, 1, 1], data: p.data });
    return { name: this.g.node('PRelu', [x.name, slope]), shape: x.shape };
  }

  flatten(x) {
    return { name: this.g.node('Flatten', [x.name], { axis: 1 }), shape: [x.shape[0], size(x.shape.slice(1))] };
  }

  linear(x, name, o) {
    const [n, inF] = x.shape;
    if (inF !== o.in) throw new Error(`linear ${name}: input has ${inF} features, layer expects ${o.in}`);
    const inputs = [x.name, this.init(`${name}.weight`, this.params.linearWeight(name, o.out, o.in))];
    if (o.bias !== false) inputs.push(this.init(`${name}.bias`, this.params.bias(name, o.out)));
    this.flops += 2 * n * o.out * o.in;
    return { name: this.g.node('Gemm', inputs, { transB: 1 }), shape: [n, o.out] };
  }

  encode() {
    return this.g.encode({ opset: 17 });
  }
}

/**
 * A workload: input shapes plus a forward over the op set above.
 * @typedef {{ id: string, description: string, inputs: { name: string, shape: number[] }[],
 *   forward: (f: LrfaceBackend | OnnxBackend, xs: unknown[]) => unknown,
 *   bytes?: number }} Workload
 */

/**
 * Builds the ONNX model of a workload.
 * @param {Workload} wl @param {Params} params
 */
export function buildOnnx(wl, params) {
  const f = new OnnxBackend(params, wl.id);
  const xs = wl.inputs.map((i) => f.input(i.name, i.shape));
  const y = f.output(wl.forward(f, xs));
  return { model: f.encode(), flops: f.flops, inputNames: xs.map((x) => x.name), outputName: y.name, outputShape: y.shape };
}

/** Random inputs of a workload, one Float32Array per input. */
export function makeInputs(wl, seed = 7) {
  return wl.inputs.map((i, k) => randomNormal(size(i.shape), seed + 7919 * k));
}

export { DataType };
