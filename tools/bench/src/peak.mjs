// The fp32 FMA peak the bench reports percentages against, measured on this machine by the
// engine's native FMA probe (independent FMA chains on every thread at once), plus the core
// clock from dependent-operation chains in JavaScript worker threads, as context: rate /
// (clock x threads) is the FLOP per cycle a core really sustains, which the advertised
// instruction set does not tell (AVX-512 on 256-bit units runs at half the nominal width).
import { readFileSync } from 'node:fs';
import * as lr from '@lrface/cuda-core';
import { Worker } from 'node:worker_threads';

// The probe times two dependent chains per round: integer add/xor (1 cycle latency on every
// x86 core) and double multiply (4 cycles on Intel since Skylake, 3 on AMD Zen). Their ratio,
// rounded, gives the multiply latency, and the multiply chain (whose loop overhead hides in
// the chain's shadow) gives the clock: cycles = latency x multiplies.
const probeSource = `
const { parentPort, workerData } = require('node:worker_threads');
function mulChain(n, y) {
  let x = 1.0;
  for (let i = 0; i < n; i++) { x *= y; x *= y; x *= y; x *= y; x *= y; x *= y; x *= y; x *= y; }
  return x;
}
function addChain(n, y) {
  let x = 0;
  for (let i = 0; i < n; i++) { x = (x + y) | 0; x = (x ^ y) | 0; x = (x + y) | 0; x = (x ^ y) | 0; x = (x + y) | 0; x = (x ^ y) | 0; x = (x + y) | 0; x = (x ^ y) | 0; }
  return x;
}
const n = workerData.iterations;
const best = (fn, y) => {
  let ns = Infinity;
  let sink = 0;
  for (let r = 0; r < workerData.rounds; r++) {
    const t0 = process.hrtime.bigint();
    sink += fn(n, y);
    const t = Number(process.hrtime.bigint() - t0);
    if (r > 0 && t < ns) ns = t; // round 0 is JIT warm-up
  }
  return { ns: ns / (8 * n), sink };
};
const mul = best(mulChain, 1 + 1e-12 * workerData.salt);
const add = best(addChain, (workerData.salt * 1000) | 0);
parentPort.postMessage({ nsPerMul: mul.ns, nsPerAdd: add.ns, sink: mul.sink + add.sink });
`;

/**
 * Clock of each of `threads` cores while all run the probe at once, in GHz. Many short
 * rounds and the fastest one: on a shared machine a ~2 ms round has a good chance of running
 * without being descheduled, where a long one would average in other processes.
 */
export async function measureClockGHz(threads, { iterations = 250_000, rounds = 40 } = {}) {
  const runs = Array.from({ length: threads }, (_, i) =>
    new Promise((resolve, reject) => {
      const w = new Worker(probeSource, { eval: true, workerData: { iterations, rounds, salt: i + 1 + Math.random() } });
      w.once('message', (m) => {
        const latency = Math.max(1, Math.round(m.nsPerMul / m.nsPerAdd));
        resolve({ ghz: latency / m.nsPerMul, latency });
        void w.terminate();
      });
      w.once('error', reject);
    }),
  );
  return Promise.all(runs);
}

function cpuModel() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown CPU';
  } catch {
    return 'unknown CPU';
  }
}

/**
 * Peak fp32 GFLOP/s for each thread count: measured by the engine's FMA probe
 * (`measureFmaPeak`: that many pool threads at once running independent FMA chains at the
 * kernels' instruction set), with the core clock beside it so the FLOP/cycle per core the
 * machine really delivers can be read off (Zen 4 runs AVX-512 on 256-bit units: 32, where
 * Intel server cores with two 512-bit units reach 64).
 * Leaves the engine's thread count at the last entry of threadCounts.
 * @param {number[]} threadCounts
 * @returns {Promise<{ model: string, isa: string, lanes: number,
 *   byThreads: Map<number, { gflops: number, perThread: number[], ghz: number[], clock: number, mulLatency: number[], flopsPerCycle: number }> }>}
 */
export async function measurePeak(threadCounts, { ms = 300, ...clockOptions } = {}) {
  const byThreads = new Map();
  let isa = '';
  let lanes = 0;
  for (const t of threadCounts) {
    lr.setNumThreads(t);
    const fma = lr.measureFmaPeak({ threads: t, ms });
    isa = fma.isa;
    lanes = fma.lanes;
    const probes = await measureClockGHz(t, clockOptions);
    const ghz = probes.map((p) => p.ghz);
    // The busy cores share one all-core clock; the fastest probe is the one the hypervisor
    // or other processes disturbed least, so it stands for every thread.
    const clock = Math.max(...ghz);
    const gflops = fma.flopsPerSecond / 1e9;
    byThreads.set(t, {
      gflops,
      perThread: fma.flopsPerThread.map((f) => f / 1e9),
      ghz,
      clock,
      mulLatency: probes.map((p) => p.latency),
      flopsPerCycle: gflops / (clock * t),
    });
  }
  return { model: cpuModel(), isa, lanes, byThreads };
}
