// The fp32 FMA peak the bench reports percentages against, measured on this machine:
// core clock (from dependent-operation chains, one per thread, all threads busy at once so
// all-core turbo applies) x FLOP per cycle of the widest FMA units the CPU advertises x
// threads. No native code: the probe is plain JavaScript in worker threads.
import { readFileSync } from 'node:fs';
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

/** SIMD FMA width the CPU advertises (Linux /proc/cpuinfo flags). */
export function fmaIsa() {
  let flags = '';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = ` ${line?.split(':')[1] ?? ''} `;
  } catch {
    return { isa: 'unknown', flopsPerCycle: null };
  }
  // Two FMA ports per core on the server parts this targets: 2 units x lanes x 2 FLOP.
  if (flags.includes(' avx512f ')) return { isa: 'AVX-512 (2 FMA units x 16 lanes x 2 FLOP)', flopsPerCycle: 64 };
  if (flags.includes(' fma ') && flags.includes(' avx2 ')) return { isa: 'AVX2 (2 FMA units x 8 lanes x 2 FLOP)', flopsPerCycle: 32 };
  return { isa: 'SSE (2 x 4 lanes mul+add)', flopsPerCycle: 16 };
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
 * Peak fp32 GFLOP/s for each thread count, with the derivation spelled out.
 * @param {number[]} threadCounts
 * @returns {Promise<{ model: string, isa: string, flopsPerCycle: number | null,
 *   byThreads: Map<number, { ghz: number[], clock: number, mulLatency: number[], gflops: number | null }> }>}
 */
export async function measurePeak(threadCounts, options) {
  const { isa, flopsPerCycle } = fmaIsa();
  const byThreads = new Map();
  for (const t of threadCounts) {
    const probes = await measureClockGHz(t, options);
    const ghz = probes.map((p) => p.ghz);
    // The busy cores share one all-core clock; the fastest probe is the one the hypervisor
    // or other processes disturbed least, so it stands for every thread.
    const clock = Math.max(...ghz);
    byThreads.set(t, { ghz, clock, mulLatency: probes.map((p) => p.latency), gflops: flopsPerCycle ? clock * t * flopsPerCycle : null });
  }
  return { model: cpuModel(), isa, flopsPerCycle, byThreads };
}
