// `lrface eval-landmarks`: the error figures equal a direct computation (detector + a naive
// inter-ocular NME), the low-resolution protocol shrinks the face box to S px and maps points
// back, and both dataset layouts (dlib XML, 300-W folders) are read.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DlibXml, landmarkBox } from '@lrface/datasets';
import { loadLandmarkDetector } from '@lrface/landmarks';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
// @ts-expect-error plain ES module without types
import { evalLandmarks, parseEvalLandmarksArgs, shrinkFace } from '../src/eval-landmarks.mjs';

const bin = fileURLToPath(new URL('../bin/lrface.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LRFACE_NUM_THREADS: process.env.LRFACE_NUM_THREADS ?? '2' } });
const xml = `${sharedDataDir}dlib-faces/training_with_face_landmarks.xml`;
const w300Fixture = fileURLToPath(new URL('../../../packages/datasets/test/fixtures/300w', import.meta.url));

/** Mean point distance over the distance of the outer eye corners (points 36 and 45), written out. */
function naiveInterOcularNme(pred: [number, number][], gt: ArrayLike<number>): number {
  const d = Math.hypot(gt[72] - gt[90], gt[73] - gt[91]);
  let sum = 0;
  for (let k = 0; k < 68; k++) sum += Math.hypot(pred[k][0] - gt[2 * k], pred[k][1] - gt[2 * k + 1]);
  return sum / 68 / d;
}

describe.skipIf(!haveSharedData('dlib-faces'))('lrface eval-landmarks on dlib faces', () => {
  it('prints ONE JSON line whose NME is the mean of directly computed per-face errors', async () => {
    const r = run('eval-landmarks', '--dlib-xml', xml, '--model', 'hr68', '--limit', '3', '--no-flip', '--json');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]);
    expect(Object.keys(out)).toEqual(['model', 'dataset', 'faces', 'lowResolution', 'normalizer', 'nme', 'median', 'std', 'auc_0.08', 'failure_0.08', 'auc_0.07', 'failure_0.07', 'seconds']);
    expect(out).toMatchObject({ model: 'hr68', faces: 3, lowResolution: null, normalizer: 'inter-ocular' });

    const ds = await DlibXml.open({ file: xml });
    const detector = await loadLandmarkDetector('hr68');
    const errors: number[] = [];
    for (let i = 0; i < ds.length && errors.length < 3; i++) {
      const s = ds.get(i);
      const image = await s.image.decode();
      for (let f = 0; f < s.boxes.length && errors.length < 3; f++) {
        const { points } = await detector.detect(image, { box: s.boxes[f], flip: false });
        errors.push(naiveInterOcularNme(points, s.landmarks[f]));
      }
    }
    detector.network.dispose();
    const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
    expect(out.nme).toBeCloseTo(mean, 6);
    expect(out.median).toBeCloseTo([...errors].sort((a, b) => a - b)[1], 6);
    expect(out['failure_0.08']).toBeCloseTo(errors.filter((e) => e > 0.08).length / 3, 10);
  });

  it('runs lr68 on the faces shrunk to 24 px (the tiny-face protocol)', async () => {
    const out = await evalLandmarks(parseEvalLandmarksArgs(['--dlib-xml', xml, '--model', 'lr68', '--low-resolution', '24']));
    console.log(`eval-landmarks lr68 on dlib faces at 24 px: ${out.faces} faces, NME ${out.nme.toFixed(4)} (median ${out.median.toFixed(4)})`);
    expect(out.faces).toBeGreaterThanOrEqual(10);
    expect(out.lowResolution).toBe(24);
    // Against dlib's own points on these 37-110 px faces lr68 at 24 px agrees to about 0.08.
    expect(out.nme).toBeGreaterThan(0.01);
    expect(out.nme).toBeLessThan(0.2);
  });
});

describe('shrinkFace', () => {
  it('makes the box S px on its longer side and maps points back to the original image', () => {
    const width = 200;
    const height = 150;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    const box = { x: 60, y: 40, width: 80, height: 64 };
    const lr = shrinkFace({ data, width, height, channels: 3 }, box, 20);
    expect(Math.max(lr.box.width, lr.box.height)).toBeCloseTo(20, 1);
    // Twice the box (half of it as context on each side): 40 px wide.
    expect(lr.image.width).toBe(40);
    expect(lr.image.height).toBe(32);
    const [x0, y0] = lr.toImage([lr.box.x, lr.box.y]);
    const [x1, y1] = lr.toImage([lr.box.x + lr.box.width, lr.box.y + lr.box.height]);
    // Pixel centres map through the resize (x + 0.5) / s - 0.5: corners land within a quarter pixel.
    expect(Math.abs(x0 - box.x)).toBeLessThan(2.5);
    expect(Math.abs(x1 - x0 - box.width)).toBeLessThan(1e-6);
    expect(Math.abs(y1 - y0 - box.height)).toBeLessThan(1e-6);
    expect(Math.abs(y0 - box.y)).toBeLessThan(2.5);
  });
});

