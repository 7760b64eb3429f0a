// A minimal ONNX model encoder: enough of onnx.proto (ModelProto, GraphProto, NodeProto,
// TensorProto, ValueInfoProto, AttributeProto) in protobuf wire format to build inference
// graphs in code, without a protobuf dependency. Field numbers follow onnx/onnx.proto.

/** TensorProto.DataType values used here. */
export const DataType = Object.freeze({ FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7 });

/** AttributeProto.AttributeType values. */
const AttrType = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 });

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/**
 * Protobuf writer that keeps its output as a list of chunks, so nested messages are
 * length-prefixed without copying their (possibly megabyte-sized) payloads.
 */
export class ProtoWriter {
  constructor() {
    /** @type {Uint8Array[]} */
    this.chunks = [];
    this.length = 0;
  }

  /** @param {Uint8Array} bytes */
  raw(bytes) {
    if (bytes.length === 0) return this;
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  /**
   * Base-128 varint of an unsigned or signed 64-bit value; negative numbers take ten bytes
   * (two's complement), as protobuf encodes negative int32/int64.
   * @param {number | bigint} value
   */
  varint(value) {
    let v = BigInt(value);
    if (v < 0n) v = BigInt.asUintN(64, v);
    if (v >= 1n << 64n) throw new RangeError(`varint: ${value} does not fit in 64 bits`);
    const out = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    return this.raw(Uint8Array.from(out));
  }

  /** @param {number} field @param {number} wire */
  tag(field, wire) {
    return this.varint((field << 3) | wire);
  }

  /** @param {number} field @param {number | bigint} value */
  int(field, value) {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new TypeError(`int field ${field}: ${value} is not an integer`);
    return this.tag(field, WIRE_VARINT).varint(value);
  }

  /** @param {number} field @param {number} value */
  float(field, value) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.tag(field, WIRE_FIXED32).raw(b);
  }

  /** @param {number} field @param {Uint8Array} bytes */
  bytes(field, bytes) {
    return this.tag(field, WIRE_LEN).varint(bytes.length).raw(bytes);
  }

  /** @param {number} field @param {string} s */
  string(field, s) {
    return this.bytes(field, utf8.encode(s));
  }

  /** Embedded message. @param {number} field @param {ProtoWriter} inner */
  message(field, inner) {
    this.tag(field, WIRE_LEN).varint(inner.length);
    for (const c of inner.chunks) this.raw(c);
    return this;
  }

  /** The encoded bytes. */
  finish() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** Little-endian bytes of a typed array (raw_data is little-endian by the ONNX spec). */
function littleEndianBytes(data) {
  const probe = new Uint8Array(new Uint16Array([1]).buffer);
  if (probe[0] !== 1) throw new Error('onnx: big-endian hosts are not supported');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function dataTypeOf(data) {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof BigInt64Array) return DataType.INT64;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof Uint8Array) return DataType.UINT8;
  throw new TypeError('onnx tensor: data must be a Float32Array, BigInt64Array, Int32Array or Uint8Array');
}

/**
 * TensorProto with its values in raw_data.
 * @param {{ name?: string, dims: number[], data: Float32Array | BigInt64Array | Int32Array | Uint8Array }} t
 */
export function encodeTensor(t) {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) throw new RangeError(`onnx tensor '${t.name ?? ''}': dims [${t.dims}] hold ${count} values, data has ${t.data.length}`);
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d); // dims
  w.int(2, dataTypeOf(t.data)); // data_type
  if (t.name !== undefined) w.string(8, t.name); // name
  w.bytes(9, littleEndianBytes(t.data)); // raw_data
  return w;
}

/** An attribute value with an explicit ONNX type (plain JS values are typed by {@link attr}). */
class TypedAttr {
  constructor(type, value) {
    this.type = type;
    this.value = value;
  }
}

/** Explicit attribute types, for values whose JS type is ambiguous (a float 1.0 is a JS integer). */
export const attr = {
  int: (v) => new TypedAttr(AttrType.INT, v),
  ints: (v) => new TypedAttr(AttrType.INTS, v),
  float: (v) => new TypedAttr(AttrType.FLOAT, v),
  floats: (v) => new TypedAttr(AttrType.FLOATS, v),
  string: (v) => new TypedAttr(AttrType.STRING, v),
  strings: (v) => new TypedAttr(AttrType.STRINGS, v),
  tensor: (v) => new TypedAttr(AttrType.TENSOR, v),
};

