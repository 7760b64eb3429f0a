/**
 * @lrface/sr: super-resolution of tiny faces. Bicubic, SRCNN, SRNET, VDSR, DRCN, SRINC and
 * SRINC-F networks, DIC / DICGAN (x8 face SR steered by landmark heatmaps), a patch tiler for
 * any image size, Y/RGB colour handling, PSNR/SSIM as the SR literature computes them, training
 * with each paper's recipe, and shipped face weights.
 * @packageDocumentation
 */
export * from './models.js';
export * from './metrics.js';
export * from './tiler.js';
export * from './pipeline.js';
export * from './weights.js';
export * from './train.js';
export * from './api.js';
export * from './evaluate.js';
export * from './assets.js';
export * from './dic.js';
export * from './dic-train.js';
