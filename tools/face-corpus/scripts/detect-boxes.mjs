#!/usr/bin/env node
// Face boxes for a folder of photos, for an extra corpus source's boxes file (ExtraSource.boxes):
// face-api's SSD MobileNet v1 face detector (the installed @vladmandic/face-api weights, MIT)
// run with its bundled TensorFlow.js on the CPU. Boxes of faces of at least --min-size px with a
// score of at least --min-score are kept; the corpus build then refines each box from the
// reference detector's points and rejects implausible faces.
// Usage: node tools/face-corpus/scripts/detect-boxes.mjs --dir DIR --out boxes.json [--min-score 0.8] [--min-size 80]
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '@lrface/datasets';
import { faceApiModelDir } from '../dist/index.js';

const { values } = parseArgs({
  options: { dir: { type: 'string' }, out: { type: 'string' }, 'min-score': { type: 'string', default: '0.8' }, 'min-size': { type: 'string', default: '80' } },
});
if (!values.dir || !values.out) throw new Error('detect-boxes: --dir DIR and --out FILE.json are required');
const minScore = Number(values['min-score']);
const minSize = Number(values['min-size']);

// The bundle's Node.js platform expects the real 'util' module and fails on its own stub, so it
// is loaded as a plain (non-browser, non-Node) environment and given a minimal platform.
const versions = process.versions;
Object.defineProperty(process, 'versions', { value: {}, configurable: true });
const faceapi = await import('@vladmandic/face-api/dist/face-api.esm.js');
Object.defineProperty(process, 'versions', { value: versions, configurable: true });
const tf = faceapi.tf;
tf.env().setPlatform('plain', {
  fetch: globalThis.fetch, now: () => performance.now(), setTimeoutCustom: (f, t) => setTimeout(f, t),
  encode: (s) => new TextEncoder().encode(s), decode: (b, e) => new TextDecoder(e).decode(b),
  isTypedArray: (a) => ArrayBuffer.isView(a) && !(a instanceof DataView),
});
// Inputs are tensors, so the canvas and image classes are never used.
faceapi.env.setEnv({ ...faceapi.env.createNodejsEnv(), Canvas: class {}, Image: class {}, ImageData: class {}, Video: class {}, createCanvasElement: () => ({}), createImageElement: () => ({}) });
await tf.setBackend('cpu');
await tf.ready();

const modelDir = faceApiModelDir();
const manifest = JSON.parse(readFileSync(join(modelDir, 'ssd_mobilenetv1_model-weights_manifest.json'), 'utf8'));
const weights = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => readFileSync(join(modelDir, p)))));
await faceapi.nets.ssdMobilenetv1.loadFromWeightMap(tf.io.decodeWeights(weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length), manifest.flatMap((g) => g.weights)));

const files = readdirSync(values.dir, { recursive: true }).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
const boxes = {};
for (const f of files) {
  const img = await decodeImage(join(values.dir, f));
  const t = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
  const dets = await faceapi.detectAllFaces(t, new faceapi.SsdMobilenetv1Options({ minConfidence: minScore }));
  t.dispose();
  const kept = dets.filter((d) => Math.max(d.box.width, d.box.height) >= minSize).map((d) => ({ x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height }));
  console.log(`${f}: ${dets.length} faces, ${kept.length} of >= ${minSize} px`);
  if (kept.length) boxes[f] = kept;
  // Written after every image (atomically), so an interrupted run keeps what it found.
  writeFileSync(values.out + '.tmp', JSON.stringify(boxes, null, 1));
  renameSync(values.out + '.tmp', values.out);
}
console.log(`${Object.keys(boxes).length} of ${files.length} images with faces -> ${values.out}`);
