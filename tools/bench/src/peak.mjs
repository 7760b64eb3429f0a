// The fp32 FMA peak the bench reports percentages against, measured on this machine:
// core clock (from a dependent floating-point multiply chain, one per thread, all threads
// busy at once so all-core turbo applies) x FLOP per cycle of the widest FMA unit set the
// CPU advertises x threads.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * Multiply latency on the x86 cores this targets (Intel since Skylake incl. Ice Lake and
 * Sapphire Rapids: 4 cycles for MULSD). Each iteration's eight multiplies depend on each
 * other, so the loop runs at latency x chain length cycles and loop overhead hides in the
 * shadow of the chain.
 */
const MUL_LATENCY_CYCLES = 4;

const probeSource = `
const { parentPort, workerData } = require('node:worker_threads');
function chain(n, y) {
  let x = 1.0;
  for (let i = 0; i < n; i++) { x *= y; x *= y; x *= y; x *= y; x *= y; x *= y; x *= y; x *= y; }
  return x;
}
const y = 1 + 1e-12 * workerData.salt;
const n = workerData.iterations;
let best = Infinity;
let sink = 0;
for (let r = 0; r < workerData.rounds; r++) {
  const t0 = process.hrtime.bigint();
  sink += chain(n, y);
  const ns = Number(process.hrtime.bigint() - t0);
  if (r > 0 && ns < best) best = ns; // round 0 is JIT warm-up
}
parentPort.postMessage({ nsPerMul: best / (8 * n), sink });
`;

/** Clock of each of `threads` cores while all run the probe at once, in GHz. */
// Many short rounds and the fastest one: on a shared machine a ~2 ms round has a good chance
// of running without being descheduled, where a long one would average in other processes.
export async function measureClockGHz(threads, { iterations = 250_000, rounds = 40 } = {}) {
  const runs = Array.from({ length: threads }, (_, i) =>
    new Promise((resolve, reject) => {
      const w = new Worker(probeSource, { eval: true, workerData: { iterations, rounds, salt: i + Math.random() } });
      w.once('message', (m) => {
        resolve(MUL_LATENCY_CYCLES / m.nsPerMul);
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
 *   byThreads: Map<number, { ghz: number[], gflops: number | null }> }>}
 */
export async function measurePeak(threadCounts, options) {
  const { isa, flopsPerCycle } = fmaIsa();
  const byThreads = new Map();
  for (const t of threadCounts) {
    const ghz = await measureClockGHz(t, options);
    byThreads.set(t, { ghz, gflops: flopsPerCycle ? ghz.reduce((a, b) => a + b, 0) * flopsPerCycle : null });
  }
  return { model: cpuModel(), isa, flopsPerCycle, byThreads };
}
