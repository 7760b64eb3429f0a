/**
 * @lrface/datasets: readers for the face datasets the lrface models train and test on (AFLW,
 * 300-W, WIDER FACE, TinyFace, LFW, YouTube Faces, dlib XML), image I/O through sharp,
 * MATLAB-compatible degradations, augmentation with landmark transforms, heatmaps, and a
 * prefetching data loader producing NCHW batches for @lrface/cuda-core.
 * @packageDocumentation
 */
export * from './errors.js';
export { Rng, rngFrom } from './random.js';
export { readBytes, readLines, splitLines } from './files.js';
export type { Line } from './files.js';
export * from './mat.js';
export * from './color.js';
export * from './image.js';
export * from './dataset.js';
export { boxSize, SIZE_MEASURES } from './readers/common.js';
export type { SizeMeasure, SizeFilter } from './readers/common.js';
export * from './readers/wider.js';
export * from './readers/w300.js';
export * from './readers/lfw.js';
export * from './readers/ytf.js';
export * from './readers/tinyface.js';
export * from './readers/dlib.js';
export * from './readers/aflw.js';
export * from './degrade.js';
export * from './metrics.js';
export * from './augment.js';
export * from './heatmap.js';
export * from './patches.js';
export * from './loader.js';
