/**
 * @lrface/recognition: low-resolution face recognition. FRNET, LightCNN-9 and LightCNN-29,
 * the joint hallucination + recognition model trained with center loss, training batches from
 * identity-labelled faces, a recogniser for images, and the verification (LFW, YTF) and
 * identification (TinyFace) protocols.
 * @packageDocumentation
 */
export * from './models.js';
export * from './metrics.js';
export * from './train.js';
export * from './weights.js';
export * from './recognizer.js';
export { writeFace } from './preprocess.js';
