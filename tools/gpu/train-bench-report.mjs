#!/usr/bin/env node
// Puts the two sides of the training benchmark side by side: per workload lrface's and
// PyTorch's median milliseconds and the ratio torch ms / lrface ms (above 1: lrface is
// faster; the goal is >= 1.0). Prints the table and writes both results with the ratios as
// one JSON file. A side that is missing or failed on a workload shows as n/a with its error.
//
// usage: node train-bench-report.mjs LRFACE.json TORCH.json OUT.json   (node builtins only)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [lrfacePath, torchPath, outPath] = process.argv.slice(2);
if (!lrfacePath || !torchPath || !outPath) {
  console.error('usage: node train-bench-report.mjs LRFACE.json TORCH.json OUT.json');
  process.exit(2);
}

/** A side's results, or { error } saying why there are none. */
function readSide(path, name) {
  if (!existsSync(path)) return { error: `${name}: no results (${path} missing: the run failed or timed out before its first workload)` };
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { error: `${name}: ${path} is not valid JSON: ${err.message}` };
  }
}

const lrface = readSide(lrfacePath, 'lrface');
const torch = readSide(torchPath, 'torch');
const ids = ['vdsr-train', 'srinc-train', 'vdsr-infer', 'srinc-infer'];
const find = (side, id) => side.results?.find((r) => r.workload === id);
const firstLine = (s) => String(s).split('\n')[0].slice(0, 160);

const rows = ids.map((id) => {
  const a = find(lrface, id);
  const b = find(torch, id);
  const lrfaceMs = a && a.error === undefined ? a.ms_median : null;
  const torchMs = b && b.error === undefined ? b.ms_median : null;
  const notes = [];
  if (!a) notes.push(lrface.error ?? 'lrface: not run');
  else if (a.error) notes.push(`lrface: ${firstLine(a.error)}`);
  if (!b) notes.push(torch.error ?? 'torch: not run');
  else if (b.error) notes.push(`torch: ${firstLine(b.error)}`);
  // Both sides report their parameter count for training: a difference means the architectures differ.
  if (a?.parameters !== undefined && b?.parameters !== undefined && a.parameters !== b.parameters)
    notes.push(`parameter counts differ: lrface ${a.parameters}, torch ${b.parameters}`);
  return { workload: id, lrface_ms: lrfaceMs, torch_ms: torchMs, ratio: lrfaceMs && torchMs ? torchMs / lrfaceMs : null, notes };
});

const fmt = (v, digits) => (v === null ? 'n/a' : v.toFixed(digits));
const lines = [
  `training benchmark: lrface ${lrface.device_name ?? '?'} vs torch ${torch.torch ?? '?'} on ${torch.device_name ?? '?'}; ratio = torch ms / lrface ms (> 1: lrface faster)`,
  'workload       lrface ms    torch ms    ratio',
  ...rows.map((r) => `${r.workload.padEnd(12)} ${fmt(r.lrface_ms, 2).padStart(11)} ${fmt(r.torch_ms, 2).padStart(11)} ${fmt(r.ratio, 3).padStart(8)}${r.notes.length ? `   (${r.notes.join('; ')})` : ''}`),
];
console.log(lines.join('\n'));
writeFileSync(outPath, JSON.stringify({ ratio: 'torch_ms / lrface_ms', rows, lrface, torch }, null, 2));
// Non-zero when a workload has no ratio, so run.sh's status shows it.
if (rows.some((r) => r.ratio === null)) process.exitCode = 1;
