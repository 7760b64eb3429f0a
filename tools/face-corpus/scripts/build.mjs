#!/usr/bin/env node
// Builds the real-face corpus: node tools/face-corpus/scripts/build.mjs [--out <dir>] [--data <dir>] [--size 128] [--margin 0.2] [--limit N] [--no-landmarks] [--extra sources.json]
// sources.json: [{ "name", "dir", "box": {x, y, width, height}, "origin", "licence" }] (folders of aligned faces, e.g. fetched LFW images)
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { findSharedData, repoRoot } from './shared-data.mjs';
import { buildFaceCorpus, loadReferenceDetector } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: resolve(repoRoot, '.cache/face-corpus') },
    data: { type: 'string', default: findSharedData() },
    size: { type: 'string', default: '128' },
    margin: { type: 'string', default: '0.2' },
    limit: { type: 'string' },
    'no-landmarks': { type: 'boolean', default: false },
    extra: { type: 'string' },
  },
});
const t0 = Date.now();
const index = await buildFaceCorpus({
  outDir: resolve(values.out),
  dataDir: values.data,
  size: Number(values.size),
  margin: Number(values.margin),
  ...(values.extra ? { extraSources: JSON.parse(readFileSync(values.extra, 'utf8')) } : {}),
  ...(values['no-landmarks'] ? {} : { detector: await loadReferenceDetector() }),
  ...(values.limit !== undefined ? { limitPerSource: Number(values.limit) } : {}),
});
const count = (items) => Object.entries(items.reduce((m, i) => ((m[`${i.source} ${i.split}${i.landmarks ? ' +68pts' : ''}`] = (m[`${i.source} ${i.split}${i.landmarks ? ' +68pts' : ''}`] ?? 0) + 1), m), {}));
console.log(`corpus in ${resolve(values.out)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
console.log(`HR ${index.size}x${index.size}: ${index.hr.length} faces`);
for (const [k, n] of count(index.hr)) console.log(`  ${k}: ${n}`);
console.log(`LR (native size): ${index.lr.length} faces`);
for (const [k, n] of count(index.lr)) console.log(`  ${k}: ${n}`);
