// The op list. Each group file declares its ops (decl.ts) and registers their gradients.
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export { opDeclarations } from './decl.js';
export * from './conv.js';
export * from './linalg.js';
export * from './pool.js';
export * from './norm.js';
export * from './resize.js';
export * from './pad.js';
export * from './activation.js';
export * from './join.js';
export * from './optim.js';
