// Helpers shared by the readers: option checks and face-size measures.
import { resolve } from 'node:path';
import { checkKeys, checkNumber, checkOneOf, checkString, typeError } from '../errors.js';
import type { Box } from '../image.js';

/** How a face's size is measured for size filters. */
export type SizeMeasure = 'height' | 'width' | 'max' | 'min' | 'sqrtArea';
export const SIZE_MEASURES = ['height', 'width', 'max', 'min', 'sqrtArea'] as const;

/** The size of a box under a measure. */
export function boxSize(box: Box, measure: SizeMeasure = 'max'): number {
  switch (measure) {
    case 'height': return box.height;
    case 'width': return box.width;
    case 'max': return Math.max(box.width, box.height);
    case 'min': return Math.min(box.width, box.height);
    case 'sqrtArea': return Math.sqrt(Math.max(0, box.width) * Math.max(0, box.height));
  }
}

/** A face-size window [minSize, maxSize] (pixels, inclusive) under a measure. */
export interface SizeFilter {
  minSize?: number;
  maxSize?: number;
  /** Default 'max' (the longer side of the box). */
  measure?: SizeMeasure;
}

/** Checks a size filter and returns a predicate over boxes. */
export function sizePredicate(fn: string, filter: SizeFilter): (box: Box) => boolean {
  const min = checkNumber(fn, 'minSize', filter.minSize ?? 0, 0);
  const max = filter.maxSize === undefined ? Infinity : checkNumber(fn, 'maxSize', filter.maxSize, min);
  const measure = checkOneOf(fn, 'measure', filter.measure ?? 'max', SIZE_MEASURES);
  return (box) => {
    const s = boxSize(box, measure);
    return s >= min && s <= max;
  };
}

/** Checks an options object and its root folder. */
export function checkOptions<T extends object>(fn: string, options: T | undefined, known: readonly string[]): T {
  if (!options || typeof options !== 'object') throw typeError(fn, 'options', 'an options object', options);
  checkKeys(fn, options, known);
  return options;
}

/** An absolute path from an option (relative to the working directory). */
export function pathOption(fn: string, name: string, value: unknown): string {
  return resolve(checkString(fn, name, value));
}
