// TensorFlow.js weights: a model's manifest (weights-manifest.json) and its .bin shards, as
// face-api and other TF.js models ship them; and where the installed @vladmandic/face-api
// package keeps its trained models. Errors name the file and what is wrong.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { typeError } from '@lrface/cuda-core';

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale: number; min: number };
}

/** One weight in TensorFlow's layout (convolution filters [kh, kw, in, out], dense [in, out]). */
export interface TfjsWeight {
  shape: number[];
  data: Float32Array;
}

/**
 * Reads a TensorFlow.js weights manifest and its .bin shards; uint8-quantised entries are
 * dequantised as q * scale + min (tfjs's rule). Returns the weights by name in TF layout.
 */
export async function readTfjsWeights(manifestFile: string): Promise<Map<string, TfjsWeight>> {
  if (typeof manifestFile !== 'string') throw typeError('readTfjsWeights', 'manifestFile', 'a path string', manifestFile);
  const fail = (reason: string, weight?: string) => new Error(`${manifestFile}${weight ? ` (weight '${weight}')` : ''}: ${reason}`);
  let groups: { paths: string[]; weights: ManifestEntry[] }[];
  try {
    groups = JSON.parse(await readFile(manifestFile, 'utf8'));
  } catch (err) {
    throw fail(`cannot read the weights manifest: ${(err as Error).message}`);
  }
  if (!Array.isArray(groups)) throw fail('a weights manifest is a list of {paths, weights} groups');
  const out = new Map<string, TfjsWeight>();
  for (const g of groups) {
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw fail("each group needs 'paths' and 'weights' lists");
    let bins: Buffer[];
    try {
      bins = await Promise.all(g.paths.map((p) => readFile(join(dirname(manifestFile), p))));
    } catch (err) {
      throw fail(`cannot read a weights shard: ${(err as Error).message}`);
    }
    const bytes = Buffer.concat(bins);
    let off = 0;
    for (const w of g.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      const q = w.quantization;
      if (q) {
        if (q.dtype !== 'uint8') throw fail(`unsupported quantisation '${q.dtype}' (uint8 only)`, w.name);
        if (off + n > bytes.length) throw fail(`the .bin shards end early (${bytes.length} bytes, need ${off + n})`, w.name);
        for (let i = 0; i < n; i++) data[i] = bytes[off + i] * q.scale + q.min;
        off += n;
      } else {
        if (w.dtype !== 'float32') throw fail(`unsupported dtype '${w.dtype}'`, w.name);
        if (off + 4 * n > bytes.length) throw fail(`the .bin shards end early (${bytes.length} bytes, need ${off + 4 * n})`, w.name);
        data.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset + off, bytes.byteOffset + off + 4 * n)));
        off += 4 * n;
      }
      out.set(w.name, { shape: w.shape, data });
    }
    if (off !== bytes.length) throw fail(`the .bin shards hold ${bytes.length} bytes, the manifest describes ${off}`);
  }
  return out;
}

/** The folder of the trained models that the installed @vladmandic/face-api package ships. */
export function faceApiModelDir(caller = 'faceApiModelDir'): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('@vladmandic/face-api/package.json');
  } catch {
    throw new Error(`${caller}: @vladmandic/face-api is not installed; its model/ folder holds the weights (npm install @vladmandic/face-api)`);
  }
  return join(dirname(pkg), 'model');
}
