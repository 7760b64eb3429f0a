import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { DlibXml, decodeImage, imageToTensor } from '@lrface/datasets';
import { zeros } from '@lrface/cuda-core';
import { faceApiModelDir, readTfjsWeights } from '@lrface/nn';
import { ReferenceDetector, loadReferenceDetector } from '../src/index.js';

const haveDlib = haveSharedData('dlib-faces/training_with_face_landmarks.xml', 'dlib-faces/testing_with_face_landmarks.xml');
const haveAflw = haveSharedData('misc-faces/face-alignment/aflw-test.jpg', 'misc-faces/face-alignment/aflw-test.reference_3d_68.json');
const MANIFEST = 'face_landmark_68_model-weights_manifest.json';

/** Mean point error over the outer-eye-corner distance (points 36 and 45) of the reference. */
function nmeInterOcular(pts: [number, number][], ref: ArrayLike<number>): number {
  const d = Math.hypot(ref[72] - ref[90], ref[73] - ref[91]);
  let e = 0;
  for (let i = 0; i < 68; i++) e += Math.hypot(pts[i][0] - ref[2 * i], pts[i][1] - ref[2 * i + 1]);
  return e / 68 / d;
}

let det: ReferenceDetector;
beforeAll(async () => {
  det = await loadReferenceDetector();
});

describe('readTfjsWeights', () => {
  it('dequantises uint8 weights as q * scale + min, in manifest order', async () => {
    const w = await readTfjsWeights(join(faceApiModelDir(), MANIFEST));
    const manifest = JSON.parse(readFileSync(join(faceApiModelDir(), MANIFEST), 'utf8'))[0];
    const bin = readFileSync(join(faceApiModelDir(), manifest.paths[0]));
    expect(w.size).toBe(manifest.weights.length);
    // The second entry starts after the first one's bytes (one byte per quantised value).
    const first = manifest.weights[0];
    const second = manifest.weights[1];
    const n0 = first.shape.reduce((a: number, b: number) => a * b, 1);
    expect(w.get(first.name)!.data[5]).toBeCloseTo(bin[5] * first.quantization.scale + first.quantization.min, 6);
    expect(w.get(second.name)!.data[3]).toBeCloseTo(bin[n0 + 3] * second.quantization.scale + second.quantization.min, 6);
    expect(w.get('fc/weights')!.shape).toEqual([256, 136]);
  });

  it('names the file and the fault for corrupt weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-'));
    await expect(readTfjsWeights(join(dir, 'none.json'))).rejects.toThrow(/none\.json: cannot read the weights manifest/);
    writeFileSync(join(dir, 'bad.json'), '{"paths": 1}');
    await expect(readTfjsWeights(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json: a weights manifest is a list/);
    writeFileSync(join(dir, 'short.json'), JSON.stringify([{ paths: ['short.bin'], weights: [{ name: 'a', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }] }]));
    writeFileSync(join(dir, 'short.bin'), Buffer.from([1, 2]));
    await expect(readTfjsWeights(join(dir, 'short.json'))).rejects.toThrow(/short\.json \(weight 'a'\): the \.bin shards end early/);
    writeFileSync(join(dir, 'long.json'), JSON.stringify([{ paths: ['short.bin'], weights: [{ name: 'a', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }] }]));
    await expect(readTfjsWeights(join(dir, 'long.json'))).rejects.toThrow(/hold 2 bytes, the manifest describes 1/);
    await expect(readTfjsWeights(3 as never)).rejects.toThrow(TypeError);
  });

  it('a model folder with a weight missing is refused, naming the weight', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-'));
    const manifest = JSON.parse(readFileSync(join(faceApiModelDir(), MANIFEST), 'utf8'));
    const dropped = manifest[0].weights.pop();
    const n = dropped.shape.reduce((a: number, b: number) => a * b, 1);
    const bin = readFileSync(join(faceApiModelDir(), manifest[0].paths[0]));
    writeFileSync(join(dir, manifest[0].paths[0]), bin.subarray(0, bin.length - n));
    writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest));
    await expect(loadReferenceDetector(dir)).rejects.toThrow(/weight 'fc\/bias' is missing/);
  });
});

describe('ReferenceDetector', () => {
  it.skipIf(!haveDlib)("agrees with dlib's 68 points on the real faces of dlib's examples (mean NME < 0.075)", async () => {
    const nmes: number[] = [];
    for (const xml of ['training_with_face_landmarks.xml', 'testing_with_face_landmarks.xml']) {
      const ds = await DlibXml.open({ file: join(sharedDataDir, 'dlib-faces', xml) });
      for (const s of ds)
        for (let k = 0; k < s.boxes.length; k++) {
          if (!Number.isFinite(s.landmarks[k][0])) continue;
          const pts = await det.detect68(s.image.source as string, s.boxes[k]);
          expect(pts.length).toBe(68);
          nmes.push(nmeInterOcular(pts, s.landmarks[k]));
        }
    }
    expect(nmes.length).toBe(43);
    const mean = nmes.reduce((a, b) => a + b) / nmes.length;
    // Measured 0.060 (median 0.053): two different models on 37-110 px faces.
    expect(mean).toBeLessThan(0.075);
    expect(Math.max(...nmes)).toBeLessThan(0.2);
  });

  it.skipIf(!haveAflw)('agrees with the FAN reference prediction on the AFLW photo (NME < 0.05), from a path, pixels or a tensor', async () => {
    const file = join(sharedDataDir, 'misc-faces/face-alignment/aflw-test.jpg');
    const ref = JSON.parse(readFileSync(join(sharedDataDir, 'misc-faces/face-alignment/aflw-test.reference_3d_68.json'), 'utf8')).points_xyz.flatMap((p: number[]) => [p[0], p[1]]);
    const xs = ref.filter((_: number, i: number) => i % 2 === 0);
    const ys = ref.filter((_: number, i: number) => i % 2 === 1);
    const box = { x: Math.min(...xs), y: Math.min(...ys), width: Math.max(...xs) - Math.min(...xs), height: Math.max(...ys) - Math.min(...ys) };
    const fromPath = await det.detect68(file, box);
    // Measured 0.037.
    expect(nmeInterOcular(fromPath, ref)).toBeLessThan(0.05);
    const img = await decodeImage(file);
    expect(await det.detect68(img, box)).toEqual(fromPath);
    const fromTensor = await det.detect68(imageToTensor(img), box);
    for (let i = 0; i < 68; i++) for (const a of [0, 1]) expect(fromTensor[i][a]).toBeCloseTo(fromPath[i][a], 3);
  });

  it('rejects bad input, naming the function and argument', async () => {
    const box = { x: 0, y: 0, width: 10, height: 10 };
    const rgb = { data: new Uint8Array(20 * 20 * 3), width: 20, height: 20, channels: 3 };
    await expect(det.detect68(rgb, null as never)).rejects.toThrow(/ReferenceDetector\.detect68.*'box'/);
    await expect(det.detect68(rgb, { ...box, width: 0 })).rejects.toThrow(RangeError);
    await expect(det.detect68(rgb, box, { margin: -1 })).rejects.toThrow(/'margin'/);
    await expect(det.detect68(42 as never, box)).rejects.toThrow(/ReferenceDetector\.detect68.*'image'/);
    await expect(det.detect68({ ...rgb, data: new Uint8Array(400), channels: 1 }, box)).rejects.toThrow(/RGB image/);
    await expect(det.detect68('/nonexistent.png', box)).rejects.toThrow(/nonexistent\.png/);
    expect(() => det.forward(zeros([1, 3, 64, 64]))).toThrow(/ReferenceDetector\.forward.*'x'/);
  });
});
