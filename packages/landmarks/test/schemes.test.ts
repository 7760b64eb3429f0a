import { describe, expect, it } from 'vitest';
import { MIRROR_68, checkMirrorMap } from '@lrface/datasets';
import { SCHEME_5, SCHEME_68, SCHEME_AFLW19, SCHEME_AFLW21, groupMean, schemeFor, selectPoints, toFivePoints } from '../src/index.js';

/** 68 points where point i sits at (i, 100 + 2 i). */
const ramp68 = Float32Array.from({ length: 136 }, (_, k) => (k % 2 === 0 ? k / 2 : 100 + k));

describe('landmark schemes', () => {
  it('has consistent point counts, mirror maps and in-range groups', () => {
    for (const s of [SCHEME_68, SCHEME_AFLW21, SCHEME_AFLW19, SCHEME_5]) {
      checkMirrorMap('test', s.mirror as number[], s.points);
      for (const [name, g] of Object.entries(s.groups)) for (const i of g) expect(i, `${s.name}.${name}`).toBeLessThan(s.points);
      expect(s.toFive.length).toBe(5);
      if (s.names) expect(s.names.length).toBe(s.points);
      expect(schemeFor(s.points)).toBe(s);
    }
    expect(SCHEME_68.mirror).toBe(MIRROR_68);
  });

  it('uses the standard 68-point indices', () => {
    expect(SCHEME_68.outerEyeCorners).toEqual([36, 45]);
    expect(SCHEME_68.groups.jaw.length).toBe(17);
    expect(SCHEME_68.groups.leftEye).toEqual([36, 37, 38, 39, 40, 41]);
    expect(SCHEME_68.groups.rightEye).toEqual([42, 43, 44, 45, 46, 47]);
    expect(SCHEME_68.groups.mouth.length).toBe(20);
    // Mirroring swaps the eyes, the outer corners and the mouth corners.
    expect(SCHEME_68.mirror[36]).toBe(45);
    expect(SCHEME_68.mirror[48]).toBe(54);
    expect(SCHEME_AFLW19.names?.[SCHEME_AFLW19.outerEyeCorners[0]]).toBe('LeftEyeLeftCorner');
    expect(SCHEME_AFLW19.names?.[SCHEME_AFLW19.outerEyeCorners[1]]).toBe('RightEyeRightCorner');
    expect(SCHEME_AFLW21.names?.[SCHEME_AFLW21.toFive[2][0]]).toBe('NoseCenter');
    expect(SCHEME_AFLW19.names?.[SCHEME_AFLW19.toFive[4][0]]).toBe('MouthRightCorner');
  });

  it('maps 68 points to 5 with eye centres as the mean of the six eye points', () => {
    const five = toFivePoints(ramp68);
    // Left eye: mean of 36..41 = 38.5 in x, 100 + 2 * 38.5 + 1 = 178 in y.
    expect(Array.from(five)).toEqual([38.5, 178, 44.5, 190, 30, 161, 48, 197, 54, 209]);
    // Two faces back to back.
    const two = new Float32Array(272);
    two.set(ramp68);
    two.set(ramp68.map((v) => v * 2), 136);
    const f2 = toFivePoints(two);
    expect(f2.length).toBe(20);
    expect(Array.from(f2.subarray(10))).toEqual(Array.from(five).map((v) => v * 2));
    // AFLW-19: the eye centres and the rest are single points.
    const ramp19 = Float32Array.from({ length: 38 }, (_, k) => k);
    expect(Array.from(toFivePoints(ramp19, SCHEME_AFLW19))).toEqual([14, 15, 20, 21, 26, 27, 30, 31, 34, 35]);
    expect(Array.from(toFivePoints([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], SCHEME_5))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('selects groups and averages them', () => {
    expect(Array.from(selectPoints(ramp68, SCHEME_68.groups.outerEyeCorners))).toEqual([36, 173, 45, 191]);
    expect(groupMean(ramp68, [0, 2])).toEqual([1, 103]);
  });

  it('rejects bad input', () => {
    expect(() => schemeFor(17)).toThrow(/schemeFor: 'points' must be 68, 21, 19 or 5, got 17/);
    expect(() => schemeFor('68' as unknown as number)).toThrow(TypeError);
    expect(() => toFivePoints(new Float32Array(135))).toThrow(/toFivePoints: 'landmarks' must be an even number/);
    expect(() => toFivePoints(new Float32Array(130))).toThrow(/a multiple of 68 points/);
    expect(() => toFivePoints('x' as unknown as number[])).toThrow(TypeError);
    expect(() => selectPoints(ramp68, [68])).toThrow(/selectPoints: 'indices' must be indices in \[0, 67\]/);
    expect(() => selectPoints(ramp68, [])).toThrow(TypeError);
  });
});
