// CED plots as PNG: named curves, axes with ticks and labels, grid lines and a legend drawn
// into a raw RGB buffer (a 5x7 bitmap font for text), then encoded by @lrface/datasets (sharp).
import { checkKeys, rangeError, typeError } from '@lrface/cuda-core';
import { encodeImage, type RawImage } from '@lrface/datasets';
import { writeFileAtomic } from '@lrface/nn';
import { checkErrors } from './error-checks.js';
import { cedCurve, type CedCurve } from './metrics.js';

export type Rgb = [number, number, number];

export type LegendPlace = 'auto' | 'lower-right' | 'upper-left' | 'upper-right' | 'lower-left' | 'none';
const LEGEND_PLACES: readonly LegendPlace[] = ['auto', 'lower-right', 'upper-left', 'upper-right', 'lower-left', 'none'];

export interface CedPlotCurve {
  name: string;
  /** Per-image NMEs (the CED is computed on the plot's x range) ... */
  errors?: ArrayLike<number>;
  /** ... or a CED curve already computed. */
  curve?: CedCurve;
  /** Default: the next colour of a 10-colour palette. */
  color?: Rgb;
}

export interface CedPlotOptions {
  /** Image size in pixels (default 640 x 480). */
  width?: number;
  height?: number;
  /** Right end of the x axis (default: the largest curve threshold, 0.08 for raw errors). */
  maxError?: number;
  /** Distance between x ticks (default: a round step giving 4-10 ticks). */
  xTick?: number;
  title?: string;
  /** Default 'NME'. */
  xLabel?: string;
  /** Default 'FRACTION OF IMAGES'. */
  yLabel?: string;
  /** Curve thickness in pixels (default 2). */
  lineWidth?: number;
  /** Legend corner; 'auto' (default) takes the corner of the plot area the curves cross least. */
  legend?: LegendPlace;
  /** Text size: pixels per font dot (default 2 for 480+ px tall images, else 1). */
  fontScale?: number;
}

/** Where the data lands: the plot area and the data -> pixel map (pixel centres are integers). */
export interface CedPlotLayout {
  width: number;
  height: number;
  /** Plot area, inclusive pixel bounds. */
  left: number;
  right: number;
  top: number;
  bottom: number;
  maxError: number;
  /** Pixel column of an error value. */
  xToPixel(error: number): number;
  /** Pixel row of a fraction of images. */
  yToPixel(fraction: number): number;
}

export const CED_PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