describe('lrface eval-landmarks arguments', () => {
  it.skipIf(!haveSharedData('dlib-faces'))('reads a 300-W folder layout, its 1-based .pts points counted from 0', async () => {
    // dlib's points written as ibug/*.pts (+1: the format counts pixels from 1), beside copies of their images.
    const root = mkdtempSync(join(tmpdir(), 'lrface-cli-300w-'));
    mkdirSync(join(root, 'ibug'));
    const ds = await DlibXml.open({ file: xml });
    const detector = await loadLandmarkDetector('hr68');
    const errors: number[] = [];
    for (let i = 0; i < ds.length && errors.length < 2; i++) {
      const s = ds.get(i);
      if (s.boxes.length === 0) continue;
      const gt = s.landmarks[0];
      copyFileSync(s.image.name, join(root, 'ibug', `face_${i}.jpg`));
      const pts = Array.from({ length: 68 }, (_, k) => `${gt[2 * k] + 1} ${gt[2 * k + 1] + 1}`);
      writeFileSync(join(root, 'ibug', `face_${i}.pts`), `version: 1\nn_points: 68\n{\n${pts.join('\n')}\n}\n`);
      // 300-W has no face boxes: the reader's box is the points' tight box.
      const { points } = await detector.detect(await s.image.decode(), { box: landmarkBox(gt), flip: false });
      errors.push(naiveInterOcularNme(points, gt));
    }
    detector.network.dispose();
    const r = run('eval-landmarks', '--w300', root, '--subset', 'challenging', '--model', 'hr68', '--no-flip', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ dataset: '300-W challenging', faces: 2 });
    expect(out.nme).toBeCloseTo((errors[0] + errors[1]) / 2, 5);
  });

  it('names the image when an annotation does not fit it', () => {
    // The datasets fixture pairs real 300-W points with small stand-in images.
    const r = run('eval-landmarks', '--w300', w300Fixture, '--subset', 'challenging', '--model', 'hr68');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/face 1 of .*ibug.*'box' must be a box overlapping the image/);
    // Shrunk first, the face would be cut from the replicated border and scored all the same.
    const low = run('eval-landmarks', '--w300', w300Fixture, '--subset', 'challenging', '--model', 'hr68', '--low-resolution', '16');
    expect(low.status).toBe(1);
    expect(low.stderr).toMatch(/face 1 of .*ibug.*'box' must be a box overlapping the image \(\d+x\d+\)/);
  });

  it('refuses bad arguments with a usage error (exit 2)', () => {
    const usage = (args: string[], message: RegExp) => {
      const r = run('eval-landmarks', ...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('usage: lrface eval-landmarks');
    };
    usage([], /give --w300 DIR or --dlib-xml FILE/);
    usage(['--w300', w300Fixture, '--dlib-xml', xml], /one of them/);
    usage(['--dlib-xml', xml, '--subset', 'common'], /--subset goes with --w300/);
    usage(['--w300', w300Fixture, '--subset', 'hard'], /--subset must be one of .*got 'hard'/);
    usage(['--dlib-xml', xml, '--model', 'dlib'], /--model must be one of .*got 'dlib'/);
    usage(['--dlib-xml', xml, '--normalizer', 'eyes'], /--normalizer must be one of .*got 'eyes'/);
    usage(['--dlib-xml', xml, '--low-resolution', '4'], /at least 8 px/);
    usage(['--dlib-xml', xml, '--limit', '0'], /--limit must be an integer >= 1/);
    usage(['--dlib-xml', xml, '--scale', '2'], /Unknown option '--scale'/);
  });

  it('names a missing or malformed dataset file', () => {
    const missing = run('eval-landmarks', '--dlib-xml', '/nonexistent/faces.xml');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('/nonexistent/faces.xml');
    const noPoints = run('eval-landmarks', '--dlib-xml', `${sharedDataDir}dlib-faces/training.xml`);
    if (haveSharedData('dlib-faces')) {
      expect(noPoints.status).toBe(1);
      expect(noPoints.stderr).toMatch(/training\.xml' has 0 parts per face/);
    }
  });
});
