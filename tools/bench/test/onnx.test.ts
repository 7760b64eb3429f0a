import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import * as lr from '@lrface/cuda-core';
import { GraphBuilder, ProtoWriter, encodeTensor } from '../src/onnx.mjs';
import { LrfaceBackend, OnnxBackend, Params, buildOnnx, makeInputs, randomNormal } from '../src/net.mjs';
import { workloads } from '../src/workloads.mjs';

/** Naive NCHW convolution with padding [top, bottom, left, right], stride and bias. */
function naiveConv(
  x: Float32Array, [n, c, h, w]: number[], wt: Float32Array, [o, , kh, kw]: number[], bias: Float32Array,
  [pt, pb, pl, pr]: number[], [sh, sw]: number[],
) {
  const oh = Math.floor((h + pt + pb - kh) / sh) + 1;
  const ow = Math.floor((w + pl + pr - kw) / sw) + 1;
  const y = new Float32Array(n * o * oh * ow);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < o; oc++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = bias[oc];
          for (let ic = 0; ic < c; ic++)
            for (let u = 0; u < kh; u++)
              for (let v = 0; v < kw; v++) {
                const yy = i * sh - pt + u;
                const xx = j * sw - pl + v;
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                s += x[((b * c + ic) * h + yy) * w + xx] * wt[((oc * c + ic) * kh + u) * kw + v];
              }
          y[((b * o + oc) * oh + i) * ow + j] = s;
        }
  return { y, shape: [n, o, oh, ow] };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number) {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(atol);
}

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

describe('protobuf writer', () => {
  it('encodes varints as protobuf does, negative int64 in ten bytes', () => {
    expect([...new ProtoWriter().varint(0).finish()]).toEqual([0]);
    expect([...new ProtoWriter().varint(300).finish()]).toEqual([0xac, 0x02]);
    expect([...new ProtoWriter().varint(-1).finish()]).toEqual([...Array(9).fill(0xff), 0x01]);
    expect([...new ProtoWriter().varint(2 ** 40).finish()]).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  });

  it('writes tags, strings and nested messages length-prefixed', () => {
    const inner = new ProtoWriter().int(1, 5);
    expect([...new ProtoWriter().string(2, 'ab').message(3, inner).finish()]).toEqual([0x12, 2, 0x61, 0x62, 0x1a, 2, 0x08, 5]);
  });

  it('rejects tensors whose data does not match their dims', () => {
    expect(() => encodeTensor({ name: 'w', dims: [2, 3], data: new Float32Array(5) })).toThrow(/dims \[2,3\] hold 6 values, data has 5/);
  });
});

describe('ONNX models run by onnxruntime', () => {
  it('Conv (stride 2, asymmetric pads, bias) + Relu matches a naive convolution', async () => {
    const xs = [2, 3, 7, 6];
    const ws = [4, 3, 3, 2];
    const pads = [1, 0, 2, 1]; // top, bottom, left, right
    const x = randomNormal(2 * 3 * 7 * 6, 1);
    const w = randomNormal(4 * 3 * 3 * 2, 2);
    const b = randomNormal(4, 3);
    const g = new GraphBuilder('conv_relu');
    const xi = g.input('x', xs);
    const conv = g.node('Conv', [xi, g.initializer('w', ws, w), g.initializer('b', [4], b)], {
      kernel_shape: [3, 2], strides: [2, 2], pads: [pads[0], pads[2], pads[1], pads[3]],
    });
    const y = g.output(g.node('Relu', [conv]));
    const out = (await run(g.encode(), { [xi]: new ort.Tensor('float32', x, xs) }))[y];
    const ref = naiveConv(x, xs, w, ws, b, pads, [2, 2]);
    expect(out.dims).toEqual(ref.shape);
    expectClose(out.data as Float32Array, ref.y.map((v) => Math.max(v, 0)), 1e-5);
    expect(ref.y.some((v) => v < 0)).toBe(true); // the Relu had something to clip
  });

  it('MatMul, Add, MaxPool and a negative Reshape dim match plain loops', async () => {
    const a = randomNormal(3 * 4, 4);
    const bm = randomNormal(4 * 8, 5);
    const g = new GraphBuilder('mix');
    const ai = g.input('a', [3, 4]);
    const mm = g.node('MatMul', [ai, g.initializer('b', [4, 8], bm)]);
    const sum = g.node('Add', [mm, mm]);
    const img = g.node('Reshape', [sum, g.initializer('shape', [4], BigInt64Array.from([1n, 3n, 2n, -1n]))]);
    const y = g.output(g.node('MaxPool', [img], { kernel_shape: [2, 2], strides: [2, 2] }));
    const out = (await run(g.encode(), { [ai]: new ort.Tensor('float32', a, [3, 4]) }))[y];
    const m = new Float32Array(3 * 8);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 8; j++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[i * 4 + k] * bm[k * 8 + j];
        m[i * 8 + j] = 2 * s;
      }
    // [1, 3, 2, 4] pooled 2x2 -> [1, 3, 1, 2]
    const ref: number[] = [];
    for (let c = 0; c < 3; c++)
      for (let j = 0; j < 2; j++) ref.push(Math.max(m[c * 8 + 2 * j], m[c * 8 + 2 * j + 1], m[c * 8 + 4 + 2 * j], m[c * 8 + 4 + 2 * j + 1]));
    expect(out.dims).toEqual([1, 3, 1, 2]);
    expectClose(out.data as Float32Array, ref, 1e-5);
  });
});

