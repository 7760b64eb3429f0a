import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage, type RawImage } from '@lrface/datasets';
import { cedCurve, cedPlotLayout, cedPlotPng, renderCedPlot, textWidth, writeCedPlot, type Rgb } from '../src/index.js';

const RED: Rgb = [200, 0, 0];
const BLUE: Rgb = [0, 0, 200];

function pixel(img: RawImage<Uint8Array>, x: number, y: number): Rgb {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

function countColor(img: RawImage<Uint8Array>, c: Rgb, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) if (pixel(img, x, y).every((v, k) => v === c[k])) n++;
  return n;
}

describe('CED plot', () => {
  // Half the images at 0.02, half at 0.05: the CED is 0 below 0.02, 0.5 up to 0.05, then 1.
  const steps = [0.02, 0.05];

  it('draws curves where the data says', () => {
    const img = renderCedPlot([{ name: 'steps', errors: steps, color: RED }], { width: 640, height: 480, maxError: 0.08, legend: 'none', lineWidth: 1 });
    expect([img.width, img.height, img.channels, img.data.length]).toEqual([640, 480, 3, 640 * 480 * 3]);
    const L = cedPlotLayout({ width: 640, height: 480, maxError: 0.08 });
    // On the plateau at 0.5 and at 1.
    expect(pixel(img, L.xToPixel(0.035), L.yToPixel(0.5))).toEqual(RED);
    expect(pixel(img, L.xToPixel(0.065), L.yToPixel(1))).toEqual(RED);
    expect(pixel(img, L.xToPixel(0.01), L.yToPixel(0) - 1)).not.toEqual(RED);
    // Not above or below the plateau.
    expect(pixel(img, L.xToPixel(0.035), L.yToPixel(0.5) - 3)).not.toEqual(RED);
    expect(pixel(img, L.xToPixel(0.035), L.yToPixel(0.5) + 3)).not.toEqual(RED);
    // The rise at 0.05 (from 0.5 to 1) lies within a grid step of its column.
    const rise = L.xToPixel(0.05);
    const y = L.yToPixel(0.75);
    expect(countColor(img, RED, rise - 1, y, rise + 1, y)).toBeGreaterThan(0);
    expect(countColor(img, RED, rise + 3, y, rise + 10, y)).toBe(0);
    // Nothing red left of 0.02 above the axis.
    expect(countColor(img, RED, L.left + 1, L.top, L.xToPixel(0.019), L.bottom - 1)).toBe(0);
    // Axes are black at the corner.
    expect(pixel(img, L.left, L.bottom)).toEqual([0, 0, 0]);
    expect(pixel(img, L.right, L.bottom)).toEqual([0, 0, 0]);
  });

  it('draws several curves, each in its colour, and a legend', () => {
    const other = cedCurve([0.01, 0.03, 0.06, 0.07], { max: 0.08 });
    const curves = [
      { name: 'steps', errors: steps, color: RED },
      { name: 'other', curve: other, color: BLUE },
    ];
    const img = renderCedPlot(curves, { legend: 'upper-left', lineWidth: 1, maxError: 0.08 });
    const L = cedPlotLayout({ maxError: 0.08 });
    // 'other' is at 0.5 between 0.03 and 0.06: shares the plateau of 'steps' and is drawn on top.
    expect(pixel(img, L.xToPixel(0.045), L.yToPixel(0.5))).toEqual(BLUE);
    expect(pixel(img, L.xToPixel(0.02), L.yToPixel(0.25))).toEqual(BLUE);
    expect(pixel(img, L.xToPixel(0.025), L.yToPixel(0.5))).toEqual(RED);
    // The legend (upper left) holds swatches of both colours and black text.
    const box = [L.left + 1, L.top + 1, L.left + 200, L.top + 60] as const;
    expect(countColor(img, RED, ...box)).toBeGreaterThan(10);
    expect(countColor(img, BLUE, ...box)).toBeGreaterThan(10);
    expect(countColor(img, [0, 0, 0], ...box)).toBeGreaterThan(textWidth('other', 2));
    const none = renderCedPlot(curves, { legend: 'none', lineWidth: 1, maxError: 0.08 });
    expect(countColor(none, BLUE, ...box)).toBe(0);
  });

  it('puts the legend in the corner the curves leave free and shrinks long names to fit', () => {
    // A curve that stays at 0 then jumps to 1 late: the upper-left corner is free.
    const late = [{ name: 'a rather long method name that needs room', errors: [0.07, 0.075], color: RED }];
    const img = renderCedPlot(late, { maxError: 0.08, lineWidth: 1 });
    const L = cedPlotLayout({ maxError: 0.08 });
    const upperLeft = [L.left + 1, L.top + 1, L.left + 60, L.top + 30] as const;
    expect(countColor(img, [0, 0, 0], ...upperLeft)).toBeGreaterThan(20);
    expect(countColor(img, RED, ...upperLeft)).toBeGreaterThan(0); // the swatch
    // Every red pixel outside the legend is on the curve: none is hidden by it.
    expect(pixel(img, L.xToPixel(0.074), L.yToPixel(0.5))).toEqual(RED);
    expect(pixel(img, L.xToPixel(0.03), L.yToPixel(0))).toEqual([0, 0, 0]); // the axis drawn over the curve
    // The legend stays inside the image at scale 2 (the text shrinks to scale 1).
    const wide = renderCedPlot([{ name: 'x'.repeat(80), errors: [0.07] }], { maxError: 0.08 });
    expect(wide.width).toBe(640);
  });

  it('picks round x ticks whose labels do not touch', () => {
    const L = cedPlotLayout({ maxError: 0.2 });
    const img = renderCedPlot([{ name: 'a', errors: [0.1] }], { maxError: 0.2, legend: 'none' });
    // Ticks every 0.05 (labels 0.00 ... 0.20), none at 0.025.
    for (const t of [0, 0.05, 0.1, 0.15, 0.2]) expect(pixel(img, L.xToPixel(t), L.bottom + 3)).toEqual([0, 0, 0]);
    expect(pixel(img, L.xToPixel(0.025), L.bottom + 3)).toEqual([255, 255, 255]);
    const L8 = cedPlotLayout({ maxError: 0.08 });
    const img8 = renderCedPlot([{ name: 'a', errors: [0.1] }], { maxError: 0.08, legend: 'none' });
    for (const t of [0.01, 0.02, 0.07]) expect(pixel(img8, L8.xToPixel(t), L8.bottom + 3)).toEqual([0, 0, 0]);
  });

  it('encodes a lossless PNG and writes it atomically', async () => {
    const curves = [{ name: 'steps', errors: steps }];
    const raw = renderCedPlot(curves, { width: 320, height: 240 });
    const png = await cedPlotPng(curves, { width: 320, height: 240 });
    expect(Array.from(png.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]); // "PNG"
    const back = await decodeImage(png);
    expect([back.width, back.height]).toEqual([320, 240]);
    expect(Buffer.from(back.data).equals(Buffer.from(raw.data))).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'ced-plot-'));
    try {
      await writeCedPlot(join(dir, 'ced.png'), curves, { width: 320, height: 240 });
      expect(readFileSync(join(dir, 'ced.png')).equals(png)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad input', () => {
    expect(() => renderCedPlot([])).toThrow(/renderCedPlot: 'curves' must be a non-empty array/);
    expect(() => renderCedPlot([{ name: 'a' }])).toThrow(/'curves\[0\]' must be an object with either errors or curve/);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1], curve: cedCurve([0.1]) }])).toThrow(TypeError);
    expect(() => renderCedPlot([{ name: 1 as never, errors: [0.1] }])).toThrow(/string name/);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1], color: [300, 0, 0] }])).toThrow(/'curves\[0\].color'/);
    expect(() => renderCedPlot([{ name: 'a', curve: { thresholds: new Float64Array(3), fractions: new Float64Array(2) } }])).toThrow(/'curves\[0\].curve'/);
    // A curve's errors are checked as the curve's, not by cedCurve under its own name.
    expect(() => renderCedPlot([{ name: 'a', errors: [] }])).toThrow(new RangeError("renderCedPlot: 'curves[0].errors' must be a non-empty array, got an empty array"));
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1] }, { name: 'b', errors: [0.1, -1] }])).toThrow(new RangeError("renderCedPlot: 'curves[1].errors' must be non-negative numbers (Infinity for a failure), got curves[1].errors[1] = -1"));
    expect(() => renderCedPlot([{ name: 'a', errors: 'x' as never }])).toThrow(TypeError);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1] }], { width: 100 })).toThrow(/'width' must be an integer >= 160/);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1] }], { colour: 1 } as never)).toThrow(/'colour' must be one of the known options/);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1] }], { legend: 'top' as never })).toThrow(/'legend'/);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1] }], { maxError: -1 })).toThrow(/'maxError'/);
    expect(() => renderCedPlot([{ name: 'a', errors: [0.1] }], { xTick: 0.0001 })).toThrow(/'xTick'/);
    return expect(writeCedPlot('', [{ name: 'a', errors: [0.1] }])).rejects.toThrow(/writeCedPlot: 'path'/);
  });

  it('names the function the caller called in every argument error', async () => {
    const good = [{ name: 'a', errors: [0.1] }];
    // Each entry point with the same bad arguments: the same message under its own name.
    const entries: [string, (curves: never, options: never) => unknown][] = [
      ['renderCedPlot', (c, o) => renderCedPlot(c, o)],
      ['cedPlotPng', (c, o) => cedPlotPng(c, o)],
      ['writeCedPlot', (c, o) => writeCedPlot(join(tmpdir(), 'never-written-ced.png'), c, o)],
    ];
    const cases: [unknown, unknown, ErrorConstructor, string][] = [
      [[], {}, TypeError, "'curves' must be a non-empty array of {name, errors | curve}, got array of length 0"],
      [[{ name: 'a', errors: [] }], {}, RangeError, "'curves[0].errors' must be a non-empty array, got an empty array"],
      [[{ name: 'a', errors: [0.1], color: [300, 0, 0] }], {}, RangeError, "'curves[0].color' must be an [r, g, b] triple of integers in [0, 255], got array of length 3"],
      [good, { colour: 1 }, TypeError, "'colour' must be one of the known options (width, height, maxError, xTick, title, xLabel, yLabel, lineWidth, legend, fontScale), got an unknown option"],
      [good, { width: 100 }, RangeError, "'width' must be an integer >= 160, got 100"],
      [good, { fontScale: 0 }, RangeError, "'fontScale' must be an integer >= 1, got 0"],
      [good, { maxError: -1 }, RangeError, "'maxError' must be a positive finite number, got -1"],
      [good, { width: 160, height: 120, fontScale: 4 }, RangeError, "'width' must be an image large enough for a plot area of 40 x 40 px, got 160x120"],
      [good, { lineWidth: 0.5 }, RangeError, "'lineWidth' must be an integer >= 1, got 0.5"],
      [good, { legend: 'top' }, RangeError, "'legend' must be 'auto', 'lower-right', 'upper-left', 'upper-right', 'lower-left', 'none', got \"top\""],
      [good, { xTick: 0.0001 }, RangeError, "'xTick' must be a positive step giving at most 50 ticks on [0, 0.08], got 0.0001"],
    ];
    for (const [name, call] of entries)
      for (const [curves, options, type, message] of cases) {
        let caught: unknown;
        try {
          await call(curves as never, options as never);
        } catch (err) {
          caught = err;
        }
        expect(caught, `${name} ${message}`).toBeInstanceOf(type);
        expect((caught as Error).message).toBe(`${name}: ${message}`);
      }
    // cedPlotLayout's own checks name it.
    expect(() => cedPlotLayout({ maxError: 0 })).toThrow(new RangeError("cedPlotLayout: 'maxError' must be a positive finite number, got 0"));
    expect(() => cedPlotLayout({ maxError: 0.08, height: 10 })).toThrow(new RangeError("cedPlotLayout: 'height' must be an integer >= 120, got 10"));
    expect(() => cedPlotLayout({ maxError: 0.08, colour: 1 } as never)).toThrow(/^cedPlotLayout: 'colour' must be one of the known options/);
  });

  it("names writeCedPlot and the caller's path when the file cannot be written, leaving nothing behind", async () => {
    const curves = [{ name: 'a', errors: [0.1] }];
    const dir = mkdtempSync(join(tmpdir(), 'ced-plot-'));
    try {
      const inMissing = join(dir, 'missing', 'ced.png');
      await expect(writeCedPlot(inMissing, curves)).rejects.toThrow(Object.assign(new Error(`writeCedPlot: cannot write '${inMissing}': its folder '${join(dir, 'missing')}' does not exist`), { code: 'ENOENT' }));
      mkdirSync(join(dir, 'taken.png'));
      await expect(writeCedPlot(join(dir, 'taken.png'), curves)).rejects.toThrow(Object.assign(new Error(`writeCedPlot: cannot write '${join(dir, 'taken.png')}': it is a folder`), { code: 'EISDIR' }));
      // The failed writes left no temporary file.
      expect(readdirSync(dir)).toEqual(['taken.png']);
      expect(readdirSync(join(dir, 'taken.png'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('plots raw errors on any x range, not only multiples of the CED grid step', () => {
    // 0.12345 is no multiple of cedCurve's 1e-4 grid; the step used to be refused there.
    const img = renderCedPlot([{ name: 'steps', errors: steps, color: RED }], { maxError: 0.12345, legend: 'none', lineWidth: 1 });
    const L = cedPlotLayout({ maxError: 0.12345 });
    expect(pixel(img, L.xToPixel(0.035), L.yToPixel(0.5))).toEqual(RED);
    expect(pixel(img, L.xToPixel(0.1), L.yToPixel(1))).toEqual(RED);
    // The curve runs to the right end of the axis.
    expect(countColor(img, RED, L.right - 2, L.yToPixel(1), L.right, L.yToPixel(1))).toBeGreaterThan(0);
    expect(countColor(img, RED, L.left + 1, L.top, L.xToPixel(0.019), L.bottom - 1)).toBe(0);
  });
});
