#!/usr/bin/env node
// A PNG grid of corpus crops with their 68 points drawn, to check by eye that crops are faces
// and points sit on them: node tools/face-corpus/scripts/contact-sheet.mjs --corpus DIR --out sheet.png [--source NAME] [--split train] [--count 48] [--columns 8] [--scale 1]
import { parseArgs } from 'node:util';
import { decodeImage, writeImage } from '@lrface/datasets';
import { openFaceCorpus } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    corpus: { type: 'string' }, out: { type: 'string' }, source: { type: 'string' }, split: { type: 'string' },
    count: { type: 'string', default: '48' }, columns: { type: 'string', default: '8' }, offset: { type: 'string', default: '0' },
  },
});
if (!values.corpus || !values.out) throw new Error('contact-sheet: --corpus DIR and --out FILE.png are required');
const corpus = await openFaceCorpus(values.corpus);
let items = corpus.hr.filter((i) => (!values.source || i.source === values.source) && (!values.split || i.split === values.split));
// Spread the picks over the whole list rather than its first entries.
const count = Math.min(Number(values.count), items.length);
const step = items.length / count;
items = Array.from({ length: count }, (_, k) => items[Math.floor(Number(values.offset) + k * step) % items.length]);
const cols = Number(values.columns), rows = Math.ceil(count / cols), side = corpus.size, pad = 2;
const W = cols * (side + pad), H = rows * (side + pad);
const sheet = { width: W, height: H, channels: 3, data: new Uint8Array(W * H * 3).fill(255) };
for (const [k, item] of items.entries()) {
  const img = await decodeImage(corpus.path(item));
  const ox = (k % cols) * (side + pad), oy = Math.floor(k / cols) * (side + pad);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) for (let c = 0; c < 3; c++)
    sheet.data[((oy + y) * W + ox + x) * 3 + c] = img.data[(y * img.width + x) * 3 + c];
  for (let p = 0; item.landmarks && p < 68; p++) {
    // A small cross per point.
    const px = Math.round(item.landmarks[2 * p]), py = Math.round(item.landmarks[2 * p + 1]);
    for (const [dx, dy] of [[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]]) {
      const x = px + dx, y = py + dy;
      if (x < 0 || y < 0 || x >= side || y >= side) continue;
      const o = ((oy + y) * W + ox + x) * 3;
      sheet.data[o] = 255; sheet.data[o + 1] = 0; sheet.data[o + 2] = 0;
    }
  }
}
await writeImage(values.out, sheet);
console.log(`${values.out}: ${count} crops (${items[0]?.id} ...)`);
