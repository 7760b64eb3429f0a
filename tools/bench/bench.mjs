#!/usr/bin/env node
// lrface vs onnxruntime-node on the seed networks' layers, on 1 and 2 threads.
// Each workload is built in both engines from one description (src/workloads.mjs) with the
// same weights and inputs; outputs are compared before anything is timed.
//
// usage: npm run bench [-- --json FILE] [--only id,id] [--quick] [--threads 1,2] [--no-backward]
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lr from '@lrface/cuda-core';
import * as ort from 'onnxruntime-node';
import { LrfaceBackend, Params, buildOnnx, makeInputs, randomNormal } from './src/net.mjs';
import { measurePeak } from './src/peak.mjs';
import { workloadIds, workloads } from './src/workloads.mjs';

const USAGE = `usage: npm run bench -- [--json FILE] [--only id,id] [--quick] [--threads 1,2] [--no-backward]
  --json FILE    also write {"results":[{workload,threads,lrface_ms,ort_ms,speedup}]} to FILE
  --only ids     comma-separated workload ids (${workloadIds.join(', ')})
  --quick        few repetitions (a smoke run; medians are noisy)
  --threads t,t  thread counts (default 1,2)
  --no-backward  skip the lrface conv backward table`;

function parseArgs(argv) {
  const opts = { json: undefined, only: undefined, quick: false, threads: [1, 2], backward: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    // npm runs scripts from the package root; a relative path means the caller's directory.
    if (a === '--json') opts.json = resolve(process.env.INIT_CWD ?? process.cwd(), next());
    else if (a === '--only') opts.only = next().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--quick') opts.quick = true;
    else if (a === '--threads') opts.threads = next().split(',').map(Number);
    else if (a === '--no-backward') opts.backward = false;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else fail(`unknown option ${a}\n${USAGE}`);
  }
  const unknown = (opts.only ?? []).filter((id) => !workloadIds.includes(id));
  if (unknown.length) fail(`unknown workload id(s): ${unknown.join(', ')}; known: ${workloadIds.join(', ')}`);
  if (!opts.threads.length || opts.threads.some((t) => !Number.isInteger(t) || t < 1)) fail(`--threads wants positive integers, got ${opts.threads}`);
  return opts;
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
// Warm-up runs, then repetitions until both the count and the time are reached; runs slow
// enough to pass `capMs` before `minReps` stop at `capReps` instead.
const timing = opts.quick
  ? { warmupRuns: 1, warmupMs: 0, minReps: 3, minMs: 0, maxReps: 3, capReps: 3, capMs: 0 }
  : { warmupRuns: 2, warmupMs: 300, minReps: 15, minMs: 1500, maxReps: 200, capReps: 7, capMs: 10_000 };

/** Whether another repetition is wanted after `reps` of them in `ms`. */
const wantMore = (reps, ms) =>
  reps < timing.maxReps && (reps < timing.minReps || ms < timing.minMs) && !(reps >= timing.capReps && ms >= timing.capMs);
/** Largest tolerated max|lrface - ort| / max|ort| (fp32 with different summation orders and algorithms). */
const TOLERANCE = 2e-3;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median ms of `fn` (sync or async) after warm-up. */
async function measure(fn) {
  const t0 = performance.now();
  for (let i = 0; i < timing.warmupRuns || performance.now() - t0 < timing.warmupMs; i++) await fn();
  const times = [];
  const t1 = performance.now();
  while (wantMore(times.length, performance.now() - t1)) {
    const s = performance.now();
    await fn();
    times.push(performance.now() - s);
  }
  return { ms: median(times), reps: times.length };
}

function compare(actual, expected) {
  let maxAbs = 0;
  let maxRef = 0;
  let finite = actual.length === expected.length;
  for (let i = 0; i < expected.length && finite; i++) {
    if (!Number.isFinite(actual[i]) || !Number.isFinite(expected[i])) finite = false;
    maxAbs = Math.max(maxAbs, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  const rel = maxRef > 0 ? maxAbs / maxRef : maxAbs;
  return { maxAbs, rel, ok: finite && rel <= TOLERANCE };
}

/**
 * CPU time the bench could not have since `since`, as shares of wall time x CPUs, from
 * /proc/stat: `others` = busy time of all CPUs minus this process's own CPU time (other
 * processes in this machine), `steal` = time the hypervisor gave the virtual CPUs' physical
 * cores to someone else. Either skews every figure, so the bench reports both.
 */
function cpuSnapshot() {
  let busy = NaN;
  let steal = NaN;
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal, in USER_HZ = 100 ticks per second.
    busy = (f[0] + f[1] + f[2] + f[5] + f[6]) / 100;
    steal = (f[7] ?? 0) / 100;
  } catch {
    // Not Linux: no contention figure.
  }
  const u = process.cpuUsage();
  return { busy, steal, own: (u.user + u.system) / 1e6, wall: performance.now() / 1e3 };
}

/** @returns {{ others: number, steal: number, total: number } | null} */
function contention(since) {
  const now = cpuSnapshot();
  const capacity = (now.wall - since.wall) * cpus().length;
  if (!(now.wall - since.wall > 0.2) || Number.isNaN(now.busy)) return null; // /proc/stat counts in 10 ms ticks
  const others = Math.max(0, (now.busy - since.busy - (now.own - since.own)) / capacity);
  const steal = (now.steal - since.steal) / capacity;
  return { others, steal, total: others + steal };
}

const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
const pad = (s, n) => String(s).padStart(n);

async function main() {
  const selected = workloads.filter((w) => !opts.only || opts.only.includes(w.id));
  const reps = opts.quick
    ? `quick run: median of ${timing.minReps} runs after ${timing.warmupRuns} warm-up`
    : `median of ${timing.minReps}+ runs and ${timing.minMs / 1000}+ s after warm-up (${timing.capReps}+ runs for workloads over ${timing.capMs / 1000} s)`;
  const isa = lr.buildInfo().cpuIsa;
  console.log(`lrface bench: @lrface/cuda-core${isa ? ` (${isa} micro-kernels)` : ''} vs onnxruntime-node ${ort.env.versions.common}; ${reps}`);
  const runStart = cpuSnapshot();

  const peak = await measurePeak(opts.threads);
  console.log(`\nFMA peak (measured): ${peak.model}; independent ${peak.isa} FMA chains (${peak.lanes} lanes) on every thread at once, fastest round per thread`);
  for (const [t, p] of peak.byThreads)
    console.log(
      `  ${t} thread(s): ${fmt(p.gflops, 0)} GFLOP/s (${p.perThread.map((g) => g.toFixed(1)).join(' + ')}); clock ${p.clock.toFixed(2)} GHz (fastest of ${p.ghz.map((g) => g.toFixed(2)).join(', ')}: dependent multiply chains, ${p.mulLatency[0]}-cycle latency) -> ${p.flopsPerCycle.toFixed(1)} FLOP/cycle/core`,
    );

  const header = `${'workload'.padEnd(17)}${pad('thr', 4)}${pad('lrface ms', 11)}${pad('ort ms', 10)}${pad('speedup', 9)}${pad('lrface GFLOP/s', 16)}${pad('ort GFLOP/s', 14)}${pad('max abs err', 13)}${pad('rel err', 10)}${pad('taken', 7)}`;
  console.log(`\nforward, both engines (speedup = ort_ms / lrface_ms; rate: GFLOP/s (% of peak), GB/s for maxpool;\nerr: lrface vs ort, rel = max abs err / max |ort|; taken: CPU share other processes and the hypervisor (steal) took while timing)\n${header}`);

  const results = [];
  const mismatches = [];
  for (const wl of selected) {
    const params = new Params(1);
    const onnx = buildOnnx(wl, params);
    const inputs = makeInputs(wl);
    const lrf = new LrfaceBackend(params);
    const lrInputs = inputs.map((data, i) => lr.keep(lr.tensor(data, wl.inputs[i].shape)));
    const feeds = Object.fromEntries(onnx.inputNames.map((name, i) => [name, new ort.Tensor('float32', inputs[i], wl.inputs[i].shape)]));
    const runLrface = () => lr.noGrad(() => lr.scope(() => wl.forward(lrf, lrInputs)));

    for (const threads of opts.threads) {
      lr.setNumThreads(threads);
      const session = await ort.InferenceSession.create(onnx.model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });

      // Agreement first: the timings below mean nothing if the engines disagree.
      const ours = runLrface();
      const ref = (await session.run(feeds))[onnx.outputName];
      const shapeOk = ours.shape.join(',') === ref.dims.join(',');
      const cmp = shapeOk ? compare(ours.data(), ref.data) : { maxAbs: NaN, rel: NaN, ok: false };
      ours.dispose();
      if (!cmp.ok) {
        const why = shapeOk ? `max abs err ${cmp.maxAbs.toExponential(2)}, rel ${cmp.rel.toExponential(2)} > ${TOLERANCE}` : `shapes [${ours.shape}] vs [${ref.dims}]`;
        mismatches.push(`${wl.id} (${threads} thread(s)): ${why}`);
        console.error(`!! ${wl.id}: lrface and onnxruntime DISAGREE on ${threads} thread(s): ${why}`);
      }

      const rowStart = cpuSnapshot();
      const l = await measure(() => runLrface().dispose());
      await sleep(50); // let the other engine's spinning workers go idle
      const o = await measure(() => session.run(feeds));
      const busy = contention(rowStart);
      await session.release();
      await sleep(50);

      const pk = peak.byThreads.get(threads).gflops;
      const rate = (ms) => {
        if (wl.bytes) return `${fmt(wl.bytes / ms / 1e6, 1)} GB/s`;
        const g = onnx.flops / ms / 1e6;
        return `${fmt(g, 1)} (${pk ? Math.round((100 * g) / pk) : '-'}%)`;
      };
      const speedup = o.ms / l.ms;
      console.log(
        `${wl.id.padEnd(17)}${pad(threads, 4)}${pad(fmt(l.ms), 11)}${pad(fmt(o.ms), 10)}${pad(fmt(speedup), 9)}${pad(rate(l.ms), 16)}${pad(rate(o.ms), 14)}${pad(cmp.maxAbs.toExponential(1), 13)}${pad(cmp.rel.toExponential(1), 10)}${pad(busy === null ? '-' : `${Math.round(100 * busy.total)}%`, 7)}${cmp.ok ? '' : '  MISMATCH'}`,
      );
      results.push({ workload: wl.id, threads, lrface_ms: +l.ms.toFixed(3), ort_ms: +o.ms.toFixed(3), speedup: +speedup.toFixed(3) });
    }
    lrf.dispose();
    for (const t of lrInputs) t.dispose();
  }

  const backward = opts.backward ? await backwardTable(selected) : [];
  const taken = contention(runStart);
  if (taken) {
    const pct = (v) => `${(100 * v).toFixed(0)}%`;
    console.log(
      `\nCPU time taken from the bench during the run: ${pct(taken.total)} of the ${cpus().length} CPUs (other processes ${pct(taken.others)}, hypervisor steal ${pct(taken.steal)})` +
        `${taken.total > 0.05 ? '; timings are pessimistic by up to that much' : ''}`,
    );
  }
  if (opts.json) {
    const peakOut = Object.fromEntries(
      [...peak.byThreads].map(([t, p]) => [
        t,
        { gflops: +p.gflops.toFixed(1), per_thread_gflops: p.perThread.map((g) => +g.toFixed(1)), clock_ghz: +p.clock.toFixed(3), probes_ghz: p.ghz.map((g) => +g.toFixed(3)), flops_per_cycle_per_core: +p.flopsPerCycle.toFixed(2) },
      ]),
    );
    const extra = { backward, peak: { model: peak.model, isa: peak.isa, lanes: peak.lanes, threads: peakOut }, cpu_taken: taken && { other_processes: +taken.others.toFixed(3), hypervisor_steal: +taken.steal.toFixed(3) } };
    writeFileSync(opts.json, `${JSON.stringify({ results, ...extra }, null, 2)}\n`);
    console.log(`\nwrote ${opts.json}`);
  }
  if (mismatches.length) {
    console.error(`\nFAILED: lrface and onnxruntime disagree on ${mismatches.length} run(s):\n  ${mismatches.join('\n  ')}`);
    process.exitCode = 1;
  }
}

/** lrface conv backward-data and backward-filter against the forward, on the single-conv workloads. */
async function backwardTable(selected) {
  const convs = selected.filter((w) => w.conv);
  if (!convs.length) return [];
  console.log(`\nconv backward, lrface only (ratio = backward ms / forward ms)`);
  console.log(`${'workload'.padEnd(17)}${pad('thr', 4)}${pad('fwd ms', 10)}${pad('bwd-data ms', 13)}${pad('ratio', 7)}${pad('bwd-filter ms', 15)}${pad('ratio', 7)}`);
  const rows = [];
  for (const wl of convs) {
    const { n, c, h, w, o, k, padding } = wl.conv;
    const x = lr.tensor(randomNormal(n * c * h * w, 11), [n, c, h, w]);
    const wt = lr.tensor(randomNormal(o * c * k * k, 12, Math.sqrt(2 / (c * k * k))), [o, c, k, k]);
    const b = lr.tensor(randomNormal(o, 13, 0.1), [o]);
    const oh = h + 2 * padding - k + 1;
    const ow = w + 2 * padding - k + 1;
    const gy = lr.tensor(randomNormal(n * o * oh * ow, 14), [n, o, oh, ow]);
    // Times one backward() with only `leaf` requiring grad, so exactly one backward kernel runs.
    const backwardOf = (leaf) => async () => {
      leaf.requiresGrad_(true);
      const y = lr.conv2d(x, wt, b, { padding });
      const t0 = performance.now();
      y.backward(gy);
      const ms = performance.now() - t0;
      leaf.grad?.dispose();
      leaf.grad = null;
      leaf.requiresGrad_(false);
      y.dispose();
      return ms;
    };
    for (const threads of opts.threads) {
      lr.setNumThreads(threads);
      const fwd = await measure(() => lr.noGrad(() => lr.conv2d(x, wt, b, { padding }).dispose()));
      const data = await measureInner(backwardOf(x));
      const filter = await measureInner(backwardOf(wt));
      console.log(
        `${wl.id.padEnd(17)}${pad(threads, 4)}${pad(fmt(fwd.ms), 10)}${pad(fmt(data), 13)}${pad(fmt(data / fwd.ms), 7)}${pad(fmt(filter), 15)}${pad(fmt(filter / fwd.ms), 7)}`,
      );
      rows.push({ workload: wl.id, threads, forward_ms: +fwd.ms.toFixed(3), backward_data_ms: +data.toFixed(3), backward_filter_ms: +filter.toFixed(3) });
    }
    for (const t of [x, wt, b, gy]) t.dispose();
  }
  return rows;
}

/** Like measure(), for functions that time only part of their own work and return those ms. */
async function measureInner(fn) {
  for (let i = 0; i < timing.warmupRuns; i++) await fn();
  const times = [];
  let spent = 0;
  while (wantMore(times.length, spent)) {
    const ms = await fn();
    times.push(ms);
    spent += ms;
  }
  return median(times);
}

await main();