/** Types a plain value: integer -> INT, other number -> FLOAT, string -> STRING, arrays likewise. */
function typed(name, value) {
  if (value instanceof TypedAttr) return value;
  if (typeof value === 'number') return Number.isInteger(value) ? attr.int(value) : attr.float(value);
  if (typeof value === 'bigint') return attr.int(value);
  if (typeof value === 'string') return attr.string(value);
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) return attr.strings(value);
    if (value.every((v) => typeof v === 'bigint' || Number.isInteger(v))) return attr.ints(value);
    if (value.every((v) => typeof v === 'number')) return attr.floats(value);
  }
  throw new TypeError(`onnx attribute '${name}': cannot infer an ONNX type for ${String(value)}; use attr.int/ints/float/floats/string`);
}

function encodeAttribute(name, value) {
  const a = typed(name, value);
  const w = new ProtoWriter().string(1, name);
  switch (a.type) {
    case AttrType.FLOAT: w.float(2, a.value); break;
    case AttrType.INT: w.int(3, a.value); break;
    case AttrType.STRING: w.string(4, a.value); break;
    case AttrType.TENSOR: w.message(5, encodeTensor(a.value)); break;
    case AttrType.FLOATS: for (const v of a.value) w.float(7, v); break;
    case AttrType.INTS: for (const v of a.value) w.int(8, v); break;
    case AttrType.STRINGS: for (const v of a.value) w.string(9, v); break;
    default: throw new TypeError(`onnx attribute '${name}': unknown type ${a.type}`);
  }
  return w.int(20, a.type); // type
}

/**
 * @typedef {{ opType: string, inputs: string[], outputs: string[], name?: string, domain?: string,
 *   attrs?: Record<string, unknown> }} NodeSpec
 * @typedef {{ name: string, elemType?: number, shape?: (number | string | null)[] }} ValueInfoSpec
 * @typedef {{ name?: string, nodes: NodeSpec[], initializers?: { name: string, dims: number[],
 *   data: Float32Array | BigInt64Array | Int32Array | Uint8Array }[], inputs: ValueInfoSpec[],
 *   outputs: ValueInfoSpec[] }} GraphSpec
 */

function encodeNode(n) {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs ?? {})) if (v !== undefined) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v) {
  const tensorType = new ProtoWriter().int(1, v.elemType ?? DataType.FLOAT); // elem_type
  if (v.shape) {
    const shape = new ProtoWriter();
    for (const d of v.shape) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.int(1, d); // dim_value
      else if (typeof d === 'string') dim.string(2, d); // dim_param
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType); // TypeProto.tensor_type
  return new ProtoWriter().string(1, v.name).message(2, type);
}

/** @param {GraphSpec} g */
export function encodeGraph(g) {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name ?? 'graph');
  for (const t of g.initializers ?? []) w.message(5, encodeTensor(t));
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  return w;
}

/**
 * Serialises a model (ONNX IR version 8, the default domain at `opset`).
 * @param {GraphSpec} graph
 * @param {{ opset?: number, irVersion?: number, producer?: string }} [options]
 * @returns {Uint8Array}
 */
export function encodeModel(graph, options = {}) {
  const w = new ProtoWriter();
  w.int(1, options.irVersion ?? 8); // ir_version
  w.string(2, options.producer ?? 'lrface-bench'); // producer_name
  w.message(7, encodeGraph(graph)); // graph
  w.message(8, new ProtoWriter().string(1, '').int(2, options.opset ?? 17)); // opset_import
  return w.finish();
}

/**
 * Builds a GraphSpec node by node with generated value names.
 */
export class GraphBuilder {
  constructor(name = 'graph') {
    /** @type {GraphSpec} */
    this.graph = { name, nodes: [], initializers: [], inputs: [], outputs: [] };
    this.counter = 0;
    this.names = new Set();
  }

  unique(base) {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Declares a float graph input; returns its name. */
  input(name, shape, elemType = DataType.FLOAT) {
    const n = this.unique(name);
    this.graph.inputs.push({ name: n, elemType, shape });
    return n;
  }

  /** Adds a constant tensor (weights, shapes); returns its name. */
  initializer(name, dims, data) {
    const n = this.unique(name);
    this.graph.initializers.push({ name: n, dims, data });
    return n;
  }

  /**
   * Adds a node; returns its output name (or names when `outputs` > 1).
   * @param {string} opType @param {string[]} inputs @param {Record<string, unknown>} [attrs]
   */
  node(opType, inputs, attrs = {}, outputs = 1) {
    const outs = Array.from({ length: outputs }, () => this.unique(`${opType.toLowerCase()}_${this.graph.nodes.length}`));
    this.graph.nodes.push({ opType, inputs, outputs: outs, name: `${opType}_${this.graph.nodes.length}`, attrs });
    return outputs === 1 ? outs[0] : outs;
  }

  /** Marks a value as a graph output. */
  output(name, shape, elemType = DataType.FLOAT) {
    this.graph.outputs.push({ name, elemType, shape });
    return name;
  }

  /** @param {{ opset?: number, irVersion?: number }} [options] */
  encode(options) {
    return encodeModel(this.graph, options);
  }
}
