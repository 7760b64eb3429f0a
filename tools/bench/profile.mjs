#!/usr/bin/env node
// Op-by-op time of lrface's forward of bench workloads: each op of the LrfaceBackend timed
// where it is called (kernels run synchronously), summed over the ops of one kind and shape,
// with the conv/linear GFLOP/s and the memory rate (bytes read + written), so the time a
// network loses can be traced to the layers that lose it.
//
// usage: node tools/bench/profile.mjs [--only id,id] [--threads 2] [--runs 5]
import * as lr from '@lrface/cuda-core';
import { LrfaceBackend, Params, makeInputs } from './src/net.mjs';
import { workloadIds, workloads } from './src/workloads.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const only = opt('--only', 'srinc_body,unet_heatmap_32,frnet_forward').split(',');
const threads = Number(opt('--threads', '2'));
const runs = Number(opt('--runs', '5'));
for (const id of only) if (!workloadIds.includes(id)) throw new Error(`unknown workload ${id}; known: ${workloadIds.join(', ')}`);

const shape = (t) => t.shape.join('x');
const pair = (v) => (Array.isArray(v) ? v[0] : v);

const size = (shapeList) => shapeList.reduce((a, b) => a + b.reduce((p, q) => p * q, 1), 0);

/** LrfaceBackend whose ops record (ms, FLOPs, bytes read + written) per op kind and shape. */
class ProfiledBackend extends LrfaceBackend {
  constructor(params) {
    super(params);
    this.rows = new Map();
    this.on = false;
  }
  /** Runs fn, charging its time to `key`; flops(y) for conv/linear, inputs for the byte count. */
  time(key, inputs, fn, flops = () => 0) {
    const t0 = performance.now();
    const y = fn();
    const ms = performance.now() - t0;
    if (this.on) {
      const r = this.rows.get(key) ?? { key, ms: 0, flops: 0, bytes: 0, calls: 0 };
      r.ms += ms;
      r.flops += flops(y);
      r.bytes += 4 * (size(inputs.map((t) => t.shape)) + y.size);
      r.calls += 1;
      this.rows.set(key, r);
    }
    return y;
  }
  convOp(kind, x, o, fn) {
    const k = pair(o.kernel);
    const [n, , h, w] = x.shape;
    const key = `${kind} ${o.in}->${o.out} k${k} p${o.padding ?? 0} on ${n}x${h}x${w}`;
    return this.time(key, [x], fn, (y) => 2 * y.size * (o.in / (o.groups ?? 1)) * k * k);
  }
  conv(x, name, o) {
    return this.convOp('conv', x, o, () => super.conv(x, name, o));
  }
  convRelu(x, name, o) {
    return this.convOp('convRelu', x, o, () => super.convRelu(x, name, o));
  }
  convAddRelu(x, name, o, residual) {
    return this.convOp('convAddRelu', x, o, () => super.convAddRelu(x, name, o, residual));
  }
  relu(x) {
    return this.time(`relu ${shape(x)}`, [x], () => super.relu(x));
  }
  add(a, b) {
    return this.time(`add ${shape(a)}`, [a, b], () => super.add(a, b));
  }
  maxPool(x, o) {
    return this.time(`maxPool k${o.kernel} s${o.stride ?? o.kernel} ${shape(x)}`, [x], () => super.maxPool(x, o));
  }
  concat(xs, axis) {
    return this.time(`concat ${xs.map(shape).join('+')}`, xs, () => super.concat(xs, axis));
  }
  upsample2x(x) {
    return this.time(`upsample2x ${shape(x)}`, [x], () => super.upsample2x(x));
  }
  prelu(x, name, c) {
    return this.time(`prelu ${shape(x)}`, [x], () => super.prelu(x, name, c));
  }
  linear(x, name, o) {
    return this.time(`linear ${o.in}->${o.out} on ${x.shape[0]}`, [x], () => super.linear(x, name, o), () => 2 * x.shape[0] * o.in * o.out);
  }
  matmul(a, b) {
    return this.time(`matmul ${shape(a)} @ ${shape(b)}`, [a, b], () => super.matmul(a, b), (y) => 2 * y.size * a.shape[a.shape.length - 1]);
  }
  flatten(x) {
    return this.time(`flatten ${shape(x)}`, [], () => super.flatten(x));
  }
}

lr.setNumThreads(threads);
for (const wl of workloads.filter((w) => only.includes(w.id))) {
  const f = new ProfiledBackend(new Params(1));
  const inputs = makeInputs(wl).map((d, i) => lr.keep(lr.tensor(d, wl.inputs[i].shape)));
  const once = () => lr.noGrad(() => lr.scope(() => wl.forward(f, inputs).dispose()));
  once();
  once();
  f.on = true;
  // Per op kind, the fastest run's total: on a shared machine the mean mostly measures the others.
  const best = new Map();
  let total = Infinity;
  for (let r = 0; r < runs; r++) {
    f.rows.clear();
    const t0 = performance.now();
    once();
    total = Math.min(total, performance.now() - t0);
    for (const [key, row] of f.rows) if (!best.has(key) || row.ms < best.get(key).ms) best.set(key, { ...row });
  }
  const rows = [...best.values()].sort((a, b) => b.ms - a.ms);
  const opsMs = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`\n${wl.id} on ${threads} thread(s): ${total.toFixed(1)} ms for the fastest forward; its ops' fastest totals sum to ${opsMs.toFixed(1)} ms; ${runs} runs`);
  console.log(`${'ms'.padStart(8)}${'%'.padStart(6)}${'calls'.padStart(7)}${'GFLOP/s'.padStart(9)}${'GB/s'.padStart(7)}  op`);
  for (const r of rows) {
    const ms = r.ms;
    const gf = r.flops ? (r.flops / r.ms / 1e6).toFixed(1) : '';
    const gb = r.bytes ? (r.bytes / r.ms / 1e6).toFixed(1) : '';
    console.log(`${ms.toFixed(2).padStart(8)}${((100 * ms) / total).toFixed(1).padStart(6)}${String(r.calls).padStart(7)}${gf.padStart(9)}${gb.padStart(7)}  ${r.key}`);
  }
  f.dispose();
  for (const t of inputs) t.dispose();
}
