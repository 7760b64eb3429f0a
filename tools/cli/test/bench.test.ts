// `lrface bench`: the JSON contract, the median it reports, and its argument checks. Timings
// themselves are not asserted (they belong to the machine).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ES module without types
import { BENCH_WORKLOADS, parseBenchArgs, runBench } from '../src/bench.mjs';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });

describe('lrface bench', () => {
  it('prints ONE JSON line with a row per chosen workload', () => {
    const r = run('bench', '--only', 'landmarks-lr68,recognition-lightcnn9-16', '--repeats', '2', '--threads', '1', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]);
    expect(out).toMatchObject({ device: 'cpu', threads: 1 });
    expect(out.results.map((x: { workload: string }) => x.workload)).toEqual(['landmarks-lr68', 'recognition-lightcnn9-16']);
    for (const row of out.results) {
      expect(Object.keys(row)).toEqual(['workload', 'ms', 'min_ms', 'per_item_ms', 'items']);
      expect(row.ms).toBeGreaterThan(0);
      expect(row.min_ms).toBeLessThanOrEqual(row.ms);
    }
    const rec = out.results[1];
    expect(rec.items).toBe(16);
    expect(rec.per_item_ms).toBeCloseTo(rec.ms / 16, 1);
  });

  it('reports the median of the timed runs, after one untimed warm-up', async () => {
    const delays = [50, 5, 30, 10, 20, 40];
    let calls = 0;
    BENCH_WORKLOADS['test-sleep'] = {
      what: 'sleeps',
      setup: async () => ({ items: 2, run: () => new Promise((r) => setTimeout(r, delays[calls++])), dispose: () => {} }),
    };
    try {
      const out = await runBench({ only: ['test-sleep'], device: 'cpu', repeats: 5, json: true });
      expect(calls).toBe(6);
      const [row] = out.results;
      // Timed: 5, 30, 10, 20, 40 ms (the 50 ms warm-up is not counted): median 20, min 5.
      expect(row.ms).toBeGreaterThanOrEqual(19);
      expect(row.ms).toBeLessThan(29);
      expect(row.min_ms).toBeLessThan(row.ms);
      expect(row.per_item_ms).toBeCloseTo(row.ms / 2, 1);
    } finally {
      delete BENCH_WORKLOADS['test-sleep'];
    }
  });

  it('refuses bad arguments with a usage error (exit 2)', () => {
    const usage = (args: string[], message: RegExp) => {
      const r = run('bench', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('usage: lrface bench');
    };
    usage(['--only', 'sr-face-x8'], /unknown workload 'sr-face-x8'/);
    usage(['--repeats', '0'], /--repeats must be an integer in \[1, 1000\], got '0'/);
    usage(['--threads', 'many'], /--threads must be an integer/);
    usage(['--device', 'tpu'], /--device must be one of the devices here \(cpu.*got 'tpu'/);
    usage(['--fast'], /Unknown option '--fast'/);
    expect(() => parseBenchArgs(['--only', 'landmarks-lr68'])).not.toThrow();
  });
});
