// @lrface/landmarks: landmarks directly on tiny faces.
export * from './schemes.js';
export * from './decode.js';
export * from './metrics.js';
export * from './ced-plot.js';
export * from './align.js';
