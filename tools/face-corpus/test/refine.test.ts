import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { haveSharedData, sharedDataDir } from '@lrface/test-data';
import { DlibXml, decodeImage } from '@lrface/datasets';
import type { RawImage } from '@lrface/datasets';
import { ReferenceDetector, boxFromPoints, boxIou, implausibleFacePoints, loadReferenceDetector, pointsBoundingBox, refineFaceBox } from '../src/index.js';

const haveAflw = haveSharedData('misc-faces/face-alignment/aflw-test.jpg', 'misc-faces/face-alignment/aflw-test.reference_3d_68.json');
const haveDlib = haveSharedData('dlib-faces/training_with_face_landmarks.xml');
const haveSet5 = haveSharedData('set5/butterfly_GT.png');

let det: ReferenceDetector;
beforeAll(async () => {
  det = await loadReferenceDetector();
});

/** FAN's 68 points of the AFLW photo as [x0, y0, ...]. */
function aflwReference(): number[] {
  const ref = JSON.parse(readFileSync(join(sharedDataDir, 'misc-faces/face-alignment/aflw-test.reference_3d_68.json'), 'utf8'));
  return ref.points_xyz.flatMap((p: number[]) => [p[0], p[1]]);
}

describe('box helpers', () => {
  it('pointsBoundingBox and boxFromPoints match hand-computed boxes', () => {
    const pts = [10, 20, 50, 20, 30, 100];
    expect(pointsBoundingBox(pts)).toEqual({ x: 10, y: 20, width: 40, height: 80 });
    // Centre (30, 60) moved by -0.1 * 80 = -8 to (30, 52); size 40 x 80 scaled by 1.5 -> 60 x 120.
    const b = boxFromPoints(pts, 1.5, -0.1);
    expect(b.x).toBeCloseTo(0, 10);
    expect(b.y).toBeCloseTo(-8, 10);
    expect(b.width).toBeCloseTo(60, 10);
    expect(b.height).toBeCloseTo(120, 10);
  });

  it('boxIou: identical 1, disjoint 0, half-shifted square 1/3', () => {
    const a = { x: 0, y: 0, width: 10, height: 10 };
    expect(boxIou(a, a)).toBe(1);
    expect(boxIou(a, { x: 20, y: 0, width: 10, height: 10 })).toBe(0);
    expect(boxIou(a, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150, 12);
  });
});

describe('implausibleFacePoints', () => {
  it.skipIf(!haveDlib)("accepts dlib's points of real faces and rejects them mirrored, upside down or broken", async () => {
    const ds = await DlibXml.open({ file: join(sharedDataDir, 'dlib-faces/training_with_face_landmarks.xml') });
    const faces = ds.toArray().flatMap((s) => s.landmarks.filter((p) => p && Number.isFinite(p[0])));
    expect(faces.length).toBeGreaterThan(10);
    for (const p of faces) expect(implausibleFacePoints(p)).toBeNull();
    const p = Array.from(faces[0]);
    // Mirrored without relabelling: the left-eye points now lie right of the right-eye points.
    expect(implausibleFacePoints(p.map((v, i) => (i % 2 === 0 ? -v : v)))).toBe('eyes in the wrong order');
    // Upside down (y mirrored, x kept so the eye order holds): chin on top.
    expect(implausibleFacePoints(p.map((v, i) => (i % 2 === 1 ? -v : v)))).toBe('eyes, nose, mouth, chin not top to bottom');
    const nan = p.slice();
    nan[7] = NaN;
    expect(implausibleFacePoints(nan)).toBe('non-finite point');
    expect(implausibleFacePoints(p.slice(0, 10))).toMatch(/expected 136/);
    // Nose tip (point 30) moved beyond the right outer eye corner (point 45).
    const nose = p.slice();
    nose[60] = p[90] + 5;
    expect(implausibleFacePoints(nose)).toBe('nose tip outside the outer eye corners');
  });
});

describe('refineFaceBox', () => {
  it.skipIf(!haveAflw)('from a shifted, enlarged box it settles on the face: points agree with FAN, box with the points', async () => {
    const ref = aflwReference();
    const truth = boxFromPoints(ref);
    const start = { x: truth.x + 0.15 * truth.width, y: truth.y - 0.1 * truth.height, width: truth.width * 1.3, height: truth.height * 1.3 };
    const r = await refineFaceBox(det, join(sharedDataDir, 'misc-faces/face-alignment/aflw-test.jpg'), start, { minSize: 40 });
    expect(r.rejected).toBeNull();
    expect(r.passes).toBeGreaterThan(1);
    expect(r.passes).toBeLessThanOrEqual(4);
    expect(boxIou(r.box, truth)).toBeGreaterThan(0.75);
    const iod = Math.hypot(ref[72] - ref[90], ref[73] - ref[91]);
    let e = 0;
    for (let i = 0; i < 68; i++) e += Math.hypot(r.points[2 * i] - ref[2 * i], r.points[2 * i + 1] - ref[2 * i + 1]);
    expect(e / 68 / iod).toBeLessThan(0.08);
    // The same face is rejected when the minimum size exceeds it, with the size in the reason.
    const small = await refineFaceBox(det, join(sharedDataDir, 'misc-faces/face-alignment/aflw-test.jpg'), start, { minSize: 10_000 });
    expect(small.rejected).toMatch(/^face \d+\.\d px < 10000 px$/);
    // One pass cannot settle from the shifted box.
    const once = await refineFaceBox(det, join(sharedDataDir, 'misc-faces/face-alignment/aflw-test.jpg'), start, { iterations: 1, minSize: 40 });
    expect(once.rejected).toBe('box did not settle in 1 passes');
  });

  it.skipIf(!haveSet5)('rejects a region without a face (the butterfly of Set5)', async () => {
    const img = (await decodeImage(join(sharedDataDir, 'set5/butterfly_GT.png'))) as RawImage;
    const r = await refineFaceBox(det, img, { x: 40, y: 40, width: 176, height: 176 }, { minSize: 40 });
    expect(r.rejected).not.toBeNull();
  });

  it('rejects bad arguments with the function and argument named', async () => {
    const box = { x: 0, y: 0, width: 10, height: 10 };
    const img: RawImage = { width: 4, height: 4, channels: 3, data: new Uint8Array(48) };
    await expect(refineFaceBox({} as never, img, box)).rejects.toThrow(/refineFaceBox.*'detector'/);
    await expect(refineFaceBox(det, img, { x: 0 } as never)).rejects.toThrow(TypeError);
    await expect(refineFaceBox(det, img, { ...box, width: 0 })).rejects.toThrow(/refineFaceBox.*'box'/);
    await expect(refineFaceBox(det, img, box, { iterations: 0 })).rejects.toThrow(/'iterations'/);
    await expect(refineFaceBox(det, img, box, { settledIou: 2 })).rejects.toThrow(/'settledIou'/);
    await expect(refineFaceBox(det, img, box, { bogus: 1 } as never)).rejects.toThrow(/bogus/);
  });
});
