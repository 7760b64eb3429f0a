// Re-exports for op modules, so each op file imports the engine core from one place.
export { Tensor, empty, uninitialized, formatShape, shapeSize, keep } from '../tensor.js';
export type { Shape } from '../tensor.js';
export type { NativeStorage as NativeStorageRef } from '../native.js';
export { kernels } from '../native.js';
export { record, registerGradient, shouldRecord, noGrad } from '../autograd.js';
export type { GradContext } from '../autograd.js';
export { checkKeys, rangeError, typeError, stateError } from '../errors.js';