// 5x7 glyphs, one 5-bit row per entry (most significant bit = leftmost dot); lower case draws as upper case.
const FONT: Record<string, number[]> = {
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '0': [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
  '1': [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  '2': [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
  '3': [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  '4': [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
  '5': [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  '6': [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
  '7': [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  '8': [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
  '9': [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  A: [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  B: [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
  C: [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
  D: [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
  E: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
  F: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
  G: [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
  H: [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  I: [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
  J: [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  K: [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
  L: [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
  M: [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
  N: [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
  O: [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  P: [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
  Q: [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
  R: [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
  S: [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
  T: [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  U: [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  V: [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
  W: [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
  X: [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
  Y: [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04],
  Z: [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
  '.': [0, 0, 0, 0, 0, 0x0c, 0x0c],
  ',': [0, 0, 0, 0, 0x0c, 0x04, 0x08],
  '-': [0, 0, 0, 0x1f, 0, 0, 0],
  _: [0, 0, 0, 0, 0, 0, 0x1f],
  '+': [0, 0x04, 0x04, 0x1f, 0x04, 0x04, 0],
  '=': [0, 0, 0x1f, 0, 0x1f, 0, 0],
  '(': [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
  ')': [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
  '[': [0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e],
  ']': [0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e],
  '<': [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
  '>': [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
  '/': [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
  ':': [0, 0x0c, 0x0c, 0, 0x0c, 0x0c, 0],
  '%': [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
  '@': [0x0e, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0e],
  '#': [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
  '*': [0, 0x04, 0x15, 0x0e, 0x15, 0x04, 0],
  "'": [0x04, 0x04, 0x08, 0, 0, 0, 0],
  '?': [0x0e, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
  '!': [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04],
  '&': [0x0c, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0d],
};
const GLYPH_W = 5;
const GLYPH_H = 7;
const ADVANCE = 6;

const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const WHITE: Rgb = [255, 255, 255];

/** A raw RGB canvas with clipped drawing primitives. */
class Canvas {
  readonly data: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 3).fill(255);
  }

  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }

  fillRect(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) this.set(x, y, c);
  }

  /** Bresenham line with a square brush of side `thickness` centred on each step. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    // Bresenham needs integer end points to terminate.
    x0 = Math.round(x0);
    y0 = Math.round(y0);
    x1 = Math.round(x1);
    y1 = Math.round(y1);
    const lo = -Math.floor((thickness - 1) / 2);
    const hi = lo + thickness - 1;
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    let x = x0;
    let y = y0;
    for (;;) {
      this.fillRect(x + lo, y + lo, x + hi, y + hi, c);
      if (x === x1 && y === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }

  /** How many pixels in the rectangle have one of the colours. */
  countColors(x0: number, y0: number, x1: number, y1: number, colors: readonly Rgb[]): number {
    let n = 0;
    for (let y = Math.max(0, y0); y <= Math.min(this.height - 1, y1); y++)
      for (let x = Math.max(0, x0); x <= Math.min(this.width - 1, x1); x++) {
        const i = (y * this.width + x) * 3;
        if (colors.some((c) => this.data[i] === c[0] && this.data[i + 1] === c[1] && this.data[i + 2] === c[2])) n++;
      }
    return n;
  }

  /** Text with its top-left at (x, y); `vertical` runs bottom-to-top (rotated 90 degrees counter-clockwise). */
  text(str: string, x: number, y: number, scale: number, c: Rgb, vertical = false): void {
    let pen = 0;
    for (const ch of str.toUpperCase()) {
      const glyph = FONT[ch] ?? FONT['?'];
      for (let r = 0; r < GLYPH_H; r++)
        for (let col = 0; col < GLYPH_W; col++) {
          if (!((glyph[r] >> (GLYPH_W - 1 - col)) & 1)) continue;
          const gx = pen + col * scale;
          const gy = r * scale;
          if (vertical) this.fillRect(x + gy, y - gx - scale + 1, x + gy + scale - 1, y - gx, c);
          else this.fillRect(x + gx, y + gy, x + gx + scale - 1, y + gy + scale - 1, c);
        }
      pen += ADVANCE * scale;
    }
  }
}

/** Width in pixels of a string drawn at `scale`. */
export function textWidth(str: string, scale = 1): number {
  return str.length === 0 ? 0 : (str.length * ADVANCE - (ADVANCE - GLYPH_W)) * scale;
}

/** The smallest round tick step (1, 2, 2.5 or 5 x 10^k) with at most 10 ticks whose labels do not touch. */
function niceStep(max: number, plotWidth: number, scale: number): number {
  let p = 10 ** Math.floor(Math.log10(max / 10));
  for (;;) {
    for (const m of [1, 2, 2.5, 5]) {
      const step = m * p;
      const ticks = Math.floor(max / step + 1e-9);
      const labelWidth = Math.max(textWidth(formatTick(0, step), scale), textWidth(formatTick(ticks * step, step), scale));
      if (ticks <= 10 && (plotWidth * step) / max >= labelWidth + ADVANCE * scale) return step;
    }
    p *= 10;
  }
}

/** A tick value with as many decimals as the step needs (0.01 -> 2, 0.025 -> 3). */
function formatTick(v: number, step: number): string {
  let decimals = 0;
  while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-9) decimals++;
  return v.toFixed(decimals);
}

const OPTION_KEYS: Record<keyof CedPlotOptions, true> = {
  width: true, height: true, maxError: true, xTick: true, title: true, xLabel: true, yLabel: true, lineWidth: true, legend: true, fontScale: true,
};

// Every check takes `fn`, the public function the caller called (cedPlotLayout, renderCedPlot,
// cedPlotPng or writeCedPlot): its errors name that function, whichever one does the work.

function checkPositiveInt(fn: string, arg: string, value: unknown, min: number): number {
  if (typeof value !== 'number') throw typeError(fn, arg, 'an integer', value);
  if (!Number.isInteger(value) || value < min) throw rangeError(fn, arg, `an integer >= ${min}`, value);
  return value;
}

/** The plot geometry for the given options and x range (the same as renderCedPlot uses). */
export function cedPlotLayout(options: CedPlotOptions & { maxError: number }): CedPlotLayout {
  return layoutOf('cedPlotLayout', options);
}

function layoutOf(fn: string, options: CedPlotOptions & { maxError: number }): CedPlotLayout {
  checkKeys(fn, options, OPTION_KEYS);
  const width = checkPositiveInt(fn, 'width', options.width ?? 640, 160);
  const height = checkPositiveInt(fn, 'height', options.height ?? 480, 120);
  const s = checkPositiveInt(fn, 'fontScale', options.fontScale ?? (height >= 480 ? 2 : 1), 1);
  const maxError = options.maxError;
  if (typeof maxError !== 'number' || !(Number.isFinite(maxError) && maxError > 0)) throw rangeError(fn, 'maxError', 'a positive finite number', maxError);
  const line = GLYPH_H * s;
  // Left: y label, tick labels ("1.0"), tick marks; bottom: tick labels and the x label.
  const left = line + 6 * s + textWidth('0.0', s) + 4 * s + 6;
  const right = width - 1 - 8 * s - Math.ceil(textWidth('0.00', s) / 2);
  const top = options.title ? line + 10 * s : 6 * s;
  const bottom = height - 1 - (2 * line + 12 * s);
  if (right - left < 40 || bottom - top < 40) throw rangeError(fn, 'width', 'an image large enough for a plot area of 40 x 40 px', `${width}x${height}`, true);
  return {
    width,
    height,
    left,
    right,
    top,
    bottom,
    maxError,
    xToPixel: (e: number) => Math.round(left + (Math.min(Math.max(e, 0), maxError) / maxError) * (right - left)),
    yToPixel: (f: number) => Math.round(bottom - Math.min(Math.max(f, 0), 1) * (bottom - top)),
  };
}

/**
 * The curves' CED data on the plot's x range. The grid step divides maxError exactly (at most
 * 1e-4, at least 1000 steps), as cedCurve requires: a maxError such as 0.12345 is no multiple of 1e-4.
 */
function curveData(curves: readonly CedPlotCurve[], maxError: number): CedCurve[] {
  const step = maxError / Math.max(1000, Math.round(maxError / 1e-4));
  return curves.map((c) => c.curve ?? cedCurve(c.errors as ArrayLike<number>, { max: maxError, step }));
}

/** Draws CED curves into an RGB image (Uint8Array, 3 channels). */
export function renderCedPlot(curves: readonly CedPlotCurve[], options: CedPlotOptions = {}): RawImage<Uint8Array> {
  return render('renderCedPlot', curves, options);
}

function checkCurves(fn: string, curves: readonly CedPlotCurve[]): void {
  if (!Array.isArray(curves) || curves.length === 0) throw typeError(fn, 'curves', 'a non-empty array of {name, errors | curve}', curves);
  curves.forEach((c, i) => {
    if (typeof c !== 'object' || c === null || typeof c.name !== 'string') throw typeError(fn, `curves[${i}]`, 'an object with a string name', c);
    if ((c.errors === undefined) === (c.curve === undefined)) throw typeError(fn, `curves[${i}]`, 'an object with either errors or curve', c);
    // Checked here rather than by cedCurve, whose errors would name it and not the curve.
    if (c.errors !== undefined) checkErrors(fn, c.errors, `curves[${i}].errors`);
    if (c.curve !== undefined) {
      const { thresholds, fractions } = c.curve;
      if (!(thresholds instanceof Float64Array || Array.isArray(thresholds)) || !(fractions instanceof Float64Array || Array.isArray(fractions)) || thresholds.length !== fractions.length || thresholds.length < 2)
        throw rangeError(fn, `curves[${i}].curve`, 'thresholds and fractions of equal length (2 or more)', c.curve);
    }
    if (c.color !== undefined && !(Array.isArray(c.color) && c.color.length === 3 && (c.color as number[]).every((v: number) => Number.isInteger(v) && v >= 0 && v <= 255)))
      throw rangeError(fn, `curves[${i}].color`, 'an [r, g, b] triple of integers in [0, 255]', c.color);
  });
}

function render(fn: string, curves: readonly CedPlotCurve[], options: CedPlotOptions): RawImage<Uint8Array> {
  checkKeys(fn, options, OPTION_KEYS);
  checkCurves(fn, curves);
  const maxError = options.maxError ?? Math.max(...curves.map((c) => (c.curve ? c.curve.thresholds[c.curve.thresholds.length - 1] : 0.08)));
  const layout = layoutOf(fn, { ...options, maxError });
  const lineWidth = checkPositiveInt(fn, 'lineWidth', options.lineWidth ?? 2, 1);
  const legend = options.legend ?? 'auto';
  if (!LEGEND_PLACES.includes(legend)) throw rangeError(fn, 'legend', LEGEND_PLACES.map((p) => `'${p}'`).join(', '), legend);
  const s = options.fontScale ?? (layout.height >= 480 ? 2 : 1);
  const xTick = options.xTick ?? niceStep(maxError, layout.right - layout.left, s);
  if (typeof xTick !== 'number' || !(xTick > 0 && maxError / xTick <= 50)) throw rangeError(fn, 'xTick', `a positive step giving at most 50 ticks on [0, ${maxError}]`, xTick);
  const { width, height, left, right, top, bottom, xToPixel, yToPixel } = layout;
  const canvas = new Canvas(width, height);
  const line = GLYPH_H * s;

  // Grid and ticks.
  const xTicks: number[] = [];
  // Rounded so that 3 * 0.05 is 0.15, as a caller computing the same tick gets it.
  for (let i = 0; i * xTick <= maxError * (1 + 1e-9); i++) xTicks.push(Number((i * xTick).toPrecision(12)));
  const yTicks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  for (const t of xTicks) canvas.line(xToPixel(t), top, xToPixel(t), bottom, GRID);
  for (const f of yTicks) canvas.line(left, yToPixel(f), right, yToPixel(f), GRID);
  const tickLen = 4 * s;
  for (const t of xTicks) {
    const px = xToPixel(t);
    canvas.line(px, bottom, px, bottom + tickLen, BLACK);
    const label = formatTick(t, xTick);
    canvas.text(label, px - Math.floor(textWidth(label, s) / 2), bottom + tickLen + 2 * s, s, BLACK);
  }
  for (const f of yTicks) {
    const py = yToPixel(f);
    canvas.line(left - tickLen, py, left, py, BLACK);
    const label = f.toFixed(1);
    canvas.text(label, left - tickLen - 2 * s - textWidth(label, s), py - Math.floor(line / 2), s, BLACK);
  }

  // Curves, drawn as polylines through their grid points, clipped to the plot's x range.
  const data = curveData(curves, maxError);
  const colors = curves.map((c, i) => c.color ?? CED_PALETTE[i % CED_PALETTE.length]);
  data.forEach((d, ci) => {
    let prev: [number, number] | null = null;
    for (let i = 0; i < d.thresholds.length; i++) {
      if (d.thresholds[i] > maxError * (1 + 1e-9)) break;
      const p: [number, number] = [xToPixel(d.thresholds[i]), yToPixel(d.fractions[i])];
      if (prev && (p[0] !== prev[0] || p[1] !== prev[1])) canvas.line(prev[0], prev[1], p[0], p[1], colors[ci], lineWidth);
      else if (!prev) canvas.fillRect(p[0], p[1], p[0], p[1], colors[ci]);
      prev = p;
    }
  });

  // Axes over the curves' ends.
  canvas.line(left, top, left, bottom, BLACK);
  canvas.line(left, bottom, right, bottom, BLACK);

  // Labels and title.
  const xLabel = options.xLabel ?? 'NME';
  const yLabel = options.yLabel ?? 'fraction of images';
  canvas.text(xLabel, Math.round((left + right) / 2 - textWidth(xLabel, s) / 2), height - 1 - line - 2 * s, s, BLACK);
  canvas.text(yLabel, 2 * s, Math.round((top + bottom) / 2 + textWidth(yLabel, s) / 2), s, BLACK, true);
  if (options.title) canvas.text(options.title, Math.round((left + right) / 2 - textWidth(options.title, s) / 2), 4 * s, s, BLACK);

  // Legend: a swatch and the name per curve in a framed box; text shrinks to fit the plot area.
  if (legend !== 'none') {
    let ls = s;
    const boxSize = (k: number): [number, number] => [14 * k + 12 * k + Math.max(...curves.map((c) => textWidth(c.name, k))), curves.length * (GLYPH_H * k + 4 * k) + 4 * k];
    while (ls > 1 && boxSize(ls)[0] > right - left - 12 * ls) ls--;
    const [boxW, boxH] = boxSize(ls);
    const corners: Record<string, [number, number]> = {
      'lower-right': [right - 6 * ls - boxW, bottom - 6 * ls - boxH],
      'upper-left': [left + 6 * ls, top + 6 * ls],
      'upper-right': [right - 6 * ls - boxW, top + 6 * ls],
      'lower-left': [left + 6 * ls, bottom - 6 * ls - boxH],
    };
    let place: LegendPlace = legend;
    if (place === 'auto') {
      // The corner hiding the fewest curve pixels (ties: the order above).
      let fewest = Infinity;
      for (const [name, [x0, y0]] of Object.entries(corners)) {
        const hidden = canvas.countColors(x0, y0, x0 + boxW, y0 + boxH, colors);
        if (hidden < fewest) {
          fewest = hidden;
          place = name as LegendPlace;
        }
      }
    }
    const [x0, y0] = corners[place];
    const swatch = 14 * ls;
    const rowH = GLYPH_H * ls + 4 * ls;
    canvas.fillRect(x0, y0, x0 + boxW, y0 + boxH, WHITE);
    canvas.line(x0, y0, x0 + boxW, y0, BLACK);
    canvas.line(x0, y0 + boxH, x0 + boxW, y0 + boxH, BLACK);
    canvas.line(x0, y0, x0, y0 + boxH, BLACK);
    canvas.line(x0 + boxW, y0, x0 + boxW, y0 + boxH, BLACK);
    curves.forEach((c, i) => {
      const y = y0 + 4 * ls + i * rowH;
      const mid = y + Math.floor((GLYPH_H * ls) / 2);
      canvas.line(x0 + 4 * ls, mid, x0 + 4 * ls + swatch, mid, colors[i], lineWidth);
      canvas.text(c.name, x0 + 8 * ls + swatch, y, ls, BLACK);
    });
  }
  return { data: canvas.data, width, height, channels: 3 };
}

/** The CED plot as PNG bytes. */
export async function cedPlotPng(curves: readonly CedPlotCurve[], options: CedPlotOptions = {}): Promise<Buffer> {
  return encodeImage(render('cedPlotPng', curves, options), { format: 'png' });
}

/** Writes the CED plot as a PNG file (atomically: a reader never sees half a file). */
export async function writeCedPlot(path: string, curves: readonly CedPlotCurve[], options: CedPlotOptions = {}): Promise<void> {
  const fn = 'writeCedPlot';
  if (typeof path !== 'string' || path.length === 0) throw typeError(fn, 'path', 'a non-empty string', path);
  const png = await encodeImage(render(fn, curves, options), { format: 'png' });
  writeFileAtomic(path, png, fn);
}