describe('one description, two engines', () => {
  it('every op of the bench backends gives the same result in lrface and onnxruntime', async () => {
    // Shapes: [2,3,9,12] -conv-> [2,8,8,13] -pool 2-> [2,8,4,6] -up-> [2,8,8,12] @ z [2,8,12,4] -> [2,8,8,4].
    const forward = (f: any, [x, z]: any[]) => {
      let h = f.convRelu(x, 'c1', { in: 3, out: 8, kernel: 3, padding: [1, 0, 2, 1] });
      const p = f.maxPool(h, { kernel: 3, stride: 1, padding: 1 });
      h = f.concat([f.conv(p, 'c2', { in: 8, out: 4, kernel: 1 }), f.conv(h, 'c3', { in: 8, out: 4, kernel: 3, padding: 1, bias: false })], 1);
      h = f.chain(h, [(t: any) => f.add(f.prelu(t, 'act', 8), f.relu(t)), (t: any) => f.relu(t)]);
      h = f.matmul(f.upsample2x(f.maxPool(h, { kernel: 2, stride: 2 })), z);
      return f.linear(f.flatten(h), 'fc', { in: 8 * 8 * 4, out: 5 });
    };
    const wl = { id: 'tiny', description: '', inputs: [{ name: 'x', shape: [2, 3, 9, 12] }, { name: 'z', shape: [2, 8, 12, 4] }], forward };
    const params = new Params(3);
    const onnx = buildOnnx(wl, params);
    expect(onnx.outputShape).toEqual([2, 5]);
    const data = makeInputs(wl);
    const feeds = Object.fromEntries(onnx.inputNames.map((name, i) => [name, new ort.Tensor('float32', data[i], wl.inputs[i].shape)]));
    const ref = (await run(onnx.model, feeds))[onnx.outputName];
    const backend = new LrfaceBackend(params);
    const ts = data.map((d, i) => lr.tensor(d, wl.inputs[i].shape));
    const ours = lr.noGrad(() => forward(backend, ts));
    expect(ours.shape).toEqual(ref.dims);
    expectClose(ours.data(), ref.data as Float32Array, 1e-4);
    backend.dispose();
  });

  it('chain frees each intermediate once the next stage has taken it, never its input or result', () => {
    const backend = new LrfaceBackend(new Params(1));
    const x = lr.tensor(Float32Array.from([-1, 2, -3, 4]), [1, 1, 2, 2]);
    const made: lr.Tensor[] = [];
    const stage = (t: lr.Tensor) => {
      const y = lr.mul(t, 2);
      made.push(y);
      return y;
    };
    const identity = (t: lr.Tensor) => t;
    const y = backend.chain(x, [stage, identity, stage, stage]);
    expect(Array.from(y.data())).toEqual([-8, 16, -24, 32]);
    expect(made.map((t) => t.isDisposed)).toEqual([true, true, false]);
    expect(x.isDisposed).toBe(false);
    // A stage handing back its input keeps it: the chain's input and result included.
    expect(backend.chain(x, [identity])).toBe(x);
    expect(x.isDisposed).toBe(false);
    y.dispose();
    x.dispose();
  });

  it('the bench workloads have the documented input and output shapes and FLOP counts', () => {
    const byId = Object.fromEntries(workloads.map((w) => [w.id, buildOnnx(w, new Params(1))]));
    expect(byId.conv3x3_128.flops).toBe(2 * 8 * 128 * 128 * 9 * 64 * 64);
    expect(byId.gemm1024.flops).toBe(2 * 1024 ** 3);
    expect(byId.vdsr20.flops).toBe(2 * 128 * 128 * 9 * (64 + 18 * 64 * 64 + 64));
    expect(byId.srcnn_915.outputShape).toEqual([8, 3, 128, 128]);
    expect(byId.maxpool2x2.outputShape).toEqual([8, 128, 32, 32]);
    expect(byId.srinc_body.outputShape).toEqual([1, 1, 128, 128]);
    expect(byId.unet_heatmap_32.outputShape).toEqual([8, 69, 32, 32]);
    expect(byId.frnet_forward.outputShape).toEqual([8, 512]);
  });

  it('the backends share weights by layer name and refuse a layer reused with another shape', () => {
    const params = new Params(1);
    const f = new OnnxBackend(params);
    const x = f.input('x', [1, 4, 5, 5]);
    f.conv(x, 'shared', { in: 4, out: 4, kernel: 3, padding: 1 });
    expect(() => f.conv(x, 'shared', { in: 4, out: 2, kernel: 3, padding: 1 })).toThrow(/param 'shared.weight'/);
  });
});
