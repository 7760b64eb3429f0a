// @lrface/landmarks: landmarks directly on tiny faces.
export * from './schemes.js';
export * from './decode.js';
export * from './metrics.js';
export * from './ced-plot.js';
export * from './align.js';
export * from './models.js';
export * from './gan.js';
export * from './presets.js';
export * from './train.js';
export * from './weights.js';
export * from './detector.js';
export * from './shape-model.js';
export * from './lgcn.js';
